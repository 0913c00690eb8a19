"""The fixed cost: a 1,000-row single delivery, end to end through ``tongban run`` (a fresh
process each time: interpreter start, imports, dbt, GX, publish), in one work directory:

``cold``       the first run (nothing built yet: dbt parses the project from scratch);
``changed``    the province re-delivers (the next seed's 1,000 rows): warm, one delivery changed;
``unchanged``  the same inbox again: warm, nothing changed.

The delivery is 江苏's births (GBK CSV, the reader's slowest text path); the other mappings have
no delivery in this inbox. Issue 15's target: ``changed`` ≤ 6 s.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.common import REDELIVERING
from bench.data import _sample_entity, ensure_data
from bench.measure import measure
from bench.runs import _child_env

SMALL_ROWS = 1_000
SMALL_N = SMALL_ROWS * 8  # ensure_data's N: eight deliveries of SMALL_ROWS
PHASES = ("cold", "changed", "unchanged")
COMMAND = ("run", "--without-airflow", "--entity", "birth_registration")


def _inbox_with(inbox: Path, source: Path) -> None:
    """``inbox`` holds only 江苏's births delivery, linked from ``source`` (a province folder)."""
    if inbox.exists():
        shutil.rmtree(inbox)
    (inbox / REDELIVERING).mkdir(parents=True)
    files = [f for f in source.iterdir() if _sample_entity(f.name) == "births"]
    if not files:
        raise FileNotFoundError(f"{source}: no births delivery")
    for f in files:
        (inbox / REDELIVERING / f.name).symlink_to(f.resolve())


def _one(work: Path, tag: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "tongban.cli", *COMMAND]
    log = work / f"{tag}.log"
    m = measure(argv, env=_child_env(work), log=log)
    if m["exit_code"] != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"bench small ({tag}) failed with exit code {m['exit_code']}:\n{tail}")
    return m


def bench_small(root: Path, seed: int, repeat: int) -> dict[str, Any]:
    data = ensure_data(root, SMALL_N, seed)
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PHASES}
    for rep in range(repeat):
        work = root / "work" / "small"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        _inbox_with(work / "inbox", data / "inbox" / REDELIVERING)
        runs["cold"].append(_one(work, f"cold{rep + 1}"))
        _inbox_with(work / "inbox", data / "redelivery" / REDELIVERING)
        runs["changed"].append(_one(work, f"changed{rep + 1}"))
        runs["unchanged"].append(_one(work, f"unchanged{rep + 1}"))
        print("bench: small " + ", ".join(f"{p} {runs[p][-1]['seconds']:.2f} s" for p in PHASES), flush=True)
    return {"rows": SMALL_ROWS, "repeat": repeat, "command": "tongban " + " ".join(COMMAND),
            **{p: {"median_seconds": round(statistics.median(r["seconds"] for r in runs[p]), 3),
                   "min_seconds": min(r["seconds"] for r in runs[p]),
                   "max_seconds": max(r["seconds"] for r in runs[p]),
                   "median_peak_rss_bytes": int(statistics.median(r["peak_rss_bytes"] for r in runs[p]))}
               for p in PHASES}}
