"""The bench's pandas path (bench.pandas_gx) maps odd values as the generated SQL does
(tests/unit/test_mapping_steps.py): otherwise the benchmark would compare different work."""

from __future__ import annotations

import pandas as pd

from bench.pandas_gx import map_delivery
from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check

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
