"""Coverage against the latest deliveries (the real catalogues): the share of each source's
values that map through approved crosswalk entries, and the committee's worklist."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tongban.common.config import PROJECT_ROOT, settings
from tongban.standards.lint import check
from tongban.committee.coverage import coverage, coverage_findings, format_coverage


@pytest.fixture(scope="module")
def cov():
    std = check(PROJECT_ROOT / "standards")
    return std, [c for c in coverage(std, settings()) if c.entity == "data_resource"]


def test_zhejiang_open_conditions(cov):
    _, cov = cov
    fc = next(c for c in cov if (c.source_id, c.field) == ("zj", "open_condition_code"))
    by_value = {v.value: v for v in fc.values}
    assert fc.rows == 1309 and fc.crosswalk_path == "standards/mappings/zj/crosswalks/open_condition.csv"
    assert (by_value["开放网站"].status, by_value["开放网站"].rows) == ("proposed", 724)
    assert (by_value["暂无"].status, by_value["暂无"].rows) == ("unmapped", 364)
    assert (by_value["无条件开放"].status, by_value["无条件开放"].target_code) == ("approved", "unconditional")
    assert fc.rows_with("approved") + fc.rows_with("proposed") + fc.rows_with("unmapped") == fc.rows
    assert fc.mapped_share == pytest.approx(fc.rows_with("approved") / 1309)
    # 上海 maps every open condition it delivers
    sh = next(c for c in cov if (c.source_id, c.field) == ("sh", "open_condition_code"))
    assert sh.mapped_share == 1.0 and sh.rows == 4494


def test_list_fields_count_each_value(cov):
    _, cov = cov
    fc = next(c for c in cov if (c.source_id, c.field) == ("js", "formats"))
    assert fc.rows > 965  # a dataset lists several formats
    assert all(v.status == "approved" for v in fc.values)


def test_worklist_findings_say_where_the_fix_goes(cov):
    std, cov = cov
    findings = coverage_findings(std, cov)
    unmapped = next(f for f in findings if "'暂无'" in f.message and f.file.endswith("zj/crosswalks/open_condition.csv"))
    assert "364 rows" in unmapped.message and "暂无,<code>,proposed," in unmapped.hint and "unconditional" in unmapped.hint
    held = next(f for f in findings if "'开放网站'" in f.message)
    lines = (PROJECT_ROOT / held.file).read_text(encoding="utf-8").splitlines()
    assert lines[held.line - 1].startswith("开放网站,") and "724 rows" in held.message and "awaits review" in held.message
    assert all(f.severity == "warning" for f in findings)
    table = format_coverage(cov)
    assert "zj" in table and "'暂无'×364" in table


def test_check_command_json_for_tools():
    proc = subprocess.run([sys.executable, "-m", "tongban.cli", "standards", "check", "--format", "json"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"findings", "coverage", "changes", "stale_generated_files"}
    assert any(c["source_id"] == "zj" and c["field"] == "open_condition_code" for c in out["coverage"])
    assert all({"file", "line", "severity", "message", "hint"} <= set(f) for f in out["findings"])


def test_counts_per_distinct_value_equal_counts_row_by_row(tmp_path):
    """Coverage evaluates a field's SQL once per distinct combination of the columns it reads; on
    every delivery in the inbox (the real catalogues, with split and concat fields) that gives
    exactly the counts of evaluating it row by row."""
    import duckdb

    from tongban.committee.coverage import _counts_sql, _delivery_relation
    from tongban.standards.targets.dbt import compile_field, field_columns

    std = check(PROJECT_ROOT / "standards")
    s = settings()
    con = duckdb.connect()
    compared = set()
    try:
        for m in std.mappings:
            rel = _delivery_relation(con, m, s, True, tmp_path)
            if rel is None:
                continue
            for fdef in std.entities[m.entity].fields:
                fm = m.fields.get(fdef.name)
                if fm is None or not fm.steps:
                    continue
                before = compile_field(std, m, fdef).before
                row_by_row = con.execute(f"select v, count(*) from (select {before} as v from {rel[0]} as src) "
                                         f"where v is not null group by 1").fetchall()
                distinct = con.execute(_counts_sql(before, field_columns(fm), rel[0])).fetchall()
                assert sorted(distinct, key=repr) == sorted(row_by_row, key=repr), (m.source_id, fdef.name)
                compared.add((m.source_id, fdef.name, any(st.op in ("split", "concat") for st in fm.steps)))
    finally:
        con.close()
    assert len(compared) > 20 and any(has_list for *_, has_list in compared)
