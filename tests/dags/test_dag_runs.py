"""The DAGs run for real (Airflow dag.test in process, as `tongban run` does): a task that fails
records an operator alert, an input error is not retried, and the inbox watcher updates the
INBOX asset (which schedules tongban_regional) only when a delivery came or changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tongban import airflow_env, pipeline
from tongban.airflow_env import configure, fail_fast, failure_message, run_dag
from tongban.common.alerts import read_alerts
from tongban.sample import write_samples
from tongban.steps import harmonize
from tongban.steps.start import UsageError

from tests.workdirs import use_work

KEY = "tongban-test-pseudonym-key-0123456789abcdef"
ENTITY = "birth_registration"
FORCED = "the standards name no entity 'forced_by_the_test'"


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dag-runs-inbox")
    write_samples("births", 30, 5, out)
    return out


def _try_numbers(dag_id: str, run_id: str) -> dict[str, int]:
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return dict(session.execute(select(TI.task_id, TI.try_number)
                                    .where(TI.dag_id == dag_id, TI.run_id == run_id, TI.map_index < 1)).all())


def test_a_failing_task_records_an_alert_and_an_input_error_is_not_retried(inbox, tmp_path_factory):
    configure()  # Airflow's home stays the session's: it cannot move once airflow is imported
    work = tmp_path_factory.mktemp("dag-failure")

    def transform_refuses(*args, **kwargs):
        raise UsageError(FORCED)

    with pytest.MonkeyPatch.context() as mp:
        use_work(mp, work, inbox, KEY)
        mp.setattr(harmonize, "transform", transform_refuses)  # inside pipeline.transform, the real step
        outcome = run_dag(airflow_env.DAG_ID, conf={"entities": [ENTITY]})
    states = outcome["task_states"]
    assert outcome["state"] == "failed"
    assert states["transform"] == "failed" and states["gate"] == "upstream_failed"
    # transform retries passing trouble, but an input error fails at once: one try, no wait
    assert _try_numbers(airflow_env.DAG_ID, outcome["dag_run_id"])["transform"] == 1
    alerts = read_alerts(build_dir=work / "build")
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["source"] == "airflow" and alert["dag_id"] == airflow_env.DAG_ID
    assert alert["task_id"] == "transform" and alert["run_id"] == outcome["dag_run_id"]
    assert alert["message"] == f"step transform failed: UsageError: {FORCED}"
    # the run's progress says so too (what `tongban run` shows)
    events = [json.loads(line) for line in
              (work / "build" / pipeline.PROGRESS).read_text(encoding="utf-8").splitlines()]
    assert {"step": "transform", "state": "failed", "error": "UsageError"}.items() <= events[-1].items()
    assert [e["source_id"] for e in events if e["event"] == "delivery"] != []


def test_fail_fast_stops_retries_for_input_errors_only():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as failed:
        fail_fast(lambda: (_ for _ in ()).throw(UsageError(FORCED)))
    assert isinstance(failed.value.__cause__, UsageError)
    with pytest.raises(OSError):  # passing trouble: Airflow retries it
        fail_fast(lambda: (_ for _ in ()).throw(OSError("the delivery is still being copied")))
    assert fail_fast(lambda x: x + 1, 1) == 2


def test_an_alert_quotes_only_tongbans_own_messages():
    """A library's error text may quote a value it read: the alert names its class only."""
    value = "张三 310101199001011234"
    foreign = failure_message("intake[birth_registration/sh]", ValueError(f"could not convert {value!r}"), 3)
    assert value not in foreign
    assert foreign == "step intake[birth_registration/sh] failed after 3 tries (ValueError); its task log has the traceback"
    from airflow.sdk.exceptions import AirflowFailException

    try:
        fail_fast(lambda: (_ for _ in ()).throw(UsageError(FORCED)))
    except AirflowFailException as exc:
        wrapped = failure_message("start", exc, 1)
    assert wrapped == f"step start failed: UsageError: {FORCED}"


def _inbox_events(run_id: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(AssetEvent).join(AssetModel,
                              AssetEvent.asset_id == AssetModel.id)
                              .where(AssetModel.uri == "tongban://inbox/", AssetEvent.source_run_id == run_id))


def test_the_watcher_updates_the_inbox_asset_when_a_delivery_lands(inbox, tmp_path_factory):
    configure()
    work = tmp_path_factory.mktemp("dag-watcher")
    with pytest.MonkeyPatch.context() as mp:
        use_work(mp, work, inbox, KEY)
        first = run_dag("tongban_inbox")
        again = run_dag("tongban_inbox")
        sh = inbox / "sh" / "births.csv"
        st = sh.stat()
        os.utime(sh, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # 上海 delivers again
        redelivered = run_dag("tongban_inbox")
    assert first["task_states"] == {"look": "success"} and _inbox_events(first["dag_run_id"]) == 1
    assert sorted(first["xcom"]["look"]) == sorted(p.relative_to(inbox).as_posix()
                                                   for p in inbox.rglob("*") if p.is_file())
    assert again["task_states"] == {"look": "skipped"} and _inbox_events(again["dag_run_id"]) == 0
    assert redelivered["task_states"] == {"look": "success"} and _inbox_events(redelivered["dag_run_id"]) == 1
    assert redelivered["xcom"]["look"] == ["sh/births.csv"]
    assert read_alerts(build_dir=work / "build") == []
