"""Publishing one snapshot: a warehouse relation becomes the next immutable version of an entity.

The work is done in ``.v<N>.tmp-<random>/`` beside the published versions: the Parquet part(s), then
the manifest (signed: ``tongban.exchange.signing``), each on disk before the next step; then one
rename makes it ``v<N>``. A crash at any point leaves a ``.tmp`` directory, never a version (``tongban.exchange.integrity.recover`` removes it),
and a version is only current once the catalog names it (``tongban.exchange.catalog.rebuild_catalog``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tongban.common.config import limit_memory
from tongban.common.hashing import combined_sha256, sha256_file
from tongban.common.sqlquote import check_ident, quote_ident, quote_literal
from tongban.exchange.files import fsync_dir, fsync_file, utc_now_iso, write_json
from tongban.exchange.parts import (
    Prepare,
    keep_parts,
    linked_parts,
    previous_parts,
    whole_key,
    write_parts,
)
from tongban.exchange.projection import Projection, check_pii, pii_functions, project
from tongban.exchange.signing import signed
from tongban.exchange.snapshots import (
    MANIFEST_FILE,
    PART_FILE,
    ExchangeError,
    Snapshot,
    check_entity,
    check_run_id,
    version_dirs,
)


@dataclass(frozen=True)
class PublishRequest:
    """What to publish: ``relation`` (``schema.table``) of the warehouse at ``warehouse_path`` as the
    next version of ``entity``, recorded as written by ``run_id`` under ``standard_version``.

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

    ``hold`` (with ``partition_by``): values whose rows in ``relation`` are not published — a
    province whose delivery is held by a gate threshold. Their part is carried over from the
    previous snapshot as for ``keep`` (or left out, if never published); the relation's rows of
    them are never read into the snapshot.

    Nothing on disk is trusted: before a part of an earlier snapshot is reused (linked or kept),
    its sha256 must match that snapshot's manifest. A part that does not is never reused; it is
    named in the result's ``problems`` and written again from the warehouse.
    """

    entity: str
    warehouse_path: Path
    relation: str
    run_id: str
    standard_version: str
    pii: Mapping[str, str] | None = None
    pseudonym_key: bytes | None = None
    partition_by: str | None = None
    content_key: str | None = None
    keep: Sequence[str] = ()
    hold: Sequence[str] = ()


@dataclass
class _Draft:
    """The version being written in ``tmp_dir``: what the warehouse gave it (``parts`` is None for one
    unpartitioned file) and what was found wrong with earlier snapshots on the way (``problems``)."""

    tmp_dir: Path
    problems: list[str] = field(default_factory=list)
    columns: list[dict] = field(default_factory=list)
    pii_manifest: dict[str, dict] = field(default_factory=dict)
    rows: int = 0
    parts: list[dict] | None = None
    whole_key: str | None = None
    kept: list[str] = field(default_factory=list)


def publish_snapshot(exchange_root: Path, **request) -> Snapshot:
    """Write a warehouse relation as the next immutable version of an entity: ``request`` holds the
    fields of :class:`PublishRequest` (which says what each means), as keywords."""
    return publish(exchange_root, PublishRequest(**request))


def publish(exchange_root: Path, request: PublishRequest) -> Snapshot:
    """Publish ``request`` (see :class:`PublishRequest`) under ``exchange_root``; the new snapshot."""
    check_entity(request.entity)
    quoted_relation = _quote_relation(request.relation)
    check_run_id(request.run_id)
    pii_columns = check_pii(request.pii, request.pseudonym_key)
    warehouse_path = Path(request.warehouse_path)
    if not warehouse_path.is_file():
        raise FileNotFoundError(f"warehouse not found: {warehouse_path}")

    entity_dir = Path(exchange_root) / request.entity
    entity_dir.mkdir(parents=True, exist_ok=True)
    version = max((n for n, _ in version_dirs(entity_dir)), default=0) + 1
    draft = _Draft(tmp_dir=entity_dir / f".v{version}.tmp-{secrets.token_hex(6)}")
    draft.tmp_dir.mkdir()
    try:
        with _warehouse(warehouse_path, request.entity) as con:
            projection = project(con, quoted_relation, pii_columns, request.pseudonym_key)
            _write_content(con, request, projection, draft)
        if draft.parts is None:
            fsync_file(draft.tmp_dir / PART_FILE)
        created_at = utc_now_iso()
        write_json(draft.tmp_dir / MANIFEST_FILE, signed(_manifest(request, version, created_at, draft)))
        fsync_dir(draft.tmp_dir)
        final_dir = commit_version(draft.tmp_dir, entity_dir / f"v{version}", request.entity, version)
    except BaseException:
        shutil.rmtree(draft.tmp_dir, ignore_errors=True)
        raise
    return Snapshot(entity=request.entity, version=version, path=final_dir.resolve(), rows=draft.rows,
                    run_id=request.run_id, created_at=created_at, kept=tuple(draft.kept),
                    problems=tuple(draft.problems))


def _quote_relation(relation: object) -> str:
    """``schema.table`` with both parts validated as plain identifiers and quoted."""
    parts = relation.split(".") if isinstance(relation, str) else []
    if len(parts) != 2:
        raise ValueError(f"invalid relation {relation!r}: expected 'schema.table'")
    for part in parts:
        check_ident(part, what=f"relation part in {relation!r}")
    return ".".join(quote_ident(p) for p in parts)


@contextlib.contextmanager
def _warehouse(warehouse_path: Path, entity: str) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        con = duckdb.connect(str(warehouse_path), read_only=True)
        limit_memory(con)  # spills beside the warehouse (DuckDB: <warehouse>.tmp)
    except duckdb.ConnectionException as exc:
        raise ExchangeError(
            f"cannot open the warehouse {warehouse_path} read-only to publish {entity}: {exc} "
            "(close any read-write connection to it first)"
        ) from exc
    try:
        yield con
    finally:
        con.close()


def _write_content(con: duckdb.DuckDBPyConnection, request: PublishRequest, projection: Projection,
                   draft: _Draft) -> None:
    """The new version's Parquet file(s) in the draft's directory, from the warehouse or reused."""
    with pii_functions(con, projection, request.pseudonym_key) as prepare:
        described = con.execute(f"DESCRIBE {projection.select}").fetchall()
        draft.columns = [{"name": row[0], "type": row[1]} for row in described]
        draft.pii_manifest = projection.pii_manifest
        if request.partition_by is None:
            part = quote_literal(str(draft.tmp_dir / PART_FILE))
            con.execute(f"COPY ({projection.select}) TO {part} (FORMAT parquet, COMPRESSION zstd)")
        else:
            _write_partitioned(con, request, projection, draft, prepare)
    if draft.parts is None:
        draft.rows = con.execute(
            "SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", [str(draft.tmp_dir / PART_FILE)]
        ).fetchone()[0]
    else:
        draft.rows = sum(p["rows"] for p in draft.parts)


def _write_partitioned(con: duckdb.DuckDBPyConnection, request: PublishRequest, projection: Projection,
                       draft: _Draft, prepare: Prepare) -> None:
    """One part per value of ``partition_by``: all linked from the previous snapshot when the caller's
    content key vouches for them (and nothing is kept), else written or linked part by part, then the
    ``keep`` values carried over."""
    partition_by = request.partition_by
    assert partition_by is not None
    if request.content_key is not None and not request.hold:  # held rows: the content key no longer vouches
        draft.whole_key = whole_key(projection, partition_by, request.content_key)
    previous = previous_parts(draft.tmp_dir.parent, draft.problems)
    if draft.whole_key is not None and not request.keep:
        draft.parts = linked_parts(draft.tmp_dir, draft.whole_key, previous)
    if draft.parts is None:
        parts = write_parts(con, projection, partition_by, draft.tmp_dir, previous, prepare, skip=request.hold)
        draft.parts, draft.kept = keep_parts(draft.tmp_dir, parts, [*request.keep, *request.hold], draft.columns,
                                             previous, draft.problems)


def _manifest(request: PublishRequest, version: int, created_at: str, draft: _Draft) -> dict:
    parts = draft.parts
    sha256 = sha256_file(draft.tmp_dir / PART_FILE) if parts is None else \
        combined_sha256([(p["file"], p["sha256"]) for p in parts])
    manifest = {
        "entity": request.entity,
        "version": version,
        "run_id": request.run_id,
        "rows": int(draft.rows),
        "created_at": created_at,
        "sha256": sha256,
        "columns": draft.columns,
        "standard_version": request.standard_version,
        "pii": draft.pii_manifest,
    }
    if parts is not None:
        manifest["partition_by"] = request.partition_by
        manifest["parts"] = parts
        if draft.whole_key is not None:
            manifest["content_key"] = draft.whole_key
    return manifest


def commit_version(tmp_dir: Path, final_dir: Path, entity: str, version: int) -> Path:
    """The complete ``tmp_dir`` becomes ``final_dir`` in one rename (the version's single commit)."""
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
    fsync_dir(final_dir.parent)
    return final_dir
