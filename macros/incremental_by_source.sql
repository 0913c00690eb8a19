{#-
  The harmonized tables and their rejections, rebuilt source by source (issue 5).

  An entity whose key is source-scoped (a derived identity_hash: '<source_id>-' || hash) can only
  ever have duplicates within one source, so a source's rows in `harmonized.<entity>` and
  `<entity>__rejections` depend on that source's checked table alone. Each checked table carries
  the dbt invocation that built it (`checked_build`); each of these models records, in
  `tongban_state."<model>__builds"`, the builds its rows came from. An incremental run recomputes
  the sources whose checked table was built since (or all, without a record): their rows are
  deleted and selected again; the other sources' rows stay as they are.

  The models' own SQL is not part of the record: after editing a model, macro or the project by
  hand, build with `--full-refresh` (tongban does when its recorded definitions changed).
-#}

{% macro tongban_changed_sources() %}
  {#- The sources of this model (config meta.tongban_by_source: source_id -> checked model) whose
      checked table is not the one its rows were built from. -#}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set checked = (config.get('meta') or {}).get('tongban_by_source', {}) -%}
  {%- set state = adapter.get_relation(database=this.database, schema='tongban_state',
                                       identifier=this.identifier ~ '__builds') -%}
  {%- set now = [] -%}
  {%- for source_id, model in checked | dictsort -%}
    {%- do now.append("select '" ~ source_id ~ "' as source_id, (select any_value(checked_build) from "
                      ~ ref(model) ~ ") as checked_build") -%}
  {%- endfor -%}
  {%- if state is none -%}
    {{ return(checked | list | sort) }}
  {%- endif -%}
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


{% macro get_incremental_tongban_by_source_sql(arg_dict) %}
  {#- Delete the changed sources' rows, insert what the model selected for them (the model's SQL
      selects only those sources when is_incremental()). -#}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set cols = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
  delete from {{ target }} where {{ tongban_sources_filter(tongban_changed_sources()) }};
  insert into {{ target }} ({{ cols }}) select {{ cols }} from {{ arg_dict['temp_relation'] }};
{% endmacro %}


{% macro tongban_record_builds() %}
  {#- Post-hook: the checked builds this model's rows now come from (the schema is created
      on-run-start: one statement, not one per model thread). -#}
  {%- set checked = (config.get('meta') or {}).get('tongban_by_source', {}) if execute else {} -%}
  {%- if checked -%}
    create or replace table tongban_state."{{ this.identifier }}__builds" as
    {% for source_id, model in checked | dictsort -%}
    select '{{ source_id }}' as source_id, (select any_value(checked_build) from {{ ref(model) }}) as checked_build
    {%- if not loop.last %} union all {% endif %}
    {% endfor %}
  {%- endif -%}
{% endmacro %}
