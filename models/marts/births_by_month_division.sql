-- Births per month and county of birth, with Chinese division names, for dashboards.
-- Aggregates only: no name, ID or certificate number reaches this table.
-- Portable SQL: the same model builds on DuckDB and on Spark (issue 19), so no `group by all`,
-- `count(*) filter`, `[1:2]` or `::date` here.
with

births as (
    select * from {{ ref('birth_registration') }}
),

divisions as (
    select * from {{ source('reference', 'gbt2260_current') }}
)

select
    cast(date_trunc('month', births.birth_date) as date) as birth_month,
    births.province_code,
    province.name as province_name_zh,
    births.birth_division_code,
    county.name as division_name_zh,
    prefecture.name as prefecture_name_zh,
    count(*) as births,
    count(case when births.child_sex_code = '1' then 1 end) as boys,
    count(case when births.child_sex_code = '2' then 1 end) as girls,
    count(case when substr(births.hukou_division_code, 1, 2) <> births.province_code then 1 end) as hukou_other_province
from births
left join divisions as county on county.code = births.birth_division_code
left join divisions as prefecture on prefecture.code = county.parent_code and prefecture.level = 'prefecture'
left join divisions as province on province.code = births.province_code || '0000'
group by
    cast(date_trunc('month', births.birth_date) as date), births.province_code, province.name,
    births.birth_division_code, county.name, prefecture.name
order by birth_month, births.birth_division_code
