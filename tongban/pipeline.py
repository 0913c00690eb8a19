"""The steps of a run, in order. The Airflow DAG and the CLI both call these.

Every argument and result is a JSON-serialisable dict (they travel through XCom). Heavy
libraries (dbt, GX, pandera) are imported inside the steps, never at module import.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tongban import exchange
from tongban.exchange import integrity
from tongban.common.config import Settings, quiet_third_parties, settings
from tongban.standards.generate import load_checked
from tongban.standards.generate import scratch_project, write_generated
from tongban.steps.intake.land import land
from tongban.steps.incremental import record_intake, reusable_intake
from tongban.steps.intake.readers import _SUFFIX_FORMATS
from tongban.steps.intake.staging import limit_threads
from tongban.steps.intake.staging import _bytes
from tongban.common.config import duckdb_memory_limit
from tongban.steps.harmonize import run_dbt
from tongban.steps.incremental import checked_fingerprints, record_fingerprints, unchanged_models
from tongban.steps.harmonize import TransformError, source_counts
from tongban.steps.incremental import (definitions_fingerprint, entity_fingerprints,
                                 forget_fingerprints, staging_for)
from tongban.common.reference import load_reference
from tongban.steps.gate import run_gate
from tongban.steps.incremental import gate_fingerprint, record_gate, reusable_gate
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.common.pii import pseudonym_key
from tongban.standards.targets.dictionary import build_dictionary, write_dictionary
from tongban.committee.coverage import coverage
from tongban.steps.feedback import write_feedback


class UsageError(ValueError):
    """The command asked for something the standards do not have."""

    exit_code = 1


class ConservationError(RuntimeError):
    """Rows delivered != rows published + rows quarantined for some delivery."""

    exit_code = 5


#: the last step that failed, for `tongban run` to name when the DAG (whose tasks log their own
#: tracebacks) ends failed: {"run_id", "step", "error", "message", "at"}
LAST_FAILURE = "last-failure.json"


def records_failure(step):
    """A step that, failing, writes what failed to ``build/runs/last-failure.json`` and re-raises."""
    import functools

    @functools.wraps(step)
    def wrapper(*args, **kwargs):
        try:
            return step(*args, **kwargs)
        except Exception as exc:
            run = args[0] if args and isinstance(args[0], dict) else {}
            runs = settings().build_dir / "runs"
            runs.mkdir(parents=True, exist_ok=True)
            (runs / LAST_FAILURE).write_text(json.dumps(
                {"run_id": run.get("run_id"), "step": step.__name__, "error": type(exc).__name__,
                 "message": str(exc), "at": _now()}, ensure_ascii=False), encoding="utf-8")
            raise

    return wrapper


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_standards_lock = threading.Lock()
_standards_memo: dict[tuple, Any] = {}


def _tree_stamp(root: Path) -> tuple:
    """Every file under ``root`` with its size and mtime: a changed standard changes the stamp."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            out.append((dirpath, name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _standards(s: Settings):
    """The checked standards, loaded once per process while ``standards/`` is unchanged (loading
    and checking them takes ~1 s, and an in-process run asks at every step)."""

    key = (str(s.standards_dir), _tree_stamp(s.standards_dir))
    with _standards_lock:
        std = _standards_memo.get(key)
        if std is None:
            std = load_checked(s.standards_dir)
            _standards_memo.clear()
            _standards_memo[key] = std
        return std


@records_failure
def start_run(entities: list[str] | None = None) -> dict[str, Any]:
    """Check the standards, regenerate what derives from them, and name the run."""
    quiet_third_parties()

    s = settings()
    # whatever a killed run left in the exchange (never committed) goes before anything reads it
    integrity.recover(s.exchange_dir)
    std = _standards(s)
    if s.uses_repo_standards:
        write_generated(std, s.project_root)  # models + suites in the repo; the gate reads s.expectations_dir
    else:  # other standards get a project of their own; the repository is left alone
        scratch_project(std, s.project_root, s.dbt_project_dir)
    wanted = entities or sorted({m.entity for m in std.mappings})
    unknown = [e for e in wanted if e not in std.entities]
    if unknown:
        raise UsageError(f"unknown entit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}; "
                         f"the standard defines {', '.join(sorted(std.entities))} (tongban run --entity NAME)")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    sources = [{"source_id": m.source_id, "entity": m.entity, "province_code": m.province_code}
               for e in wanted for m in std.mappings_for(e)]
    return {"run_id": run_id, "started_at": _now(), "entities": wanted, "sources": sources,
            "standard_versions": {e: std.entities[e].version for e in wanted},
            "pii": {e: std.entities[e].pii for e in wanted}}


@records_failure
def intake(run: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    quiet_third_parties()


    s = settings()
    std = _standards(s)
    m = std.mapping(source["source_id"], source["entity"])
    entity = std.entities[m.entity]
    # a delivery recognised by its sha256 (same parts, same mapping) is not read or landed again
    reused = reusable_intake(m, entity, inbox_dirs=s.inbox_dirs, raw_dir=s.raw_dir)
    if reused is not None:
        return reused
    result = land(m, inbox_dirs=s.inbox_dirs, raw_dir=s.raw_dir, run_id=run["run_id"], entity=entity).to_dict()
    record_intake(result, m, entity, raw_dir=s.raw_dir, run_id=run["run_id"])
    return result


#: threads for the intake of an in-process run (TONGBAN_INTAKE_WORKERS; 1 = one delivery after another)
INTAKE_WORKERS_ENV = "TONGBAN_INTAKE_WORKERS"
#: `tongban run` builds checked tables during intake (intake_all(check_early=)) unless this is 0
CHECK_EARLY_ENV = "TONGBAN_CHECK_EARLY"


def check_early_enabled() -> bool:
    return os.environ.get(CHECK_EARLY_ENV, "1").strip() != "0"


def _reads_in_python(m) -> bool:
    """Whether intake reads this delivery in Python (XLSX through python-calamine), holding the
    interpreter, rather than in DuckDB, which works outside it. The format as the readers
    resolve it: declared, else by the file's suffix."""

    return (m.delivery.format or _SUFFIX_FORMATS.get(Path(m.delivery.file).suffix.lower())) == "xlsx"


def intake_all(run: dict[str, Any], *, workers: int | None = None, on_done=None,
               check_early: bool = False, on_checked=None) -> list[dict[str, Any]]:
    """Every delivery's intake, results in ``run["sources"]`` order, as the DAG's mapped intake
    tasks would run them side by side. With two or more workers there are two lanes: the
    deliveries read in Python (XLSX) one after another in one thread, the deliveries DuckDB reads
    in the other. Two XLSX deliveries at once would only take turns on the interpreter and hold
    two sheets in memory; one lane each keeps both cores busy. ``on_done(source, seconds)`` is
    called as each finishes.

    ``check_early``: when the DuckDB lane is done while the XLSX lane still reads, it goes on to
    build its deliveries' checked tables (``build_checked``), as the DAG's per-delivery tasks
    would, instead of leaving its core idle; ``transform`` then finds them up to date by their
    fingerprints and does not build them again; ``on_checked(models, seconds)`` is called after."""
    import time

    if workers is None:
        workers = int(os.environ.get(INTAKE_WORKERS_ENV) or min(2, os.cpu_count() or 1))
    sources = run["sources"]

    def one(src: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = intake(run, src)
        if on_done is not None:
            on_done(src, time.perf_counter() - t0)
        return result

    if workers <= 1 or len(sources) <= 1:
        return [one(src) for src in sources]
    std = _standards(settings())
    python_lane = [i for i, src in enumerate(sources)
                   if _reads_in_python(std.mapping(src["source_id"], src["entity"]))]
    duckdb_lane = [i for i in range(len(sources)) if i not in python_lane]
    results: list[dict[str, Any] | None] = [None] * len(sources)

    # while the XLSX lane runs, DuckDB's lane keeps to the other cores (python-calamine's thread
    # holds one core; DuckDB's threads competing for it would slow the longer lane down)
    python_running = threading.Event()
    python_done = threading.Event()
    spare = max(1, (os.cpu_count() or 1) - 1)

    def lane(indices: list[int], is_python: bool) -> None:
        if not is_python:
            limit_threads(lambda: spare if python_running.is_set() else None)
        try:
            for i in indices:
                results[i] = one(sources[i])
        finally:
            if is_python:
                python_running.clear()
                python_done.set()
            else:
                limit_threads(None)
        if check_early and not is_python and python_running.is_set():
            t0 = time.perf_counter()
            built = build_checked(run, [results[i] for i in indices], spare_until=python_done)
            if on_checked is not None:
                on_checked(built, time.perf_counter() - t0)

    if python_lane:
        python_running.set()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tongban-intake") as pool:
        futures = [pool.submit(lane, idx, is_python) for idx, is_python in ((python_lane, True), (duckdb_lane, False))
                   if idx]
        for f in futures:
            f.result()  # the first error, after both lanes stopped
    return [r for r in results if r is not None]


#: DuckDB's memory for the checked tables built during intake (at most tongban's own limit). The six
#: tables of the 10M benchmark's DuckDB lane, one at a time, on a quiet machine: 106.7 s and 1,273 MiB
#: RSS with 1GB, 102.2 s and 785 MiB with 512MB, 117 s with 384MB; two at a time, 256MB ran out.
EARLY_MEMORY_LIMIT = "512MB"


def _early_memory_limit() -> str:


    own = duckdb_memory_limit()
    early, limit = _bytes(EARLY_MEMORY_LIMIT), _bytes(own)
    return own if early is None or (limit is not None and limit < early) else EARLY_MEMORY_LIMIT


def build_checked(run: dict[str, Any], intakes: list[dict[str, Any]], *,
                  spare_until: threading.Event | None = None) -> list[str]:
    """Build the checked tables (staging + mapping + row rules, with their data tests) of these
    landed deliveries now, in one ``dbt build``, and record their fingerprints, so that the run's
    ``transform`` finds them up to date. Returns the models built.

    With ``spare_until``, DuckDB keeps to the spare cores until that event is set (intake's XLSX
    lane holds the other core), then takes them all. It builds one table at a time within
    ``EARLY_MEMORY_LIMIT``: it runs beside python-calamine's sheet, the largest thing in a run's
    memory. A failure records nothing: ``transform`` builds those tables again and reports what
    failed."""
    quiet_third_parties()
    import duckdb



    s = settings()
    s.build_dir.mkdir(parents=True, exist_ok=True)
    landed = [i for i in intakes if i.get("status") == "landed" and i.get("raw_path")]
    if not landed:
        return []
    _load_reference(s)
    fingerprints = checked_fingerprints(s.dbt_project_dir, s.reference_dir, _standards(s), landed)
    unchanged = set(unchanged_models(s.warehouse_path, fingerprints))
    todo = {model: fp for model, fp in fingerprints.items() if model not in unchanged}
    if not todo:
        return []
    # DuckDB's threads are the database's, not a connection's: this handle shares dbt's database
    # (one instance per file and process) and sets them for it
    con = duckdb.connect(str(s.warehouse_path))
    lock = threading.Lock()
    finished = threading.Event()

    def set_threads(n: int) -> None:
        with lock:
            if not finished.is_set():
                con.cursor().execute(f"set threads = {int(n)}")

    watcher = None
    if spare_until is not None and not spare_until.is_set():
        set_threads(max(1, (os.cpu_count() or 1) - 1))

        def restore() -> None:
            spare_until.wait()
            set_threads(os.cpu_count() or 1)

        watcher = threading.Thread(target=restore, name="tongban-threads", daemon=True)
        watcher.start()
    try:
        outcome = run_dbt(s.dbt_project_dir, warehouse=s.warehouse_path, raw_dir=s.raw_dir, build_dir=s.build_dir,
                          args=["build", "--threads", "1", "--select", *(f"+{model}" for model in sorted(todo))],
                          memory_limit=_early_memory_limit())
    finally:
        with lock:
            finished.set()
            con.execute("reset threads")
            con.close()
    if not outcome.success:
        return []
    record_fingerprints(s.warehouse_path, todo, run["run_id"])
    return sorted(todo)


@records_failure
def transform(run: dict[str, Any], intakes: list[dict[str, Any]]) -> dict[str, Any]:
    quiet_third_parties()


    s = settings()
    s.build_dir.mkdir(parents=True, exist_ok=True)
    _load_reference(s)
    # a delivery's checked table is rebuilt only when something it is built from changed (or was
    # built already in this run, during intake: build_checked)
    fingerprints = checked_fingerprints(s.dbt_project_dir, s.reference_dir, _standards(s), intakes)
    unchanged = unchanged_models(s.warehouse_path, fingerprints)
    skipped = [staging_for(model) for model in unchanged]
    # an entity none of whose checked tables changed, under the same models and tests, is not built
    # again (nor, then, gated or published again: gate, publish); the marts to publish are read from
    # the manifest of the last build, so without one everything is built
    entity_fps = entity_fingerprints(s.dbt_project_dir, fingerprints, run["entities"])
    same = {k.removeprefix("harmonized.") for k in unchanged_models(s.warehouse_path, entity_fps)} \
        if (s.build_dir / "dbt" / "target" / "manifest.json").is_file() else set()
    build = [e for e in run["entities"] if e not in same]
    # the harmonized tables are rebuilt source by source while the models, tests and macros are the
    # ones they were last built with; any change to those rebuilds them whole
    definitions = definitions_fingerprint(s.dbt_project_dir)
    full_refresh = not unchanged_models(s.warehouse_path, definitions, tables=False)
    nodes = 0
    if build:
        # only the lineage of the entities to build: staging -> checked -> duplicates, unioned ->
        # harmonized/rejections -> marts
        select = [f"+int_{e}__unioned+" for e in build]
        exclude = ["--exclude", *unchanged, *skipped] if unchanged else []
        outcome = run_dbt(s.dbt_project_dir, warehouse=s.warehouse_path, raw_dir=s.raw_dir, build_dir=s.build_dir,
                          args=["build", "--select", *select, *exclude, *(["--full-refresh"] if full_refresh else [])])
        if not outcome.success:
            forget_fingerprints(s.warehouse_path)
            raise TransformError(f"dbt build failed in {len(outcome.failures)} node(s) — the models are generated "
                                 "from standards/: run `tongban standards check`, then `tongban generate`:\n"
                                 + "\n".join(outcome.failures))
        nodes = outcome.nodes
    record_fingerprints(s.warehouse_path, {**fingerprints, **entity_fps, **(definitions if build else {})},
                        run["run_id"])
    counts = {e: source_counts(s.warehouse_path, e) for e in run["entities"]}
    return {"success": True, "dbt_nodes": nodes, "counts": counts, "warehouse": str(s.warehouse_path),
            "marts": published_marts(s, run["entities"]), "reused_checked": unchanged,
            "unchanged_entities": sorted(same), "full_refresh": bool(build) and full_refresh,
            "entity_fingerprints": {k.removeprefix("harmonized."): fp for k, fp in entity_fps.items()}}


def _load_reference(s: Settings) -> None:
    """GB/T 2260 / GB/T 4754 reference tables into the warehouse's `reference` schema (read from
    TONGBAN_REFERENCE_DIR, never copied into the repo); the validator macros and marts read them."""
    import duckdb


    con = duckdb.connect(str(s.warehouse_path))
    try:
        load_reference(con, s.reference_dir)
    finally:
        con.close()


def published_marts(s: Settings, entities: list[str]) -> dict[str, dict[str, Any]]:
    """Marts to publish (dbt models with meta.publish), from the manifest of the dbt run: name ->
    {relation, entities}. Only marts all of whose entities ran."""
    manifest = json.loads((s.build_dir / "dbt" / "target" / "manifest.json").read_text(encoding="utf-8"))
    marts = {}
    for node in manifest["nodes"].values():
        meta = node.get("config", {}).get("meta", {}) or {}
        if node.get("resource_type") != "model" or not meta.get("publish"):
            continue
        needs = list(meta.get("entities") or [])
        if needs and all(e in entities for e in needs):
            marts[node["name"]] = {"relation": f"{node['schema']}.{node['name']}", "entities": needs}
    return dict(sorted(marts.items()))


@records_failure
def gate(run: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
    quiet_third_parties()


    s = settings()
    results = {}
    fingerprints = transformed.get("entity_fingerprints") or {}
    for entity in run["entities"]:
        suite = s.expectations_dir / f"{entity}.json"
        fp = gate_fingerprint(fingerprints[entity], suite) if entity in fingerprints and suite.is_file() else None
        # an entity transform did not build again is the table already validated under this suite
        if fp is not None and entity in transformed.get("unchanged_entities", ()):
            reused = reusable_gate(s.build_dir, entity, fp)
            if reused is not None:
                results[entity] = reused
                continue
        res = run_gate(warehouse_path=s.warehouse_path, schema="harmonized", table=entity,
                       suite_path=suite, gx_dir=s.gx_dir, run_id=run["run_id"])
        results[entity] = res.to_dict()
        if fp is not None:
            record_gate(s.build_dir, entity, fp, results[entity], run["run_id"])
    return {"success": all(r["success"] for r in results.values()), "entities": results}


@records_failure
def check_conservation(run: dict[str, Any], intakes: list[dict[str, Any]], transformed: dict[str, Any]) -> dict[str, Any]:
    """For every delivery: delivered = harmonized + quarantined, counted in the warehouse itself."""
    import duckdb


    s = settings()
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    per: dict[str, dict[str, Any]] = {}
    violations = []
    try:
        for i in intakes:
            entity, source_id = i["entity"], i["source_id"]
            key = f"{source_id}/{entity}"
            if i["status"] != "landed":
                per[key] = {"delivered": i["rows_delivered"], "harmonized": 0, "quarantined": i["rows_delivered"]}
                continue
            raw = con.execute(f"select count(*) from read_parquet({quote_literal(i['raw_path'])})").fetchone()[0]
            harmonized = con.execute(f"select count(*) from harmonized.{quote_ident(entity)} where source_id = ?",
                                     [source_id]).fetchone()[0]
            rejected = con.execute(f"select count(*) from harmonized.{quote_ident(entity + '__rejections')} "
                                   f"where source_id = ?", [source_id]).fetchone()[0]
            per[key] = {"delivered": i["rows_delivered"], "harmonized": harmonized, "quarantined": rejected}
            if not (i["rows_delivered"] == raw == harmonized + rejected):
                violations.append(f"{key}: delivered {i['rows_delivered']}, landed {raw}, "
                                  f"harmonized {harmonized} + quarantined {rejected} = {harmonized + rejected}")
    finally:
        con.close()
    if violations:
        raise ConservationError("conservation violated — rows were lost or invented:\n" + "\n".join(violations))
    return {"ok": True, "per_delivery": per}


@records_failure
def publish(run: dict[str, Any], intakes: list[dict[str, Any]], transformed: dict[str, Any],
            gate_result: dict[str, Any], conservation: dict[str, Any]) -> dict[str, Any]:
    """Publish the entities whose gate passed; record the run either way."""

    s = settings()
    snapshots: dict[str, dict[str, Any]] = {}
    passed = {e for e in run["entities"] if gate_result["entities"][e]["success"]}
    # nothing on disk is trusted: a part that no longer matches its manifest is named, and never
    # linked into a new snapshot. The entities published below are checked part by part by
    # publish_snapshot itself (its problems are added after); the others are checked here.
    exchange_problems = integrity.verify(s.exchange_dir, skip=passed)
    # a province whose delivery was rejected (or is missing) keeps its last good publication
    keep = {e: sorted(i["source_id"] for i in intakes if i["entity"] == e and i["status"] != "landed")
            for e in run["entities"]}
    pii_of = run.get("pii", {})
    key = pseudonym_key(s.build_dir) if any(pii_of.get(e) for e in passed) else None
    for entity in run["entities"]:
        if entity in passed:
            # personal data leaves the restricted warehouse only as pseudonym + masked form
            snap = exchange.publish_snapshot(s.exchange_dir, entity=entity, warehouse_path=s.warehouse_path,
                                             relation=f"harmonized.{entity}", run_id=run["run_id"],
                                             standard_version=run["standard_versions"][entity],
                                             pii=pii_of.get(entity) or None,
                                             pseudonym_key=key if pii_of.get(entity) else None,
                                             partition_by="source_id",
                                             # built from the same as last time: the same rows, unread
                                             content_key=transformed.get("entity_fingerprints", {}).get(entity),
                                             keep=keep[entity])
            snapshots[entity] = snap.to_dict()
            _crash_point(f"snapshot:{entity}")
    for mart, spec in transformed.get("marts", {}).items():
        if all(e in passed for e in spec["entities"]):
            snap = exchange.publish_snapshot(s.exchange_dir, entity=mart, warehouse_path=s.warehouse_path,
                                             relation=spec["relation"], run_id=run["run_id"],
                                             standard_version=run["standard_versions"][spec["entities"][0]])
            snapshots[mart] = snap.to_dict()
            _crash_point(f"snapshot:{mart}")
    exchange_problems += [p for snap in snapshots.values() for p in snap["problems"] if p not in exchange_problems]
    finished = _now()
    rows = []
    for i in intakes:
        entity, source_id = i["entity"], i["source_id"]
        g = gate_result["entities"][entity]
        counts = conservation["per_delivery"][f"{source_id}/{entity}"]
        tc = transformed["counts"].get(entity, {}).get(source_id, {})
        gate_ok = bool(g["success"])
        if i["status"] != "landed":
            status = i["status"]
        else:
            status = "published" if gate_ok else "gate_failed"
        kept = source_id in snapshots.get(entity, {}).get("kept", [])
        delivery_file = s.inbox_relative(i["delivery_file"])
        rows.append({
            "run_id": run["run_id"], "started_at": run["started_at"], "finished_at": finished,
            "entity": entity, "source_id": source_id, "province_code": i["province_code"],
            "delivery_file": delivery_file, "delivery_sha256": i["delivery_sha256"], "status": status,
            "rows_delivered": counts["delivered"],
            "rows_published": counts["harmonized"] if gate_ok and status == "published" else 0,
            "rows_quarantined": counts["quarantined"],
            "gate_success": gate_ok,
            "gate_summary": "; ".join(g["blocking_failures"]) or ("passed" if gate_ok else "failed"),
            "standard_version": run["standard_versions"][entity], "mapping_version": i["mapping_version"],
            "snapshot_version": snapshots.get(entity, {}).get("version"),
            "message": i["message"] or None,
            "top_reasons": json.dumps(tc.get("top_reasons", [])[:10], ensure_ascii=False),
            "kept_snapshot_version": snapshots[entity]["version"] if kept else None,
        })
    exchange.record_run(s.exchange_dir, run["run_id"], rows)
    _crash_point("recorded")
    dictionary = publish_dictionary(s, generated_at=finished, intakes=intakes,
                                    out_dir=s.exchange_dir / exchange.DICTIONARIES_DIR / run["run_id"])
    _crash_point("dictionary")
    # the one commit point: the new catalog names the new snapshots, this run's record and its
    # dictionary; a run killed before this line published nothing (integrity.recover removes it)
    exchange.rebuild_catalog(s.exchange_dir, dictionary=run["run_id"])
    _crash_point("catalog")
    integrity.link_dictionary(s.exchange_dir, run["run_id"])
    integrity.recover(s.exchange_dir)  # the dictionary this run replaced
    dictionary = s.exchange_dir / exchange.DICTIONARY_LINK / "index.html"
    report = {"run_id": run["run_id"], "finished_at": finished, "snapshots": snapshots, "deliveries": rows,
              "unmapped": {e: {sid: c.get("unmapped", []) for sid, c in transformed["counts"].get(e, {}).items()}
                           for e in run["entities"]},
              "held_back": _held_back(s, run, transformed),
              "crosswalk_versions": {e: {sid: c.get("crosswalk_versions", [])
                                         for sid, c in transformed["counts"].get(e, {}).items()}
                                     for e in run["entities"]},
              "gate": gate_result, "messages": [i["message"] for i in intakes if i["message"]],
              "exchange_problems": exchange_problems}
    runs_dir = s.build_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, ensure_ascii=False, indent=2, default=str)
    (runs_dir / f"{run['run_id']}.json").write_text(text, encoding="utf-8")
    (runs_dir / "latest.json").write_text(text, encoding="utf-8")
    return {"run_id": run["run_id"], "snapshots": snapshots, "report": str(runs_dir / f"{run['run_id']}.json"),
            "dictionary": str(dictionary)}


#: for the crash-consistency tests only: the process kills itself (SIGKILL, no clean-up at all) at
#: this point of publish, e.g. ``snapshot:birth_registration``, ``recorded``, ``dictionary``, ``catalog``
CRASH_AT_ENV = "TONGBAN_CRASH_AT"


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def publish_dictionary(s: Settings, *, generated_at: str | None = None, out_dir: Path | None = None,
                       read_inbox: bool = False, intakes: list[dict[str, Any]] | None = None) -> Path:
    """The bilingual data dictionary, with each source's coverage of its latest landed delivery,
    into ``exchange/dictionary/`` beside the data (replaced whole, never half written). ``intakes``:
    this run's, whose sha256 say which deliveries are the latest without hashing them again."""

    std = _standards(s)
    known = {(i["source_id"], i["entity"]): i["delivery_sha256"] for i in intakes or []
             if i.get("status") == "landed" and i.get("delivery_sha256")}
    # the counts of a delivery landed before are kept under its sha256 (build/state/coverage)
    files = build_dictionary(std, coverage(std, s, read_inbox=read_inbox, known_sha256=known,
                                           cache_dir=s.build_dir / "state" / "coverage"),
                             generated_at=generated_at)
    return write_dictionary(out_dir or s.exchange_dir / "dictionary", files)


def _held_back(s: Settings, run: dict[str, Any], transformed: dict[str, Any]) -> list[dict[str, Any]]:
    """The proposed crosswalk entries that held rows back (or were used unreviewed, on fields that
    do not block), each with its file and line: what the committee must review."""
    std = _standards(s)
    out = []
    for entity in run["entities"]:
        ent = std.entities[entity]
        for source_id, counts in sorted(transformed["counts"].get(entity, {}).items()):
            m = std.mapping(source_id, entity)
            for h in counts.get("held_back", []):
                fm = m.fields.get(h["field"])
                code_list = ent.field(h["field"]).code_list if h["field"] in [f.name for f in ent.fields] else None
                cw = std.crosswalks.get((source_id, code_list)) if code_list and fm else None
                entries = [e for e in (cw.entries if cw else []) if e.status == "proposed"]
                values = _list_values(h["value"])
                hit = [e for e in entries if e.source_value in values]
                out.append({"entity": entity, "source_id": source_id, "field": h["field"], "value": h["value"],
                            "rows": h["rows"], "policy": h["policy"],
                            "entries": [{"file": cw.path, "line": e.line, "source_value": e.source_value,
                                         "target_code": e.target_code, "author": e.author} for e in hit]})
    return out


def _list_values(value: str | None) -> set[str]:
    """A reason's value is the text entering the crosswalk: one value, or a list printed as [a, b]."""
    if value is None:
        return set()
    if value.startswith("[") and value.endswith("]"):
        return {v.strip() for v in value[1:-1].split(",")}
    return {value}


@records_failure
def feedback(run: dict[str, Any], intakes: list[dict[str, Any]], transformed: dict[str, Any]) -> dict[str, Any]:
    s = settings()
    files = write_feedback(s, run["run_id"], intakes)
    return {"files": files}


#: intake statuses of a delivery that came but was not published (`tongban run` exits 3)
HELD_STATUSES = ("rejected", "empty")


def held_back_deliveries(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in report["deliveries"] if d["status"] in HELD_STATUSES]


def summarize(report: dict[str, Any], published: dict[str, Any] | None = None) -> str:
    """The run summary a data engineer reads at the end of `tongban run`. Called with the run
    report, or (from the DAG) with the run and publish's result, whose report file it reads."""
    if published is not None:
        report = json.loads(Path(published["report"]).read_text(encoding="utf-8"))
    lines = [f"tongban run {report['run_id']}", ""]
    head = f"{'entity':<20}{'source':<8}{'prov':<6}{'status':<13}{'delivered':>10}{'published':>10}{'quarantined':>12}  top reasons"
    lines.append(head)
    lines.append("-" * len(head))
    for d in report["deliveries"]:
        reasons = ", ".join(f"{r['reason']}:{r['field']}×{r['rows']}" for r in json.loads(d["top_reasons"] or "[]")[:3])
        delivered = "?" if d["rows_delivered"] is None else d["rows_delivered"]  # unreadable: size + sha256 said
        quarantined = "?" if d["rows_quarantined"] is None else d["rows_quarantined"]
        lines.append(f"{d['entity']:<20}{d['source_id']:<8}{d['province_code']:<6}{d['status']:<13}"
                     f"{delivered:>10}{d['rows_published']:>10}{quarantined:>12}  {reasons}")
    for msg in report.get("messages", []):
        lines.append(f"  ! {msg}")
    for d in report["deliveries"]:
        if d.get("kept_snapshot_version"):
            lines.append(f"  ! {d['source_id']} {d['entity']}: this delivery was not published ({d['status']}); "
                         f"its previous publication stays in the exchange (v{d['kept_snapshot_version']})")
    held = held_back_deliveries(report)
    if held:
        lines.append(f"\n{len(held)} deliver{'y was' if len(held) == 1 else 'ies were'} held back (not published; "
                     "the province's feedback says why): " + ", ".join(f"{d['source_id']}/{d['entity']} ({d['status']})"
                                                                        for d in held))
    for problem in report.get("exchange_problems", []):
        lines.append(f"  ✗ EXCHANGE FILE CHANGED AFTER PUBLICATION — {problem}; written again from the warehouse, "
                     "find out who changed it (`tongban exchange verify`)")
    unmapped = [(e, sid, u) for e, per in report.get("unmapped", {}).items() for sid, us in per.items() for u in us]
    if unmapped:
        lines += ["", "values no crosswalk maps (the committee's worklist):"]
        for e, sid, u in unmapped:
            lines.append(f"  {sid} {e}.{u['field']}: {u['value']!r} ×{u['rows']} → {u['policy']}")
    held = report.get("held_back", [])
    if held:
        lines += ["", "held back by crosswalk entries awaiting review (approve them to publish these rows):"]
        for h in held:
            where = ", ".join(f"{e['file']}:{e['line']}" for e in h["entries"]) or "?"
            lines.append(f"  {h['source_id']} {h['entity']}.{h['field']}: {h['value']!r} ×{h['rows']} "
                         f"({h['policy']}) ← {where}")
    for entity, g in report["gate"]["entities"].items():
        state = "passed" if g["success"] else "FAILED — publication stopped, the previous snapshot stays current"
        again = (f"; nothing changed since run {g['reused_from_run']}, whose result this is"
                 if g.get("reused_from_run") else "")
        lines.append(f"\nquality gate {entity}: {state} ({g['evaluated']} expectations{again})")
        for f in g["blocking_failures"]:
            lines.append(f"  ✗ {f}")
        for w in g["warnings"]:
            lines.append(f"  ! {w}")
        if g.get("docs_index"):
            lines.append(f"  Data Docs: {g['docs_index']}")
    s = settings()
    lines += ["", f"exchange: {s.exchange_dir / 'catalog.duckdb'}   feedback: {s.feedback_dir}",
              f"data dictionary: {s.exchange_dir / 'dictionary' / 'index.html'}",
              "query it:  tongban query \"select province_code, count(*) from data_resource group by 1\"",
              "           tongban query \"select * from births_by_month_division limit 10\""]
    return "\n".join(lines)


def run_in_process(entities: list[str] | None = None) -> dict[str, Any]:
    """The same steps without Airflow (debugging, benchmarks)."""
    run = start_run(entities)
    intakes = intake_all(run, check_early=check_early_enabled())
    transformed = transform(run, intakes)
    gate_result = gate(run, transformed)
    conservation = check_conservation(run, intakes, transformed)
    published = publish(run, intakes, transformed, gate_result, conservation)
    feedback(run, intakes, transformed)
    return json.loads(Path(published["report"]).read_text(encoding="utf-8"))
