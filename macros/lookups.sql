{#- Lookups the generated staging models read (one map per code list, built once per query).
    Arguments are identifiers the standards loader has validated (^[a-z][a-z0-9_]*$). -#}

{#- A province's crosswalk for one code list: `lookup` maps through the approved entries,
    `pending` through the proposed ones (held back on blocking fields), `version` names the
    approved content (12 hex of an md5), recorded on every row as part of crosswalk_version. -#}
{% macro tongban_crosswalk_lookup(source_id, code_list) %}
    select
        coalesce(map(list(source_value) filter (where status = 'approved'),
                     list(target_code) filter (where status = 'approved')), map()) as lookup,
        coalesce(map(list(source_value) filter (where status = 'proposed'),
                     list(target_code) filter (where status = 'proposed')), map()) as pending,
        left(md5(coalesce(string_agg(source_value || chr(31) || target_code, chr(30) order by source_value, target_code)
                          filter (where status = 'approved'), '')), 12) as version,
    from {{ ref('crosswalks') }}
    where source_id = '{{ source_id }}' and code_list = '{{ code_list }}'
{% endmacro %}

{#- match_code: the delivery holds the standard's own codes or their Chinese labels. -#}
{% macro tongban_code_lookup(code_list) %}
    select coalesce(map(list(k), list(v)), map()) as lookup
    from (
        select k, min(code) as v
        from (
            select code as k, code from {{ ref('code_lists') }} where code_list = '{{ code_list }}'
            union all
            select label_zh as k, code from {{ ref('code_lists') }} where code_list = '{{ code_list }}'
        )
        group by k
    )
{% endmacro %}
