"""A scheduled run's claim on the build directory (tongban.common.runlock): its tasks run in
processes of their own, on any worker, so between two of them no process holds the lock; the
claim keeps ``tongban run`` and a rollback out all the same. And Airflow's metadata DB is the
operator's when set (tongban.airflow_env), not always the SQLite default."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from tongban.common import runlock
from tongban.common.config import settings
from tongban.common.runlock import CLAIM_FILE, RunBusyError, claim, release_claim, run_lock, task_claim

RUN = "tongban_regional/scheduled__2026-12-04T18:00:00+00:00"
OTHER = "tongban_regional/manual__2026-12-04T18:30:00+00:00"


def test_a_claim_keeps_tongban_run_out_until_the_last_task_releases_it(tmp_path):
    with run_lock(tmp_path):  # positive control: free before the scheduled run
        pass
    with task_claim(tmp_path, RUN, first=True):
        pass
    assert claim(tmp_path)["run"] == RUN  # between the tasks: no process holds the lock, the claim stands
    with pytest.raises(RunBusyError, match="a scheduled run .* has claimed") as busy:
        with run_lock(tmp_path):
            pytest.fail("tongban run got in between two tasks of a scheduled run")
    assert RUN in str(busy.value) and str(tmp_path / CLAIM_FILE) in str(busy.value)
    with task_claim(tmp_path, RUN):  # a middle task: still its run's
        pass
    with task_claim(tmp_path, RUN, last=True):
        assert claim(tmp_path)["run"] == RUN  # held while the last task works
    assert claim(tmp_path) == {}
    with run_lock(tmp_path):
        pass


def test_a_later_task_refuses_when_another_run_claimed_the_build_dir(tmp_path):
    with task_claim(tmp_path, RUN, first=True):
        pass
    with task_claim(tmp_path, OTHER, first=True):  # the next scheduled run takes over (max_active_runs=1)
        pass
    with pytest.raises(RunBusyError, match="another run came in between its tasks"):
        with task_claim(tmp_path, RUN):
            pytest.fail("a task ran on another run's build directory")
    assert release_claim(tmp_path, RUN) is False and claim(tmp_path)["run"] == OTHER  # not its claim
    assert release_claim(tmp_path, OTHER) is True and claim(tmp_path) == {}


def test_a_stale_claim_no_longer_counts(tmp_path):
    (tmp_path / CLAIM_FILE).write_text(json.dumps({"run": RUN, "since": "2026-01-01T00:00:00+00:00"}))
    with run_lock(tmp_path):
        pass
    fresh = datetime.now(UTC).isoformat(timespec="seconds")
    (tmp_path / CLAIM_FILE).write_text(json.dumps({"run": RUN, "since": fresh}))
    with pytest.raises(RunBusyError, match="a scheduled run .* has claimed"):
        with run_lock(tmp_path):
            pass


def test_inside_tongban_run_the_tasks_claim_nothing(tmp_path, monkeypatch):
    """`tongban run` holds the lock for the whole in-process run: its tasks neither wait for it
    (the same process would wait on itself) nor leave a claim."""
    monkeypatch.setattr(runlock, "CLAIM_WAIT", 0.1)  # broken, this fails quickly instead of waiting 120 s
    with run_lock(tmp_path):
        with task_claim(tmp_path, RUN, first=True):
            pass
        with task_claim(tmp_path, RUN, last=True):
            pass
        assert release_claim(tmp_path, RUN) is False
    assert claim(tmp_path) == {}


_CONFIGURE_PROBE = r"""
import json, os, sys
from pathlib import Path
from tongban import airflow_env
os.environ.pop("TONGBAN_AIRFLOW_SQLITE_DEFAULT", None)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sys.argv[2]
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", None)
airflow_env.configure(Path(sys.argv[1]))
out = {k: os.environ.get(k) for k in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC")}
print(json.dumps({**out, "stamp_names": airflow_env._db_identity()}))
"""


def _configured(home, conn: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CONFIGURE_PROBE, str(home), conn], capture_output=True,
                         text=True, cwd=settings().project_root, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_configure_keeps_an_operators_metadata_db(tmp_path):
    pg = "postgresql+psycopg://airflow:secret@db.internal:5432/airflow"
    # psycopg 3 serves the async engine too; the migrate stamp names the DB, never its password
    assert _configured(tmp_path, pg) == {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg,
                                         "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": pg,
                                         "stamp_names": "postgresql+psycopg://airflow:***@db.internal:5432/airflow"}
    pg2 = "postgresql+psycopg2://airflow:secret@db.internal/airflow"
    assert _configured(tmp_path, pg2)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == pg2


def test_a_subprocess_with_another_home_gets_its_own_sqlite_default(tmp_path):
    """The SQLite default this process set is not an operator's: another home moves it."""
    out = subprocess.run(
        [sys.executable, "-c", "import os, sys; from pathlib import Path; from tongban import airflow_env; "
         "airflow_env.configure(Path(sys.argv[1]) / 'one'); "
         "import subprocess; subprocess.run([sys.executable, '-c', 'import os, sys; from pathlib import Path; "
         "from tongban import airflow_env; airflow_env.configure(Path(sys.argv[1]) / \"two\"); "
         "print(os.environ[\"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN\"])', sys.argv[1]], check=True)",
         str(tmp_path)], capture_output=True, text=True, cwd=settings().project_root, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == f"sqlite:///{tmp_path.resolve() / 'two' / 'airflow.db'}"


def test_a_scheduled_transform_starts_no_gate_worker(monkeypatch):
    """The worker that imports GX while dbt builds serves a gate in the same process only: under a
    scheduler the gate is another task (another process, maybe another machine)."""
    from tongban.steps import gate_worker

    monkeypatch.setenv(gate_worker.GATE_WORKER_ENV, "0")
    gate_worker.prepare()
    assert gate_worker.take() is None
    monkeypatch.delenv(gate_worker.GATE_WORKER_ENV)
    gate_worker.prepare()  # positive control: in one process (`tongban run`) it starts
    worker = gate_worker.take()
    assert worker is not None
    worker.close()
