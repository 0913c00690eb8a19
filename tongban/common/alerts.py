"""Operator alerts: what failed in a scheduled run, for the overview page to show.

An alert is one JSON line in ``<build dir>/alerts/alerts.jsonl``, appended by the DAG's failure
callbacks (and by anything else an operator must see). It names the DAG, task, run and a short
message written by tongban — never a delivery's values. Readers get the newest first.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from tongban.common.config import settings


def alerts_path(build_dir: Path | None = None) -> Path:
    return (build_dir or settings().build_dir) / "alerts" / "alerts.jsonl"


def record_alert(*, source: str, message: str, dag_id: str | None = None, task_id: str | None = None,
                 run_id: str | None = None, build_dir: Path | None = None) -> dict:
    """Append one alert; returns it. ``message`` is tongban's own words (no delivery values)."""
    entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "source": source, "dag_id": dag_id,
             "task_id": task_id, "run_id": run_id, "message": message[:500]}
    path = alerts_path(build_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"), path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return entry


def read_alerts(limit: int = 50, build_dir: Path | None = None) -> list[dict]:
    """The newest ``limit`` alerts, newest first; a torn last line (a crash mid-write) is skipped."""
    path = alerts_path(build_dir)
    if not path.is_file():
        return []
    out: list[dict] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out[::-1][:limit]
