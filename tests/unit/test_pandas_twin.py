"""The bench's pandas path (bench.pandas_gx) maps odd values as the generated SQL does
(tests/unit/test_mapping_steps.py): otherwise the benchmark would compare different work."""

from __future__ import annotations

import pandas as pd

from bench import pandas_rules as twin
from bench.pandas_gx import map_delivery
from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check
from tongban.standards.models import Mapping
from tongban.standards.rules import FIELD_RULES, ROW_RULES, STEPS

STD = check(PROJECT_ROOT / "standards")


def _map(source_id: str, entity: str, rows: list[dict]):
    m = STD.mapping(source_id, entity)
    frame = pd.DataFrame([{c: r.get(c) for c in m.column_names} for r in rows], columns=m.column_names, dtype=object)
    return map_delivery(STD, m, frame, sha256="x", run_id="r")


def test_odd_licence_values():
    out = _map("sh", "business_license", [
        {"registered_capital": "150000.004", "uscc": "９１３１００００ＭＡ１ＦＬ４ＸＸ３Ｘ", "enterprise_name": "甲"},
        {"registered_capital": "150000.0000", "enterprise_name": '{"given":"x"}'},
        {"registered_capital": "1.5e-20", "enterprise_name": "{x"}])
    assert out["uscc"].tolist() == ["91310000MA1FL4XX3X", None, None]
    assert out["enterprise_name"].tolist() == ["甲", None, "{x"]
    assert out["registered_capital_yuan"].fillna(-1).tolist() == [-1, 150000.0, -1]
    assert out["chk__too_precise__registered_capital_yuan"].tolist() == [True, False, True]
    assert out["chk__nested_object__enterprise_name"].tolist() == [False, True, False]


def test_full_width_phone():
    out = _map("zj", "birth_registration", [{"contactPhone": "（０２１）６４３７８８８８"}, {"contactPhone": "１３８００１３８０００"}])
    assert out["contact_phone"].tolist() == ["021-64378888", "13800138000"]


def test_every_kind_of_the_catalogue_has_a_pandas_twin():
    """A rule kind added to the catalogue gets its pandas twin (or a stated reason), so the
    benchmark's pandas path never silently skips a rule tongban applies."""
    assert set(STEPS.names()) == set(twin.STEPS) | set(twin.NOT_MIRRORED)
    assert set(FIELD_RULES.names()) == set(twin.FIELD_RULES) | set(twin.ELSEWHERE)
    assert set(ROW_RULES.names()) == set(twin.ROW_RULES)


def test_steps_the_sample_mappings_do_not_use():
    """to_list, first, constant and email, as the generated SQL maps them (test_mapping_steps.py)."""
    m = Mapping.model_validate({
        "source_id": "t1", "entity": "data_resource", "province_code": "31", "version": "1.0.0",
        "standard_version": "1.0.0", "label": {"zh": "测试", "en": "test"},
        "delivery": {"file": "x.json", "columns": [{"name": "列"}, {"name": "邮"}]}, "identity": ["列"],
        "fields": {
            "keywords": {"from": "列", "steps": ["to_list"]},
            "title": {"from": "列", "steps": ["to_list", "first"]},
            "contact_email": {"from": "邮", "steps": ["trim", "email"]},
            "summary": {"steps": [{"constant": "无"}]}}})
    frame = pd.DataFrame([{"列": "甲", "邮": "SJKF@Shanghai.gov.cn"}, {"列": None, "邮": "a@b"}], dtype=object)
    out = map_delivery(STD, m, frame, sha256="x", run_id="r")
    assert out["keywords"].tolist() == [["甲"], None]
    assert out["title"].tolist() == ["甲", None]
    assert out["contact_email"].tolist() == ["sjkf@shanghai.gov.cn", None]
    # contact_email is on_invalid: null, so an invalid address is a note, not a reason
    assert out["chk__invalid_email__contact_email"].tolist() == [False, False]
    assert out["summary"].tolist() == ["无", "无"]
