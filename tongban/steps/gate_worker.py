"""The gate's GX, imported in a process of its own while dbt builds.

Importing great_expectations costs 2-4 s of one core, and the gate cannot start before dbt is done;
dbt's own work in a one-delivery run is mostly one Python thread. So ``transform`` starts this
worker (``prepare``) before its ``dbt build``: the import runs on the other core, and the gate
sends the worker its jobs (``GateWorker.run_gate``: the keyword arguments of
``tongban.steps.gate.run_gate``) once the warehouse is released. One JSON line a job on stdin, one
JSON line a result on stdout (GX's own output goes to stderr). A worker that is not there (an
Airflow task in another process), or that died, changes nothing: the gate runs in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tongban.common.config import GATE_WORKER_ENV, quiet_third_parties
from tongban.steps import gx_duckdb
from tongban.steps.gx_gate import SuiteFileError, run_gate
from tongban.steps.results import GateResult

#: the errors run_gate raises for a bad suite or warehouse, raised again here by name
_ERRORS: dict[str, type[Exception]] = {"SuiteFileError": SuiteFileError, "ValueError": ValueError,
                                       "FileNotFoundError": FileNotFoundError}

_lock = threading.Lock()
#: "0": start no worker. A scheduled run's transform task sets it (tongban.airflow_env.run_step):
#: its gate runs in another process, on any worker, and would never take this one.
_prepared: GateWorker | None = None


class GateWorker:
    def __init__(self) -> None:
        quiet_third_parties()
        self.proc = subprocess.Popen([sys.executable, "-m", "tongban.steps.gate_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, encoding="utf-8", env=os.environ.copy())

    def run_gate(self, **kwargs: Any) -> GateResult | None:
        """The gate's result, or None when the worker could not answer (the caller runs the gate itself)."""
        try:
            self.proc.stdin.write(json.dumps(kwargs, default=str) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (OSError, ValueError):
            return None
        if not line:
            return None
        answer = json.loads(line)
        if "error" in answer:
            raise _ERRORS.get(answer["error"], RuntimeError)(answer["message"])
        return GateResult.from_xcom(answer["result"])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def prepare() -> None:
    """Start the worker now (its GX import overlaps what runs before the gate)."""
    global _prepared
    if os.environ.get(GATE_WORKER_ENV) == "0":
        return
    with _lock:
        if _prepared is None or _prepared.proc.poll() is not None:
            _prepared = GateWorker()


def discard() -> None:
    """Stop a prepared worker that will not be used (the build failed)."""
    worker = take()
    if worker is not None:
        worker.close()


def take() -> GateWorker | None:
    """The prepared worker, if there is one (the caller closes it)."""
    global _prepared
    with _lock:
        worker, _prepared = _prepared, None
    return worker if worker is not None and worker.proc.poll() is None else None


def main() -> int:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # GX's prints must not reach the protocol
    gx_duckdb.apply()  # the slow part: GX's import
    for line in sys.stdin:
        kwargs = json.loads(line)
        kwargs = {k: Path(v) if k in ("warehouse_path", "suite_path", "gx_dir") else v for k, v in kwargs.items()}
        try:
            answer = {"result": run_gate(**kwargs).to_xcom()}
        except Exception as exc:  # raised again in the caller by name
            answer = {"error": type(exc).__name__, "message": str(exc)}
        protocol.write(json.dumps(answer, ensure_ascii=False) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
