"""The exchange: immutable Parquet snapshots plus a small DuckDB catalog that dashboards open.

DuckDB allows one read-write process *or* many read-only ones on a file, never both, so dashboards
never open the warehouse. Publication instead works like this::
    exchange/<entity>/v<N>/part-0.parquet     immutable snapshot, N = 1, 2, ... per entity
    exchange/<entity>/v<N>/_manifest.json     entity, version, run_id, rows, created_at, sha256, ...,
                                              signature (Ed25519, see ``signing``)
    exchange/_runs/<run_id>.parquet           the run record rows of one run
    exchange/catalog.duckdb                   views over the current snapshots + exchange_runs
                                              + exchange_snapshots (paths relative to exchange/)
    exchange/keys.json                        every public signing key, old ones included

The modules, by what they do:

* ``snapshots``: the names on disk, :class:`Snapshot`, manifests, which versions are complete and
  current, whether a part still matches its manifest.
* ``publish``: :func:`publish_snapshot` copies one warehouse relation to ``.v<N>.tmp-<random>/``,
  writes the manifest, fsyncs and renames the directory to ``v<N>``; ``projection`` is what it
  selects (personal data only as pseudonym and masked form), ``parts`` the per-source parts and
  their reuse, ``files`` the durable file operations.
* ``runs``: :func:`record_run`, the run record of one run.
* ``catalog``: :func:`rebuild_catalog` swaps in a complete new catalog (the one commit point);
  :func:`connect_catalog` / :func:`query` are the read-only door.
* ``integrity``: verify the files against their manifests (and the manifests' signatures); recover
  what a killed run left.
* ``signing``: the Ed25519 keys (outside the exchange) that sign manifests and the served exchange's
  answers; the one canonical JSON.
* ``rollback``: a kept version republished as the newest (``tongban exchange rollback``).

Old snapshot versions are kept; there is no retention/garbage collection here. Callers use the names
below as ``exchange.<name>``.
"""

from __future__ import annotations

from tongban.exchange.catalog import (
    CATALOG_ALIAS,
    NO_PUBLICATION_MESSAGE,
    SNAPSHOT_COLUMNS,
    ReadOnlyError,
    check_read_only,
    connect_catalog,
    default_exchange_root,
    query,
    rebuild_catalog,
)
from tongban.exchange.parts import PUBLISH_WORKERS_ENV
from tongban.exchange.publish import PublishRequest, publish, publish_snapshot
from tongban.exchange.runs import RUN_COLUMNS, record_run
from tongban.exchange.snapshots import (
    CATALOG_FILE,
    COMMIT_TABLE,
    DICTIONARIES_DIR,
    DICTIONARY_LINK,
    MANIFEST_FILE,
    PART_FILE,
    RESERVED_VIEW_NAMES,
    RUNS_DIR,
    ExchangeError,
    NoPublicationError,
    Snapshot,
    check_entity,
    check_run_id,
    current_snapshots,
    list_snapshots,
    part_problem,
)

# the name it had before the exchange was split into modules (tests/integration/test_trust.py reads it)
from tongban.exchange.snapshots import version_dirs as _version_dirs  # noqa: F401

__all__ = [
    "CATALOG_ALIAS", "CATALOG_FILE", "COMMIT_TABLE", "DICTIONARIES_DIR", "DICTIONARY_LINK", "MANIFEST_FILE",
    "NO_PUBLICATION_MESSAGE", "PART_FILE", "PUBLISH_WORKERS_ENV", "RESERVED_VIEW_NAMES", "RUNS_DIR",
    "RUN_COLUMNS", "SNAPSHOT_COLUMNS", "ExchangeError", "NoPublicationError", "PublishRequest",
    "ReadOnlyError", "Snapshot", "check_entity", "check_read_only", "check_run_id", "connect_catalog",
    "current_snapshots", "default_exchange_root", "list_snapshots", "part_problem", "publish",
    "publish_snapshot", "query", "rebuild_catalog", "record_run",
]
