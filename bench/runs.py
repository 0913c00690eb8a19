"""The parent side of ``make bench``: each path in a fresh subprocess and work directory, the
re-run scenarios, the DAG parse probe and the machine's description."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tongban.common.config import PROJECT_ROOT
from tongban.common.sqlquote import quote_literal
from bench.common import BENCH_KEY, DELIVERIES, ENTITIES, RERUNS, SAMPLE_ENTITIES, XLSX_MAX_ROWS
from bench.data import _link_inbox, check_mappings, ensure_data, rows_per_delivery, xlsx_parts
from bench.measure import measure


# ------------------------------------------------------------------------------------------ harness (parent)


def _child_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "TONGBAN_BUILD_DIR": str(work / "build"),
        "TONGBAN_EXCHANGE_DIR": str(work / "exchange"),
        "TONGBAN_FEEDBACK_DIR": str(work / "feedback"),
        "TONGBAN_INBOX_DIR": str(work / "inbox"),
        "TONGBAN_PSEUDONYM_KEY": BENCH_KEY,
        "DO_NOT_TRACK": "1", "GX_ANALYTICS_ENABLED": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "PYTHONHASHSEED": "0",
    })
    return env


def run_one(path: str, work: Path, *, tag: str) -> dict[str, Any]:
    out_json = work / f"{tag}.result.json"
    m = measure([sys.executable, "-m", "bench.harness", "path", path, "--out-json", str(out_json)],
                env=_child_env(work), log=work / f"{tag}.log")
    if m["exit_code"] != 0 or not out_json.is_file():
        tail = (work / f"{tag}.log").read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"bench path {path} ({tag}) failed with exit code {m['exit_code']}:\n{tail}")
    m.update(json.loads(out_json.read_text(encoding="utf-8")))
    return m


def compare_published(tongban_exchange: Path, other: Path) -> dict[str, Any]:
    """Rows of tongban's first snapshot of each entity that the other path did not publish, and
    the reverse (every column but ``run_id``, as multisets): 0 and 0 mean the same output."""
    import duckdb


    out: dict[str, Any] = {}
    con = duckdb.connect()
    try:
        for e in ENTITIES:
            a = sorted((tongban_exchange / e / "v1").glob("part-*.parquet"))  # one file, or one per source
            # tongban on Spark publishes an exchange like tongban's; the other paths one file per entity
            b = sorted((other / e / "v1").glob("part-*.parquet")) or \
                [p for p in [other / f"{e}.parquet"] if p.is_file()]
            if not (a and b):
                out[e] = None
                continue
            files, files_b = ("[" + ", ".join(quote_literal(str(f)) for f in fs) + "]" for fs in (a, b))
            ra = f"(select * exclude (run_id) from read_parquet({files}))"
            rb = f"(select * exclude (run_id) from read_parquet({files_b}))"
            try:
                only_a = con.execute(f"select count(*) from ({ra} except all {rb})").fetchone()[0]
                only_b = con.execute(f"select count(*) from ({rb} except all {ra})").fetchone()[0]
                out[e] = {"only_tongban": int(only_a), "only_other": int(only_b)}
            except duckdb.Error as exc:  # different columns or types
                out[e] = {"error": str(exc).splitlines()[0][:300]}
    finally:
        con.close()
    return out


def _fresh(work: Path, data: Path) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _link_inbox(data, work / "inbox")


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    secs = [r["seconds"] for r in runs]
    rss = [r["peak_rss_bytes"] for r in runs]
    stage_names = list(runs[0].get("stages", {}))
    return {"runs": runs, "median_seconds": round(statistics.median(secs), 3), "min_seconds": min(secs),
            "max_seconds": max(secs), "median_peak_rss_bytes": int(statistics.median(rss)),
            "max_peak_rss_bytes": max(rss),
            "median_stages": {s: round(statistics.median(r["stages"].get(s, 0.0) for r in runs), 3)
                              for s in stage_names},
            "rows": runs[-1].get("rows"), "same_as_tongban": runs[0].get("same_as_tongban")}


def _rerun_scenarios(work: Path, data: Path, rep: int, n: int, repeat: int) -> dict[str, dict[str, Any]]:
    """After a full tongban run in ``work``: each re-run scenario from the state that full run left
    (the work directory is copied aside first and put back between the scenarios, so that each
    re-run sees exactly its own changed deliveries against the full run)."""
    out: dict[str, dict[str, Any]] = {}
    base = work.with_name(work.name + ".after_full_run")
    if base.exists():
        shutil.rmtree(base)
    names = list(RERUNS)
    for i, name in enumerate(names):
        if i + 1 < len(names):
            shutil.copytree(work, base, symlinks=True)  # not measured
        scenario = RERUNS[name]
        _link_inbox(data, work / "inbox", changed=scenario["changed"])
        rr = run_one("tongban", work, tag=f"rerun_{name}{rep + 1}")
        out[name] = rr
        print(f"bench: N={n:,} {'re-run':<12} run {rep + 1}/{repeat}: {rr['seconds']:8.2f} s "
              f"({scenario['label']}; the other deliveries unchanged)", flush=True)
        if i + 1 < len(names):
            for f in work.glob("rerun_*"):  # keep the logs and results
                if f.is_file():
                    shutil.move(str(f), str(base / f.name))
            shutil.rmtree(work)
            base.rename(work)
    return out


def bench_size(root: Path, n: int, seed: int, repeat: int, paths: list[str], pandas_max: int,
               rerun: bool, xlsx_max_rows: int = XLSX_MAX_ROWS) -> dict[str, Any]:
    data = ensure_data(root, n, seed, xlsx_max_rows)
    check_mappings(data / "inbox")
    per = rows_per_delivery(n)
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
    reruns: dict[str, list[dict[str, Any]]] = {name: [] for name in RERUNS}
    skipped = {}
    if n > pandas_max:  # whether asked for or not: the table shows its extrapolation
        skipped["pandas_gx"] = f"not run above N={pandas_max:,} (extrapolated, linear in N)"
    for rep in range(repeat):
        for path in paths:  # interleaved, so drift over the session hits every path alike
            if path == "pandas_gx" and n > pandas_max:
                skipped[path] = f"not run above N={pandas_max:,} (extrapolated, linear in N)"
                continue
            work = root / "work" / path
            _fresh(work, data)
            r = run_one(path, work, tag=f"run{rep + 1}")
            runs[path].append(r)
            if rep == 0 and path != "tongban" and "tongban" in paths:
                # the work dirs of this repetition's tongban run are still there
                r["same_as_tongban"] = compare_published(root / "work" / "tongban" / "exchange", work / "exchange")
            print(f"bench: N={n:,} {path:<12} run {rep + 1}/{repeat}: {r['seconds']:8.2f} s, "
                  f"peak RSS {r['peak_rss_bytes'] / 2**20:7.0f} MiB", flush=True)
            if path == "tongban" and rerun:
                for name, rr in _rerun_scenarios(work, data, rep, n, repeat).items():
                    reruns[name].append(rr)
    result: dict[str, Any] = {"n": n, "rows_per_delivery": per, "seed": seed, "repeat": repeat,
                              "xlsx_max_rows": xlsx_max_rows, "xlsx_parts": xlsx_parts(n, xlsx_max_rows),
                              "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "paths": {p: _summary(r) for p, r in runs.items() if r}, "skipped": skipped}
    if any(reruns.values()):
        result["reruns"] = {}
        for name, rr in reruns.items():
            changed = RERUNS[name]["changed"]
            result["reruns"][name] = {
                "label": RERUNS[name]["label"],
                "changed": [f"{prov}.{SAMPLE_ENTITIES[e]}" for prov, e in changed],
                "rows_changed": per * len(changed), "rows_total": per * DELIVERIES,
                "changed_share": len(changed) / DELIVERIES, **_summary(rr)}
    return result


def merge_size(previous: dict[str, Any] | None, new: dict[str, Any], measured: list[str]) -> dict[str, Any]:
    """A size measured again replaces its entry, except the paths (and re-runs) not measured this
    time: they are carried over from ``previous``, marked with when and how they were measured."""
    if not previous:
        return new
    origin = {k: previous.get(k) for k in ("measured_at", "commit", "command", "repeat")}
    for name, entry in previous.get("paths", {}).items():
        if name not in measured and name not in new["paths"]:
            new["paths"][name] = {**entry, "carried_over": entry.get("carried_over") or origin}
            new.get("skipped", {}).pop(name, None)
    if "tongban" not in measured:
        old = _reruns_of(previous)
        if old and "reruns" not in new:
            new["reruns"] = {k: {**v, "carried_over": v.get("carried_over") or origin} for k, v in old.items()}
    return new


def _reruns_of(size: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The re-run scenarios of a size entry (entries written before there were two: ``rerun``,
    the province scenario)."""
    if "reruns" in size:
        return size["reruns"]
    if "rerun" in size:
        changed = RERUNS["province"]["changed"]
        return {"province": {"label": RERUNS["province"]["label"], "changed_share": len(changed) / DELIVERIES,
                             "changed": [f"{p}.{SAMPLE_ENTITIES[e]}" for p, e in changed], **size["rerun"]}}
    return {}


_PARSE_PROBE = r"""
import json, sys, time
from tongban import airflow_env
airflow_env.configure()
t0 = time.perf_counter()
import airflow.sdk  # the DAG processor has airflow loaded before it parses a file
t1 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t2 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t3 = time.perf_counter()
assert not bag.import_errors, bag.import_errors
print(json.dumps({"airflow_import": t1 - t0, "dagbag": t3 - t2, "dags": sorted(bag.dags)}))
"""


#: ``import tongban.steps.gate`` in a fresh interpreter: the CLI and the DAG's gate task pay it, GX is
#: imported only when a gate runs (tests/unit/test_gate.py checks that GX stays out, this measures)
_GATE_IMPORT_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import tongban.steps.gate
print(json.dumps({"gate_import": time.perf_counter() - t0, "gx": "great_expectations" in sys.modules}))
"""


def _probe(code: str, args: list[str], env: dict[str, str], what: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{what} probe failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_dag_parse(root: Path, repeat: int) -> dict[str, Any]:
    """Seconds for DagBag to parse dags/ (Airflow already imported, as in the DAG processor), and
    for ``import tongban.steps.gate`` in a fresh interpreter."""
    work = root / "work" / "dag_parse"
    runs = []
    for _ in range(repeat):
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        env = _child_env(work)
        run = _probe(_PARSE_PROBE, [str(PROJECT_ROOT / "dags")], env, "DAG parse")
        run.update(_probe(_GATE_IMPORT_PROBE, [], env, "gate import"))
        runs.append(run)
    return {"runs": runs, "median_dagbag_seconds": round(statistics.median(r["dagbag"] for r in runs), 4),
            "median_airflow_import_seconds": round(statistics.median(r["airflow_import"] for r in runs), 3),
            "median_gate_import_seconds": round(statistics.median(r["gate_import"] for r in runs), 4)}


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    import duckdb

    return {"cores": os.cpu_count(), "memory_bytes": mem, "cpu": cpu or platform.processor(),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "kernel": platform.release()}


def _git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, check=False).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")
