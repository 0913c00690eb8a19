-- Births per month and county of birth, with Chinese division names, for dashboards.
-- Aggregates only: no name, ID or certificate number reaches this table.
with

births as (
    select * from {{ ref('birth_registration') }}
),

divisions as (
    select * from {{ source('reference', 'gbt2260_current') }}
)

select
    date_trunc('month', births.birth_date)::date as birth_month,
    births.province_code,
    province.name as province_name_zh,
    births.birth_division_code,
    county.name as division_name_zh,
    prefecture.name as prefecture_name_zh,
    count(*) as births,
    count(*) filter (where births.child_sex_code = '1') as boys,
    count(*) filter (where births.child_sex_code = '2') as girls,
    count(*) filter (where births.hukou_division_code[1:2] <> births.province_code) as hukou_other_province,
from births
left join divisions as county on county.code = births.birth_division_code
left join divisions as prefecture on prefecture.code = county.parent_code and prefecture.level = 'prefecture'
left join divisions as province on province.code = births.province_code || '0000'
group by all
order by birth_month, births.birth_division_code
