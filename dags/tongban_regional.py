"""tongban_regional: one harmonization run over every province's delivery. Wiring only.

The work lives in ``tongban.pipeline``, imported inside each task so that parsing this file stays
cheap (the pipeline pulls in dbt and great_expectations lazily, ~15 s of imports). Every value
passed between tasks is a small JSON dict (counts and paths, never rows): a step's typed result
(tongban.steps.results) as ``to_xcom`` writes it, read back by the pipeline. The tasks carry no
``-> dict`` annotation on purpose: TaskFlow would infer multiple_outputs=True from it and store
every key of every result a second time as its own XCom.

Triggered by hand or by ``tongban.airflow_env.run_dag`` (schedule=None). ``publish`` declares the
consumer exchange as an Asset, so a downstream DAG can use ``schedule=[EXCHANGE]``.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, task

EXCHANGE = Asset("tongban://exchange")


@dag(
    dag_id="tongban_regional",
    schedule=None,
    catchup=False,
    max_active_runs=1,  # runs share build/ and the warehouse
    default_args={"retries": 0},
    params={"entities": Param(None, type=["null", "array"], items={"type": "string"},
                              description="entities to harmonize; null = all")},
    tags=["tongban", "yrd"],
    doc_md=__doc__,
)
def tongban_regional():
    @task
    def start(params=None):
        from tongban import pipeline

        return pipeline.start_run((params or {}).get("entities"))

    @task
    def sources(run: dict) -> list[dict]:  # Airflow maps only over a whole return value, not run["sources"]
        return run["sources"]

    @task(map_index_template="{{ task.op_kwargs['source']['entity'] }}/{{ task.op_kwargs['source']['source_id'] }}")
    def intake(run: dict, source: dict):
        from tongban import pipeline

        return pipeline.intake(run, source)

    @task
    def transform(run: dict, intakes: list[dict]):
        from tongban import pipeline

        return pipeline.transform(run, intakes[:])

    @task
    def gate(run: dict, transformed: dict):
        from tongban import pipeline

        return pipeline.gate(run, transformed)

    @task
    def check_conservation(run: dict, intakes: list[dict], transformed: dict):
        from tongban import pipeline

        return pipeline.check_conservation(run, intakes[:], transformed)

    @task(outlets=[EXCHANGE])
    def publish(run: dict, intakes: list[dict], transformed: dict, gate: dict, conservation: dict):
        from tongban import pipeline

        published = pipeline.publish(run, intakes[:], transformed, gate, conservation)
        print(f"run {published['run_id']}: report {published['report']}")  # `tongban run` prints the summary
        return published

    @task
    def feedback(run: dict, intakes: list[dict], transformed: dict):
        from tongban import pipeline

        return pipeline.feedback(run, intakes[:], transformed)

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


tongban_regional()
