"""`make bench` works end to end on a few thousand rows (BENCH_SMOKE=1): the three paths run in
their own processes, their memory is sampled, and the lower bound and pandas + GX publish
exactly the rows tongban publishes — otherwise the benchmark would compare different work.
No timing is asserted (timings belong in docs/benchmarks.md, not in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tongban.bench import DOC_BEGIN, ENTITIES, PATHS, SMOKE_ROWS
from tongban.config import PROJECT_ROOT


def test_bench_smoke(tmp_path):
    out, doc = tmp_path / "bench", tmp_path / "benchmarks.md"
    env = {**os.environ, "BENCH_SMOKE": "1"}
    proc = subprocess.run([sys.executable, "-m", "tongban.bench", "run", "--out", str(out), "--doc", str(doc)],
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
    assert results["dag_parse"]["runs"][0]["dags"] == ["tongban_regional"]
    text = doc.read_text(encoding="utf-8")
    assert DOC_BEGIN in text and f"N = {SMOKE_ROWS:,} rows" in text and "identical." in text
