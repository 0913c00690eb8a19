{#-
  The SQL twins of tongban/validators.py: DuckDB macros with the same names, semantics and
  problem codes (each *_problem macro returns NULL when the value is valid or NULL). The
  body below is plain DuckDB SQL with no jinja; tongban.validators.sql_ddl() returns it for
  use outside dbt. Macros that need reference data read the reference.* tables that
  tongban.reference.load_reference() creates. Values are upper-cased, not trimmed.
  Vectors: tests/unit/identifier_vectors.csv.
-#}
{% macro tongban_validators_ddl() %}
-- GB 11643-1999 citizen identity number: ISO 7064 MOD 11-2, weights 2^(18-i) mod 11
-- (the weighted sums are written out term by term: several times faster than a list lambda)
create or replace macro gb11643_check_char(s) as
    case when regexp_full_match(s, '[0-9]{17}') then
        substr('10X98765432', ((ascii(substr(s, 1, 1)) - 48) * 7 + (ascii(substr(s, 2, 1)) - 48) * 9 + (ascii(substr(s, 3, 1)) - 48) * 10 + (ascii(substr(s, 4, 1)) - 48) * 5 + (ascii(substr(s, 5, 1)) - 48) * 8 + (ascii(substr(s, 6, 1)) - 48) * 4 + (ascii(substr(s, 7, 1)) - 48) * 2 + (ascii(substr(s, 8, 1)) - 48) * 1 + (ascii(substr(s, 9, 1)) - 48) * 6 + (ascii(substr(s, 10, 1)) - 48) * 3 + (ascii(substr(s, 11, 1)) - 48) * 7 + (ascii(substr(s, 12, 1)) - 48) * 9 + (ascii(substr(s, 13, 1)) - 48) * 10 + (ascii(substr(s, 14, 1)) - 48) * 5 + (ascii(substr(s, 15, 1)) - 48) * 8 + (ascii(substr(s, 16, 1)) - 48) * 4 + (ascii(substr(s, 17, 1)) - 48) * 2) % 11 + 1, 1)
    end;

create or replace macro gb11643_birth_date(v) as
    case when regexp_full_match(upper(v), '[0-9]{17}[0-9X]')
          and try_strptime(substr(v, 7, 8), '%Y%m%d')::date between date '1900-01-01' and current_date
        then try_strptime(substr(v, 7, 8), '%Y%m%d')::date
    end;

create or replace macro gb11643_problem(v) as
    case
        when v is null then null
        when regexp_full_match(v, '[0-9]{15}') then 'id_legacy_15_digit'
        when not regexp_full_match(upper(v), '[0-9]{17}[0-9X]') then 'id_malformed'
        when gb11643_birth_date(v) is null then 'id_invalid_birth_date'
        when gb11643_check_char(substr(v, 1, 17)) <> upper(substr(v, 18, 1)) then 'id_bad_check_character'
        when not exists (
            select 1 from reference.gbt2260_history h
            where h.code = substr(v, 1, 6)
              and h.start_year <= greatest(try_cast(substr(v, 7, 4) as integer), 1981)
              and (h.end_year is null or greatest(try_cast(substr(v, 7, 4) as integer), 1981) <= h.end_year)
        ) then 'id_birthplace_not_in_use'
    end;

-- GB 11714 organisation code: weights 3 7 9 10 5 8 4 2, A-Z = 10-35, 11 - S mod 11 (10 is X, 11 is 0)
create or replace macro gb11714_check_char(s) as
    case when regexp_full_match(upper(s), '[0-9A-Z]{8}') then
        substr('123456789X0', 11 - ((ascii(substr(upper(s), 1, 1)) - case when substr(upper(s), 1, 1) <= '9' then 48 else 55 end) * 3 + (ascii(substr(upper(s), 2, 1)) - case when substr(upper(s), 2, 1) <= '9' then 48 else 55 end) * 7 + (ascii(substr(upper(s), 3, 1)) - case when substr(upper(s), 3, 1) <= '9' then 48 else 55 end) * 9 + (ascii(substr(upper(s), 4, 1)) - case when substr(upper(s), 4, 1) <= '9' then 48 else 55 end) * 10 + (ascii(substr(upper(s), 5, 1)) - case when substr(upper(s), 5, 1) <= '9' then 48 else 55 end) * 5 + (ascii(substr(upper(s), 6, 1)) - case when substr(upper(s), 6, 1) <= '9' then 48 else 55 end) * 8 + (ascii(substr(upper(s), 7, 1)) - case when substr(upper(s), 7, 1) <= '9' then 48 else 55 end) * 4 + (ascii(substr(upper(s), 8, 1)) - case when substr(upper(s), 8, 1) <= '9' then 48 else 55 end) * 2) % 11, 1)
    end;

-- GB 32100-2015 unified social credit code: weights 3^(i-1) mod 31, 31 - S mod 31 (31 is 0)
create or replace macro gb32100_check_char(s) as
    case when regexp_full_match(upper(s), '[0-9A-HJ-NP-RTUW-Y]{17}') then
        substr('0123456789ABCDEFGHJKLMNPQRTUWXY', (31 - ((instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 1, 1))) - 1) * 1 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 2, 1))) - 1) * 3 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 3, 1))) - 1) * 9 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 4, 1))) - 1) * 27 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 5, 1))) - 1) * 19 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 6, 1))) - 1) * 26 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 7, 1))) - 1) * 16 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 8, 1))) - 1) * 17 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 9, 1))) - 1) * 20 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 10, 1))) - 1) * 29 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 11, 1))) - 1) * 25 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 12, 1))) - 1) * 13 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 13, 1))) - 1) * 8 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 14, 1))) - 1) * 24 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 15, 1))) - 1) * 10 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 16, 1))) - 1) * 30 + (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', upper(substr(s, 17, 1))) - 1) * 28) % 31) % 31 + 1, 1)
    end;

create or replace macro gb32100_problem(v) as
    case
        when v is null then null
        when not regexp_full_match(upper(v), '[1-9ANY][0-9A-HJ-NP-RTUW-Y][0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}')
            then 'uscc_malformed'
        when gb32100_check_char(substr(v, 1, 17)) <> upper(substr(v, 18, 1)) then 'uscc_bad_check_character'
        when gb11714_check_char(substr(v, 9, 8)) <> upper(substr(v, 17, 1)) then 'uscc_bad_org_code_check'
        when substr(v, 3, 6) <> '100000'
         and not exists (select 1 from reference.gbt2260_history h where h.code = substr(v, 3, 6))
         and not exists (select 1 from reference.gbt2260_current c where c.code = substr(v, 3, 6))
            then 'uscc_unknown_region'
    end;

-- does the USCC's registration region (positions 3-8) cover the division d?
create or replace macro uscc_region_agrees(u, d) as
    case
        when u is null or d is null or length(u) < 8 then null
        when substr(u, 3, 6) = d or substr(u, 3, 6) = '100000' then true
        when substr(u, 7, 2) = '00' and substr(u, 5, 2) = '00' then starts_with(d, substr(u, 3, 2))
        when substr(u, 7, 2) = '00' then starts_with(d, substr(u, 3, 4))
        else false
    end;

-- GB/T 2260 division code in force (MCA 2024); lvl is 'province' | 'prefecture' | 'county' or NULL
create or replace macro gbt2260_problem(v, lvl) as
    case
        when v is null then null
        when not regexp_full_match(v, '[0-9]{6}') then 'division_malformed'
        when exists (select 1 from reference.nbs_statistical_codes n where n.code = v)
            then 'division_nbs_statistical_code'
        when not exists (select 1 from reference.gbt2260_current c where c.code = v) then 'division_not_in_use'
        when lvl is not null
         and not exists (select 1 from reference.gbt2260_current c where c.code = v and c.level = lvl)
            then 'division_wrong_level'
    end;

-- ISO/IEC 7064 MOD 37,36 (hybrid system) over 0-9A-Z (values 0-35): p starts at 36; for each
-- character p = ((p + value) mod 36, 0 read as 36) * 2 mod 37; the check value is (37 - p) mod 36
create or replace macro mod37_36_check_char(s) as
    case
        when s = '' then '1'
        when regexp_full_match(upper(s), '[0-9A-Z]+') then
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                   (37 - list_reduce(
                       list_transform(string_split(upper(s), ''),
                           lambda c: ascii(c) - case when c <= '9' then 48 else 55 end),
                       lambda p, x: (case when (p + x) % 36 = 0 then 36 else (p + x) % 36 end) * 2 % 37,
                       36)) % 36 + 1,
                   1)
    end;

-- GB/T 36904-2018 e-certificate identifier:
-- 1.2.156.3005.2.<USCC + 3 digits>.<USCC | 6-digit area>.<serial 1-40>.<3-digit version>.<check>
create or replace macro gbt36904_problem(v) as
    case
        when v is null then null
        when not regexp_full_match(upper(v),
            '1\.2\.156\.3005\.2\.[0-9A-HJ-NP-RTUW-Y]{18}[0-9]{3}\.([0-9A-HJ-NP-RTUW-Y]{18}|[0-9]{6})\.[0-9A-Z]{1,40}\.[0-9]{3}\.[0-9A-Z]')
            then 'ecert_malformed'
        when mod37_36_check_char(replace(substr(upper(v), 16, length(v) - 17), '.', ''))
             <> upper(right(v, 1)) then 'ecert_bad_check_character'
    end;

-- GB/T 4754-2017 4-digit industry class
create or replace macro gbt4754_problem(v) as
    case
        when v is null then null
        when not exists (select 1 from reference.gbt4754_classes c where c.code = v) then 'industry_unknown'
    end;
{% endmacro %}
