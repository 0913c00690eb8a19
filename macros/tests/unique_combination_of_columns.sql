{#- The primary key of an aggregate: each combination of the columns appears once (written here
    because dbt Hub, and so dbt_utils, cannot be reached from these machines). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
