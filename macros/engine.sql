{#- What differs between tongban's two engines outside the generated models (issue 19).

    on-run-start: DuckDB creates the validator and masking macros (macros/validators.sql,
    macros/pii.sql) and the schema of the incremental state (macros/incremental_by_source.sql).
    Spark has no SQL macros (the Spark models inline the expressions: tongban.standards.rules.spark)
    and rebuilds every table on every run (no incremental state), so its hooks are empty (dbt
    skips an empty hook). -#}
{% macro tongban_run_start(hook) %}
  {{- return(adapter.dispatch('tongban_run_start', 'tongban')(hook)) -}}
{% endmacro %}

{% macro default__tongban_run_start(hook) %}
  {%- if hook == 'validators' -%}{{ tongban_validators_ddl() }}
  {%- elif hook == 'pii' -%}{{ tongban_pii_ddl() }}
  {%- elif hook == 'state' -%}create schema if not exists tongban_state
  {%- else -%}{{ exceptions.raise_compiler_error('unknown on-run-start hook ' ~ hook) }}
  {%- endif -%}
{% endmacro %}

{% macro spark__tongban_run_start(hook) %}{% endmacro %}

