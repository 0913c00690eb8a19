{#- Lookups the generated staging models read (one map per code list, built once per query).
    Arguments are identifiers the standards loader has validated (^[a-z][a-z0-9_]*$). -#}

{#- A province's crosswalk for one code list: its source value -> the standard's code. -#}
{% macro tongban_crosswalk_lookup(source_id, code_list) %}
    select coalesce(map(list(source_value), list(target_code)), map()) as lookup
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
