"""Harmonize: the landed deliveries through dbt (staging, mapping, row rules, harmonized tables,
marts), in process, once per run.

``import dbt.cli.main`` alone takes ~5 s here, so it is imported inside ``run_dbt`` and one
``dbt build`` covers every model, seed and data test of the run (DESIGN: one dbt invocation
per run). ``transform`` builds only what changed (tongban.steps.incremental); ``build_checked``
builds some deliveries' checked tables early, while intake still reads the others.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tongban.common.config import DUCKDB_MEMORY_ENV, Settings, duckdb_memory_limit, quiet_third_parties
from tongban.common.reference import load_reference
from tongban.common.sqlquote import quote_ident
from tongban.steps import gate_worker
from tongban.steps.incremental import (checked_fingerprints, definitions_fingerprint, entity_fingerprints,
                                       forget_fingerprints, record_fingerprints, staging_for, unchanged_models)
from tongban.steps.intake.staging import _bytes
from tongban.steps.loaded import standards
from tongban.steps.results import Landed, Mart, Run, Transformed


class TransformError(RuntimeError):
    """The dbt build failed (the message names the models and their files)."""

    exit_code = 5


@dataclass
class DbtOutcome:
    success: bool
    failures: list[str] = field(default_factory=list)
    nodes: int = 0


def dbt_env(warehouse: Path, raw_dir: Path, build_dir: Path, memory_limit: str | None = None,
            dbt_dir: str = "dbt") -> dict[str, str]:
    """``dbt_dir``: the folder of the build directory with the project's target and logs
    (``dbt``; the Spark engine's ``dbt-spark``)."""
    return {
        "TONGBAN_WAREHOUSE": str(warehouse),
        "TONGBAN_RAW_DIR": str(raw_dir),
        "TONGBAN_DUCKDB_MEMORY_LIMIT": memory_limit or duckdb_memory_limit(),
        "DBT_TARGET_PATH": str(build_dir / dbt_dir / "target"),
        "DBT_LOG_PATH": str(build_dir / dbt_dir / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }


def run_dbt(project_dir: Path, *, warehouse: Path, raw_dir: Path, build_dir: Path,
            args: list[str] | None = None, memory_limit: str | None = None, dbt_dir: str = "dbt") -> DbtOutcome:
    """``memory_limit``: DuckDB's for this invocation only (default: tongban's); ``dbt_dir``: see
    :func:`dbt_env`."""

    before = os.environ.get(DUCKDB_MEMORY_ENV)
    os.environ.update(dbt_env(warehouse, raw_dir, build_dir, memory_limit, dbt_dir))
    try:
        return _invoke(project_dir, args)
    finally:  # the profile reads it from the environment; later invocations get tongban's own
        if before is None:
            os.environ.pop(DUCKDB_MEMORY_ENV, None)
        else:
            os.environ[DUCKDB_MEMORY_ENV] = before


def _invoke(project_dir: Path, args: list[str] | None) -> DbtOutcome:
    from dbt.cli.main import dbtRunner  # dbt is heavy (~1 s): imported only when dbt runs

    cli = args or ["build"]
    result = dbtRunner().invoke([*cli, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
                                 "--quiet", "--no-use-colors"])
    _release_duckdb()
    failures = []
    nodes = 0
    for res in result.result or []:
        nodes += 1
        status = str(getattr(res, "status", ""))
        if status not in ("success", "pass", "skipped", "RunStatus.Success", "TestStatus.Pass"):
            node = getattr(res, "node", None)
            where = f" ({node.original_file_path})" if getattr(node, "original_file_path", None) else ""
            failures.append(f"{getattr(node, 'unique_id', '?')}{where}: {status}: "
                            f"{_without_values((res.message or '').strip())[:500]}")
    if result.exception is not None:
        failures.append(f"dbt: {_without_values(str(result.exception))[:500]}")
    return DbtOutcome(success=bool(result.success) and not failures, failures=failures, nodes=nodes)


_QUOTED = re.compile(r"'(?:[^']|'')*'")


def _without_values(message: str) -> str:
    """A dbt or DuckDB error with its single-quoted literals blanked out: DuckDB quotes the value it
    could not convert, and a delivery's values must not reach a message (they may be personal)."""
    return _QUOTED.sub("'…'", message)


def _release_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB database open in the process after a run; later steps open the
    warehouse read-only, which DuckDB refuses while a read-write handle is alive."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager  # dbt is heavy (~1 s): imported only when dbt runs

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if env is not None:
        env.close()
    import gc

    gc.collect()


def source_counts(warehouse: Path, entity: str, warn_reasons: Sequence[str] = (),
                  absent: dict[str, list[str]] | None = None) -> dict[str, dict[str, Any]]:
    """Per source: rows seen by dbt, rows that passed, rows rejected, top reasons, unmapped values;
    the rows that passed with a warning of a warn rule (``warn_reasons``: a count per rule, and
    ``rows_warned``), and per field absent by decision (``absent``: source -> fields) the rows
    that passed with ``unknown`` for it."""

    int_rel = f"intermediate.{quote_ident(f'int_{entity}__unioned')}"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out: dict[str, dict[str, Any]] = {}
        # two scans of the entity's rows: the counts, then the few rows with a reason or a note
        # (the queries below read only those)
        for source_id, total, passed, versions in con.execute(
                f"select source_id, count(*), count(*) filter (where len(reasons) = 0), "
                f"list_sort(list(distinct crosswalk_version)) from {int_rel} group by 1 order by 1").fetchall():
            out[source_id] = {"rows_transformed": total, "rows_passed": passed, "rows_rejected": total - passed,
                              "top_reasons": [], "unmapped": [], "held_back": [],
                              "crosswalk_versions": [v for v in versions if v is not None],
                              "warnings": [], "rows_warned": 0,
                              "absent": [{"reason": "absent_by_decision", "field": f, "rows": passed,
                                          "severity": "absent"} for f in (absent or {}).get(source_id, [])]}
        con.execute(f"create temp table issues as select source_id, reasons, note_issues from {int_rel} "
                    f"where len(reasons) > 0 or len(note_issues) > 0")
        for source_id, reason, fld, n in con.execute(
                "select source_id, r.reason, r.field, count(*) as n from "
                "(select source_id, unnest(reasons) as r from issues) group by all "
                "order by source_id, n desc, r.reason, r.field").fetchall():
            out[source_id]["top_reasons"].append({"reason": reason, "field": fld, "rows": n})
        _warning_counts(con, out, warn_reasons)
        # values no crosswalk maps, and values only a proposed (not yet approved) entry maps
        for reason, key, policies in [("unmapped_code", "unmapped", ("quarantine", "unknown")),
                                      ("mapping_not_approved", "held_back", ("quarantine", "used, noted"))]:
            for source_id, fld, value, n, blocking in con.execute(
                    "select source_id, r.field, r.value, count(*) as n, bool_or(blocking) from ("
                    "  select source_id, unnest(reasons) as r, true as blocking from issues "
                    "  union all select source_id, unnest(note_issues) as r, false from issues) "
                    "where r.reason = ? group by all order by source_id, n desc, r.value", [reason]).fetchall():
                out[source_id][key].append({"field": fld, "value": value, "rows": n,
                                            "policy": policies[0] if blocking else policies[1]})
        for c in out.values():  # what the run record adds to top_reasons, marked by its severity
            c["notes"] = c["warnings"] + ([{"reason": "published_with_warnings", "field": None,
                                            "rows": c["rows_warned"], "severity": "warn"}] if c["rows_warned"] else []) \
                + c["absent"]
        return out
    finally:
        con.close()


def _warning_counts(con: Any, out: dict[str, dict[str, Any]], warn_reasons: Sequence[str]) -> None:
    """The rows a warn rule noted, a count per rule (every row of the delivery that breaks it), and
    the rows published with a warning (no reason held them back)."""
    if not warn_reasons:
        return
    reasons = list(warn_reasons)
    for source_id, reason, fld, n in con.execute(
            "select source_id, r.reason, r.field, count(*) as n from "
            "(select source_id, unnest(note_issues) as r from issues) "
            "where list_contains(?, r.reason) group by all order by source_id, n desc, r.reason", [reasons]).fetchall():
        out[source_id]["warnings"].append({"reason": reason, "field": fld, "rows": n, "severity": "warn"})
    for source_id, n in con.execute(
            "select source_id, count(*) from issues where len(reasons) = 0 and "
            "list_has_any(list_transform(note_issues, lambda r: r.reason), ?) group by 1", [reasons]).fetchall():
        out[source_id]["rows_warned"] = n


#: DuckDB's memory for the checked tables built during intake (at most tongban's own limit). The six
#: tables of the 10M benchmark's DuckDB lane, one at a time, on a quiet machine: 106.7 s and 1,273 MiB
#: RSS with 1GB, 102.2 s and 785 MiB with 512MB, 117 s with 384MB; two at a time, 256MB ran out.
EARLY_MEMORY_LIMIT = "512MB"


def early_memory_limit() -> str:
    own = duckdb_memory_limit()
    early, limit = _bytes(EARLY_MEMORY_LIMIT), _bytes(own)
    return own if early is None or (limit is not None and limit < early) else EARLY_MEMORY_LIMIT


def _run_dbt(s: Settings, args: list[str], memory_limit: str | None = None) -> DbtOutcome:
    return run_dbt(s.dbt_project_dir, warehouse=s.warehouse_path, raw_dir=s.raw_dir, build_dir=s.build_dir,
                   args=args, memory_limit=memory_limit)


def build_checked(s: Settings, run: Run, intakes: list[Landed], *,
                  spare_until: threading.Event | None = None) -> list[str]:
    """Build the checked tables (staging + mapping + row rules, with their data tests) of these
    landed deliveries now, in one ``dbt build``, and record their fingerprints, so that the run's
    ``transform`` finds them up to date. Returns the models built.

    With ``spare_until``, DuckDB keeps to the spare cores until that event is set (intake's XLSX
    lane holds the other core), then takes them all. It builds one table at a time within
    ``EARLY_MEMORY_LIMIT``: it runs beside the XLSX reader's sheet, the largest thing in a run's
    memory. A failure records nothing: ``transform`` builds those tables again and reports what
    failed. Spark builds every table in ``transform`` (tongban.steps.spark_engine): nothing early."""
    quiet_third_parties()
    s.build_dir.mkdir(parents=True, exist_ok=True)
    landed = [i for i in intakes if i.status == "landed" and i.raw_path]
    if not landed or s.engine != "duckdb":
        return []
    load_reference_tables(s)
    fingerprints = checked_fingerprints(s.dbt_project_dir, s.reference_dir, standards(s),
                                        [i.to_xcom() for i in landed])
    unchanged = set(unchanged_models(s.warehouse_path, fingerprints))
    todo = {model: fp for model, fp in fingerprints.items() if model not in unchanged}
    if not todo:
        return []
    with _spare_cores(s.warehouse_path, spare_until):
        outcome = _run_dbt(s, ["build", "--threads", "1", "--select", *(f"+{model}" for model in sorted(todo))],
                           memory_limit=early_memory_limit())
    if not outcome.success:
        return []
    record_fingerprints(s.warehouse_path, todo, run.run_id)
    return sorted(todo)


class _spare_cores:
    """DuckDB on all but one core until ``until`` is set. DuckDB's threads are the database's, not
    a connection's: this handle shares dbt's database (one instance per file and process) and
    sets them for it."""

    def __init__(self, warehouse: Path, until: threading.Event | None):
        self.warehouse, self.until = warehouse, until
        self.lock, self.finished = threading.Lock(), threading.Event()

    def _set(self, n: int) -> None:
        with self.lock:
            if not self.finished.is_set():
                self.con.cursor().execute(f"set threads = {int(n)}")

    def __enter__(self):
        import duckdb  # heavy enough to keep lazy (the DAG file imports this module's callers)

        self.con = duckdb.connect(str(self.warehouse))
        if self.until is not None and not self.until.is_set():
            self._set(max(1, (os.cpu_count() or 1) - 1))

            def restore() -> None:
                self.until.wait()
                self._set(os.cpu_count() or 1)

            threading.Thread(target=restore, name="tongban-threads", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.finished.set()
            self.con.execute("reset threads")
            self.con.close()


def transform(s: Settings, run: Run, intakes: list[Landed]) -> Transformed:
    """dbt builds what changed since the last run: a delivery's checked table only when something
    it is built from changed (or not at all when ``build_checked`` built it in this run), an
    entity's harmonized tables and marts only when one of its checked tables (or a model, test or
    macro) changed; the marts to publish are read from the manifest of the last build, so without
    one everything is built."""
    quiet_third_parties()
    s.build_dir.mkdir(parents=True, exist_ok=True)
    load_reference_tables(s)
    plain = [i.to_xcom() for i in intakes]
    fingerprints = checked_fingerprints(s.dbt_project_dir, s.reference_dir, standards(s), plain)
    unchanged = unchanged_models(s.warehouse_path, fingerprints)
    entity_fps = entity_fingerprints(s.dbt_project_dir, fingerprints, run.entities)
    same = {k.removeprefix("harmonized.") for k in unchanged_models(s.warehouse_path, entity_fps)} \
        if (s.build_dir / "dbt" / "target" / "manifest.json").is_file() else set()
    build = [e for e in run.entities if e not in same]
    # the harmonized tables are rebuilt source by source while the models, tests and macros are the
    # ones they were last built with; any change to those rebuilds them whole
    definitions = definitions_fingerprint(s.dbt_project_dir)
    full_refresh = not unchanged_models(s.warehouse_path, definitions, tables=False)
    nodes = _build(s, build, unchanged, full_refresh) if build else 0
    record_fingerprints(s.warehouse_path, {**fingerprints, **entity_fps, **(definitions if build else {})},
                        run.run_id)
    return Transformed(success=True, dbt_nodes=nodes,
                       counts={e: entity_counts(s, e) for e in run.entities},
                       warehouse=str(s.warehouse_path), marts=published_marts(s, run.entities),
                       reused_checked=unchanged, unchanged_entities=sorted(same),
                       full_refresh=bool(build) and full_refresh,
                       entity_fingerprints={k.removeprefix("harmonized."): fp for k, fp in entity_fps.items()})


def entity_counts(s: Settings, entity: str) -> dict[str, dict[str, Any]]:
    std = standards(s)
    ent = std.entities[entity]
    warn = [r.reason for r in ent.rules if getattr(r, "severity", None) == "warn"]
    absent = {m.source_id: m.absent_by_decision() for m in std.mappings_for(entity)}
    return source_counts(s.warehouse_path, entity, warn, absent)


def _build(s: Settings, entities: list[str], unchanged: list[str], full_refresh: bool) -> int:
    """One ``dbt build`` of the lineage of ``entities`` (staging -> checked -> duplicates, unioned ->
    harmonized/rejections -> marts), without the checked tables (and their staging) that are up to date."""
    gate_worker.prepare()  # the gate's GX import, on the other core while dbt builds
    select = [f"+int_{e}__unioned+" for e in entities]
    exclude = ["--exclude", *unchanged, *(staging_for(m) for m in unchanged)] if unchanged else []
    outcome = _run_dbt(s, ["build", "--select", *select, *exclude, *(["--full-refresh"] if full_refresh else [])])
    if not outcome.success:
        gate_worker.discard()
        forget_fingerprints(s.warehouse_path)
        raise TransformError(f"dbt build failed in {len(outcome.failures)} node(s) — the models are generated "
                             "from standards/: run `tongban standards check`, then `tongban generate`:\n"
                             + "\n".join(outcome.failures))
    return outcome.nodes


def load_reference_tables(s: Settings) -> None:
    """GB/T 2260 / GB/T 4754 reference tables into the warehouse's `reference` schema (read from
    TONGBAN_REFERENCE_DIR, never copied into the repo); the validator macros and marts read them."""
    import duckdb  # heavy enough to keep lazy

    con = duckdb.connect(str(s.warehouse_path))
    try:
        load_reference(con, s.reference_dir)
    finally:
        con.close()


def published_marts(s: Settings, entities: list[str], dbt_dir: str = "dbt") -> dict[str, Mart]:
    """Marts to publish (dbt models with meta.publish), from the manifest of the dbt run: name ->
    {relation, entities}. Only marts all of whose entities ran."""
    manifest = json.loads((s.build_dir / dbt_dir / "target" / "manifest.json").read_text(encoding="utf-8"))
    marts = {}
    for node in manifest["nodes"].values():
        meta = node.get("config", {}).get("meta", {}) or {}
        if node.get("resource_type") != "model" or not meta.get("publish"):
            continue
        needs = list(meta.get("entities") or [])
        if needs and all(e in entities for e in needs):
            marts[node["name"]] = Mart(relation=f"{node['schema']}.{node['name']}", entities=needs)
    return dict(sorted(marts.items()))
