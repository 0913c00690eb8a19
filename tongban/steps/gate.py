"""Gate: every entity of the run through its quality gate (GX on DuckDB, tongban.steps.gx_gate),
on its harmonized table and the suite generated with the run's dbt project.

An entity transform did not build again is the table already validated under the same suite: its
recorded result is reused (tongban.steps.incremental). The others are validated by the GX worker
transform started (tongban.steps.gate_worker), whose import of GX ran beside dbt, or here.
"""

from __future__ import annotations

from tongban.common.config import Settings
from tongban.steps import gate_worker
from tongban.steps.gx_gate import (VALUE_REVEALING_EXPECTATIONS, SuiteFileError, _build_suite, load_suite_dict,
                                   run_gate)
from tongban.steps.incremental import gate_fingerprint, record_gate, reusable_gate
from tongban.steps.results import Gated, GateResult, Run, Transformed

# what tests and the benchmark import from here
__all__ = ["VALUE_REVEALING_EXPECTATIONS", "GateResult", "SuiteFileError", "_build_suite", "gate",
           "load_suite_dict", "run_gate"]


def gate(s: Settings, run: Run, transformed: Transformed) -> Gated:
    results: dict[str, GateResult] = {}
    fingerprints = transformed.entity_fingerprints
    worker = gate_worker.take()
    try:
        for entity in run.entities:
            suite = s.gate_suites_dir / f"{entity}.json"
            fp = gate_fingerprint(fingerprints[entity], suite) if entity in fingerprints and suite.is_file() else None
            if fp is not None and entity in transformed.unchanged_entities:
                reused = reusable_gate(s.build_dir, entity, fp)
                if reused is not None:
                    results[entity] = GateResult.from_xcom(reused)
                    continue
            job = {"warehouse_path": s.warehouse_path, "schema": "harmonized", "table": entity,
                   "suite_path": suite, "gx_dir": s.gx_dir, "run_id": run.run_id}
            result = worker.run_gate(**job) if worker is not None else None
            results[entity] = result if result is not None else run_gate(**job)
            if fp is not None:
                record_gate(s.build_dir, entity, fp, results[entity].to_xcom(), run.run_id)
    finally:
        if worker is not None:
            worker.close()
    return Gated(success=all(r.success for r in results.values()), entities=results)
