"""The one place where tongban patches Great Expectations so that it works on DuckDB.

GX 1.24's SQL data source runs on DuckDB through duckdb-engine (a SQLAlchemy dialect), but GX
does not know the ``duckdb`` dialect. :func:`apply` makes three small, idempotent, process-wide
changes; each one only changes behaviour for the ``duckdb`` dialect.

1. **Persisted connection for duckdb** (GX issues #10738 and #11579).

   ``SqlAlchemyExecutionEngine.execute_query`` runs ``with self.get_connection() as c:
   result = c.execute(query)`` and only then do its callers call ``result.fetchall()``. For most
   dialects ``get_connection`` is ``with self.engine.connect()``, so the connection is closed
   before the rows are fetched. psycopg2 and friends have buffered the rows by then; duckdb-engine
   has not, and the pending result is lost: ``fetchall()`` returns ``[]``,
   ``resolve_metric_bundle`` fails on ``res[0]`` with ``IndexError: list index out of range``,
   and GX reports ``MetricResolutionError`` for *every* expectation (``table.row_count`` is a
   dependency of all of them).

   For the dialects in the module constant
   ``great_expectations.execution_engine.sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS``
   (sqlite, mssql, bigquery, databricks) GX instead keeps one connection open for the life of the
   execution engine (and builds the engine with ``StaticPool``), so nothing is closed before the
   fetch. The patch rebinds that constant to the same tuple plus a ``duckdb`` entry. Both users of
   the constant read it at call time: ``get_connection`` (``self.dialect_name in ...``, so the
   entry must equal the string ``"duckdb"``) and ``_dialect_requires_persisted_connection``
   (``connection_string.startswith(d.value)``, so it must have ``.value``). The entry is therefore
   a ``str``-valued Enum member, like the ``GXSqlDialect`` members around it; GXSqlDialect itself
   has no DUCKDB member and an Enum cannot be extended.

2. **Roll back the persisted duckdb connection after a failed statement.**

   A consequence of 1: on SQLAlchemy's autobegin duckdb-engine issues a real ``BEGIN``, and GX
   never commits its reads, so the persisted connection is one long DuckDB transaction. When one
   statement fails (say an ``expect_column_values_to_be_in_set`` whose value set does not cast to
   the column's type) DuckDB aborts the transaction, and every later query of the run fails with
   ``TransactionContext Error: Current transaction is aborted (please ROLLBACK)``: one bad
   expectation turns all the following ones into failures. GX's recovery,
   ``SqlAlchemyExecutionEngine._execute_query_with_recovery`` (a staticmethod through which both
   ``execute_query`` and ``execute_query_in_transaction`` run every statement), only handles
   SQLAlchemy's ``PendingRollbackError``. The patch wraps it: on a ``DBAPIError`` from a duckdb
   connection it rolls the connection back, then re-raises the original error unchanged.
   (sqlite, the dialect this path was written for, does not abort transactions that way.)

3. **duckdb-engine's dialect reports itself as its own dialect**, so that regex (and LIKE)
   expectations can be compiled.

   GX builds the SQL for ``expect_column_values_to_(not_)match_regex`` (and the ``*_regex_list``
   and ``*_like_pattern*`` variants) in
   ``great_expectations.expectations.metrics.util.get_dialect_regex_expression`` /
   ``get_dialect_like_pattern_expression``. Those take a dialect *module* and test
   ``issubclass(dialect.dialect, sa.dialects.postgresql.dialect)`` and the like. For a dialect GX
   does not know (``execution_engine.dialect_module is None``) the metric passes
   ``engine.dialect``, a dialect *instance* without a ``.dialect`` attribute, so every branch is
   skipped and the metric raises ``NotImplementedError: Regex is not supported for dialect
   duckdb``. The patch sets the class attribute ``duckdb_engine.Dialect.dialect =
   duckdb_engine.Dialect``, the shape SQLAlchemy itself accepts from legacy dialect modules (see
   ``sqlalchemy.engine.url.URL._get_entrypoint``). ``duckdb_engine.Dialect`` subclasses
   ``PGDialect_psycopg2``, so GX then takes its PostgreSQL branch and emits ``column ~ regex`` /
   ``column !~ regex``. In DuckDB these operators are ``regexp_matches`` (RE2, match anywhere in
   the string), the semantics GX has on pandas (``str.contains``) and PostgreSQL; the unit tests
   pin that with an unanchored pattern. In GX 1.24.1 nothing else reads ``dialect.dialect`` when
   ``dialect_module`` is None except ``compound_columns_unique``, which only reads its ``name``.

If a GX or duckdb-engine upgrade changes the shape of what is patched, :func:`apply` raises
``RuntimeError`` instead of silently doing nothing, and ``tests/unit/test_gx_duckdb.py`` fails.
That test module also checks, in a subprocess, that unpatched GX still fails on DuckDB: when it
stops failing, GX has fixed this upstream and this module can shrink or go.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import threading
import warnings
from tongban.common.config import quiet_third_parties

__all__ = ["DUCKDB_DIALECT", "apply", "is_applied"]

_MARK = "_tongban_duckdb_rollback"


class _DuckDBDialectName(str, enum.Enum):
    """Stands in for the ``GXSqlDialect.DUCKDB`` member GX does not have.

    A ``str`` Enum member equals the plain string ``"duckdb"`` (what ``dialect_name`` returns) and
    has ``.value == "duckdb"``: all GX asks of an entry of ``_PERSISTED_CONNECTION_DIALECTS``.
    """

    DUCKDB = "duckdb"


DUCKDB_DIALECT = _DuckDBDialectName.DUCKDB

_lock = threading.Lock()


def _engine_module():
    # Telemetry off before great_expectations is first imported.

    quiet_third_parties()
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    import great_expectations.execution_engine.sqlalchemy_execution_engine as sqlalchemy_ee  # GX is heavy (2-3 s): imported only when a gate runs

    return sqlalchemy_ee


def _changed(what: str) -> RuntimeError:
    return RuntimeError(
        f"{what}: GX or duckdb-engine changed what tongban/steps/gx_duckdb.py patches; re-check the patch "
        "against the installed versions (GX issues #10738, #11579)."
    )


def _patch_persisted_connection() -> None:
    """Patch 1: a ``duckdb`` entry in ``_PERSISTED_CONNECTION_DIALECTS``."""
    sqlalchemy_ee = _engine_module()
    persisted = getattr(sqlalchemy_ee, "_PERSISTED_CONNECTION_DIALECTS", None)
    if not isinstance(persisted, tuple):
        raise _changed("sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS is not a tuple")
    if "duckdb" not in persisted:  # if GX learns duckdb upstream, leave its entry alone
        sqlalchemy_ee._PERSISTED_CONNECTION_DIALECTS = (*persisted, DUCKDB_DIALECT)


def _patch_rollback_after_error() -> None:
    """Patch 2: roll a duckdb connection back when a statement fails."""
    from sqlalchemy.exc import DBAPIError

    engine_cls = _engine_module().SqlAlchemyExecutionEngine
    current = engine_cls.__dict__.get("_execute_query_with_recovery")
    if not isinstance(current, staticmethod):
        raise _changed("SqlAlchemyExecutionEngine._execute_query_with_recovery is not a staticmethod")
    original = current.__func__
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def _execute_query_with_recovery(connection, query):
        try:
            return original(connection, query)
        except DBAPIError:
            if connection.dialect.name == "duckdb":
                with contextlib.suppress(Exception):
                    connection.rollback()
            raise

    setattr(_execute_query_with_recovery, _MARK, True)
    engine_cls._execute_query_with_recovery = staticmethod(_execute_query_with_recovery)


def _patch_dialect_self_reference() -> None:
    """Patch 3: ``duckdb_engine.Dialect.dialect = duckdb_engine.Dialect``."""
    import duckdb_engine  # GX's SQLAlchemy dialect for DuckDB: only with GX

    dialect_cls = duckdb_engine.Dialect
    current = dialect_cls.__dict__.get("dialect")
    if current is None:
        dialect_cls.dialect = dialect_cls
    elif current is not dialect_cls:
        raise _changed(f"duckdb_engine.Dialect.dialect is already {current!r}")


def is_applied() -> bool:
    """True if all three patches are in place (imports GX)."""
    import duckdb_engine  # GX's SQLAlchemy dialect for DuckDB: only with GX

    sqlalchemy_ee = _engine_module()
    recovery = sqlalchemy_ee.SqlAlchemyExecutionEngine.__dict__.get("_execute_query_with_recovery")
    return bool(
        "duckdb" in sqlalchemy_ee._PERSISTED_CONNECTION_DIALECTS
        and getattr(getattr(recovery, "__func__", None), _MARK, False)
        and duckdb_engine.Dialect.__dict__.get("dialect") is duckdb_engine.Dialect
    )


def apply() -> None:
    """Make GX 1.24's SQL data source work on DuckDB (idempotent, process-wide).

    1. adds ``duckdb`` to ``sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS``;
    2. wraps ``SqlAlchemyExecutionEngine._execute_query_with_recovery`` to roll a duckdb
       connection back after a failed statement;
    3. sets ``duckdb_engine.Dialect.dialect = duckdb_engine.Dialect``.

    See the module docstring for why. Raises ``RuntimeError`` if GX or duckdb-engine no longer
    has the shape the patch expects.
    """
    with _lock:
        _patch_persisted_connection()
        _patch_rollback_after_error()
        _patch_dialect_self_reference()
        # SQLAlchemy reflection (GX reads the table's columns) does not know DuckDB's LIST type
        # and says so once per list column on every run; the columns are validated regardless.
        warnings.filterwarnings("ignore", message=r"Did not recognize type '(list|struct|map)'",
                                module="duckdb_engine")
