"""tongban.steps.gate.run_gate: real GX, real DuckDB, no mocks.

One warehouse with three tables (clean, with blocking failures, with only non-blocking
failures) and one suite; the runs are shared module-wide because GX is slow to import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tongban.steps.gate import GateResult, SuiteFileError, run_gate

REPO = Path(__file__).resolve().parents[2]

# Distinctive bad values: they must never reach gx_dir unless include_unexpected_values=True.
LEAK_PROVINCE = "LEAKPROV771"
LEAK_EMAIL = "zhang.san.leak#example"
LEAK_NAME = "ZhangSanLeak"

COLUMNS = "resource_id varchar, title varchar, province_code varchar, contact_email varchar"
ROWS = {
    "resources_ok": [
        ("r1", "Population by district", "310000", "a@example.cn"),
        ("r2", "Bus stops", "320000", "b@example.cn"),
        ("r3", "School list", "330000", "c@example.cn"),
    ],
    "resources_bad": [  # blocking: 1 null title, 2 rows sharing r1; warnings: province, email
        ("r1", "Population by district", "310000", "a@example.cn"),
        ("r1", LEAK_NAME, LEAK_PROVINCE, "b@example.cn"),
        ("r3", None, "330000", LEAK_EMAIL),
    ],
    "resources_warn": [  # only non-blocking failures
        ("r1", "Population by district", LEAK_PROVINCE, "a@example.cn"),
        ("r2", LEAK_NAME, "320000", LEAK_EMAIL),
    ],
}

SUITE = {
    "name": "data_resource_test",
    "expectations": [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "title"},
            "meta": {"blocking": True},
        },
        {
            "type": "expect_column_values_to_be_unique",
            "kwargs": {"column": "resource_id"},
            "meta": {"blocking": True},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "province_code", "value_set": ["310000", "320000", "330000", "340000"]},
            "meta": {"blocking": False},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "contact_email", "regex": r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"},
            "meta": {},  # no meta.blocking: a warning
        },
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": 1, "max_value": 1000},
            "meta": {"blocking": True},
        },
    ],
    "meta": {"great_expectations_version": "1.24.1"},
}


def _write_suite(path: Path, suite: dict) -> Path:
    path.write_text(json.dumps(suite, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _make_warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema catalog")
        for table, rows in ROWS.items():
            con.execute(f"create table catalog.{table} ({COLUMNS})")
            con.executemany(f"insert into catalog.{table} values (?, ?, ?, ?)", rows)
    finally:
        con.close()
    return path


def _files_containing(root: Path, needle: str) -> list[Path]:
    raw = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and raw in p.read_bytes()]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    return {
        "root": root,
        "warehouse": _make_warehouse(root / "warehouse.duckdb"),
        "suite": _write_suite(root / "data_resource_test.json", SUITE),
        "gx_dir": root / "gx",  # does not exist yet: run_gate creates it
    }


def _gate(env, table: str, *, run_id: str = "run-1", **kwargs) -> GateResult:
    args = {
        "warehouse_path": env["warehouse"],
        "schema": "catalog",
        "table": table,
        "suite_path": env["suite"],
        "gx_dir": env["gx_dir"],
        "run_id": run_id,
    }
    args.update(kwargs)
    return run_gate(**args)


@pytest.fixture(scope="module")
def results(env):
    return {table: _gate(env, table) for table in ROWS}


def test_import_does_not_import_gx():
    """GX costs seconds to import: only running a gate may pay it. (How long the import takes is
    measured by `make bench`, bench/harness.py, not asserted here.)"""
    code = (
        "import json, sys\n"
        "import tongban.steps.gate\n"
        "print(json.dumps({'gate': 'tongban.steps.gate' in sys.modules,\n"
        "                  'gx': sorted(m for m in sys.modules if m.split('.')[0] == 'great_expectations')}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"gate": True, "gx": []}


def test_blocking_failure_fails_the_gate(results):
    res = results["resources_bad"]
    assert res.success is False
    assert res.blocking_failures == [
        "expect_column_values_to_not_be_null(title): 1 unexpected",
        "expect_column_values_to_be_unique(resource_id): 2 unexpected",
    ]
    assert res.warnings == [
        "expect_column_values_to_be_in_set(province_code): 1 unexpected",
        "expect_column_values_to_match_regex(contact_email): 1 unexpected",
    ]
    assert res.evaluated == 5


def test_only_non_blocking_failures_pass_with_warnings(results):
    res = results["resources_warn"]
    assert res.success is True
    assert res.blocking_failures == []
    assert res.warnings == [
        "expect_column_values_to_be_in_set(province_code): 1 unexpected",
        "expect_column_values_to_match_regex(contact_email): 1 unexpected",
    ]
    assert res.evaluated == 5


def test_clean_table_passes(results):
    res = results["resources_ok"]
    assert (res.success, res.blocking_failures, res.warnings, res.evaluated) == (True, [], [], 5)


def test_data_docs_are_built_locally(env, results):
    gx_dir = env["gx_dir"]
    for res in results.values():
        assert res.docs_index == gx_dir / "uncommitted" / "data_docs" / "local_site" / "index.html"
        assert res.docs_index.is_file()
    pages = list((gx_dir / "uncommitted" / "data_docs" / "local_site" / "validations").rglob("*.html"))
    assert {p.name for p in pages} >= {f"tongban_warehouse-catalog.{t}.html" for t in ROWS}
    index = results["resources_ok"].docs_index.read_text(encoding="utf-8")
    assert "data_resource_test" in index


def test_to_dict_is_json_serialisable(results):
    data = json.loads(json.dumps(results["resources_bad"].to_dict()))
    assert data["success"] is False
    assert data["evaluated"] == 5
    assert data["docs_index"].endswith("index.html")
    assert set(data) == {"success", "blocking_failures", "warnings", "evaluated", "docs_index"}


def test_no_row_value_reaches_gx_dir_by_default(env, results):
    assert results  # all three tables validated into env["gx_dir"]
    validations = list((env["gx_dir"] / "uncommitted" / "validations").rglob("*.json"))
    assert len(validations) >= len(ROWS)
    for needle in (LEAK_PROVINCE, LEAK_EMAIL, LEAK_NAME):
        assert _files_containing(env["gx_dir"], needle) == [], needle
    for res in results.values():
        assert not any(n in json.dumps(res.to_dict()) for n in (LEAK_PROVINCE, LEAK_EMAIL, LEAK_NAME))
    stored = json.loads(validations[0].read_text(encoding="utf-8"))
    for evr in stored["results"]:
        assert not {"partial_unexpected_list", "partial_unexpected_counts", "unexpected_list"} & set(
            evr["result"]
        )


def test_row_values_do_reach_gx_dir_when_asked(env):
    """Control for the test above: the grep does find values when GX is allowed to copy them."""
    gx_dir = env["root"] / "gx_with_values"
    res = _gate(env, "resources_bad", gx_dir=gx_dir, include_unexpected_values=True)
    assert res.success is False
    leaked = _files_containing(gx_dir, LEAK_PROVINCE)
    assert any(p.suffix == ".json" for p in leaked) and any(p.suffix == ".html" for p in leaked)


MISSING_COLUMN = (
    "expect_column_values_to_not_be_null(no_such_column): "
    'not evaluated (Error: The column "no_such_column" in BatchData does not exist.)'
)


def test_error_texts_are_withheld_and_do_not_poison_the_run(env):
    """A DuckDB error can quote a row value; by default it is withheld from results and docs."""
    suite = {
        "name": "broken_suite",
        "expectations": [
            # titles do not cast to INTEGER: DuckDB's error text quotes the first bad title
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "title", "value_set": [1, 2]}},
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "resource_id"},
                "meta": {"blocking": True},
            },
            # GX's own error for a missing column names no value: it is kept
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}},
        ],
    }
    gx_dir = env["root"] / "gx_errors"
    res = _gate(
        env, "resources_warn", suite_path=_write_suite(env["root"] / "broken.json", suite), gx_dir=gx_dir
    )
    assert res.success is True  # the broken expectation is non-blocking; the blocking one ran fine
    assert res.warnings == [
        "expect_column_values_to_be_in_set(title): not evaluated (ConversionException; details withheld)",
        MISSING_COLUMN,
    ]
    assert res.evaluated == 3
    titles = [row[1] for row in ROWS["resources_warn"]]
    for title in titles:
        assert _files_containing(gx_dir, title) == [], title
    assert _files_containing(gx_dir, "details withheld")  # the stored result was rewritten

    # control: with include_unexpected_values=True the error text (and so a title) is kept
    gx_dir = env["root"] / "gx_errors_with_values"
    res = _gate(
        env,
        "resources_warn",
        suite_path=env["root"] / "broken.json",
        gx_dir=gx_dir,
        include_unexpected_values=True,
    )
    assert "Conversion Error" in res.warnings[0]
    assert any(_files_containing(gx_dir, title) for title in titles)


def test_second_run_on_same_gx_dir_updates(env, results, tmp_path):
    """Re-running on the same gx_dir updates every GX object; the file is released in between."""
    assert results["resources_bad"].success is False
    warehouse = shutil.copy(env["warehouse"], tmp_path / "warehouse.duckdb")
    suite_path = _write_suite(tmp_path / "suite.json", SUITE)
    kwargs = {"warehouse_path": Path(warehouse), "suite_path": suite_path, "gx_dir": env["gx_dir"]}

    again = _gate(env, "resources_bad", run_id="run-2", **kwargs)
    assert again.to_dict() == results["resources_bad"].to_dict()

    # the gate released the DuckDB file: a read-write connection in this process works
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("update catalog.resources_bad set title = 'Fixed' where title is null")
        con.execute("update catalog.resources_bad set resource_id = 'r2' where title = ?", [LEAK_NAME])
    finally:
        con.close()
    # and a changed suite replaces the stored one
    changed = dict(SUITE, expectations=[*SUITE["expectations"][:2], SUITE["expectations"][4]])
    _write_suite(suite_path, changed)

    fixed = _gate(env, "resources_bad", run_id="run-3", **kwargs)
    assert (fixed.success, fixed.blocking_failures, fixed.warnings, fixed.evaluated) == (True, [], [], 3)
    runs = {p.name for p in (env["gx_dir"] / "uncommitted" / "validations" / "data_resource_test").iterdir()}
    assert {"run-1", "run-2", "run-3"} <= runs


def test_value_revealing_expectations_are_refused_by_default(env, tmp_path):
    suite = {
        "name": "reveals",
        "expectations": [{"type": "expect_column_max_to_be_between", "kwargs": {"column": "title"}}],
    }
    with pytest.raises(ValueError, match="expect_column_max_to_be_between"):
        _gate(
            env, "resources_ok", suite_path=_write_suite(tmp_path / "s.json", suite), gx_dir=tmp_path / "gx"
        )
    assert not (tmp_path / "gx").exists()


@pytest.mark.parametrize(
    "expectation",
    [
        {"type": "expect_column_values_to_be_nonsense", "kwargs": {"column": "title"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "title"}},  # no value_set
    ],
    ids=["unknown_type", "missing_kwarg"],
)
def test_invalid_expectations_are_errors_not_dropped(env, tmp_path, expectation):
    suite = dict(SUITE, expectations=[*SUITE["expectations"], expectation])
    with pytest.raises(SuiteFileError, match=r"expectation #5"):
        _gate(
            env, "resources_ok", suite_path=_write_suite(tmp_path / "s.json", suite), gx_dir=tmp_path / "gx"
        )


def test_malformed_suite_file_is_rejected_before_gx(env, tmp_path):
    bad = dict(
        SUITE, expectations=[{"type": "expect_column_values_to_not_be_null", "meta": {"blocking": "yes"}}]
    )
    with pytest.raises(SuiteFileError, match="meta.blocking"):
        _gate(env, "resources_ok", suite_path=_write_suite(tmp_path / "s.json", bad), gx_dir=tmp_path / "gx")


def test_the_gx_worker_gives_the_gates_own_result_and_errors(env, results, tmp_path):
    """tongban.steps.gate_worker: the same gate in a process of its own (GX imported there while
    dbt builds) returns what run_gate returns here, and raises its errors by name."""
    from tongban.steps import gate_worker

    gate_worker.prepare()
    worker = gate_worker.take()
    assert worker is not None and gate_worker.take() is None  # taken once
    try:
        args = {"warehouse_path": env["warehouse"], "schema": "catalog", "table": "resources_bad",
                "suite_path": env["suite"], "gx_dir": env["gx_dir"], "run_id": "run-1"}
        assert worker.run_gate(**args).to_dict() == results["resources_bad"].to_dict()
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps({"name": "x", "expectations": {}}), encoding="utf-8")
        with pytest.raises(SuiteFileError, match="'expectations' must be a list"):
            worker.run_gate(**{**args, "suite_path": broken})
    finally:
        worker.close()
    assert worker.proc.returncode == 0
    assert worker.run_gate(**args) is None  # a worker that is gone: the caller runs the gate itself
