"""Source ids of any length render in the committee's tables (issue 18): the city sources'
ids (zj_hangzhou, js_lianyungang) are longer than the six characters the coverage table of
`tongban standards check` and the impact table of `tongban standards impact` once allowed, which
ran the id into the next column ("zj_hangzhoudata_resource")."""

from __future__ import annotations

from tongban.committee.coverage import format_coverage
from tongban.committee.impact import ImpactReport, SourceImpact, to_text
from tongban.standards.models import FieldCoverage, ValueCount

LONG = "js_lianyungang_x"  # 16 characters


def _columns_straight(text: str, first: str, expect: dict[str, str]) -> None:
    lines = text.splitlines()
    head = next(line for line in lines if line.startswith(first))
    rows = [line for line in lines if line.startswith(("data_resource", "zj ", LONG))]
    assert len(rows) == 2, lines
    for row in rows:
        for column, value in expect.items():  # each value stands under its header
            assert row[head.index(column):].startswith(value), (column, row)


def test_the_coverage_table_keeps_long_source_ids_apart():
    def fc(source_id: str) -> FieldCoverage:
        return FieldCoverage(source_id, "data_resource", "open_condition_code", "open_condition", "crosswalk",
                             None, "x.json", rows=10, values=[ValueCount("开放", 10, "approved", "unconditional")])

    text = format_coverage([fc("zj"), fc(LONG)])
    _columns_straight(text, "source", {"entity": "data_resource ", "field": "open_condition_code "})
    assert f"{LONG} " in text


def test_the_impact_table_keeps_long_source_ids_apart():
    report = ImpactReport("HEAD", "0" * 40, [("data_resource", "zj"), ("data_resource", LONG)], [
        SourceImpact("data_resource", "zj", 1309, 91, 91), SourceImpact("data_resource", LONG, 6590, 0, 1085)])
    text = to_text(report)
    head = next(line for line in text.splitlines() if line.startswith("entity"))
    (row,) = [line for line in text.splitlines() if line.startswith("data_resource") and LONG in line]
    # the numbers end where their right-aligned headers end
    for column, value in (("rows", "6590"), ("after", "1085"), ("change", "+1085")):
        end = head.index(column) + len(column)
        assert row[:end].endswith(value), (column, row)
    assert f"{LONG} " in row
