-- Business licences per registration division and GB/T 4754-2017 industry class, with Chinese
-- names, for dashboards.
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
    count(*) filter (where licenses.status_code = 'active') as active_licenses,
    sum(licenses.registered_capital_yuan) as registered_capital_yuan,
from licenses
left join divisions as division on division.code = licenses.registration_division_code
left join divisions as province on province.code = licenses.province_code || '0000'
left join industries on industries.code = licenses.industry_code
group by all
order by licenses.registration_division_code, licenses.industry_code
