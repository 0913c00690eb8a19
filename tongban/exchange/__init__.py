"""The exchange: immutable Parquet snapshots plus a small DuckDB catalog that dashboards open.

DuckDB allows one read-write process *or* many read-only ones on a file, never both, so dashboards
never open the warehouse. Publication instead works like this::
    exchange/<entity>/v<N>/part-0.parquet     immutable snapshot, N = 1, 2, ... per entity
    exchange/<entity>/v<N>/_manifest.json     entity, version, run_id, rows, created_at, sha256, ...
    exchange/_runs/<run_id>.parquet           the run record rows of one run
    exchange/catalog.duckdb                   views over the current snapshots + exchange_runs
                                              + exchange_snapshots

* :func:`publish_snapshot` copies one warehouse relation to ``.v<N>.tmp-<random>/``, writes the
  manifest, fsyncs and renames the directory to ``v<N>``. A version directory without a manifest, or a
  ``.tmp`` directory left by a crash, is never considered published.
* :func:`rebuild_catalog` writes a complete new catalog file beside the old one and swaps it in with
  ``os.replace``. A reader holding the old file keeps a consistent view (its views point at snapshot
  directories that are never modified or deleted); a new reader gets the new file.
* :func:`connect_catalog` / :func:`query` are the read side. Inside one process DuckDB caches database
  instances by path, so ``duckdb.connect(catalog, read_only=True)`` would silently return the *old*
  catalog while any connection to it is still open. :func:`connect_catalog` avoids that cache by
  attaching the catalog read-only to a fresh in-memory instance (and detaching the in-memory database,
  so nothing but temp objects can be written).

Old snapshot versions are kept; there is no retention/garbage collection here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from tongban.common import pii as tongban_pii
from tongban.common.config import limit_memory
from tongban.common.hashing import combined_sha256, sha256_file
from tongban.common.sqlquote import check_ident, is_identifier, quote_ident, quote_literal
from tongban.common.config import settings

CATALOG_FILE = "catalog.duckdb"
RUNS_DIR = "_runs"
MANIFEST_FILE = "_manifest.json"
PART_FILE = "part-0.parquet"
CATALOG_ALIAS = "catalog"

#: Views in the catalog that are not entities; no entity may take these names.
RESERVED_VIEW_NAMES = frozenset({"exchange_runs", "exchange_snapshots", "exchange_commit"})
#: the catalog's record of what its swap committed (see :func:`rebuild_catalog`, :func:`recover`)
COMMIT_TABLE = "exchange_commit"
DICTIONARY_LINK = "dictionary"
DICTIONARIES_DIR = "_dictionary"

NO_PUBLICATION_MESSAGE = "no publication yet: run `tongban run` first"

_VERSION_DIR = re.compile(r"v([1-9][0-9]{0,8})")
_RUN_ID = re.compile(r"[A-Za-z0-9_.:+-]{1,100}")

#: Fixed schema of exchange/_runs/*.parquet and of the exchange_runs view, in column order.
RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"),
    ("started_at", "TIMESTAMP"),
    ("finished_at", "TIMESTAMP"),
    ("entity", "VARCHAR"),
    ("source_id", "VARCHAR"),
    ("province_code", "VARCHAR"),
    ("delivery_file", "VARCHAR"),
    ("delivery_sha256", "VARCHAR"),
    ("status", "VARCHAR"),
    ("rows_delivered", "BIGINT"),
    ("rows_published", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("gate_success", "BOOLEAN"),
    ("gate_summary", "VARCHAR"),
    ("standard_version", "VARCHAR"),
    ("mapping_version", "VARCHAR"),
    ("snapshot_version", "INTEGER"),
    ("message", "VARCHAR"),
    ("top_reasons", "VARCHAR"),
    # the snapshot that carries this source's previous publication, kept because this delivery
    # was not landed (rejected, empty or missing); NULL otherwise
    ("kept_snapshot_version", "INTEGER"),
)
_RUN_COLUMN_NAMES = tuple(name for name, _ in RUN_COLUMNS)
_TIMESTAMP_COLUMNS = frozenset(name for name, kind in RUN_COLUMNS if kind == "TIMESTAMP")

SNAPSHOT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entity", "VARCHAR"),
    ("version", "INTEGER"),
    ("rows", "BIGINT"),
    ("run_id", "VARCHAR"),
    ("created_at", "TIMESTAMP"),
    ("path", "VARCHAR"),
    ("is_current", "BOOLEAN"),
)


class NoPublicationError(FileNotFoundError):
    """The exchange has no catalog yet."""


class ExchangeError(RuntimeError):
    """The exchange directory is in a state publication cannot work with."""


@dataclass(frozen=True)
class Snapshot:
    """One complete, published version of an entity. ``path`` is the ``v<N>`` directory."""

    entity: str
    version: int
    path: Path
    rows: int
    run_id: str
    created_at: str
    #: partition values whose part was carried over from the previous snapshot (``keep``)
    kept: tuple[str, ...] = ()
    #: parts of the previous snapshot that did not match its manifest (not reused, written again)
    problems: tuple[str, ...] = ()

    @property
    def parquet_files(self) -> list[Path]:
        """The snapshot's Parquet files (today always just ``part-0.parquet``), sorted."""
        return sorted(p for p in self.path.glob("*.parquet") if p.is_file())

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE

    def to_dict(self) -> dict:
        return {
            "entity": self.entity,
            "version": self.version,
            "path": str(self.path),
            "rows": self.rows,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "kept": list(self.kept),
            "problems": list(self.problems),
        }


# --------------------------------------------------------------------------------------------- validation


def check_entity(entity: object) -> str:
    """An entity name: an ASCII identifier not starting with '_' and not a reserved view name."""
    check_ident(entity, what="entity name")
    assert isinstance(entity, str)
    if entity.startswith("_"):
        raise ValueError(
            f"invalid entity name {entity!r}: must not start with '_' (reserved for exchange internals)"
        )
    if entity.lower() in RESERVED_VIEW_NAMES:
        raise ValueError(f"invalid entity name {entity!r}: reserved for a catalog view")
    return entity


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or run_id in {".", ".."}:
        raise ValueError(f"invalid run_id {run_id!r}: expected 1-100 characters of [A-Za-z0-9_.:+-]")
    return run_id


def _quote_relation(relation: object) -> str:
    """``schema.table`` with both parts validated as plain identifiers and quoted."""
    parts = relation.split(".") if isinstance(relation, str) else []
    if len(parts) != 2:
        raise ValueError(f"invalid relation {relation!r}: expected 'schema.table'")
    for part in parts:
        check_ident(part, what=f"relation part in {relation!r}")
    return ".".join(quote_ident(p) for p in parts)


# --------------------------------------------------------------------------------------------- filesystem


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """fsync a directory so renames inside it are durable (best effort where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _remove_duckdb_file(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


# --------------------------------------------------------------------------------------------- snapshots


def _version_dirs(entity_dir: Path) -> Iterator[tuple[int, Path]]:
    """``(N, path)`` for every ``v<N>`` directory, complete or not; ``.tmp`` directories are skipped."""
    if not entity_dir.is_dir():
        return
    for child in entity_dir.iterdir():
        match = _VERSION_DIR.fullmatch(child.name)
        if match and child.is_dir():
            yield int(match.group(1)), child


def _read_manifest(entity: str, version: int, version_dir: Path) -> Snapshot | None:
    manifest = version_dir / MANIFEST_FILE
    if not manifest.is_file():
        return None  # incomplete: never counted as published
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        snapshot = Snapshot(
            entity=str(data["entity"]),
            version=int(data["version"]),
            path=version_dir.resolve(),
            rows=int(data["rows"]),
            run_id=str(data["run_id"]),
            created_at=str(data["created_at"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ExchangeError(f"unreadable snapshot manifest {manifest}: {exc}") from exc
    if snapshot.entity != entity or snapshot.version != version:
        raise ExchangeError(
            f"snapshot manifest {manifest} says {snapshot.entity} v{snapshot.version}, "
            f"but lives in {entity}/v{version}"
        )
    return snapshot


def list_snapshots(exchange_root: Path) -> list[Snapshot]:
    """Every complete snapshot, sorted by entity, version."""
    root = Path(exchange_root)
    if not root.is_dir():
        return []
    found: list[Snapshot] = []
    for entity_dir in root.iterdir():
        name = entity_dir.name
        if not entity_dir.is_dir() or name.startswith((".", "_")) or not is_identifier(name):
            continue
        if name.lower() in RESERVED_VIEW_NAMES:
            continue
        for version, version_dir in _version_dirs(entity_dir):
            snapshot = _read_manifest(name, version, version_dir)
            if snapshot is not None:
                found.append(snapshot)
    found.sort(key=lambda s: (s.entity, s.version))
    return found


def _current_of(snapshots: Sequence[Snapshot]) -> dict[str, Snapshot]:
    current: dict[str, Snapshot] = {}
    for snapshot in snapshots:
        best = current.get(snapshot.entity)
        if best is None or snapshot.version > best.version:
            current[snapshot.entity] = snapshot
    return dict(sorted(current.items()))


def current_snapshots(exchange_root: Path) -> dict[str, Snapshot]:
    """The highest complete version of each entity (a version is complete once it has its manifest)."""
    return _current_of(list_snapshots(exchange_root))


_PII_SUFFIXES = ("_pseudonym", "_masked")
_PII_PADS_ALIAS = "_tongban_pads"


def _check_pii(pii: Mapping[str, str] | None, key: bytes | None) -> dict[str, str]:
    """``pii`` validated: plain-identifier column names, known kinds, a usable key when non-empty."""
    if pii is None:
        return {}
    if not isinstance(pii, Mapping):
        raise TypeError(f"pii must be a mapping of column name to kind, got {type(pii).__name__}")
    checked: dict[str, str] = {}
    for column, kind in pii.items():
        check_ident(column, what="pii column name")
        if kind not in tongban_pii.PII_KINDS:
            kinds = ", ".join(tongban_pii.PII_KINDS)
            raise ValueError(f"pii column {column!r}: unknown kind {kind!r}, expected one of {kinds}")
        if column.lower() in (c.lower() for c in checked):
            raise ValueError(f"pii column {column!r} is listed twice")
        checked[column] = kind
    if checked:
        if key is None:
            raise ValueError(
                "publishing pii columns needs a pseudonym_key (see tongban.common.pii.pseudonym_key / "
                f"${tongban_pii.KEY_ENV})"
            )
        if not isinstance(key, bytes) or len(key) < tongban_pii.KEY_MIN_LENGTH:
            raise ValueError(f"pseudonym_key must be bytes of at least {tongban_pii.KEY_MIN_LENGTH} bytes")
    return checked


def _pii_udf_names() -> tuple[str, str]:
    """Fresh names for the PII UDFs of one publication.

    Not ``tongban_mask``: the warehouse may hold the SQL macro of that name (a Python UDF cannot shadow a
    macro). Unique per call: ``duckdb.connect(path, read_only=True)`` shares one database instance per
    process, UDFs registered on one connection are visible to (and would clash with) the others.
    """
    token = secrets.token_hex(6)
    return f"_tongban_pseudonym_{token}", f"_tongban_mask_{token}"


def _pii_projection(
    source: Sequence[tuple[str, str]],
    pii: Mapping[str, str],
    quoted_relation: str,
    udf_names: tuple[str, str],
) -> tuple[str, dict[str, dict]]:
    """The SELECT to publish and the manifest's ``pii`` entry.

    Without pii columns this is ``SELECT *``. Otherwise every other column is referenced by position
    (``#n`` keeps its name, whatever characters it has) and each pii column ``c`` becomes
    ``c_pseudonym, c_masked`` at its position; the raw column is not selected at all.
    """
    if not pii:
        return f"SELECT * FROM {quoted_relation}", {}
    by_lower = {name.lower(): position for position, (name, _) in enumerate(source, start=1)}
    missing = [column for column in pii if column.lower() not in by_lower]
    if missing:
        raise ValueError(
            f"pii column(s) {', '.join(repr(c) for c in missing)} not in {quoted_relation} "
            f"(columns: {', '.join(name for name, _ in source)})"
        )
    kinds = {column.lower(): kind for column, kind in pii.items()}
    items: list[str] = []
    manifest: dict[str, dict] = {}
    output_names: list[str] = []
    for position, (name, _type) in enumerate(source, start=1):
        kind = kinds.get(name.lower())
        if kind is None:
            items.append(f"#{position}")
            output_names.append(name)
            continue
        pseudonym_col, masked_col = (f"{name}{suffix}" for suffix in _PII_SUFFIXES)
        value = f"CAST(#{position} AS VARCHAR)"
        pseudonym_sql = tongban_pii.pseudonym_sql(kind, value, _PII_PADS_ALIAS, udf_names[0])
        items.append(
            f"{pseudonym_sql} AS {quote_ident(pseudonym_col)}, "
            f"{tongban_pii.mask_sql(kind, value, udf_names[1])} AS {quote_ident(masked_col)}"
        )
        output_names += [pseudonym_col, masked_col]
        manifest[name] = {"kind": kind, "columns": [pseudonym_col, masked_col]}
    seen: set[str] = set()
    for name in output_names:
        if name.lower() in seen:
            raise ValueError(
                f"publishing {quoted_relation} with pii columns would produce column {name!r} twice; "
                "rename the source column"
            )
        seen.add(name.lower())
    # the HMAC key blocks come from a one-row temp table (see tongban.common.pii.create_pads_table); positional
    # references (#n) still point into the relation, which comes first
    return (f"SELECT {', '.join(items)} FROM {quoted_relation} CROSS JOIN {udf_names[0]}_pads AS {_PII_PADS_ALIAS}",
            manifest)


def publish_snapshot(
    exchange_root: Path,
    *,
    entity: str,
    warehouse_path: Path,
    relation: str,
    run_id: str,
    standard_version: str,
    pii: Mapping[str, str] | None = None,
    pseudonym_key: bytes | None = None,
    partition_by: str | None = None,
    content_key: str | None = None,
    keep: Sequence[str] = (),
) -> Snapshot:
    """Write ``relation`` of the warehouse as the next immutable version of ``entity``.

    The warehouse is opened read-only, so no process (including this one) may hold a read-write
    connection to it at the time.

    ``pii`` maps column names of ``relation`` to a kind of :data:`tongban.common.pii.PII_KINDS`. Each such
    column ``c`` is published, at its position, as ``c_pseudonym`` (keyed HMAC, needs ``pseudonym_key``)
    and ``c_masked`` (both VARCHAR); its raw values never reach the snapshot. The manifest records them
    under ``"pii"``.

    ``partition_by`` (a column, e.g. ``source_id``) writes one Parquet file per value,
    ``part-<value>.parquet``. A part whose rows are the same as in the entity's previous snapshot
    (same count and content fingerprint, same projection and key) is not computed again: the new
    snapshot hard-links the previous file (snapshots are immutable, so sharing is safe). This is
    what makes a re-run after one province re-delivered cost about that province's share.

    ``content_key`` (with ``partition_by``) vouches for the rows of ``relation``: the caller knows
    they are what they were when the entity's previous snapshot was published with the same key
    (tongban: the fingerprint of everything the table was built from). Then, under the same
    projection and pseudonym key, every part is linked from that snapshot without reading the
    rows at all; otherwise the parts are compared by their content as above.

    ``keep`` (with ``partition_by``): values whose part is carried over from the entity's previous
    snapshot instead of being read from ``relation`` — a province whose new delivery was rejected
    keeps its last good publication (the relation holds none of its rows then). A part is carried
    over only under the same columns; one that cannot be is left out and named in ``problems``.

    Nothing on disk is trusted: before a part of an earlier snapshot is reused (linked or kept),
    its sha256 must match that snapshot's manifest. A part that does not is never reused; it is
    named in the result's ``problems`` and written again from the warehouse.
    """
    check_entity(entity)
    quoted_relation = _quote_relation(relation)
    check_run_id(run_id)
    pii_columns = _check_pii(pii, pseudonym_key)
    warehouse_path = Path(warehouse_path)
    if not warehouse_path.is_file():
        raise FileNotFoundError(f"warehouse not found: {warehouse_path}")

    entity_dir = Path(exchange_root) / entity
    entity_dir.mkdir(parents=True, exist_ok=True)
    version = max((n for n, _ in _version_dirs(entity_dir)), default=0) + 1
    final_dir = entity_dir / f"v{version}"
    tmp_dir = entity_dir / f".v{version}.tmp-{secrets.token_hex(6)}"
    tmp_dir.mkdir()
    problems: list[str] = []
    kept: list[str] = []
    try:
        part = tmp_dir / PART_FILE
        whole_key = None
        try:
            con = duckdb.connect(str(warehouse_path), read_only=True)
            limit_memory(con)  # spills beside the warehouse (DuckDB: <warehouse>.tmp)
        except duckdb.ConnectionException as exc:
            raise ExchangeError(
                f"cannot open the warehouse {warehouse_path} read-only to publish {entity}: {exc} "
                "(close any read-write connection to it first)"
            ) from exc
        try:
            source = [
                (row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {quoted_relation}").fetchall()
            ]
            udf_names = _pii_udf_names()
            select, pii_manifest = _pii_projection(source, pii_columns, quoted_relation, udf_names)
            if pii_manifest:
                assert pseudonym_key is not None  # checked by _check_pii
                tongban_pii.register_udfs(con, pseudonym_key, names=udf_names)
                tongban_pii.create_pads_table(con, f"{udf_names[0]}_pads", pseudonym_key)
            try:
                columns = [
                    {"name": row[0], "type": row[1]}
                    for row in con.execute(f"DESCRIBE {select}").fetchall()
                ]
                if partition_by is None:
                    con.execute(
                        f"COPY ({select}) TO {quote_literal(str(part))} (FORMAT parquet, COMPRESSION zstd)"
                    )
                    parts_manifest = None
                else:
                    def prepare(cursor) -> None:  # the pads are a temporary table: one per connection
                        if pii_manifest:
                            tongban_pii.create_pads_table(cursor, f"{udf_names[0]}_pads", pseudonym_key)

                    projection_text = _PII_CODE + select.replace(udf_names[0], "_pseudonym_udf") \
                        .replace(udf_names[1], "_mask_udf")
                    key_id = tongban_pii.key_id(pseudonym_key) if pii_manifest else None
                    whole_key = None if content_key is None else hashlib.sha256(json.dumps(
                        [projection_text, key_id, partition_by, content_key]).encode()).hexdigest()
                    previous = _previous_parts(entity_dir, problems)
                    parts_manifest = None if whole_key is None or keep else \
                        _linked_parts(entity_dir, tmp_dir, whole_key, previous)
                    if parts_manifest is None:
                        parts_manifest = _write_parts(con, tmp_dir, source, projection_text, select,
                                                      quoted_relation, partition_by, key_id, previous,
                                                      prepare=prepare)
                        parts_manifest, kept = _keep_parts(entity_dir, tmp_dir, parts_manifest, keep, columns,
                                                           previous, problems)
            finally:
                if pii_manifest:
                    # Other connections to the shared instance must not keep a UDF whose connection is
                    # gone (DuckDB 2.0 crashes calling it); never let this mask the original error.
                    with contextlib.suppress(duckdb.Error):
                        con.execute(f"DROP TABLE IF EXISTS {udf_names[0]}_pads")
                    with contextlib.suppress(duckdb.Error):
                        tongban_pii.unregister_udfs(con, names=udf_names)
            if parts_manifest is None:
                rows = con.execute(
                    "SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", [str(part)]
                ).fetchone()[0]
            else:
                rows = sum(p["rows"] for p in parts_manifest)
        finally:
            con.close()
        if parts_manifest is None:
            _fsync_file(part)

        created_at = _utc_now_iso()
        manifest = {
            "entity": entity,
            "version": version,
            "run_id": run_id,
            "rows": int(rows),
            "created_at": created_at,
            "sha256": sha256_file(part) if parts_manifest is None else combined_sha256([(p["file"], p["sha256"]) for p in parts_manifest]),
            "columns": columns,
            "standard_version": standard_version,
            "pii": pii_manifest,
        }
        if parts_manifest is not None:
            manifest["partition_by"] = partition_by
            manifest["parts"] = parts_manifest
            if whole_key is not None:
                manifest["content_key"] = whole_key
        manifest_path = tmp_dir / MANIFEST_FILE
        with manifest_path.open("w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp_dir)

        if final_dir.exists():
            raise FileExistsError(f"{final_dir} appeared while publishing {entity} v{version}")
        try:
            # On POSIX, rename onto a non-empty directory fails (ENOTEMPTY/EEXIST), so two publishers
            # racing for the same N cannot overwrite each other.
            os.rename(tmp_dir, final_dir)
        except OSError as exc:
            raise FileExistsError(
                f"{final_dir} appeared while publishing {entity} v{version}: {exc}"
            ) from exc
        _fsync_dir(entity_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise

    return Snapshot(
        entity=entity,
        version=version,
        path=final_dir.resolve(),
        rows=int(rows),
        run_id=run_id,
        created_at=created_at,
        kept=tuple(kept),
        problems=tuple(problems),
    )


_PART_VALUE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: a part computed by other masking code is not reused
_PII_CODE = hashlib.sha256(Path(tongban_pii.__file__).read_bytes()).hexdigest()


def _previous_manifest(entity_dir: Path) -> tuple[int, Path, dict] | None:
    """(version, its directory, its manifest) of the entity's latest complete snapshot."""
    latest = max(_version_dirs(entity_dir), default=None)
    if latest is None:
        return None
    version, version_dir = latest
    try:
        return version, version_dir, json.loads((version_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _link_or_copy(src: Path, dst: Path) -> None:
    """A part of an earlier snapshot into a new one: hard-linked (snapshots are immutable, so
    sharing is safe), copied where the file system cannot link."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@dataclass(frozen=True)
class _Previous:
    """The parts of the entity's previous snapshot that match its manifest, with the manifest."""

    manifest: dict
    parts: dict[str, tuple[Path, dict]]  # file name -> (path, manifest entry with reused_from)
    complete: bool  # every part of the manifest is there and matches


def _previous_parts(entity_dir: Path, problems: list[str]) -> _Previous | None:
    """The previous snapshot's parts, each checked against its manifest's sha256 (a mismatch or a
    missing file is appended to ``problems`` and the part is not offered for reuse)."""
    previous = _previous_manifest(entity_dir)
    if previous is None:
        return None
    version, version_dir, manifest = previous
    parts: dict[str, tuple[Path, dict]] = {}
    complete = bool(manifest.get("parts"))
    for p in manifest.get("parts") or []:
        problem = part_problem(version_dir, p)
        if problem is not None:
            problems.append(problem)
            complete = False
            continue
        parts[p["file"]] = (version_dir / p["file"], {**p, "reused_from": p.get("reused_from") or version})
    return _Previous(manifest=manifest, parts=parts, complete=complete)


def part_problem(version_dir: Path, entry: Mapping) -> str | None:
    """Why a snapshot part cannot be trusted (missing, or not the file its manifest names), or None."""
    path = Path(version_dir) / str(entry.get("file"))
    where = f"{Path(version_dir).parent.name}/{Path(version_dir).name}/{entry.get('file')}"
    if not path.is_file():
        return f"{where}: missing"
    actual = sha256_file(path)
    if actual != entry.get("sha256"):
        return (f"{where}: sha256 {actual[:12]}… does not match the manifest's {str(entry.get('sha256'))[:12]}… "
                "(the file was changed after publication)")
    return None


def _linked_parts(entity_dir: Path, tmp_dir: Path, whole_key: str, previous: _Previous | None) -> list[dict] | None:
    """Every part of the previous snapshot, linked into ``tmp_dir``, when it was published with
    ``whole_key`` and every part of it is there and matches its manifest; else None."""
    if previous is None or previous.manifest.get("content_key") != whole_key or not previous.complete:
        return None
    parts = []
    for path, entry in previous.parts.values():
        _link_or_copy(path, tmp_dir / entry["file"])
        parts.append(entry)
    return sorted(parts, key=lambda p: [e["file"] for e in previous.manifest["parts"]].index(p["file"]))


def _keep_parts(entity_dir: Path, tmp_dir: Path, parts: list[dict], keep: Sequence[str], columns: list[dict],
                previous: _Previous | None, problems: list[str]) -> tuple[list[dict], list[str]]:
    """``parts`` plus, for each value in ``keep``, the previous snapshot's part of that value (linked),
    where the columns are the same. Returns (parts, the values kept)."""
    kept: list[str] = []
    if not keep:
        return parts, kept
    have = {p["value"] for p in parts}
    for value in sorted(set(keep) - have):
        entry = None if previous is None else next(
            (e for _p, e in previous.parts.values() if e.get("value") == value), None)
        if entry is None:
            continue  # never published (or its part cannot be trusted: in problems)
        if previous.manifest.get("columns") != columns:
            problems.append(f"{entity_dir.name}: the previous publication of {value} cannot be kept: "
                            "the entity's columns changed since")
            continue
        path = previous.parts[entry["file"]][0]
        _link_or_copy(path, tmp_dir / entry["file"])
        parts.append({**entry, "kept": True})
        kept.append(value)
    real = [p for p in parts if p["rows"] or p.get("kept")]
    if kept and len(real) < len(parts):  # the empty placeholder part is not needed beside a kept one
        for p in parts:
            if p not in real:
                (tmp_dir / p["file"]).unlink(missing_ok=True)
        parts = real
    return parts, kept


#: parts of a snapshot written at once (TONGBAN_PUBLISH_WORKERS; default: the cores, at most 2)
PUBLISH_WORKERS_ENV = "TONGBAN_PUBLISH_WORKERS"


def _write_parts(con, tmp_dir: Path, source: Sequence[tuple[str, str]], projection_text: str,
                 select: str, quoted_relation: str, partition_by: str, key_id: str | None,
                 previous: _Previous | None, prepare=None) -> list[dict]:
    """One Parquet file per value of ``partition_by``; unchanged parts linked from the previous snapshot.

    The parts to write are written side by side, each through a connection of its own to the same
    database (``prepare(cursor)`` readies it): DuckDB splits one query's work by row group
    (122,880 rows), so a part of a few row groups alone would leave cores idle."""
    names = {name.lower(): name for name, _ in source}
    if partition_by.lower() not in names:
        raise ValueError(f"partition_by column {partition_by!r} not in {quoted_relation}")
    col = quote_ident(names[partition_by.lower()])
    every = ", ".join(f"#{i}" for i in range(1, len(source) + 1))
    groups = con.execute(
        f"SELECT CAST({col} AS VARCHAR), count(*), CAST(sum(CAST(hash({every}) AS HUGEINT)) AS VARCHAR), "
        f"CAST(bit_xor(hash({every}, 'tongban')) AS VARCHAR) FROM {quoted_relation} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    by_fingerprint = {} if previous is None else \
        {e["fingerprint"]: (path, e) for path, e in previous.parts.values() if e.get("fingerprint")}
    parts: list[dict] = []
    to_write: list[tuple[dict, str, Path]] = []
    for i, (value, count, total, mixed) in enumerate(groups):
        name = f"part-{value}.parquet" if value is not None and _PART_VALUE.fullmatch(value) else f"part-{i}.parquet"
        fingerprint = hashlib.sha256(json.dumps(
            [projection_text, key_id, value, count, total, mixed]).encode()).hexdigest()
        target = tmp_dir / name
        entry = {"file": name, "value": value, "rows": int(count), "fingerprint": fingerprint}
        hit = by_fingerprint.get(fingerprint)
        if hit is not None:
            prev_path, prev_entry = hit
            _link_or_copy(prev_path, target)
            entry.update(sha256=prev_entry["sha256"], reused_from=prev_entry["reused_from"])
        else:
            where = f"{col} IS NULL" if value is None else f"CAST({col} AS VARCHAR) = {quote_literal(value)}"
            to_write.append((entry, where, target))
        parts.append(entry)

    def write(job: tuple[dict, str, Path]) -> None:
        entry, where, target = job
        cursor = con.cursor()
        try:
            if prepare is not None:
                prepare(cursor)
            cursor.execute(f"COPY (SELECT * FROM ({select}) WHERE {where}) TO {quote_literal(str(target))} "
                           f"(FORMAT parquet, COMPRESSION zstd)")
        finally:
            cursor.close()
        _fsync_file(target)
        entry["sha256"] = sha256_file(target)

    workers = int(os.environ.get(PUBLISH_WORKERS_ENV) or min(2, os.cpu_count() or 1))
    if workers > 1 and len(to_write) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tongban-publish") as pool:
            list(pool.map(write, to_write))  # the first error, once every part stopped
    else:
        for job in to_write:
            write(job)
    if not parts:  # an empty snapshot still has its (empty) file with the columns
        target = tmp_dir / PART_FILE
        con.execute(f"COPY ({select}) TO {quote_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)")
        parts.append({"file": PART_FILE, "value": None, "rows": 0, "fingerprint": None, "sha256": sha256_file(target)})
    return parts


# --------------------------------------------------------------------------------------------- runs


def _to_utc_naive(value: object, column: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{column}: not an ISO timestamp: {value!r}") from exc
    if not isinstance(value, datetime):
        kind = "a date" if isinstance(value, date) else type(value).__name__
        raise TypeError(f"{column}: expected a datetime or an ISO timestamp string, got {kind}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value  # naive values are taken to be UTC already


def _run_row(run_id: str, row: Mapping[str, object]) -> tuple:
    unknown = set(row) - set(_RUN_COLUMN_NAMES)
    if unknown:
        raise ValueError(f"unknown run record field(s): {', '.join(sorted(unknown))}")
    row_run_id = row.get("run_id")
    if row_run_id is not None and row_run_id != run_id:
        raise ValueError(f"run record row has run_id {row_run_id!r}, expected {run_id!r}")
    values: list[object] = []
    for name in _RUN_COLUMN_NAMES:
        value = row.get(name)
        if name == "run_id":
            value = run_id
        elif name in _TIMESTAMP_COLUMNS:
            value = _to_utc_naive(value, name)
        elif name == "top_reasons" and value is not None and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, default=str)
        values.append(value)
    return tuple(values)


def _runs_schema_sql() -> str:
    return ", ".join(f"{quote_ident(name)} {kind}" for name, kind in RUN_COLUMNS)


def record_run(exchange_root: Path, run_id: str, rows: list[dict]) -> Path:
    """Write the run record rows of one run to ``exchange/_runs/<run_id>.parquet`` (replacing it atomically).

    Missing keys become NULL; unknown keys, a row ``run_id`` other than ``run_id`` or an unparsable
    timestamp string raise ValueError (a timestamp of another type raises TypeError). Timestamps may be
    datetimes (naive ones are taken as UTC) or ISO strings; they are stored as UTC TIMESTAMPs. ``top_reasons`` that is not already a
    string is stored as JSON text.
    """
    check_run_id(run_id)
    values = [_run_row(run_id, row) for row in rows]
    runs_dir = Path(exchange_root) / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    target = runs_dir / f"{run_id}.parquet"
    tmp = runs_dir / f".{run_id}.parquet.tmp-{secrets.token_hex(6)}"
    try:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"CREATE TABLE runs ({_runs_schema_sql()})")
            if values:
                placeholders = ", ".join("?" for _ in RUN_COLUMNS)
                con.executemany(f"INSERT INTO runs VALUES ({placeholders})", values)
            con.execute(f"COPY runs TO {quote_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
        finally:
            con.close()
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_dir(runs_dir)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return target


def _run_files(exchange_root: Path) -> list[Path]:
    runs_dir = Path(exchange_root) / RUNS_DIR
    if not runs_dir.is_dir():
        return []
    return sorted(
        p.resolve() for p in runs_dir.glob("*.parquet") if p.is_file() and not p.name.startswith(".")
    )


# --------------------------------------------------------------------------------------------- catalog


def _parquet_list_literal(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"


def _to_timestamp(created_at: str) -> datetime | None:
    try:
        return _to_utc_naive(created_at, "created_at")
    except ValueError:
        return None


def rebuild_catalog(exchange_root: Path, *, dictionary: str | None = None) -> Path:
    """Build a fresh catalog beside the current one and atomically swap it in. Returns its path.

    The catalog holds a view per current snapshot, ``exchange_runs`` over the run files present now
    (call this again after :func:`record_run` to make new runs visible) and the ``exchange_snapshots``
    table listing every complete snapshot with ``is_current``.

    The swap is the exchange's one commit point: what the catalog names (snapshot versions, run
    files, in ``exchange_commit`` the dictionary's directory under ``_dictionary/``) is published;
    anything else a crashed run left is removed by :func:`recover` at the next run's start.
    """
    root = Path(exchange_root)
    root.mkdir(parents=True, exist_ok=True)
    snapshots = list_snapshots(root)
    current = _current_of(snapshots)

    seen: dict[str, str] = {}
    for entity in current:
        check_entity(entity)
        other = seen.setdefault(entity.lower(), entity)
        if other != entity:
            raise ExchangeError(f"entities {other!r} and {entity!r} differ only in case; DuckDB names do not")

    views: list[tuple[str, str]] = []
    for entity, snapshot in current.items():
        files = snapshot.parquet_files
        if not files:
            raise ExchangeError(f"snapshot {snapshot.path} has a manifest but no Parquet files")
        views.append((entity, _parquet_list_literal(files)))

    run_files = _run_files(root)
    run_columns = ", ".join(f"CAST({quote_ident(n)} AS {k}) AS {quote_ident(n)}" for n, k in RUN_COLUMNS)
    if run_files:
        runs_sql = (
            f"SELECT {run_columns} FROM read_parquet({_parquet_list_literal(run_files)}, "
            "union_by_name = true, hive_partitioning = false)"
        )
    else:
        empty_columns = ", ".join(f"CAST(NULL AS {k}) AS {quote_ident(n)}" for n, k in RUN_COLUMNS)
        runs_sql = f"SELECT {empty_columns} WHERE false"

    catalog = root / CATALOG_FILE
    tmp = root / f"{CATALOG_FILE}.tmp-{secrets.token_hex(6)}"
    try:
        con = duckdb.connect(str(tmp))
        try:
            for entity, files_literal in views:
                con.execute(
                    f"CREATE VIEW {quote_ident(entity)} AS "
                    f"SELECT * FROM read_parquet({files_literal}, hive_partitioning = false)"
                )
            con.execute(f"CREATE VIEW exchange_runs AS {runs_sql}")
            schema = ", ".join(f"{quote_ident(n)} {k}" for n, k in SNAPSHOT_COLUMNS)
            con.execute(f"CREATE TABLE exchange_snapshots ({schema})")
            if snapshots:
                con.executemany(
                    "INSERT INTO exchange_snapshots VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            s.entity,
                            s.version,
                            s.rows,
                            s.run_id,
                            _to_timestamp(s.created_at),
                            str(s.path),
                            current[s.entity].version == s.version,
                        )
                        for s in snapshots
                    ],
                )
            con.execute(f"CREATE TABLE {COMMIT_TABLE} (committed_at TIMESTAMP, run_files VARCHAR[], dictionary VARCHAR)")
            con.execute(f"INSERT INTO {COMMIT_TABLE} VALUES (?, ?, ?)",
                        [_to_timestamp(_utc_now_iso()), [p.name for p in run_files], dictionary])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _fsync_file(tmp)
        os.replace(tmp, catalog)
        _fsync_dir(root)
    except BaseException:
        _remove_duckdb_file(tmp)
        raise
    return catalog


def connect_catalog(exchange_root: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the current catalog; the caller closes it.

    The catalog file is attached ``READ_ONLY`` to a fresh in-memory DuckDB instance (whose own
    in-memory database is then detached) instead of ``duckdb.connect(path, read_only=True)``: that
    way DuckDB's per-process instance cache cannot hand back a catalog that has since been replaced,
    even while older connections are still open. Only temporary objects can be created, and
    only files below the exchange can be read.
    """
    catalog = Path(exchange_root) / CATALOG_FILE
    if not catalog.is_file():
        raise NoPublicationError(f"{NO_PUBLICATION_MESSAGE} (no catalog at {catalog})")
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {quote_literal(str(catalog.resolve()))} AS {CATALOG_ALIAS} (READ_ONLY)")
        con.execute(f"USE {CATALOG_ALIAS}")
        con.execute("DETACH memory")
        # Consumers see the exchange and nothing else: no reading the restricted warehouse, the raw
        # deliveries or any other file (read_parquet, ATTACH, COPY ...), and no turning that back on.
        roots = sorted({str(Path(exchange_root).resolve()) + os.sep, str(Path(exchange_root).absolute()) + os.sep})
        con.execute(f"SET allowed_directories = [{', '.join(quote_literal(r) for r in roots)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def query(exchange_root: Path, sql: str, *, limit: int | None = None) -> tuple[list[str], list[tuple]]:
    """Run ``sql`` on a read-only catalog connection; returns (column names, rows) and closes it.

    ``limit`` caps the number of rows fetched (the statement itself is not rewritten). Statements that
    write to the catalog fail with DuckDB's own error.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    con = connect_catalog(exchange_root)
    try:
        check_read_only(con, sql)
        cursor = con.execute(sql)
        if cursor.description is None:
            return [], []
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
        return columns, [tuple(r) for r in rows]
    finally:
        con.close()


class ReadOnlyError(PermissionError):
    """A statement other than a query was sent to the exchange's read-only door."""


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ``sql`` unless every statement in it is a query (``SELECT``, ``WITH``, ``FROM``,
    ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``): no COPY, ATTACH, INSTALL/LOAD, PRAGMA, SET, CALL, EXPORT
    or DDL. With external access off and the exchange the only directory a query may read (see
    :func:`connect_catalog`), nothing can be written and nothing outside the exchange read."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyError(f"not a valid query: {str(exc).splitlines()[0]}") from exc
    refused = sorted({str(s.type).rsplit(".", 1)[-1] for s in statements} - {"SELECT"})
    if refused:
        raise ReadOnlyError(f"the exchange is read-only: only queries (SELECT) are allowed, not {', '.join(refused)}")


def default_exchange_root() -> Path:
    """The configured exchange directory (``TONGBAN_EXCHANGE_DIR`` or ``exchange/``)."""

    return settings().exchange_dir
