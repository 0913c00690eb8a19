"""Re-runs do only what changed (issue 5).

Two places skip work whose inputs are unchanged, and both decide by content, never by time:

* **Intake**: a delivery whose parts have the sha256 recorded when it was last landed, read
  through the same mapping (its whole definition, not only its version) and the same entity,
  is not read again; its landed Parquet (whose rows keep the ``run_id`` of the run that landed
  them) is reused. The record sits beside the Parquet: ``<raw>/<source>/<entity>.intake.json``.
  Deliveries rejected whole or missing are looked at again every run.
* **Transform**: each delivery's ``int_<entity>__checked_<source>`` table (the mapping and the
  standard's row rules) is rebuilt only when its fingerprint changed: the landed file, the SQL
  of its staging and checked models, the macros, the seeds (crosswalks, code lists), the
  reference data it is checked against, and today's date (``date_in_future``); a delivery
  held back or missing again is the same empty table as before. The
  fingerprints of the tables in the warehouse are kept in the warehouse itself
  (``tongban_state.checked_models``), so a fresh or deleted warehouse rebuilds everything.
  The rules across rows (duplicates), the harmonized tables and the marts run over all of an
  entity's deliveries, and only for the entities of which something changed: an entity all of
  whose checked tables are unchanged, under the same models and tests, is not built again
  (``entity_fingerprints``, recorded as ``harmonized.<entity>``).
* **Gate**: an entity not built again is not validated again either: its recorded gate result
  (``<build>/state/gate/<entity>.json``) is reused while the entity's fingerprint, its suite and
  GX's version are the same (``gate_fingerprint``).
* **Publish**: each part of a snapshot whose rows are unchanged is linked from the previous
  snapshot (``exchange.publish_snapshot(partition_by=)``); an entity not built again is linked
  whole, without reading its rows (``content_key``).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from tongban.common.parts import find_parts
from tongban.common.hashing import sha256_file
from tongban.common import reference
from tongban.standards.targets.dbt import checked_model

INTAKE_STATE_VERSION = 1
STATE_SCHEMA = "tongban_state"
STATE_TABLE = f"{STATE_SCHEMA}.checked_models"


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\x1f")
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ intake

def intake_state_path(raw_dir: Path, source_id: str, entity: str) -> Path:
    return Path(raw_dir) / source_id / f"{entity}.intake.json"


def mapping_digest(m, entity) -> str:
    """Everything that decides how a delivery is landed: the mapping and the entity, whole."""
    return _digest(INTAKE_STATE_VERSION, m.model_dump(mode="json"),
                   entity.model_dump(mode="json") if entity is not None else None)


def reusable_intake(m, entity, *, inbox_dirs, raw_dir: Path) -> dict[str, Any] | None:
    """The recorded intake result of ``m``'s delivery when its parts are byte for byte the ones
    landed before (sha256) under the same mapping, and the landed file is still there."""

    state_path = intake_state_path(raw_dir, m.source_id, m.entity)
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    result = state.get("result") or {}
    if state.get("mapping_digest") != mapping_digest(m, entity) or result.get("status") != "landed":
        return None
    raw = Path(result.get("raw_path") or "")
    if not raw.is_file() or _stat(raw) != state.get("raw_stat"):
        return None
    paths = find_parts(inbox_dirs, m.delivery.file)
    recorded = state.get("parts") or []
    if [str(p) for p in paths] != [p["file"] for p in recorded]:
        return None
    for p, rec in zip(paths, recorded, strict=True):
        if sha256_file(p) != rec["sha256"]:
            return None
    return {**result, "reused": True, "landed_run_id": state.get("run_id")}


def record_intake(result: dict[str, Any], m, entity, *, raw_dir: Path, run_id: str) -> None:
    """Remember a landed delivery (its parts' sha256) so the next run can recognise it."""

    path = intake_state_path(raw_dir, m.source_id, m.entity)
    if result.get("status") != "landed" or not result.get("raw_path"):
        path.unlink(missing_ok=True)
        return
    parts = result.get("parts") or [{"file": result["delivery_file"]}]
    recorded = []
    for p in parts:
        # the reader computed the digest while reading; a single-part delivery has it as the delivery's
        digest = p.get("sha256") or (result["delivery_sha256"] if len(parts) == 1 else sha256_file(Path(p["file"])))
        recorded.append({"file": str(p["file"]), "sha256": digest})
    state = {"version": INTAKE_STATE_VERSION, "run_id": run_id, "mapping_digest": mapping_digest(m, entity),
             "raw_stat": _stat(Path(result["raw_path"])), "parts": recorded,
             "result": {k: v for k, v in result.items() if k not in ("reused", "landed_run_id")}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _stat(path: Path) -> list[int]:
    """Size and modification time of a landed file: a copy that keeps them (``cp -p``,
    ``shutil.copytree``) is still recognised; landing again always gives a new mtime."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


# --------------------------------------------------------------------------------------- transform

def _tree_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _reference_digest(ref_dir: Path) -> str:
    """The reference files the warehouse's reference tables are loaded from (name, size, mtime)."""

    out = []
    for rel in (reference.MCA_2024_FILE, reference.HISTORY_FILE, reference.NBS_AREAS_FILE,
                reference.INDUSTRY_FILE, reference.REAL_USCC_FILE):
        p = Path(ref_dir) / rel
        st = p.stat() if p.is_file() else None
        out.append([rel, st.st_size if st else None, st.st_mtime_ns if st else None])
    return _digest(out)


def checked_fingerprints(project_dir: Path, ref_dir: Path, std, intakes: list[dict[str, Any]],
                         today: date | None = None) -> dict[str, str]:
    """``int_<entity>__checked_<source>`` -> the fingerprint of everything it is built from."""


    project_dir = Path(project_dir)
    common = _digest(
        duckdb.__version__,  # e.g. content_hash is DuckDB's hash(), which a new version may change
        _tree_digest(list((project_dir / "macros").rglob("*.sql"))),
        _tree_digest(list((project_dir / "seeds").rglob("*.csv"))),
        (project_dir / "dbt_project.yml").read_text(encoding="utf-8"),
        _reference_digest(ref_dir),
        (today or date.today()).isoformat(),
    )
    out = {}
    for i in intakes:
        m = std.mapping(i["source_id"], i["entity"])
        model = checked_model(m)
        models = [project_dir / "models" / "staging" / m.source_id / f"stg_{m.source_id}__{m.entity}.sql",
                  project_dir / "models" / "intermediate" / f"{model}.sql"]
        raw = Path(i["raw_path"]) if i.get("raw_path") else None
        # a delivery held back or missing lands an empty file with the declared columns again each
        # run (its columns are in the staging model's SQL): its new mtime changes nothing
        landed = [i.get("status"), i.get("delivery_sha256"), i.get("rows_delivered"),
                  _stat(raw) if i.get("status") == "landed" and raw is not None and raw.is_file() else None]
        out[model] = _digest(common, landed, [p.read_text(encoding="utf-8") for p in models])
    return out


def entity_fingerprints(project_dir: Path, checked: dict[str, str], entities: list[str]) -> dict[str, str]:
    """``harmonized.<entity>`` -> the fingerprint of everything the entity's lineage after its
    checked tables is built from: those tables' fingerprints and every model, test and project
    file (any change to any of them rebuilds every entity: simple, and always safe)."""
    definitions = _tree_digest(_project_files(project_dir, ("models", "dbt_tests")))
    return {f"harmonized.{e}": _digest(definitions, sorted((m, fp) for m, fp in checked.items()
                                                            if m.startswith(f"int_{e}__checked_")))
            for e in entities}


DEFINITIONS = "dbt.definitions"


def definitions_fingerprint(project_dir: Path) -> dict[str, str]:
    """``{DEFINITIONS: fingerprint}`` of every model, test, macro and project file (and DuckDB's
    version). The harmonized tables are rebuilt source by source (macros/incremental_by_source.sql)
    only while it is the one recorded at their last build; otherwise ``transform`` builds them
    with ``--full-refresh``."""

    files = _project_files(project_dir, ("models", "dbt_tests", "macros"))
    return {DEFINITIONS: _digest(duckdb.__version__, _tree_digest(files))}


def _project_files(project_dir: Path, subs: tuple[str, ...]) -> list[Path]:
    """The dbt project's SQL and YAML files under ``subs``, and ``dbt_project.yml``."""
    project_dir = Path(project_dir)
    return [p for sub in subs for p in (project_dir / sub).rglob("*")
            if p.is_file() and p.suffix in (".sql", ".yml", ".yaml")] + [project_dir / "dbt_project.yml"]


def staging_for(checked: str) -> str:
    """``int_<entity>__checked_<source>`` -> its staging view ``stg_<source>__<entity>``."""
    entity, source_id = checked.removeprefix("int_").rsplit("__checked_", 1)
    return f"stg_{source_id}__{entity}"


def unchanged_models(warehouse: Path, fingerprints: dict[str, str], *, tables: bool = True) -> list[str]:
    """The keys whose recorded fingerprint matches. With ``tables`` (the default) they are tables
    (``int_*__checked_*`` in the intermediate schema, or ``schema.table``), and must also exist in
    the warehouse; without, they are any recorded name (``DEFINITIONS``)."""

    if not Path(warehouse).is_file():
        return []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        have = {name if schema == "intermediate" else f"{schema}.{name}" for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
            "and table_catalog = current_database()").fetchall()}
        try:
            recorded = dict(con.execute(f"select model, fingerprint from {STATE_TABLE}").fetchall())
        except duckdb.CatalogException:
            return []
    finally:
        con.close()
    return sorted(m for m, fp in fingerprints.items() if (m in have or not tables) and recorded.get(m) == fp)


def record_fingerprints(warehouse: Path, fingerprints: dict[str, str], run_id: str) -> None:

    con = duckdb.connect(str(warehouse))
    try:
        con.execute(f"create schema if not exists {STATE_SCHEMA}")
        con.execute(f"create table if not exists {STATE_TABLE} (model varchar primary key, fingerprint varchar, "
                    f"run_id varchar, recorded_at timestamptz)")
        con.executemany(f"insert or replace into {STATE_TABLE} values (?, ?, ?, now())",
                        [(m, fp, run_id) for m, fp in sorted(fingerprints.items())])
    finally:
        con.close()


def forget_fingerprints(warehouse: Path) -> None:
    """After a failed build nothing recorded can be trusted."""

    if not Path(warehouse).is_file():
        return
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(f"drop table if exists {STATE_TABLE}")
    finally:
        con.close()


# -------------------------------------------------------------------------------------------- gate

def gate_fingerprint(entity_fingerprint: str, suite_path: Path) -> str:
    """What a gate result depends on: the validated table (its lineage's fingerprint), the suite
    and the GX that ran it."""
    import importlib.metadata

    return _digest(entity_fingerprint, Path(suite_path).read_bytes().decode("utf-8", "replace"),
                   importlib.metadata.version("great_expectations"))


def gate_state_path(build_dir: Path, entity: str) -> Path:
    return Path(build_dir) / "state" / "gate" / f"{entity}.json"


def reusable_gate(build_dir: Path, entity: str, fingerprint: str) -> dict[str, Any] | None:
    """The recorded gate result of ``entity`` when it was taken on the same fingerprint."""
    try:
        state = json.loads(gate_state_path(build_dir, entity).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("fingerprint") != fingerprint or not isinstance(state.get("result"), dict):
        return None
    return {**state["result"], "reused_from_run": state.get("run_id")}


def record_gate(build_dir: Path, entity: str, fingerprint: str, result: dict[str, Any], run_id: str) -> None:
    path = gate_state_path(build_dir, entity)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "run_id": run_id, "result": result},
                              ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
