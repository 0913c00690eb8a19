"""Trust at the producer's end, with real processes: one run at a time per build directory, user
errors as one line with an exit code by class, and a publish killed (SIGKILL) at any step leaves
the exchange old or new, never half — what it left is removed by the next run.

Each `tongban run` here is the real command (`python -m tongban.cli`) on the four real
catalogues (data_resource), in a build/exchange/feedback directory of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tongban import exchange
from tongban.exchange import integrity
from tongban.pipeline import CRASH_AT_ENV
from tongban.common.runlock import HOLDER_FILE, run_lock

from tests.workdirs import work_env


def _env(base: Path, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}, **work_env(base), **extra}


def _tongban(base: Path, *args: str, wait: bool = True, **extra: str):
    cmd = [sys.executable, "-m", "tongban.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, env=_env(base, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, env=_env(base, **extra), capture_output=True, text=True, timeout=600)


RUN = ("run", "--without-airflow", "--entity", "data_resource")
#: a run over the repo's catalogues ends 0, or 3 while the gate holds city catalogues over their
#: threshold (docs/committee.md, "The 22 city catalogues"): both are a finished run here
FINISHED = (0, 3)


# ------------------------------------------------------------------------------------ one run at a time

def test_a_second_run_exits_at_once_naming_the_holder_or_waits(tmp_path: Path):
    build = tmp_path / "build"
    with run_lock(build):  # this test process holds the lock, as a running `tongban run` would
        busy = _tongban(tmp_path, *RUN)
        waiting = _tongban(tmp_path, *RUN, "--wait", "300", wait=False)
        time.sleep(3)
        assert waiting.poll() is None  # still waiting for the lock
        assert not (tmp_path / "exchange").exists()  # ...and has read and written nothing
    out, err = waiting.communicate(timeout=600)
    assert busy.returncode == 4, busy.stderr
    lines = busy.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in busy.stderr
    assert f"pid {os.getpid()}" in lines[0] and "--wait" in lines[0] and "run.lock" in lines[0]
    assert waiting.returncode in FINISHED, err
    assert json.loads((build / HOLDER_FILE).read_text())["pid"] == waiting.pid
    assert exchange.query(tmp_path / "exchange", "select count(*) from data_resource")[1][0][0] > 0


def test_two_real_runs_at_once_one_waits_for_the_other(tmp_path: Path):
    """Two `tongban run --wait` processes started together: one waits for the other, both succeed
    and each snapshot carries the run that published it."""
    # either may take the lock first: both wait for the other
    first = _tongban(tmp_path, *RUN, "--wait", "600", wait=False)
    second = _tongban(tmp_path, *RUN, "--wait", "600", wait=False)
    results = [p.communicate(timeout=600) + (p.returncode,) for p in (first, second)]
    for _out, err, code in results:
        assert code in FINISHED, err
        assert "Traceback" not in err
    runs = exchange.query(tmp_path / "exchange", "select distinct run_id from exchange_runs order by 1")[1]
    assert len(runs) == 2
    snaps = exchange.query(tmp_path / "exchange", "select run_id from exchange_snapshots order by version")[1]
    assert [r[0] for r in snaps] == sorted(r[0] for r in runs)


# ------------------------------------------------------------------------------------ user errors

def _one_line(result, code: int, *needles: str) -> str:
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, last
    return last


def test_an_unknown_entity_is_one_line_in_process_and_through_airflow(tmp_path: Path):
    _one_line(_tongban(tmp_path, "run", "--without-airflow", "--entity", "nope"), 1,
              "unknown entity: nope", "data_resource")
    _one_line(_tongban(tmp_path, "run", "--entity", "nope"), 1, "start_run failed", "unknown entity: nope")
    debug = _tongban(tmp_path, "--debug", "run", "--without-airflow", "--entity", "nope")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_a_missing_reference_directory_is_one_line(tmp_path: Path):
    _one_line(_tongban(tmp_path, *RUN, TONGBAN_REFERENCE_DIR=str(tmp_path / "nowhere")), 1,
              "TONGBAN_REFERENCE_DIR", str(tmp_path / "nowhere"))


def test_a_bad_yaml_file_names_its_line(tmp_path: Path):
    import shutil

    from tongban.common.config import PROJECT_ROOT

    scratch = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", scratch)
    path = scratch / "mappings" / "sh" / "data_resource.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("identity: [", "identity: [[", 1), encoding="utf-8")
    result = _tongban(tmp_path, *RUN, TONGBAN_STANDARDS_DIR=str(scratch))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "standards/mappings/sh/data_resource.yaml:" in result.stderr and "not valid YAML" in result.stderr


def test_a_dbt_compilation_error_names_the_model_and_what_to_do(tmp_path: Path, monkeypatch, capsys):
    """A generated model dbt cannot compile (written into the generated project the way a broken
    generator would): exit 5, one line naming the model's file and the commands to run."""
    from tongban import cli
    from tongban.steps import project, start

    real = project.build_project

    def broken(std, project_root, dest):
        changed = real(std, project_root, dest)
        (dest / "models" / "staging" / "sh" / "stg_sh__data_resource.sql").write_text(
            "select {{ no_such_macro() }} as x\n", encoding="utf-8")
        return changed

    import shutil

    from tongban.common.config import PROJECT_ROOT

    shutil.copytree(PROJECT_ROOT / "standards", tmp_path / "standards")
    for k, v in _env(tmp_path, TONGBAN_STANDARDS_DIR=str(tmp_path / "standards")).items():
        if k.startswith("TONGBAN_"):
            monkeypatch.setenv(k, v)
    monkeypatch.setattr(start, "build_project", broken)
    code = cli.main(list(RUN))
    err = capsys.readouterr().err
    assert code == 5, err
    assert "Traceback" not in err
    assert "stg_sh__data_resource" in err and "models/staging/sh/stg_sh__data_resource.sql" in err
    assert "tongban standards check" in err and "tongban generate" in err


# ------------------------------------------------------------------------------------ crash consistency

STEPS = ["snapshot:data_resource", "recorded", "dictionary", "catalog"]


def _state(root: Path) -> dict:
    """The exchange as a consumer sees it: every view reads, and what the catalog committed."""
    con = exchange.connect_catalog(root)
    try:
        views = [r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()]
        for view in views:
            con.execute(f'select count(*) from "{view}"').fetchone()
        current = dict(con.execute("select entity, version from exchange_snapshots where is_current").fetchall())
        runs = sorted(r[0] for r in con.execute("select distinct run_id from exchange_runs").fetchall())
        dictionary = con.execute("select dictionary from exchange_commit").fetchone()[0]
    finally:
        con.close()
    return {"views": views, "current": current, "runs": runs, "dictionary": dictionary}


def _orphans(root: Path, state: dict) -> list[str]:
    out = [str(p.relative_to(root)) for p in root.rglob("*") if ".tmp-" in p.name or ".new-" in p.name]
    for entity_dir in (root / e for e in state["current"]):
        out += [d.name for n, d in exchange._version_dirs(entity_dir) if n > state["current"][entity_dir.name]]
    out += [p.name for p in (root / "_runs").glob("*.parquet") if p.stem not in state["runs"]]
    out += [p.name for p in (root / "_dictionary").iterdir() if p.name != state["dictionary"]]
    return out


def test_a_publish_killed_at_any_step_leaves_the_exchange_old_or_new(tmp_path: Path):
    root = tmp_path / "exchange"
    assert _tongban(tmp_path, *RUN).returncode in FINISHED
    before = _state(root)
    assert before["current"] == {"data_resource": 1} and _orphans(root, before) == []
    for step in STEPS:
        killed = _tongban(tmp_path, *RUN, **{CRASH_AT_ENV: step})
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr[-1000:])
        after = _state(root)  # the catalog opens and every view reads, whatever the step
        committed = step == "catalog"  # the one commit point was passed
        assert len(after["runs"]) == len(before["runs"]) + committed, step
        assert after["current"]["data_resource"] == before["current"]["data_resource"] + committed, step
        # the dictionary is never missing: the link still resolves (to the old one until recovered)
        assert (root / "dictionary" / "index.html").is_file(), step
        # the next run's start removes what the killed run left, and nothing else
        integrity.recover(root)
        assert _orphans(root, after) == [], step
        assert os.readlink(root / "dictionary") == f"_dictionary/{after['dictionary']}", step
        before = after
    final = _tongban(tmp_path, *RUN)
    assert final.returncode in FINISHED, final.stderr[-2000:]
    state = _state(root)
    assert _orphans(root, state) == [] and integrity.verify(root) == []
    with duckdb.connect() as con:  # versions are consecutive per committed snapshot
        assert state["current"]["data_resource"] == before["current"]["data_resource"] + 1
        assert con.execute("select 1").fetchone() == (1,)
