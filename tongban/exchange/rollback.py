"""Rollback: a kept snapshot ``vN`` republished as the newest version of its entity.

The new version ``vM`` (M = the next number) holds vN's parts (hard links where the file system
allows, copies otherwise: snapshots are immutable, so sharing is safe) and vN's manifest with its own
``version``, ``created_at``, ``rolled_back_from: N`` and a new signature. It is written like a publish
(``.v<M>.tmp-…`` then one rename) and becomes current with one catalog swap for every entity rolled
back, so a reader sees the old snapshots or the rolled-back ones, never a mix. Every part of vN is
checked against vN's manifest first: a changed file is never republished. Versions are never reused
or deleted; the next run publishes from the warehouse again.

The caller holds the run lock (``tongban exchange rollback`` does), so a rollback cannot race a run.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tongban.exchange.catalog import rebuild_catalog
from tongban.exchange.files import fsync_dir, link_or_copy, utc_now_iso, write_json
from tongban.exchange.integrity import committed
from tongban.exchange.publish import commit_version
from tongban.exchange.signing import signed
from tongban.exchange.snapshots import (
    MANIFEST_FILE,
    PART_FILE,
    ExchangeError,
    Snapshot,
    check_entity,
    current_of,
    list_snapshots,
    part_problem,
    version_dirs,
)


class UnknownVersionError(ExchangeError):
    """The version asked for is not kept (the message names the kept ones)."""


@dataclass(frozen=True)
class RolledBack:
    """``entity`` was at ``from_version``; ``snapshot`` (a new version) now holds ``to_version``'s rows."""

    entity: str
    from_version: int
    to_version: int
    snapshot: Snapshot


def plan(exchange_root: Path, to_version: int, entity: str | None = None) -> list[tuple[Snapshot, Snapshot]]:
    """(current, kept vN) for each entity to roll back: ``entity``, or every entity that keeps vN.
    Unknown versions raise :class:`UnknownVersionError`; nothing to do (vN is already current) raises
    :class:`ExchangeError`."""
    snapshots = list_snapshots(exchange_root)
    if entity is not None:
        check_entity(entity)
        snapshots = [s for s in snapshots if s.entity == entity]
    current = current_of(snapshots)
    targets = [s for s in snapshots if s.version == to_version]
    if not targets:
        kept = "; ".join(f"{e} " + ", ".join(f"v{s.version}" for s in snapshots if s.entity == e) for e in current)
        raise UnknownVersionError(f"no kept v{to_version} of {entity or 'any entity'}: kept are {kept or 'none'}")
    pairs = [(current[s.entity], s) for s in targets if current[s.entity].version != to_version]
    if not pairs:
        raise ExchangeError(f"v{to_version} is already the current version of {', '.join(s.entity for s in targets)}")
    return pairs


def rollback(exchange_root: Path, to_version: int, entity: str | None = None) -> list[RolledBack]:
    """Republish vN (of ``entity``, or of every entity that keeps it) as the newest version; one
    catalog swap makes them current together. See :func:`plan` for what is refused."""
    root = Path(exchange_root)
    pairs = [(cur, source, _checked_manifest(source)) for cur, source in plan(root, to_version, entity)]
    done: list[RolledBack] = []
    try:
        for cur, source, manifest in pairs:
            done.append(RolledBack(source.entity, cur.version, source.version, _republish(source, manifest)))
        commit = committed(root)
        rebuild_catalog(root, dictionary=commit["dictionary"] if commit else None)
    except BaseException:  # no version of this rollback stays behind without its catalog
        for r in done:
            shutil.rmtree(r.snapshot.path, ignore_errors=True)
        raise
    return done


def _checked_manifest(source: Snapshot) -> dict:
    """vN's manifest, once every part it names still is the file it names (else ExchangeError)."""
    manifest = json.loads(source.manifest_path.read_text(encoding="utf-8"))
    for entry in _entries(manifest):
        problem = part_problem(source.path, entry)
        if problem is not None:
            raise ExchangeError(f"cannot roll back to {source.entity} v{source.version}: {problem}")
    return manifest


def _entries(manifest: dict) -> Sequence[dict]:
    return manifest.get("parts") or [{"file": PART_FILE, "sha256": manifest.get("sha256")}]


def _republish(source: Snapshot, manifest: dict) -> Snapshot:
    entries = _entries(manifest)
    entity_dir = source.path.parent
    version = max(n for n, _ in version_dirs(entity_dir)) + 1
    tmp = entity_dir / f".v{version}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        for entry in entries:
            link_or_copy(source.path / entry["file"], tmp / entry["file"])
        created_at = utc_now_iso()
        body = {k: v for k, v in manifest.items() if k not in ("signature", "rolled_back_from")}
        if "parts" in body:  # as a publish that links a part names the version that wrote it
            body["parts"] = [{**p, "reused_from": p.get("reused_from") or source.version} for p in body["parts"]]
        write_json(tmp / MANIFEST_FILE, signed({**body, "version": version, "created_at": created_at,
                                                "rolled_back_from": source.version}))
        fsync_dir(tmp)
        final = commit_version(tmp, entity_dir / f"v{version}", source.entity, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Snapshot(entity=source.entity, version=version, path=final.resolve(), rows=source.rows,
                    run_id=source.run_id, created_at=created_at)
