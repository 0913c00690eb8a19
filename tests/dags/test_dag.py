"""The tongban_regional DAG, parsed by real Airflow: it imports cleanly, is wired as designed, and
parsing it stays cheap (no dbt, great_expectations or tongban.pipeline at parse time).

Running it is the integration test's job (tests/integration/test_regional_run.py)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

from tongban import airflow_env
from tongban.common.config import settings

DAGS = settings().project_root / "dags"
DAG_FILE = DAGS / "tongban_regional.py"
DAG_ID = "tongban_regional"
WATCHER_ID = "tongban_inbox"
#: the steps that can fail for a passing reason: retried with exponential backoff
RETRIED = {"intake", "transform", "gate"}

# task -> the tasks directly downstream of it. The data flow adds the edges from start/intake/
# transform; the chain start -> sources -> intake -> transform -> gate -> check_conservation ->
# publish -> feedback is the order the pipeline needs.
EDGES = {
    "start": {"sources", "intake", "transform", "gate", "check_conservation", "publish", "feedback"},
    "sources": {"intake"},
    "intake": {"transform", "check_conservation", "publish", "feedback"},
    "transform": {"gate", "check_conservation", "publish", "feedback"},
    "gate": {"check_conservation", "publish"},
    "check_conservation": {"publish"},
    "publish": {"feedback"},
    "feedback": set(),
}
HEAVY = ("great_expectations", "dbt", "tongban.pipeline", "pandas", "duckdb")


@pytest.fixture(scope="module")
def dagbag():
    airflow_env.configure()  # before airflow is imported: AIRFLOW_HOME under the (test) build dir
    from airflow.dag_processing.dagbag import DagBag

    # Airflow 3.3's DagBag has no include_examples; examples only come in through their own bundle.
    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags[DAG_ID]


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {DAG_ID, WATCHER_ID}


def test_dag_settings(dag):
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "tongban" in dag.tags
    assert "entities" in dag.params and dag.params["entities"] is None
    assert [a.uri for a in dag.task_dict["publish"].outlets] == ["tongban://exchange/"]


def test_runs_daily_and_when_a_delivery_lands(dag, dagbag):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    schedule = dag.timetable
    assert isinstance(schedule, AssetOrTimeSchedule)
    assert isinstance(schedule.timetable, CronTriggerTimetable)
    assert schedule.timetable.expression == "0 2 * * *" and str(schedule.timetable.timezone) == "Asia/Shanghai"
    assert schedule.asset_condition.uri == "tongban://inbox/"
    # the watcher updates that asset, on the scheduler alone (no triggerer: no AssetWatcher)
    watcher = dagbag.dags[WATCHER_ID]
    assert watcher.catchup is False and watcher.max_active_runs == 1
    assert [t.task_id for t in watcher.tasks] == ["look"]
    assert [a.uri for a in watcher.task_dict["look"].outlets] == ["tongban://inbox/"]
    assert not schedule.asset_condition.watchers


def test_retries_with_backoff_only_where_failures_pass(dag):
    from datetime import timedelta

    for t in dag.tasks:
        if t.task_id in RETRIED:
            assert t.retries == 2 and t.retry_exponential_backoff == 2.0, t.task_id
            assert t.retry_delay == timedelta(minutes=1) and t.max_retry_delay == timedelta(minutes=10)
        else:  # start (standards, arguments), publish (never twice), ...: a failure is not passing
            assert t.retries == 0, t.task_id


def test_every_task_records_an_alert_when_it_fails(dag, dagbag):
    for d in (dag, dagbag.dags[WATCHER_ID]):
        for t in d.tasks:
            callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
            assert [c.__name__ for c in callbacks] == ["_alert"], (d.dag_id, t.task_id)


def test_the_schedule_serializes_for_the_scheduler(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert restored.timetable.description == "Triggered by assets or At 02:00"


def test_tasks_and_edges(dag):
    assert set(dag.task_ids) == set(EDGES)
    assert {t: set(dag.task_dict[t].downstream_task_ids) for t in dag.task_ids} == EDGES
    chain = ["start", "sources", "intake", "transform", "gate", "check_conservation", "publish", "feedback"]
    for up, down in itertools.pairwise(chain):
        assert down in dag.task_dict[up].downstream_task_ids, (up, down)
    assert [t.task_id for t in dag.roots] == ["start"] and [t.task_id for t in dag.leaves] == ["feedback"]


def test_intake_is_mapped_over_the_sources(dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    intake = dag.task_dict["intake"]
    assert isinstance(intake, MappedOperator)
    mapped = intake.op_kwargs_expand_input.value  # TaskFlow keeps expand() kwargs here
    assert set(mapped) == {"source"}  # one task instance per source ...
    assert mapped["source"].operator.task_id == "sources"  # ... of the list `sources` returns
    assert "run" in intake.partial_kwargs["op_kwargs"]  # the run dict is shared
    for name in ("start", "transform", "gate", "check_conservation", "publish", "feedback"):
        assert not isinstance(dag.task_dict[name], MappedOperator), name


def test_results_are_one_xcom_each(dag):
    # A `-> dict` annotation makes TaskFlow infer multiple_outputs=True: every key stored twice.
    assert {t.task_id: t.multiple_outputs for t in dag.tasks} == dict.fromkeys(EDGES, False)


def test_dag_serializes_for_the_scheduler(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert set(restored.task_ids) == set(EDGES)


_PARSE_PROBE = r"""
import json, sys
from tongban import airflow_env
airflow_env.configure()
import airflow.sdk  # the DAG processor has airflow loaded before it parses a file
path = sys.argv[1]
exec(compile(open(path, encoding="utf-8").read(), path, "exec"), {"__name__": "dag_probe", "__file__": path})
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=path)
heavy = sys.argv[2].split(",")
print(json.dumps({"dags": sorted(bag.dags), "errors": bag.import_errors,
                  "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy)}))
"""


def test_parsing_imports_nothing_heavy():
    """Parsing stays cheap because the heavy libraries stay out of it (how long DagBag takes is
    measured by `make bench`, bench/harness.py's DAG parse, not asserted here)."""
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", _PARSE_PROBE, str(DAG_FILE), ",".join(HEAVY)],
                         capture_output=True, text=True, env=env, cwd=settings().project_root, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["dags"] == [WATCHER_ID, DAG_ID] and probe["errors"] == {}
    assert probe["heavy"] == [], f"parsing the DAG imported {probe['heavy']}"


def test_dag_file_imports_the_pipeline_only_inside_tasks():
    import ast

    tree = ast.parse(DAG_FILE.read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top for a in n.names} | {n.module for n in top if isinstance(n, ast.ImportFrom)}
    assert not any(str(x).startswith(("tongban", "dbt", "great_expectations", "cosmos")) for x in names), names


def test_configure_points_airflow_at_the_build_dir():
    home = airflow_env.configure()
    assert home == settings().build_dir / "airflow"
    assert os.environ["AIRFLOW_HOME"] == str(home)
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS)
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home}/airflow.db"
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert int(os.environ["AIRFLOW__CORE__PARALLELISM"]) <= 8
    assert airflow_env.configure() == home  # idempotent


_SWITCH_PROBE = r"""
import sys
from pathlib import Path
from tongban import airflow_env
first = airflow_env.configure(Path(sys.argv[1]) / "one")
assert "airflow" not in sys.modules
assert airflow_env.configure(Path(sys.argv[1]) / "two") != first  # before the import: a free choice
import airflow.sdk
assert airflow_env.configure(Path(sys.argv[1]) / "two") == Path(sys.argv[1]) / "two"  # the same: no-op
airflow_env.configure(Path(sys.argv[1]) / "three")
"""


def test_configure_refuses_another_home_once_airflow_is_imported(tmp_path):
    """In a fresh interpreter, so that it does not depend on whether an earlier test imported airflow."""
    out = subprocess.run([sys.executable, "-c", _SWITCH_PROBE, str(tmp_path.resolve())], capture_output=True,
                         text=True, cwd=settings().project_root, timeout=300, check=False)
    assert out.returncode == 1, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: airflow is already imported with AIRFLOW_HOME=")
    assert str(tmp_path.resolve() / "two") in last and str(tmp_path.resolve() / "three") in last
