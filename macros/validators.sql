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
create or replace macro gb11643_check_char(s) as
    case when regexp_full_match(s, '[0-9]{17}') then
        substr('10X98765432',
               cast(list_sum(list_transform(string_split(s, ''),
                   lambda c, i: (ascii(c) - 48) * [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2][i]))
                    as bigint) % 11 + 1,
               1)
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
        substr('123456789X0',
               11 - cast(list_sum(list_transform(string_split(upper(s), ''),
                   lambda c, i: (ascii(c) - case when c <= '9' then 48 else 55 end)
                                * [3, 7, 9, 10, 5, 8, 4, 2][i])) as bigint) % 11,
               1)
    end;

-- GB 32100-2015 unified social credit code: weights 3^(i-1) mod 31, 31 - S mod 31 (31 is 0)
create or replace macro gb32100_check_char(s) as
    case when regexp_full_match(upper(s), '[0-9A-HJ-NP-RTUW-Y]{17}') then
        substr('0123456789ABCDEFGHJKLMNPQRTUWXY',
               (31 - cast(list_sum(list_transform(string_split(upper(s), ''),
                   lambda c, i: (instr('0123456789ABCDEFGHJKLMNPQRTUWXY', c) - 1)
                                * [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28][i]))
                    as bigint) % 31) % 31 + 1,
               1)
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
