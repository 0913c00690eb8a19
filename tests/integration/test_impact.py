"""The committee's impact preview on the real catalogues: change a crosswalk entry and a mapping,
read what the change would do before it runs — and nothing is published."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from tongban import exchange
from tongban.common.config import settings


def _state(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` with the sha256 of its content."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def _published_before(work: Path) -> dict[str, Path]:
    """A warehouse, an exchange with one snapshot and its catalog, and a feedback file: what a
    previous run leaves, for the preview to leave alone."""
    dirs = {name: work / name for name in ("build", "exchange", "feedback")}
    dirs["build"].mkdir()
    warehouse = dirs["build"] / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema harmonized")
        con.execute("create table harmonized.data_resource as select 'zj' as source_id, 1 as source_row_number")
    exchange.publish_snapshot(dirs["exchange"], entity="data_resource", warehouse_path=warehouse,
                              relation="harmonized.data_resource", run_id="before", standard_version="1.0.0")
    exchange.rebuild_catalog(dirs["exchange"])
    (dirs["feedback"] / "zj").mkdir(parents=True)
    (dirs["feedback"] / "zj" / "before__data_resource.csv").write_text("tongban_row_number\n1\n", encoding="utf-8")
    return dirs


@pytest.fixture(scope="module")
def preview(tmp_path_factory) -> dict:
    """Against HEAD: 浙江's proposed entry 开放网站 is approved, and its frequency step loses the
    rule that strips the "(更新说明:...)" note."""
    import shutil

    from tongban.cli import main
    from tongban.standards.gitref import standards_at

    s = settings()
    scratch = tmp_path_factory.mktemp("impact") / "standards"
    with standards_at("HEAD", s.project_root) as head:
        shutil.copytree(head, scratch)
    cw = scratch / "mappings" / "zj" / "crosswalks" / "open_condition.csv"
    text = cw.read_text(encoding="utf-8")
    entry = "\n开放网站,unconditional,proposed,tongban-dev,,\n"  # whole line: 依托于开放网站 stays proposed
    assert entry in text
    cw.write_text(text.replace(entry, "\n开放网站,unconditional,approved,tongban-dev,张委员,2026-11-27\n"),
                  encoding="utf-8")
    mapping = scratch / "mappings" / "zj" / "data_resource.yaml"
    text = mapping.read_text(encoding="utf-8")
    old = "steps: [trim, {remove_regex: '\\(更新说明:[^)]*\\)$'}, {crosswalk: update_frequency}]"
    assert old in text
    mapping.write_text(text.replace(old, "steps: [trim, {crosswalk: update_frequency}]"), encoding="utf-8")
    md = tmp_path_factory.mktemp("impact-md") / "impact.md"
    dirs = _published_before(tmp_path_factory.mktemp("impact-state"))
    # what the preview must not touch: the run's state, and what the repository generates for a run
    watched = [*dirs.values(), *(s.project_root / d for d in ("models", "expectations", "seeds"))]
    before = _state(*watched)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGBAN_STANDARDS_DIR", str(scratch))
        for var, path in [("TONGBAN_BUILD_DIR", dirs["build"]), ("TONGBAN_EXCHANGE_DIR", dirs["exchange"]),
                          ("TONGBAN_FEEDBACK_DIR", dirs["feedback"])]:
            mp.setenv(var, str(path))
        code = main(["standards", "impact", "--against", "HEAD", "--markdown", str(md)])
    assert code == 0
    with duckdb.connect(str(dirs["build"] / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute("select schema_name, table_name from duckdb_tables() order by all").fetchall()
    return {"markdown": md.read_text(encoding="utf-8"), "before": before, "after": _state(*watched),
            "tables": tables, "dirs": dirs}


def test_only_the_changed_source_is_rebuilt_and_rows_leave_quarantine(preview):
    md = preview["markdown"]
    assert "| data_resource | zj | 1309 |" in md
    assert "| data_resource | sh |" not in md and "| data_resource | js |" not in md
    row = next(line for line in md.splitlines() if line.startswith("| data_resource | zj |"))
    before, after = (int(x) for x in row.split("|")[4:6])
    assert after - before == 724
    assert "| out of | `mapping_not_approved:open_condition_code` | 724 |" in md


def test_value_changes_are_counted_per_field(preview):
    md = preview["markdown"]
    line = next(x for x in md.splitlines() if x.startswith("| update_frequency_code |"))
    # without the rule, a frequency carrying its note no longer maps
    assert "→ `unknown`" in line and int(line.split("|")[2]) > 100
    line = next(x for x in md.splitlines() if x.startswith("| open_condition_code |"))
    assert "∅ → `unconditional` ×724" in line


def test_the_preview_publishes_nothing(preview):
    dirs = preview["dirs"]
    assert sum(k.startswith(str(dirs["exchange"])) for k in preview["before"]) >= 3  # parquet, manifest, catalog
    assert sum(k.startswith(str(dirs["build"])) for k in preview["before"]) == 1  # the warehouse
    assert preview["after"] == preview["before"]  # no file added, removed or changed
    assert preview["tables"] == [("harmonized", "data_resource")]
    _, rows = exchange.query(dirs["exchange"], "select version, run_id from exchange_snapshots")
    assert rows == [(1, "before")]
