"""tongban_regional: one harmonization run over every province's delivery. Wiring only.

The work lives in ``tongban.pipeline``, imported inside each task so that parsing this file stays
cheap (the pipeline pulls in dbt and great_expectations lazily, ~15 s of imports). Every value
passed between tasks is a small JSON dict (counts and paths, never rows): a step's typed result
(tongban.steps.results) as ``to_xcom`` writes it, read back by the pipeline. The tasks carry no
``-> dict`` annotation on purpose: TaskFlow would infer multiple_outputs=True from it and store
every key of every result a second time as its own XCom.

Runs daily at 02:00 Beijing time, and whenever a delivery lands: ``tongban_inbox`` looks at the
inbox every five minutes and updates the INBOX asset when a file came or changed (the scheduler
alone does this; no triggerer). ``tongban run`` runs it in process (dag.test). The steps that can
fail for a passing reason (a file still being copied, a locked warehouse) retry with exponential
backoff; a tongban input error fails at once. A failed task records an operator alert
(tongban.common.alerts) for the overview page. ``publish`` declares the consumer exchange as an
Asset, so a downstream DAG can use ``schedule=[EXCHANGE]``.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

EXCHANGE = Asset("tongban://exchange")
INBOX = Asset("tongban://inbox")
#: intake, transform and gate: 3 tries, 1 then 2 minutes apart
TRANSIENT = {"retries": 2, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": 2.0,
             "max_retry_delay": timedelta(minutes=10)}


def _call(step: str, *args):
    """tongban.pipeline.<step>(*args), imported only when a task runs; input errors fail at once;
    a run's steps hold its claim on the build directory (tongban.airflow_env.run_step)."""
    from tongban import pipeline
    from tongban.airflow_env import run_step

    return run_step(step, getattr(pipeline, step), *args)


def _alert(context) -> None:
    from tongban.airflow_env import record_task_failure

    record_task_failure(context)


@dag(
    dag_id="tongban_regional",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone="Asia/Shanghai"),
                                 assets=INBOX),
    catchup=False,
    max_active_runs=1,  # runs share build/ and the warehouse
    default_args={"retries": 0, "on_failure_callback": _alert},
    params={"entities": Param(None, type=["null", "array"], items={"type": "string"},
                              description="entities to harmonize; null = all")},
    tags=["tongban", "yrd"],
    doc_md=__doc__,
)
def tongban_regional():
    @task
    def start(params=None):
        return _call("start_run", (params or {}).get("entities"))

    @task
    def sources(run: dict) -> list[dict]:  # Airflow maps only over a whole return value, not run["sources"]
        return run["sources"]

    @task(map_index_template="{{ task.op_kwargs['source']['entity'] }}/{{ task.op_kwargs['source']['source_id'] }}",
          **TRANSIENT)
    def intake(run: dict, source: dict):
        return _call("intake", run, source)

    @task(**TRANSIENT)
    def transform(run: dict, intakes: list[dict]):
        return _call("transform", run, intakes[:])

    @task(**TRANSIENT)
    def gate(run: dict, transformed: dict):
        return _call("gate", run, transformed)

    @task
    def check_conservation(run: dict, intakes: list[dict], transformed: dict):
        return _call("check_conservation", run, intakes[:], transformed)

    @task(outlets=[EXCHANGE])
    def publish(run: dict, intakes: list[dict], transformed: dict, gate: dict, conservation: dict):
        published = _call("publish", run, intakes[:], transformed, gate, conservation)
        print(f"run {published['run_id']}: report {published['report']}")  # `tongban run` prints the summary
        return published

    @task
    def feedback(run: dict, intakes: list[dict], transformed: dict):
        return _call("feedback", run, intakes[:], transformed)

    run = start()
    intakes = intake.partial(run=run).expand(source=sources(run))  # may run in parallel: one file each
    transformed = transform(run, intakes)
    gated = gate(run, transformed)
    conserved = check_conservation(run, intakes, transformed)
    # gate and check_conservation both open warehouse.duckdb: run them one after the other.
    # A failed gate is data (success=False), not an error, so publish still runs and records it.
    gated >> conserved
    published = publish(run, intakes, transformed, gated, conserved)
    published >> feedback(run, intakes, transformed)


@dag(dag_id="tongban_inbox", schedule=timedelta(minutes=5), catchup=False, max_active_runs=1,
     default_args={"retries": 0, "on_failure_callback": _alert}, tags=["tongban", "yrd"])
def tongban_inbox():
    """Updates INBOX (so tongban_regional runs) when a delivery came or changed since the last look."""

    @task(outlets=[INBOX])
    def look():
        from airflow.sdk.exceptions import AirflowSkipException

        changed = _call("inbox_changes")
        if not changed:
            raise AirflowSkipException("no delivery came or changed")  # skipped: no asset event
        return changed

    look()


tongban_regional()
tongban_inbox()
