"""The one place where tongban patches Great Expectations so that it works on DuckDB.

GX 1.24's SQL data source runs on DuckDB through duckdb-engine (a SQLAlchemy dialect), but two
GX internals do not know the ``duckdb`` dialect. :func:`apply` makes two small, idempotent
changes, both at runtime and both confined to the DuckDB dialect:

1. **Persisted connection for** ``duckdb`` (GX issues #10738 and #11579).

   ``SqlAlchemyExecutionEngine.execute_query`` runs ``with self.get_connection() as c:
   result = c.execute(query)`` and the caller only then calls ``result.fetchall()``. For most
   dialects ``get_connection`` is ``with self.engine.connect()``, so the connection is closed
   before the rows are fetched. psycopg2 and friends have buffered the rows by then; duckdb-engine
   has not, and the pending result is lost: ``fetchall()`` returns ``[]`` and
   ``resolve_metric_bundle`` fails on ``res[0]`` with ``IndexError: list index out of range``,
   which GX reports as ``MetricResolutionError`` on *every* expectation (``table.row_count`` is
   a dependency of all of them).

   GX already keeps one connection open for the lifetime of the execution engine for the
   dialects in the module constant
   ``great_expectations.execution_engine.sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS``
   (sqlite, mssql, bigquery, databricks), and creates their engines with ``StaticPool``. That
   path does not close the connection before the fetch. The patch rebinds that constant to the
   same tuple plus one ``duckdb`` entry. The constant is read at call time by both of its users,
   ``get_connection`` (``self.dialect_name in _PERSISTED_CONNECTION_DIALECTS``: the entry must
   compare equal to the string ``"duckdb"``) and ``_dialect_requires_persisted_connection``
   (``connection_string.startswith(d.value)``: the entry must have ``.value``), so the entry is
   a ``str``-valued Enum member, which satisfies both, exactly like a ``GXSqlDialect`` member.
   GXSqlDialect itself has no DUCKDB member and an Enum cannot be extended.

2. **duckdb-engine's dialect reports itself as its own dialect**, so that regex (and LIKE)
   expectations can be compiled.

   GX picks the SQL for ``expect_column_values_to_(not_)match_regex`` (and the
   ``*_regex_list`` / ``*_like_pattern*`` variants) in
   ``great_expectations.expectations.metrics.util.get_dialect_regex_expression`` /
   ``get_dialect_like_pattern_expression``. Those expect a dialect *module* and test
   ``issubclass(dialect.dialect, sa.dialects.postgresql.dialect)`` etc. For dialects GX does
   not know (``execution_engine.dialect_module is None``) the metric passes
   ``engine.dialect`` instead, a dialect *instance* without a ``.dialect`` attribute, so every
   branch is skipped and the metric raises ``NotImplementedError: Regex is not supported for
   dialect duckdb``. The patch sets the class attribute ``duckdb_engine.Dialect.dialect =
   duckdb_engine.Dialect`` (the shape SQLAlchemy itself accepts from legacy dialect modules,
   see ``sqlalchemy.engine.url.URL._get_entrypoint``). ``duckdb_engine.Dialect`` subclasses
   ``PGDialect_psycopg2``, so GX then takes its PostgreSQL branch: ``column ~ regex`` and
   ``column !~ regex``. In DuckDB these operators mean ``regexp_matches`` (search anywhere in the
   string, RE2 syntax), which is the same semantics GX has on pandas (``str.contains``) and
   PostgreSQL; the unit tests pin this with an unanchored pattern. No other GX code reads
   ``dialect.dialect`` for an engine whose ``dialect_module`` is None (checked in GX 1.24.1:
   only the regex and LIKE helpers, and ``compound_columns_unique``, which only reads the
   dialect's name).

Both patches touch global state of imported modules, so :func:`apply` is process-wide; it is
cheap and idempotent, and the gate calls it on every run. If a GX or duckdb-engine upgrade
changes the shape of what is patched, :func:`apply` raises ``RuntimeError`` rather than
silently doing nothing, and ``tests/unit/test_gx_duckdb.py`` fails. That test module also
checks, in a subprocess, that unpatched GX still fails on DuckDB: once it stops failing, GX has
fixed this upstream and this module can go.
"""

from __future__ import annotations

import enum
import os
import threading

__all__ = ["DUCKDB_DIALECT", "apply", "is_applied"]


class _DuckDBDialectName(str, enum.Enum):
    """Stands in for the ``GXSqlDialect.DUCKDB`` member GX does not have.

    A ``str`` Enum member equals the plain string ``"duckdb"`` (what ``dialect_name`` returns)
    and has ``.value == "duckdb"``, which is all GX asks of the entries of
    ``_PERSISTED_CONNECTION_DIALECTS``.
    """

    DUCKDB = "duckdb"


DUCKDB_DIALECT = _DuckDBDialectName.DUCKDB

_lock = threading.Lock()


def _quiet_gx() -> None:
    # Telemetry off before great_expectations is imported (a no-op if it already is).
    from tongban.config import quiet_third_parties

    quiet_third_parties()
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"


def _engine_module():
    _quiet_gx()
    import great_expectations.execution_engine.sqlalchemy_execution_engine as sqlalchemy_ee

    if not isinstance(getattr(sqlalchemy_ee, "_PERSISTED_CONNECTION_DIALECTS", None), tuple):
        raise RuntimeError(
            "great_expectations.execution_engine.sqlalchemy_execution_engine."
            "_PERSISTED_CONNECTION_DIALECTS is gone or no longer a tuple: GX changed how it keeps "
            "connections open; re-check tongban/gx_duckdb.py (GX issues #10738, #11579)."
        )
    return sqlalchemy_ee


def _duckdb_dialect_class():
    import duckdb_engine

    dialect_cls = duckdb_engine.Dialect
    current = dialect_cls.__dict__.get("dialect")
    if current is not None and current is not dialect_cls:
        raise RuntimeError(
            f"duckdb_engine.Dialect.dialect is already set to {current!r}; "
            "re-check tongban/gx_duckdb.py before overriding it."
        )
    return dialect_cls


def _patch_persisted_connection() -> None:
    """Patch 1: ``duckdb`` joins ``_PERSISTED_CONNECTION_DIALECTS`` (see module docstring)."""
    sqlalchemy_ee = _engine_module()
    persisted = sqlalchemy_ee._PERSISTED_CONNECTION_DIALECTS
    if "duckdb" not in persisted:  # if GX learns duckdb upstream, leave its entry alone
        sqlalchemy_ee._PERSISTED_CONNECTION_DIALECTS = (*persisted, DUCKDB_DIALECT)


def _patch_dialect_self_reference() -> None:
    """Patch 2: ``duckdb_engine.Dialect.dialect = duckdb_engine.Dialect`` (see module docstring)."""
    dialect_cls = _duckdb_dialect_class()
    if dialect_cls.__dict__.get("dialect") is None:
        dialect_cls.dialect = dialect_cls


def is_applied() -> bool:
    """True if both patches are in place (imports GX)."""
    sqlalchemy_ee = _engine_module()
    dialect_cls = _duckdb_dialect_class()
    return (
        "duckdb" in sqlalchemy_ee._PERSISTED_CONNECTION_DIALECTS
        and dialect_cls.__dict__.get("dialect") is dialect_cls
    )


def apply() -> None:
    """Make GX 1.24's SQL data source work on DuckDB (idempotent, process-wide).

    1. adds ``duckdb`` to ``sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS``;
    2. sets ``duckdb_engine.Dialect.dialect = duckdb_engine.Dialect``.

    See the module docstring for why. Raises ``RuntimeError`` if GX or duckdb-engine no longer
    has the shape the patch expects.
    """
    with _lock:
        _patch_persisted_connection()
        _patch_dialect_self_reference()
