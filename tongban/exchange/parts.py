"""A partitioned snapshot: one Parquet file per value of a column (tongban: per source), and the reuse
of the parts of the entity's previous snapshot that are the same.

A part whose rows are the same as in the previous snapshot (same count and content fingerprint, same
projection and key) is not computed again: the new snapshot hard-links the previous file (snapshots
are immutable, so sharing is safe). Nothing on disk is trusted: before a part is reused, its sha256
must match its snapshot's manifest (:func:`previous_parts`); a part that does not is named in
``problems`` and written again from the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tongban.common.hashing import sha256_file
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.exchange.files import fsync_file, link_or_copy
from tongban.exchange.projection import Projection
from tongban.exchange.snapshots import MANIFEST_FILE, PART_FILE, part_problem, version_dirs

#: parts of a snapshot written at once (TONGBAN_PUBLISH_WORKERS; default: the cores, at most 2)
PUBLISH_WORKERS_ENV = "TONGBAN_PUBLISH_WORKERS"
_PART_VALUE = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: readies a cursor to run the projection (see tongban.exchange.projection.pii_functions)
Prepare = Callable[[duckdb.DuckDBPyConnection], None]


@dataclass(frozen=True)
class Previous:
    """The parts of the entity's previous snapshot that match its manifest, with the manifest."""

    manifest: dict
    parts: dict[str, tuple[Path, dict]]  # file name -> (path, manifest entry with reused_from)
    complete: bool  # every part of the manifest is there and matches


@dataclass(frozen=True)
class _Job:
    """A part to write from the warehouse: its manifest entry (sha256 added once written), its rows."""

    entry: dict
    where: str
    target: Path


def _previous_manifest(entity_dir: Path) -> tuple[int, Path, dict] | None:
    """(version, its directory, its manifest) of the entity's latest complete snapshot."""
    latest = max(version_dirs(entity_dir), default=None)
    if latest is None:
        return None
    version, version_dir = latest
    try:
        return version, version_dir, json.loads((version_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def previous_parts(entity_dir: Path, problems: list[str]) -> Previous | None:
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
    return Previous(manifest=manifest, parts=parts, complete=complete)


def whole_key(projection: Projection, partition_by: str, content_key: str) -> str:
    """What the caller's ``content_key`` vouches for, under this projection, key and partitioning."""
    return hashlib.sha256(json.dumps(
        [projection.text, projection.key_id, partition_by, content_key]).encode()).hexdigest()


def linked_parts(tmp_dir: Path, key: str, previous: Previous | None) -> list[dict] | None:
    """Every part of the previous snapshot, linked into ``tmp_dir``, when it was published with
    the whole key ``key`` and every part of it is there and matches its manifest; else None."""
    if previous is None or previous.manifest.get("content_key") != key or not previous.complete:
        return None
    parts = []
    for path, entry in previous.parts.values():
        link_or_copy(path, tmp_dir / entry["file"])
        parts.append(entry)
    return sorted(parts, key=lambda p: [e["file"] for e in previous.manifest["parts"]].index(p["file"]))


def keep_parts(tmp_dir: Path, parts: list[dict], keep: Sequence[str], columns: list[dict],
               previous: Previous | None, problems: list[str]) -> tuple[list[dict], list[str]]:
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
            problems.append(f"{tmp_dir.parent.name}: the previous publication of {value} cannot be kept: "
                            "the entity's columns changed since")
            continue
        path = previous.parts[entry["file"]][0]
        link_or_copy(path, tmp_dir / entry["file"])
        parts.append({**entry, "kept": True})
        kept.append(value)
    real = [p for p in parts if p["rows"] or p.get("kept")]
    if kept and len(real) < len(parts):  # the empty placeholder part is not needed beside a kept one
        for p in parts:
            if p not in real:
                (tmp_dir / p["file"]).unlink(missing_ok=True)
        parts = real
    return parts, kept


def write_parts(con: duckdb.DuckDBPyConnection, projection: Projection, partition_by: str, tmp_dir: Path,
                previous: Previous | None, prepare: Prepare, skip: Sequence[str] = ()) -> list[dict]:
    """One Parquet file per value of ``partition_by`` (but those in ``skip``, whose rows are not
    published); unchanged parts linked from the previous snapshot.

    The parts to write are written side by side, each through a connection of its own to the same
    database (``prepare(cursor)`` readies it): DuckDB splits one query's work by row group
    (122,880 rows), so a part of a few row groups alone would leave cores idle."""
    names = {name.lower(): name for name, _ in projection.source}
    if partition_by.lower() not in names:
        raise ValueError(f"partition_by column {partition_by!r} not in {projection.quoted_relation}")
    column = quote_ident(names[partition_by.lower()])
    parts, jobs = _plan(con, projection, column, tmp_dir, previous, set(skip))
    _write_jobs(con, projection.select, jobs, prepare)
    if not parts:  # an empty snapshot still has its (empty) file with the columns
        target = tmp_dir / PART_FILE
        con.execute(f"COPY (SELECT * FROM ({projection.select}) LIMIT 0) TO {quote_literal(str(target))} "
                    "(FORMAT parquet, COMPRESSION zstd)")
        parts.append({"file": PART_FILE, "value": None, "rows": 0, "fingerprint": None, "sha256": sha256_file(target)})
    return parts


def _plan(con: duckdb.DuckDBPyConnection, projection: Projection, column: str, tmp_dir: Path,
          previous: Previous | None, skip: set[str]) -> tuple[list[dict], list[_Job]]:
    """Every part's manifest entry, in order, and the parts still to write: a part whose fingerprint
    (its rows' count and hashes, under the same projection and key) the previous snapshot has is
    linked from there now."""
    every = ", ".join(f"#{i}" for i in range(1, len(projection.source) + 1))
    groups = con.execute(
        f"SELECT CAST({column} AS VARCHAR), count(*), CAST(sum(CAST(hash({every}) AS HUGEINT)) AS VARCHAR), "
        f"CAST(bit_xor(hash({every}, 'tongban')) AS VARCHAR) FROM {projection.quoted_relation} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    by_fingerprint = {} if previous is None else \
        {e["fingerprint"]: (path, e) for path, e in previous.parts.values() if e.get("fingerprint")}
    parts: list[dict] = []
    jobs: list[_Job] = []
    for i, (value, count, total, mixed) in enumerate(groups):
        if value in skip:
            continue
        name = f"part-{value}.parquet" if value is not None and _PART_VALUE.fullmatch(value) else f"part-{i}.parquet"
        fingerprint = hashlib.sha256(json.dumps(
            [projection.text, projection.key_id, value, count, total, mixed]).encode()).hexdigest()
        target = tmp_dir / name
        entry = {"file": name, "value": value, "rows": int(count), "fingerprint": fingerprint}
        hit = by_fingerprint.get(fingerprint)
        if hit is not None:
            prev_path, prev_entry = hit
            link_or_copy(prev_path, target)
            entry.update(sha256=prev_entry["sha256"], reused_from=prev_entry["reused_from"])
        else:
            where = f"{column} IS NULL" if value is None else f"CAST({column} AS VARCHAR) = {quote_literal(value)}"
            jobs.append(_Job(entry, where, target))
        parts.append(entry)
    return parts, jobs


def _write_jobs(con: duckdb.DuckDBPyConnection, select: str, jobs: list[_Job], prepare: Prepare) -> None:
    def write(job: _Job) -> None:
        cursor = con.cursor()
        try:
            prepare(cursor)
            cursor.execute(f"COPY (SELECT * FROM ({select}) WHERE {job.where}) TO {quote_literal(str(job.target))} "
                           f"(FORMAT parquet, COMPRESSION zstd)")
        finally:
            cursor.close()
        fsync_file(job.target)
        job.entry["sha256"] = sha256_file(job.target)

    workers = int(os.environ.get(PUBLISH_WORKERS_ENV) or min(2, os.cpu_count() or 1))
    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tongban-publish") as pool:
            list(pool.map(write, jobs))  # the first error, once every part stopped
    else:
        for job in jobs:
            write(job)
