{#-
  The harmonized tables and their rejections, rebuilt source by source (issue 5).

  Each checked table carries the dbt invocation that built it (`checked_build`); each of these
  models records in `tongban_state."<model>__builds"` the builds its rows came from. An
  incremental run selects again, deletes and inserts the rows of the sources whose checked table
  was built since (all of them without a record); the other sources' rows stay as they are.

  A row of an unchanged source can still change when rules across rows involve other sources:
  a value that must be unique across the region (birth_certificate_number), or a key that is not
  source-scoped. Such an entity's models (config meta.tongban_cross_rows: its duplicates model)
  also select again every row the rules across rows flag now, or flagged at their last build
  (`tongban_state."<model>__flagged"`): a row flagged neither then nor now has no reason from
  them either way. An entity whose key is a derived identity_hash ('<source_id>-' || hash) and
  which has no other unique field cannot have such rows, and does without.

  The models' own SQL is not part of the record: after editing a model, macro or the project by
  hand, build with `--full-refresh` (tongban does when its recorded definitions changed).
-#}

{% macro _tongban_meta(name) %}
  {{- return((config.get('meta') or {}).get(name) if execute else none) -}}
{% endmacro %}


{% macro _tongban_state(suffix) %}
  {{- return(adapter.get_relation(database=this.database, schema='tongban_state',
                                  identifier=this.identifier ~ '__' ~ suffix)) -}}
{% endmacro %}


{% macro tongban_changed_sources() %}
  {#- The sources of this model (meta.tongban_by_source: source_id -> checked model) whose checked
      table is not the one its rows were built from; all of them without a record. -#}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set checked = _tongban_meta('tongban_by_source') or {} -%}
  {%- set state = _tongban_state('builds') -%}
  {%- if state is none or (_tongban_meta('tongban_cross_rows') and _tongban_state('flagged') is none) -%}
    {{ return(checked | list | sort) }}
  {%- endif -%}
  {%- set now = [] -%}
  {%- for source_id, model in checked | dictsort -%}
    {%- do now.append("select '" ~ source_id ~ "' as source_id, (select any_value(checked_build) from "
                      ~ ref(model) ~ ") as checked_build") -%}
  {%- endfor -%}
  {%- set sql -%}
    select n.source_id from ({{ now | join(' union all ') }}) as n
    left join {{ state }} as o on o.source_id = n.source_id
    where o.checked_build is distinct from n.checked_build
    order by 1
  {%- endset -%}
  {{ return(run_query(sql).columns[0].values() | list) }}
{% endmacro %}


{% macro tongban_sources_filter(sources) %}
  {#- A predicate on source_id: in these sources (false for none). -#}
  {%- if sources | length == 0 -%}false
  {%- else -%}source_id in ({% for s in sources %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
  {%- endif -%}
{% endmacro %}


{% macro tongban_recompute_filter() %}
  {#- The rows an incremental run selects again (and deletes first): those of the changed sources
      and, across sources, those the rules across rows flag now or flagged at the last build. -#}
  {%- set changed = tongban_changed_sources() -%}
  {%- set cross = _tongban_meta('tongban_cross_rows') -%}
  {%- set flagged = _tongban_state('flagged') if cross else none -%}
  {%- if not cross or flagged is none -%}
    {{- tongban_sources_filter(changed) -}}
  {%- else -%}
    ({{ tongban_sources_filter(changed) }} or (source_id, source_row_number) in (
        select source_id, source_row_number from {{ ref(cross) }}
        union all select source_id, source_row_number from {{ flagged }}))
  {%- endif -%}
{% endmacro %}


{% macro get_incremental_tongban_by_source_sql(arg_dict) %}
  {#- Delete the rows to recompute, insert what the model selected again (its SQL selects only
      those rows when is_incremental()). -#}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set cols = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
  delete from {{ target }} where {{ tongban_recompute_filter() }};
  insert into {{ target }} ({{ cols }}) select {{ cols }} from {{ arg_dict['temp_relation'] }};
{% endmacro %}


{% macro tongban_record_builds() %}
  {#- Post-hook: the checked builds this model's rows now come from, and the rows the rules
      across rows flag now (the schema is created on-run-start: one statement, not one per model
      thread). -#}
  {%- set checked = _tongban_meta('tongban_by_source') or {} -%}
  {%- set cross = _tongban_meta('tongban_cross_rows') -%}
  {%- if checked -%}
    create or replace table tongban_state."{{ this.identifier }}__builds" as
    {% for source_id, model in checked | dictsort -%}
    select '{{ source_id }}' as source_id, (select any_value(checked_build) from {{ ref(model) }}) as checked_build
    {%- if not loop.last %} union all {% endif %}
    {% endfor %};
    {%- if cross %}
    create or replace table tongban_state."{{ this.identifier }}__flagged" as
    select source_id, source_row_number from {{ ref(cross) }};
    {%- endif %}
  {%- endif -%}
{% endmacro %}
