"""Conservation is enforced, not only reported: a real run of the tongban_regional DAG (Airflow
dag.test in process, dbt, DuckDB, GX) in which one delivery loses a row in the warehouse between
transform and check_conservation fails, publishes nothing and names that delivery."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from tongban import pipeline
from tongban.airflow_env import configure, run_dag
from tongban.common.config import settings
from tongban.sample import write_samples

from tests.workdirs import use_work

ROWS = 120
KEY = "tongban-test-pseudonym-key-0123456789abcdef"
ENTITY = "birth_registration"


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("conservation-inbox")
    write_samples("births", ROWS, 5, out)
    return out


def _losing_a_row(table: str, source_id: str):
    """The real transform, then one row of ``source_id`` deleted from ``harmonized.<table>``."""
    transform = pipeline.transform

    def transform_then_lose(run, intakes):
        out = transform(run, intakes)
        with duckdb.connect(str(settings().warehouse_path)) as con:
            gone = con.execute(f"delete from harmonized.{table} where (source_id, source_row_number) in "
                               f"(select source_id, min(source_row_number) from harmonized.{table} "
                               "where source_id = ? group by 1)", [source_id]).fetchall()
        assert gone == [(1,)]
        return out

    return transform_then_lose


@pytest.fixture(scope="module", params=[(ENTITY, "js"), (f"{ENTITY}__rejections", "sh")],
                ids=["published-row-lost", "quarantined-row-lost"])
def broken_run(request, inbox, tmp_path_factory) -> dict:
    table, source_id = request.param
    configure()  # Airflow's home stays the session's: it cannot move once airflow is imported
    work = tmp_path_factory.mktemp("conservation")
    with pytest.MonkeyPatch.context() as mp:
        use_work(mp, work, inbox, KEY)
        mp.setattr(pipeline, "transform", _losing_a_row(table, source_id))
        outcome = run_dag("tongban_regional", conf={"entities": [ENTITY]})
        s = settings()
    return {"outcome": outcome, "work": work, "settings": s, "source_id": source_id, "table": table}


def test_the_run_fails_at_check_conservation(broken_run):
    states = broken_run["outcome"]["task_states"]
    assert broken_run["outcome"]["state"] == "failed"
    assert states["transform"] == "success" and states["gate"] == "success"
    assert states["check_conservation"] == "failed"
    assert states["publish"] == "upstream_failed" and states["feedback"] == "upstream_failed"


def test_nothing_is_published(broken_run):
    s = broken_run["settings"]
    assert broken_run["outcome"]["published"] is None
    exchange = [p for p in s.exchange_dir.rglob("*")] if s.exchange_dir.exists() else []
    assert exchange == []
    # no run report; only the record of the failed step that `tongban run` shows in one line
    runs = s.build_dir / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["last-failure.json"]
    failure = json.loads((runs / "last-failure.json").read_text(encoding="utf-8"))
    assert failure["step"] == "check_conservation" and failure["error"] == "ConservationError"
    assert f"{broken_run['source_id']}/{ENTITY}: delivered" in failure["message"]
    assert not s.feedback_dir.exists() or list(s.feedback_dir.rglob("*")) == []


def test_the_message_names_the_delivery_and_its_counts(broken_run, monkeypatch):
    """The failed task's error, raised again on the warehouse the run left behind."""
    source_id, work = broken_run["source_id"], broken_run["work"]
    monkeypatch.setenv("TONGBAN_BUILD_DIR", str(work / "build"))
    xcom = broken_run["outcome"]["xcom"]
    intakes = [v for k, v in xcom.items() if k.startswith("intake[")]
    assert len(intakes) == 4
    with pytest.raises(pipeline.ConservationError, match=f"{source_id}/{ENTITY}: delivered") as raised:
        pipeline.check_conservation(xcom["start"], intakes, xcom["transform"])
    message = str(raised.value)
    lost = re.search(rf"^{source_id}/{ENTITY}: delivered {ROWS}, landed {ROWS}, "
                     rf"harmonized (\d+) \+ quarantined (\d+) = {ROWS - 1}$", message, re.MULTILINE)
    assert lost, message
    assert message.startswith("conservation violated")
    # only that delivery: the others still add up
    others = [line for line in message.splitlines()[1:] if not line.startswith(f"{source_id}/")]
    assert others == []


def test_the_report_of_a_good_run_agrees_with_an_own_count(inbox, tmp_path_factory):
    """Positive control: the same deliveries, nothing lost, pass and publish every row once."""
    configure()
    work = tmp_path_factory.mktemp("conservation-ok")
    with pytest.MonkeyPatch.context() as mp:
        use_work(mp, work, inbox, KEY)
        outcome = run_dag("tongban_regional", conf={"entities": [ENTITY]})
    assert outcome["state"] == "success", outcome["task_states"]
    report = json.loads(Path(outcome["published"]["report"]).read_text(encoding="utf-8"))
    with duckdb.connect() as con:
        published = dict(con.execute("select source_id, count(*) from read_parquet(?) group by 1",
                                     [str(work / "exchange" / ENTITY / "v1" / "*.parquet")]).fetchall())
        for d in report["deliveries"]:
            fb = work / "feedback" / d["source_id"] / f"{report['run_id']}__{ENTITY}.csv"
            returned = con.execute("select count(*) from read_csv(?, all_varchar=true)", [str(fb)]).fetchone()[0]
            assert published[d["source_id"]] + returned == ROWS
