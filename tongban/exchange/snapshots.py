"""What the exchange holds on disk, and which of it counts as published.

    exchange/<entity>/v<N>/part-*.parquet     immutable snapshot, N = 1, 2, ... per entity
    exchange/<entity>/v<N>/_manifest.json     entity, version, run_id, rows, created_at, sha256, ...

A version directory without a manifest, or a ``.tmp`` directory left by a crash, is never considered
published; :func:`part_problem` says whether a part still is the file its manifest names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tongban.common.hashing import sha256_file
from tongban.common.sqlquote import check_ident, is_identifier

CATALOG_FILE = "catalog.duckdb"
RUNS_DIR = "_runs"
MANIFEST_FILE = "_manifest.json"
PART_FILE = "part-0.parquet"

#: Views in the catalog that are not entities; no entity may take these names.
RESERVED_VIEW_NAMES = frozenset({"exchange_runs", "exchange_snapshots", "exchange_commit"})
#: the catalog's record of what its swap committed (see :func:`rebuild_catalog`, :func:`recover`)
COMMIT_TABLE = "exchange_commit"
DICTIONARY_LINK = "dictionary"
DICTIONARIES_DIR = "_dictionary"

_VERSION_DIR = re.compile(r"v([1-9][0-9]{0,8})")
_RUN_ID = re.compile(r"[A-Za-z0-9_.:+-]{1,100}")


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


def version_dirs(entity_dir: Path) -> Iterator[tuple[int, Path]]:
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
        for version, version_dir in version_dirs(entity_dir):
            snapshot = _read_manifest(name, version, version_dir)
            if snapshot is not None:
                found.append(snapshot)
    found.sort(key=lambda s: (s.entity, s.version))
    return found


def current_of(snapshots: Sequence[Snapshot]) -> dict[str, Snapshot]:
    current: dict[str, Snapshot] = {}
    for snapshot in snapshots:
        best = current.get(snapshot.entity)
        if best is None or snapshot.version > best.version:
            current[snapshot.entity] = snapshot
    return dict(sorted(current.items()))


def current_snapshots(exchange_root: Path) -> dict[str, Snapshot]:
    """The highest complete version of each entity (a version is complete once it has its manifest)."""
    return current_of(list_snapshots(exchange_root))


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
