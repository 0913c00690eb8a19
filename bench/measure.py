"""A measured subprocess: wall time, exit code and the peak resident memory of its whole
process tree, sampled from ``/proc``."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tongban.common.config import PROJECT_ROOT
from bench.common import SAMPLE_INTERVAL


# ------------------------------------------------------------------------------------------ memory


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (no VmRSS line)


def tree_rss_bytes(pid: int) -> tuple[int, int]:
    """(sum of VmRSS over ``pid`` and its descendants, number of processes)."""
    children = _children_map()
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    return sum(_rss_kib(p) for p in seen) * 1024, len(seen)


def measure(argv: list[str], *, env: dict[str, str], log: Path, cwd: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Run ``argv``, sampling the memory of its process tree; wall time, peak RSS, exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak, peak_procs, samples = 0, 0, 0
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss, procs = tree_rss_bytes(proc.pid)
            samples += 1
            if rss > peak:
                peak, peak_procs = rss, procs
            time.sleep(SAMPLE_INTERVAL)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": round(wall, 3), "peak_rss_bytes": peak, "peak_rss_processes": peak_procs,
            "maxrss_bytes": usage.ru_maxrss * 1024, "rss_samples": samples, "exit_code": proc.returncode}
