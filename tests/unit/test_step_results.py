"""tongban.steps.results: each step's typed result and its plain (XCom, run record) form, which
must keep the shape the run records and the DAG's XCom had before the steps were typed."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from tongban.steps.intake.land import IntakeResult
from tongban.steps.results import (Conservation, GateResult, Gated, Landed, Run, Transformed)

RUN = {"run_id": "20261204T000000Z-abcdef", "started_at": "2026-12-04T00:00:00+00:00",
       "entities": ["birth_registration"],
       "sources": [{"source_id": "js", "entity": "birth_registration", "province_code": "32"}],
       "standard_versions": {"birth_registration": "2.0.0"},
       "pii": {"birth_registration": {"mother_name": "name"}}}
LANDED = {**IntakeResult(source_id="js", entity="birth_registration", province_code="32",
                         delivery_file="/in/js/births.csv", status="landed", rows_delivered=3,
                         delivery_sha256="ab" * 32, raw_path="/raw/js/birth_registration.parquet",
                         mapping_version="1.1.0", parts=[{"file": "/in/js/births.csv", "rows": 3}]).to_dict()}
TRANSFORMED = {"success": True, "dbt_nodes": 12, "counts": {"birth_registration": {"js": {
    "rows_transformed": 3, "rows_passed": 2, "rows_rejected": 1, "top_reasons": [], "unmapped": [],
    "held_back": [], "crosswalk_versions": []}}}, "warehouse": "/b/warehouse.duckdb",
    "marts": {"births_by_month_division": {"relation": "marts.births_by_month_division",
                                           "entities": ["birth_registration"]}},
    "reused_checked": [], "unchanged_entities": [], "full_refresh": False,
    "entity_fingerprints": {"birth_registration": "f" * 64}, "engine": "duckdb"}
GATE = {"success": True, "blocking_failures": [], "warnings": ["w"], "evaluated": 30, "docs_index": "/b/gx/index.html"}


def _json(data) -> dict:
    return json.loads(json.dumps(data))


def test_each_result_comes_back_as_it_went():
    for cls, data in [(Run, RUN), (Landed, LANDED), (Transformed, TRANSFORMED),
                      (Gated, {"success": True, "entities": {"birth_registration": GATE}}),
                      (Conservation, {"ok": True, "per_delivery": {"js/birth_registration": {
                          "delivered": None, "harmonized": 0, "quarantined": None}}})]:
        typed = cls.from_xcom(_json(data))
        assert isinstance(typed, cls)
        assert typed.to_xcom() == data, cls.__name__
        assert _json(typed.to_xcom()) == data  # plain JSON all the way down


def test_nested_results_are_typed():
    run = Run.from_xcom(RUN)
    assert run.sources[0].province_code == "32"
    gated = Gated.from_xcom({"success": True, "entities": {"birth_registration": GATE}})
    assert gated.entities["birth_registration"].docs_index == Path("/b/gx/index.html")
    assert Transformed.from_xcom(TRANSFORMED).marts["births_by_month_division"].entities == ["birth_registration"]


def test_optional_markers_appear_only_when_set():
    """A gate result says reused_from_run, and an intake reused, only when it was (the run record's shape)."""
    assert "reused_from_run" not in GateResult.from_xcom(GATE).to_xcom()
    assert GateResult.from_xcom({**GATE, "reused_from_run": "r1"}).to_xcom()["reused_from_run"] == "r1"
    assert set(Landed.from_xcom(LANDED).to_xcom()) == set(LANDED)
    reused = Landed.from_xcom({**LANDED, "reused": True, "landed_run_id": "r0"}).to_xcom()
    assert (reused["reused"], reused["landed_run_id"]) == (True, "r0")


def test_a_landed_delivery_carries_every_field_intake_returns():
    """Landed is intake's own result (plus whether it was reused): a field intake adds travels too."""
    assert {f.name for f in fields(IntakeResult)} <= {f.name for f in fields(Landed)}
