"""`tongban standards impact` over the region's onboarding (issue 18): against the commit before data
resource 1.1.0 (f8c5cbe: 1.0.0, the four provinces, no city), the preview lists every one of the 26
sources — the 22 cities as new sources, each with the rows it would bring — and the two fields 1.1.0
adds, per source. Real dbt and DuckDB on the reference catalogues; nothing is published."""

from __future__ import annotations

import pytest

from tongban.common.config import settings
from tongban.standards.lint import check

BEFORE_1_1 = "f8c5cbe28c6d42d88c36fc5b3202868a94212c71"  # parent of 44d340a (data resource 1.1.0)


@pytest.fixture(scope="module")
def preview(tmp_path_factory):
    from tongban.committee.impact import impact, to_text

    work = tmp_path_factory.mktemp("impact-cities")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("BUILD", "EXCHANGE", "FEEDBACK"):
            mp.setenv(f"TONGBAN_{var}_DIR", str(work / var.lower()))
        report = impact(BEFORE_1_1, s=settings(), entities=["data_resource"])
    return {"report": report, "text": to_text(report), "work": work}


def test_every_city_is_in_the_preview_with_the_rows_it_brings(preview):
    report = preview["report"]
    sources = {si.source_id: si for si in report.sources}
    std_sources = {m.source_id for m in check(settings().standards_dir).mappings_for("data_resource")}
    cities = {s for s in std_sources if "_" in s}
    assert len(cities) == 22 and set(sources) == std_sources
    for city in cities:  # new: nothing published before, its rows after (丽水's before its gate holds them)
        si = sources[city]
        assert si.old_published == 0 and 0 < si.new_published <= si.rows, city
    assert sources["zj_hangzhou"].rows == 6590 and sources["zj_hangzhou"].new_published == 6589
    rows = [line.split()[1] for line in preview["text"].splitlines() if line.startswith("data_resource ")]
    assert sorted(rows) == sorted(std_sources)  # each under its own id, however long


def test_the_fields_1_1_adds_are_shown_per_source(preview):
    sources = {si.source_id: si for si in preview["report"].sources}
    for source_id in ("zj", "zj_hangzhou", "js_suzhou"):
        notes = {f.field: f.note for f in sources[source_id].fields}
        assert notes["publisher_division_code"].startswith("field added ("), source_id
        assert notes["record_count"].startswith("field added ("), source_id
    hz = {f.field: f for f in sources["zj_hangzhou"].fields}
    assert hz["publisher_division_code"].rows_changed == 6590  # the city's constant, on every row
