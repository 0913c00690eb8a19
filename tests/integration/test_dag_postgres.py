"""The regional DAG against a Postgres metadata database, as a distributed executor needs it.

A throwaway cluster: Debian's PostgreSQL (``make postgres`` installs it), ``initdb`` in a temporary
directory (as the ``postgres`` user when the tests run as root: initdb refuses root), on a free
localhost port, trust authentication on 127.0.0.1 only; stopped and deleted after the module.
Then, in subprocesses with ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` pointing at it: ``airflow db
migrate`` and ``airflow dags test tongban_regional`` on the small samples — the real Airflow CLI.
What the run left is read back from Postgres itself (not from Airflow's or tongban's own report).

Where it cannot get Postgres (no server binaries, no driver, no ``postgres`` user as root) it
FAILS with a one-line reason; ``TONGBAN_SKIP_POSTGRES=1`` skips it on purpose.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tongban.common.config import settings
from tongban.sample import write_samples

from tests.workdirs import work_env

KEY = "tongban-test-pseudonym-key-0123456789abcdef"
ENTITY = "birth_registration"
#: the Python driver: psycopg 3 serves Airflow's sync and async engines alike (tongban.airflow_env)
DRIVER, DRIVER_PACKAGE = "psycopg", "psycopg[binary]"
#: a task's XCom stays small: counts and paths, never rows
XCOM_MAX_BYTES = 64 * 1024


def _why_no_postgres() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        return "no PostgreSQL server binaries (initdb): run `make postgres` (apt-get install postgresql, as root)"
    if importlib.util.find_spec(DRIVER) is None:
        return (f"no Postgres driver ({DRIVER}) in {sys.prefix}: {DRIVER_PACKAGE} is not in uv.lock "
                "(a lock change: add it as a dependency)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to run initdb as (initdb refuses root)"
    return None


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    return found[-1] if found else shutil.which(name) or name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A Postgres cluster on 127.0.0.1:<free port> with an empty database ``airflow``; its URL."""
    if os.environ.get("TONGBAN_SKIP_POSTGRES") == "1":
        pytest.skip("TONGBAN_SKIP_POSTGRES=1")
    reason = _why_no_postgres()
    if reason:
        pytest.fail(reason, pytrace=False)
    as_user = {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid} if os.geteuid() == 0 else {}
    root = Path(tempfile.mkdtemp(prefix="tongban-pg-"))
    if as_user:
        os.chown(root, pwd.getpwnam("postgres").pw_uid, as_user["group"])
    data, port = root / "data", _free_port()

    def pg(*args: str) -> None:
        out = subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False, **as_user)
        if out.returncode != 0:
            log = (root / "server.log").read_text(errors="replace")[-2000:] if (root / "server.log").exists() else ""
            pytest.fail(f"{Path(args[0]).name} failed: {(out.stderr or out.stdout).strip()[-1500:]} {log}",
                        pytrace=False)

    pg(_bin("initdb"), "-D", str(data), "-U", "tongban", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
    pg(_bin("pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "120", "-o",
       f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", "start")
    try:
        pg(_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tongban", "airflow")
        yield f"postgresql+psycopg://tongban@127.0.0.1:{port}/airflow"
    finally:
        subprocess.run([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=120, check=False, **as_user)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ran(postgres, tmp_path_factory):
    """``airflow db migrate`` then ``airflow dags test tongban_regional`` on the samples, against ``postgres``."""
    inbox = tmp_path_factory.mktemp("pg-inbox")
    write_samples("births", 30, 5, inbox)
    work = tmp_path_factory.mktemp("pg-work")
    env = {**os.environ, **work_env(work, inbox, KEY), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres}
    env.pop("TONGBAN_AIRFLOW_SQLITE_DEFAULT", None)  # this session's own SQLite default is not the operator's
    env.pop("AIRFLOW_HOME", None)
    env.pop("AIRFLOW_CONFIG", None)

    def airflow(*args: str) -> subprocess.CompletedProcess:
        # tongban.airflow_env's environment (dags folder, home under the build dir), then the real airflow CLI
        return subprocess.run([sys.executable, "-m", "tongban.airflow_env", "airflow", *args], env=env,
                              capture_output=True, text=True, timeout=900, check=False,
                              cwd=settings().project_root)

    migrate = airflow("db", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    test = airflow("dags", "test", "tongban_regional", "--conf", json.dumps({"entities": [ENTITY]}))
    return {"work": work, "inbox": inbox, "url": postgres, "migrate": migrate, "test": test}


def _query(url: str, sql: str) -> list[tuple]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sqlalchemy.text(sql))]
    finally:
        engine.dispose()


def test_the_dag_runs_with_a_postgres_metadata_db(ran):
    assert ran["test"].returncode == 0, ran["test"].stderr[-4000:]
    # the run is in Postgres (not in a SQLite file beside it): one successful tongban_regional run ...
    runs = _query(ran["url"], "select run_id, state from dag_run where dag_id = 'tongban_regional'")
    assert [state for _, state in runs] == ["success"], runs
    assert not (ran["work"] / "build" / "airflow" / "airflow.db").exists()
    # ... whose every task instance succeeded there, the intake mapped once per province's delivery
    tis = _query(ran["url"], "select task_id, map_index, state from task_instance "
                             f"where dag_id = 'tongban_regional' and run_id = '{runs[0][0]}'")
    assert {state for _, _, state in tis} == {"success"}, tis
    assert {t for t, _, _ in tis} == {"start", "sources", "intake", "transform", "gate", "check_conservation",
                                      "publish", "feedback"}
    provinces = [d for d in ran["inbox"].iterdir() if d.is_dir()]  # one births delivery in each
    assert len(provinces) == 4
    assert sorted(m for t, m, _ in tis if t == "intake") == list(range(len(provinces))), "one intake per delivery"
    # its tasks claimed the build directory under its lock (tongban.common.runlock), and the last released it
    assert (ran["work"] / "build" / "run.lock.json").exists()
    assert not (ran["work"] / "build" / "run.claim.json").exists()
    # and it published: the exchange holds the births' Parquet parts
    parts = list((ran["work"] / "exchange").rglob("*.parquet"))
    assert any(ENTITY in str(p) for p in parts), parts


def test_xcoms_are_small_typed_json(ran):
    """What crosses between workers: a JSON object or list per task, never rows, each well under 64 KiB."""
    rows = _query(ran["url"], "select task_id, map_index, value::text from xcom "
                              "where dag_id = 'tongban_regional' and key = 'return_value'")
    assert {t for t, _, _ in rows} >= {"start", "intake", "transform", "gate", "publish", "feedback"}
    for task_id, map_index, text in rows:
        value = json.loads(text)
        assert isinstance(value, (dict, list)), (task_id, type(value))
        assert len(text.encode("utf-8")) < XCOM_MAX_BYTES, (task_id, map_index, len(text))
