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


def test_a_change_of_the_standard_previews_every_city(tmp_path):
    """What `tongban standards impact` previews is the sources affected_mappings names: a change of
    the data resource entity reaches the 4 provinces and all 22 cities, and the table lists each
    under its own id."""
    import shutil

    from tongban.committee.impact import affected_mappings
    from tongban.common.config import PROJECT_ROOT
    from tongban.standards.load import load_standards

    scratch = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", scratch)
    entity = scratch / "entities" / "data_resource.yaml"
    text = entity.read_text(encoding="utf-8")
    entity.write_text(text.replace("en: The updated date is before the published date; check both dates.",
                                   "en: The updated date is before the published date: check both dates."),
                      encoding="utf-8")
    old, new = load_standards(PROJECT_ROOT / "standards"), load_standards(scratch)
    affected = affected_mappings(old, new)
    sources = {m.source_id for m in old.mappings_for("data_resource")}
    cities = {s for s in sources if "_" in s}
    assert len(cities) == 22 and sources == cities | {"sh", "js", "zj", "ah"}
    assert affected == sorted(("data_resource", s) for s in sources)
    report = ImpactReport("HEAD", "0" * 40, affected, [SourceImpact(e, s, 10, 5, 5) for e, s in affected])
    rows = [line.split()[1] for line in to_text(report).splitlines() if line.startswith("data_resource ")]
    assert sorted(rows) == sorted(sources)
