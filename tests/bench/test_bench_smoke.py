"""`make bench` works end to end on a few thousand rows (BENCH_SMOKE=1): the three paths run in
their own processes, their memory is sampled, and the lower bound and pandas + GX publish
exactly the rows tongban publishes — otherwise the benchmark would compare different work.
No timing is asserted (timings belong in docs/benchmarks.md, not in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


from bench.common import DOC_BEGIN, ENTITIES, PATHS, SMOKE_ROWS
from tongban.common.config import PROJECT_ROOT


def test_bench_smoke(tmp_path):
    out, doc = tmp_path / "bench", tmp_path / "benchmarks.md"
    env = {**os.environ, "BENCH_SMOKE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.harness", "run", "--out", str(out), "--doc", str(doc)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    size = results["sizes"][str(SMOKE_ROWS)]
    assert set(size["paths"]) == set(PATHS)
    published = {}
    for name, path in size["paths"].items():
        run = path["runs"][0]
        assert run["exit_code"] == 0 and run["peak_rss_bytes"] > 50 * 2**20, (name, run)
        assert {e: r["delivered"] for e, r in path["rows"].items()} == dict.fromkeys(ENTITIES, SMOKE_ROWS // 2)
        published[name] = {e: r["published"] for e, r in path["rows"].items()}
    assert 0 < published["tongban"]["birth_registration"] < SMOKE_ROWS // 2  # the defects are quarantined
    for name in ("lower_bound", "pandas_gx"):
        assert published[name] == published["tongban"], name
        same = size["paths"][name]["same_as_tongban"]
        assert same == dict.fromkeys(ENTITIES, {"only_tongban": 0, "only_other": 0}), (name, same)
    assert set(size["paths"]["tongban"]["median_stages"]) >= {"intake", "transform", "gate", "publish"}
    assert results["dag_parse"]["runs"][0]["dags"] == ["tongban_inbox", "tongban_regional"]
    text = doc.read_text(encoding="utf-8")
    assert DOC_BEGIN in text and f"N = {SMOKE_ROWS:,} rows" in text and "identical." in text


def _ah_delivery_files() -> list[str]:
    import yaml

    from tongban.common.config import settings

    mappings = settings().standards_dir / "mappings" / "ah"
    return [yaml.safe_load((mappings / f"{e}.yaml").read_text(encoding="utf-8"))["delivery"]["file"] for e in ENTITIES]


def test_bench_smoke_with_xlsx_parts(tmp_path):
    """With 300 rows per XLSX part, 安徽's two deliveries (500 rows each) are written as two files
    each; tongban, the lower bound and pandas + GX all read both parts, number the rows across
    them and publish the same rows (source_row_number and delivery_sha256 included)."""
    from tongban.common.parts import is_pattern

    files = _ah_delivery_files()
    assert all(is_pattern(f) for f in files), f"the 安徽 mappings must read every part: {files}"
    import duckdb

    out, doc = tmp_path / "bench", tmp_path / "benchmarks.md"
    env = {**os.environ, "BENCH_SMOKE": "1", "BENCH_XLSX_MAX_ROWS": "300"}
    proc = subprocess.run([sys.executable, "-m", "bench.harness", "run", "--out", str(out), "--doc", str(doc),
                           "--no-dag-parse"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    size = json.loads((out / "results.json").read_text(encoding="utf-8"))["sizes"][str(SMOKE_ROWS)]
    assert size["xlsx_parts"] == 2 and size["xlsx_max_rows"] == 300
    ah = out / "data" / f"n{SMOKE_ROWS}-s20261127-xlsx300" / "inbox" / "ah"
    assert sorted(p.name for p in ah.glob("*.xlsx")) == ["births-1.xlsx", "births-2.xlsx", "licenses-1.xlsx",
                                                         "licenses-2.xlsx"]
    for name, path in size["paths"].items():
        assert {e: r["delivered"] for e, r in path["rows"].items()} == dict.fromkeys(ENTITIES, SMOKE_ROWS // 2), name
    for name in ("lower_bound", "pandas_gx"):
        same = size["paths"][name]["same_as_tongban"]
        assert same == dict.fromkeys(ENTITIES, {"only_tongban": 0, "only_other": 0}), (name, same)
    # tongban published 安徽 rows from both parts, numbered across them (1..500, not 1..300 twice)
    per = SMOKE_ROWS // 8
    con = duckdb.connect()
    for e in ENTITIES:
        snap = out / "work" / "tongban" / "exchange" / e / "v1"
        lo, hi, n, dup = con.execute(
            f"select min(source_row_number), max(source_row_number), count(*), count(*) - count(distinct "
            f"source_row_number) from read_parquet('{snap}/part-*.parquet') where source_id = 'ah'").fetchone()
        assert lo >= 1 and 300 < hi <= per and n > 300 and dup == 0, (e, lo, hi, n, dup)
    con.close()
