"""Run Airflow embedded: no servers, a SQLite metadata DB under ``build/airflow``, our ``dags/``.

A metadata DB set in ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` (Postgres, for a distributed
executor: docs/scale-out.md) is used instead of the SQLite file, here and in every subprocess.

Order matters: Airflow reads its configuration once, when ``airflow`` is first imported (and it
writes ``$AIRFLOW_HOME/airflow.cfg`` then). So ``configure()`` must run before any ``import airflow``
in the process, and one process gets one Airflow home. Tests that need another home run Airflow in
a subprocess (``python -m tongban.airflow_env run``).

    configure()            # env only, cheap, idempotent
    ensure_db()            # migrates once (~5 s cold), then a stamp-file check (~0 s)
    result = run_dag()     # like ``airflow dags test tongban_regional``, in process

The first dag.test() in a process builds Airflow's in-process Execution API (~5 s of FastAPI/Cadwyn
setup); after that each task instance costs ~0.15 s of Airflow overhead. ``[core] unit_test_mode``
stays off: it loads Airflow's own test config (examples on, its test dags folder).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tongban.common.alerts import record_alert
from tongban.common.config import GATE_WORKER_ENV, quiet_third_parties, settings
from tongban.common.runlock import holds, release_claim, task_claim

DAG_ID = "tongban_regional"
_STAMP = "tongban-db-migrated"
_CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
#: set when the SQLite default above is ours, so that only an operator's own database is kept
_DB_DEFAULT_MARK = "TONGBAN_AIRFLOW_SQLITE_DEFAULT"
_configured_home: Path | None = None


def _home_default() -> Path:
    return settings().build_dir / "airflow"


def configure(home: Path | None = None) -> Path:
    """Point Airflow at ``home`` (default ``<build_dir>/airflow``) and our dags; return ``home``.

    Paths tied to ``home`` are always set; tunables (parallelism, log level, auth) only when the
    caller has not set them already. Call before importing airflow; calling again with the same
    home is a no-op, with another home after airflow is imported is an error.
    """
    home = Path(home).expanduser().resolve() if home else _home_default()
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        raise RuntimeError(
            f"airflow is already imported with AIRFLOW_HOME={os.environ.get('AIRFLOW_HOME')!r}; "
            f"cannot switch to {str(home)!r} in this process (run it in a subprocess)"
        )
    global _configured_home
    _configured_home = home
    home.mkdir(parents=True, exist_ok=True)
    quiet_third_parties()  # DO_NOT_TRACK, GX/dbt telemetry off, PARALLELISM=4, no examples
    env = os.environ
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW_CONFIG"] = str(home / "airflow.cfg")
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(settings().project_root / "dags")
    if env.get(_DB_DEFAULT_MARK) or not env.get(_CONN):  # an operator's metadata DB (Postgres) is kept
        env[_CONN] = f"sqlite:///{home / 'airflow.db'}"
        env[_DB_DEFAULT_MARK] = "1"  # ours: another home (a subprocess's) gets its own SQLite file
    elif env[_CONN].startswith("postgresql+psycopg://"):  # psycopg 3 is sync and async: one driver
        env.setdefault(_CONN + "_ASYNC", env[_CONN])  # (Airflow 3.3 would derive asyncpg for it)
    env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(home / "logs")
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(home / "passwords.json.generated")
    defaults = {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # default 32 forks 32 LocalExecutor workers
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",  # used by `make airflow`; dag.test runs in process
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # dev UI on localhost, no login
        "AIRFLOW__API__HOST": "127.0.0.1",  # the dev UI listens on localhost only
        "AIRFLOW__API__PORT": "8080",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "tongban",  # cosmos asks for it at import; silences a warning
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    if "AIRFLOW__API_AUTH__JWT_SECRET" not in env:  # Airflow's own default is 16 bytes and warns
        secret = home / "jwt_secret"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(64))
            secret.chmod(0o600)
        env["AIRFLOW__API_AUTH__JWT_SECRET"] = secret.read_text().strip()
    # LocalExecutor workers (under `make airflow`) call the api-server's execution API here.
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                   f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}/execution/")
    return home


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")


def _db_identity() -> str:
    """Which metadata DB the stamp is for: the connection URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(os.environ[_CONN]).render_as_string(hide_password=True)


def ensure_db() -> None:
    """Create/migrate the metadata DB once (the SQLite default, or the operator's Postgres set in
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN); later calls cost one stat and one small read."""
    home = _configured_home or configure()
    stamp = home / _STAMP
    wanted = f"{_airflow_version()} {_db_identity()}"
    sqlite_gone = os.environ.get(_DB_DEFAULT_MARK) and not (home / "airflow.db").exists()
    if not sqlite_gone and stamp.exists() and stamp.read_text().strip() == wanted:
        return
    from airflow.utils import db

    db.upgradedb()  # what `airflow db migrate` runs: create-all on a new DB, alembic otherwise
    stamp.write_text(wanted + "\n")


def _ti_name(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def _states(dag_id: str, run_id: str) -> tuple[str | None, dict[str, str | None]]:
    """The run's state and each task instance's state, read back from the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        rows = session.execute(
            select(TI.task_id, TI.map_index, TI.state)
            .where(TI.dag_id == dag_id, TI.run_id == run_id)
            .order_by(TI.task_id, TI.map_index)
        ).all()
    return (str(state) if state else None), {_ti_name(t, m): (str(s) if s else None) for t, m, s in rows}


def _xcom_values(run_id: str, dag_id: str) -> dict[str, Any]:
    """Return values pushed by each task of the run, keyed ``task_id`` or ``task_id[map_index]``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    out: dict[str, Any] = {}
    with create_session() as session:
        query = XComModel.get_many(run_id=run_id, dag_ids=dag_id, key="return_value")
        for row in session.scalars(query):
            out[_ti_name(row.task_id, row.map_index)] = XComModel.deserialize_value(row)
    return out


def _refuse_if_a_scheduler_is_live() -> None:
    """dag.test() beside a live scheduler on the same DB would run every task twice."""
    from airflow.jobs.job import most_recent_job

    job = most_recent_job("SchedulerJob")
    if job is not None and job.is_alive():
        raise RuntimeError(
            f"an Airflow scheduler (job {job.id} on {job.hostname}, `make airflow`?) is live on "
            f"{_db_identity()}; trigger the DAG there "
            "(UI, or `python -m tongban.airflow_env airflow dags trigger tongban_regional`) or stop it first"
        )


def load_dag(dag_id: str = DAG_ID):
    """The SDK DAG object parsed from our dags folder (raises with the import errors if it fails)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    # What `airflow dags test` does: parse the "dags-folder" bundle (= [core] dags_folder).
    # Airflow 3.3's DagBag has no include_examples any more; examples are a bundle of their own.
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    if dag_id not in bag.dags:
        raise KeyError(f"no DAG {dag_id!r} in {bag.dag_folder}")
    return bag.dags[dag_id]


def run_dag(dag_id: str = DAG_ID, conf: dict | None = None) -> dict:
    """Run one DAG run in this process (``airflow dags test``) and return what happened.

    Returns ``{"dag_id", "dag_run_id", "state", "seconds", "task_states": {task: state},
    "xcom": {task: return value}, "published": xcom["publish"] or None}``; mapped tasks appear
    as ``intake[0]``, ``intake[1]`` ...
    Tasks run one after another in this process; a failing task does not raise here, it shows
    as ``state == "failed"``.
    """
    if _configured_home is None:
        configure()
    ensure_db()
    _refuse_if_a_scheduler_is_live()
    t0 = time.perf_counter()
    dag = load_dag(dag_id)
    run_id = dag.test(run_conf=conf or {}).run_id
    seconds = round(time.perf_counter() - t0, 2)
    state, task_states = _states(dag_id, run_id)
    xcom = _xcom_values(run_id, dag_id)
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": state,
        "seconds": seconds,
        "task_states": task_states,
        "xcom": xcom,
        "published": xcom.get("publish"),  # pipeline.publish's return value, None if it never ran
    }


#: exit code of tongban's input errors (standards, arguments, reference data: tongban.cli.run)
_INPUT_ERROR = 1


def fail_fast(step, *args, **kwargs):
    """``step(*args)`` in a DAG task: an input error of tongban's (exit code 1: the same standards
    and deliveries fail the same way again) fails the task at once, without the retries meant for
    passing trouble (a file still being copied, a busy warehouse, a full disk)."""
    try:
        return step(*args, **kwargs)
    except Exception as exc:
        if getattr(exc, "exit_code", None) == _INPUT_ERROR:
            from airflow.sdk.exceptions import AirflowFailException  # airflow: only inside a task

            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        raise


#: tongban_regional's steps, first to last: they run under the run's claim on the build directory
RUN_STEPS = ("start_run", "intake", "transform", "gate", "check_conservation", "publish", "feedback")


def _claimant(dag_id: str, run_id: str) -> str:
    return f"{dag_id}/{run_id}"


def run_step(name: str, step, *args):
    """A DAG task's step: ``fail_fast(step, *args)``, and for tongban_regional's steps under the
    DAG run's claim on the build directory (tongban.common.runlock.task_claim), so that no
    ``tongban run`` or rollback, on any machine sharing it, slips in between two of its tasks."""
    if name not in RUN_STEPS:
        return fail_fast(step, *args)
    from airflow.sdk import get_current_context  # airflow: only inside a task

    context = get_current_context()
    claimant = _claimant(context["dag"].dag_id, context["run_id"])
    build = settings().build_dir
    before = os.environ.get(GATE_WORKER_ENV)
    if not holds(build):  # a scheduled task: the gate runs in another process, it takes no worker of ours
        os.environ[GATE_WORKER_ENV] = "0"
    try:
        with task_claim(build, claimant, first=name == RUN_STEPS[0], last=name == RUN_STEPS[-1]):
            return fail_fast(step, *args)
    finally:
        if before is None:
            os.environ.pop(GATE_WORKER_ENV, None)
        else:
            os.environ[GATE_WORKER_ENV] = before


def failure_message(task: str, exc: BaseException | None, tries: int | None) -> str:
    """The alert's one line, in tongban's words. A tongban error's own first line names the
    step's problem (its messages name files, fields and counts, never values); any other error
    only by its class: its text may quote what a library read (a value)."""
    if exc is not None and exc.__cause__ is not None and type(exc).__name__ == "AirflowFailException":
        exc = exc.__cause__  # fail_fast's wrapper: the error it carries
    after = f" after {tries} tries" if tries and tries > 1 else ""
    if exc is None:
        return f"step {task} failed{after}; its task log says why"
    if isinstance(getattr(exc, "exit_code", None), int):
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return f"step {task} failed{after}: {type(exc).__name__}: {first}"
    return f"step {task} failed{after} ({type(exc).__name__}); its task log has the traceback"


def record_task_failure(context) -> dict:
    """A DAG task's on_failure_callback: one operator alert (tongban.common.alerts) naming the
    DAG, the task (with its delivery, for a mapped intake) and the run."""
    ti = context["ti"]
    task = ti.task_id
    if getattr(ti, "map_index", -1) not in (-1, None):  # a mapped intake: which delivery (entity/source)
        task = f"{ti.task_id}[{getattr(ti, 'rendered_map_index', None) or ti.map_index}]"
    if ti.dag_id == DAG_ID:  # the run is over: `tongban run` may use the build directory again
        release_claim(settings().build_dir, _claimant(ti.dag_id, ti.run_id))
    return record_alert(source="airflow", dag_id=ti.dag_id, task_id=task, run_id=ti.run_id,
                        message=failure_message(task, context.get("exception"), getattr(ti, "try_number", None)))


def serve() -> int:
    """``airflow standalone`` (api-server, scheduler, dag-processor, triggerer) on 127.0.0.1, until Ctrl-C.

    Runs it in its own process group and, on Ctrl-C or SIGTERM, stops the whole group: Airflow
    3.3.2's standalone leaves the scheduler and its LocalExecutor workers behind on Ctrl-C (the
    scheduler waits forever on idle workers that ignore SIGINT), so after a grace period the group
    is killed.
    """
    import signal
    import subprocess

    bin_dir = str(Path(sys.executable).parent)  # standalone spawns `airflow ...` by name
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    url = f"http://{os.environ['AIRFLOW__API__HOST']}:{os.environ['AIRFLOW__API__PORT']}"
    login = ("no login (simple auth manager, everyone is admin)"
             if os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true"
             else f"users/passwords in {os.environ['AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE']}")
    print(f"Airflow UI: {url}  ({login}); AIRFLOW_HOME={os.environ['AIRFLOW_HOME']}; Ctrl-C stops it",
          flush=True)
    proc = subprocess.Popen([os.path.join(bin_dir, "airflow"), "standalone"], start_new_session=True)

    def _to_interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _to_interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
        return 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever standalone left behind in its group
        except ProcessLookupError:
            pass
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Command line, with Airflow configured as above.

    ``python -m tongban.airflow_env run [--conf JSON] [--dag ID] [--out FILE]``: one in-process run;
    the result dict goes to FILE (or stdout, after the task logs); exit status 1 unless it succeeded.
    ``python -m tongban.airflow_env serve``: the Airflow UI and scheduler on 127.0.0.1 (``make airflow``).
    ``python -m tongban.airflow_env airflow ARGS...``: migrate, then exec ``airflow ARGS...`` with
    this environment (``... airflow dags list``, ``... airflow dags trigger tongban_regional``).
    ``python -m tongban.airflow_env env``: print the environment as shell ``export`` lines.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tongban.airflow_env")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the DAG once in process (airflow dags test)")
    run.add_argument("--dag", default=DAG_ID)
    run.add_argument("--conf", default="{}", help='DAG run conf as JSON, e.g. \'{"entities": ["x"]}\'')
    run.add_argument("--out", type=Path, help="write the result JSON here instead of stdout")
    sub.add_parser("serve", help="airflow standalone on 127.0.0.1 until Ctrl-C")
    cli = sub.add_parser("airflow", help="exec the airflow CLI in this environment")
    cli.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("env", help="print the Airflow environment as shell exports")
    args = parser.parse_args(argv)
    configure()
    if args.cmd == "env":
        for key in sorted(os.environ):
            if key == "AIRFLOW__API_AUTH__JWT_SECRET":
                continue
            if key.startswith("AIRFLOW") or key in ("DO_NOT_TRACK", "GX_ANALYTICS_ENABLED"):
                print(f"export {key}={shlex.quote(os.environ[key])}")
        return 0
    ensure_db()
    if args.cmd == "serve":
        return serve()
    if args.cmd == "airflow":
        exe = str(Path(sys.executable).with_name("airflow"))
        os.execv(exe, [exe, *args.args])
    result = run_dag(args.dag, json.loads(args.conf))
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
