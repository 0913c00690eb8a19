-- Business licences per registration division and GB/T 4754-2017 industry class, with Chinese
-- names, for dashboards.
-- Portable SQL: the same model builds on DuckDB and on Spark (issue 19), so no `group by all` or
-- `count(*) filter`; the capital's sum is cast to the contract's decimal(38,2) (DuckDB's sum
-- already is; Spark's sum of a decimal(p,2) is decimal(p+10,2)).
with

licenses as (
    select * from {{ ref('business_license') }}
),

divisions as (
    select * from {{ source('reference', 'gbt2260_current') }}
),

industries as (
    select * from {{ source('reference', 'gbt4754_classes') }}
)

select
    licenses.province_code,
    province.name as province_name_zh,
    licenses.registration_division_code,
    division.name as division_name_zh,
    industries.section_code,
    industries.section_name as section_name_zh,
    licenses.industry_code,
    industries.name as industry_name_zh,
    count(*) as licenses,
    count(case when licenses.status_code = 'active' then 1 end) as active_licenses,
    cast(sum(licenses.registered_capital_yuan) as decimal(38, 2)) as registered_capital_yuan
from licenses
left join divisions as division on division.code = licenses.registration_division_code
left join divisions as province on province.code = licenses.province_code || '0000'
left join industries on industries.code = licenses.industry_code
group by
    licenses.province_code, province.name, licenses.registration_division_code, division.name,
    industries.section_code, industries.section_name, licenses.industry_code, industries.name
order by licenses.registration_division_code, licenses.industry_code
