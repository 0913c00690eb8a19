"""What a snapshot publishes of a warehouse relation: every column, except that each personal-data
column ``c`` becomes ``c_pseudonym`` (keyed HMAC) and ``c_masked`` at its position. The raw column is
never selected, so its values cannot reach the exchange.

The pseudonyms and masks are computed in SQL where :mod:`tongban.common.pii` can (plain ASCII and CJK
values), else by Python UDFs registered for the one publication (:func:`pii_functions`).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tongban.common import pii as tongban_pii
from tongban.common.sqlquote import check_ident, quote_ident

_PII_SUFFIXES = ("_pseudonym", "_masked")
_PII_PADS_ALIAS = "_tongban_pads"
#: a part computed by other masking code is not reused
PII_CODE = hashlib.sha256(Path(tongban_pii.__file__).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Projection:
    """The SELECT that publishes ``quoted_relation`` and the manifest's ``pii`` entry."""

    quoted_relation: str
    source: tuple[tuple[str, str], ...]  # (name, type) of the relation's columns
    select: str
    pii_manifest: dict[str, dict]
    udf_names: tuple[str, str]
    key_id: str | None  # names the pseudonym key (without revealing it) when there are pii columns

    @property
    def text(self) -> str:
        """The SELECT as any publication writes it (the UDF names are fresh each time) with the masking
        code's digest: equal texts compute equal rows from equal input, so a part may be reused."""
        pseudonym_udf, mask_udf = self.udf_names
        return PII_CODE + self.select.replace(pseudonym_udf, "_pseudonym_udf").replace(mask_udf, "_mask_udf")


def check_pii(pii: Mapping[str, str] | None, key: bytes | None) -> dict[str, str]:
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


def pii_udf_names() -> tuple[str, str]:
    """Fresh names for the PII UDFs of one publication.

    Not ``tongban_mask``: the warehouse may hold the SQL macro of that name (a Python UDF cannot shadow a
    macro). Unique per call: ``duckdb.connect(path, read_only=True)`` shares one database instance per
    process, UDFs registered on one connection are visible to (and would clash with) the others.
    """
    token = secrets.token_hex(6)
    return f"_tongban_pseudonym_{token}", f"_tongban_mask_{token}"


def project(con: duckdb.DuckDBPyConnection, quoted_relation: str, pii: Mapping[str, str],
            key: bytes | None) -> Projection:
    """The projection of ``quoted_relation`` as ``con`` sees it; ``pii`` and ``key`` as
    :func:`check_pii` passed them."""
    described = con.execute(f"DESCRIBE SELECT * FROM {quoted_relation}").fetchall()
    source = tuple((row[0], row[1]) for row in described)
    udf_names = pii_udf_names()
    select, manifest = pii_projection(source, pii, quoted_relation, udf_names)
    key_id = tongban_pii.key_id(key) if manifest and key is not None else None
    return Projection(quoted_relation, source, select, manifest, udf_names, key_id)


def pii_projection(
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
    _check_unique(output_names, quoted_relation)
    # the HMAC key blocks come from a one-row temp table (see tongban.common.pii.create_pads_table); positional
    # references (#n) still point into the relation, which comes first
    return (f"SELECT {', '.join(items)} FROM {quoted_relation} CROSS JOIN {udf_names[0]}_pads AS {_PII_PADS_ALIAS}",
            manifest)


def _check_unique(output_names: Sequence[str], quoted_relation: str) -> None:
    seen: set[str] = set()
    for name in output_names:
        if name.lower() in seen:
            raise ValueError(
                f"publishing {quoted_relation} with pii columns would produce column {name!r} twice; "
                "rename the source column"
            )
        seen.add(name.lower())


@contextlib.contextmanager
def pii_functions(
    con: duckdb.DuckDBPyConnection, projection: Projection, key: bytes | None
) -> Iterator[Callable[[duckdb.DuckDBPyConnection], None]]:
    """The projection's UDFs and key pads on ``con`` while the block runs (nothing without pii columns).

    Yields ``prepare(cursor)``: the pads are a temporary table, one per connection, so every other
    cursor that runs the projection needs its own."""
    pads = f"{projection.udf_names[0]}_pads"

    def prepare(cursor: duckdb.DuckDBPyConnection) -> None:
        if projection.pii_manifest:
            tongban_pii.create_pads_table(cursor, pads, key)

    if not projection.pii_manifest:
        yield prepare
        return
    assert key is not None  # checked by check_pii
    tongban_pii.register_udfs(con, key, names=projection.udf_names)
    tongban_pii.create_pads_table(con, pads, key)
    try:
        yield prepare
    finally:
        # Other connections to the shared instance must not keep a UDF whose connection is
        # gone (DuckDB 2.0 crashes calling it); never let this mask the original error.
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP TABLE IF EXISTS {pads}")
        with contextlib.suppress(duckdb.Error):
            tongban_pii.unregister_udfs(con, names=projection.udf_names)
