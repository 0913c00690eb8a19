"""The leak scanner of the tests: are raw personal values (ID numbers, names, phones) anywhere in
the files a consumer, a log or a run record can see?

Only tests use it (it checks tongban's promise that personal data leaves the restricted warehouse
as pseudonym and masked form only), so it lives here and not in the product package. A needle is
never shown raw: :class:`Leak` shows it masked, as tongban.common.pii masks identifiers.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import tempfile
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tongban.common.pii import _mask_identifier
from tongban.common.sqlquote import quote_literal


class LeakScanError(RuntimeError):
    """A file could not be scanned, so it cannot be declared free of raw values."""


@dataclass(frozen=True)
class Leak:
    """A raw value (``needle``) found in ``path`` at ``where``. Its repr shows the needle masked."""

    path: Path
    where: str
    needle: str = field(repr=False)

    @property
    def masked_needle(self) -> str:
        return _mask_identifier(self.needle)

    def __repr__(self) -> str:
        return f"Leak(path={str(self.path)!r}, where={self.where!r}, needle={self.masked_needle!r})"

    __str__ = __repr__


_CLASS_SPECIAL = frozenset("\\]^-[")


def _char_class(chars: Iterable[str]) -> str:
    """A regex character class of ``chars``, valid for both RE2 (DuckDB) and Python ``re``."""
    return "[" + "".join("\\" + c if c in _CLASS_SPECIAL else c for c in sorted(set(chars))) + "]"


class _NeedleGroup:
    """Needles that share a character class (ASCII ones, e.g. ID numbers and phones; the others, e.g.
    names). A needle can only occur inside a run of at least ``min_len`` characters of its class, so the
    search first extracts such runs — in DuckDB (vectorised RE2) or with one Python regex — and then
    checks each run position whose first two characters start some needle, for the lengths of those
    needles. Work is proportional to the length of the runs, not to the number of needles.
    """

    def __init__(self, needles: list[str]) -> None:
        self.needles = frozenset(needles)
        self.min_len = min(len(n) for n in needles)
        self.run_regex = _char_class("".join(needles)) + "{" + str(self.min_len) + ",}"
        self.run_pattern = re.compile(self.run_regex)
        anchors: dict[str, set[int]] = {}
        for needle in needles:
            anchors.setdefault(needle[:2], set()).add(len(needle))
        self.anchors = {a: sorted(lengths, reverse=True) for a, lengths in anchors.items()}

    def in_run(self, run: str, found: set[str]) -> None:
        anchors, needles = self.anchors, self.needles
        for i in range(len(run) - self.min_len + 1):
            lengths = anchors.get(run[i : i + 2])
            if lengths:
                for length in lengths:
                    candidate = run[i : i + length]
                    if len(candidate) == length and candidate in needles:
                        found.add(candidate)


class _Matcher:
    """Finds needles (exact, case-sensitive substrings) in texts and in the columns of relations."""

    def __init__(self, needles: Iterable[str], *, min_length: int) -> None:
        if min_length < 2:
            raise ValueError("min_length must be at least 2 (one character would match masked forms)")
        cleaned: set[str] = set()
        for raw in needles:
            if raw is None:
                continue
            for text in {str(raw).strip(), unicodedata.normalize("NFKC", str(raw)).strip()}:
                if len(text) >= min_length and "\x00" not in text:
                    cleaned.add(text)
        self.needles = sorted(cleaned)
        ascii_needles = [n for n in self.needles if n.isascii()]
        other_needles = [n for n in self.needles if not n.isascii()]
        self.groups = [_NeedleGroup(g) for g in (ascii_needles, other_needles) if g]

    def in_text(self, text: str) -> list[str]:
        found: set[str] = set()
        if not text:
            return []
        for group in self.groups:
            for match in group.run_pattern.finditer(text):
                group.in_run(match.group(), found)
        return sorted(found)

    def in_relation(self, con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
        """``(column, needle)`` for every column of ``relation`` (cast to VARCHAR) containing a needle."""
        if not self.needles:
            return []
        columns = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        found: set[tuple[str, str]] = set()
        for position, (name, dtype, *_rest) in enumerate(columns, start=1):
            if str(dtype).upper() == "BLOB":
                values = con.execute(
                    f"SELECT DISTINCT #{position} FROM {relation} WHERE #{position} IS NOT NULL"
                ).fetchall()
                text = "\n".join(t for (v,) in values for _, t in _decodings(bytes(v), binary=False))
                found.update((name, n) for n in self.in_text(text))
                continue
            value = f"CAST(#{position} AS VARCHAR)"
            hits: set[str] = set()
            for group in self.groups:
                runs = con.execute(
                    f"SELECT DISTINCT unnest(regexp_extract_all({value}, {quote_literal(group.run_regex)})) "
                    f"FROM {relation}"
                ).fetchall()
                for (run,) in runs:
                    group.in_run(run, hits)
            found.update((name, n) for n in hits)
        return sorted(found)


def _quote_scanned_ident(name: str) -> str:
    """Quote a schema/table name read from a scanned file (never used for anything but a SELECT)."""
    return '"' + name.replace('"', '""') + '"'


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape_json(text: str) -> str:
    """``\\uXXXX`` escapes (as ``json.dumps`` writes non-ASCII by default) decoded, surrogate pairs too."""
    decoded = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", errors="ignore")


def _decodings(data: bytes, *, binary: bool) -> Iterator[tuple[str, str]]:
    """``(label, text)`` views of ``data`` to search. Text also gets JSON ``\\u`` escapes, HTML entities
    and URL percent-encoding undone, each as a view of its own."""
    texts: list[tuple[str, str]] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        texts.append(("text (utf-16)", data.decode("utf-16", errors="ignore")))
    elif binary:
        # UTF-8 only: GB18030 turns random byte pairs into CJK characters, i.e. false hits
        return iter([("bytes (utf-8)", data.decode("utf-8", errors="ignore"))])
    else:
        try:
            texts.append(("text (utf-8)", data.decode("utf-8")))
        except UnicodeDecodeError:
            texts.append(("text (utf-8)", data.decode("utf-8", errors="ignore")))
            texts.append(("text (gb18030)", data.decode("gb18030", errors="ignore")))
    views = list(texts)
    for label, text in texts:
        if "\\u" in text:
            views.append((f"{label[:-1]}, \\u-unescaped)", _unescape_json(text)))
        if "&" in text:
            views.append((f"{label[:-1]}, HTML-unescaped)", html.unescape(text)))
        if "%" in text:
            views.append((f"{label[:-1]}, URL-decoded)", urllib.parse.unquote(text, errors="ignore")))
    return iter(views)


def _scan_bytes(path: Path, matcher: _Matcher, *, binary: bool) -> Iterator[Leak]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LeakScanError(f"cannot read {path}: {exc.strerror or exc}") from None
    seen: set[str] = set()
    for where, text in _decodings(data, binary=binary):
        for needle in matcher.in_text(text):
            if needle not in seen:
                seen.add(needle)
                yield Leak(path, where, needle)


def _scan_parquet(path: Path, matcher: _Matcher) -> Iterator[Leak]:
    con = duckdb.connect(":memory:")
    try:
        relation = f"read_parquet({quote_literal(str(path))}, hive_partitioning = false)"
        try:
            hits = matcher.in_relation(con, relation)
            kv = con.execute("SELECT key, value FROM parquet_kv_metadata(?)", [str(path)]).fetchall()
        except duckdb.Error as exc:
            raise LeakScanError(f"cannot scan Parquet file {path}: {type(exc).__name__}") from None
    finally:
        con.close()
    for column, needle in hits:
        yield Leak(path, f"column {column}", needle)
    meta = "\n".join(
        t for pair in kv for blob in pair for _, t in _decodings(bytes(blob or b""), binary=False)
    )
    for needle in matcher.in_text(meta):
        yield Leak(path, "key-value metadata", needle)
    yield from _scan_bytes(path, matcher, binary=True)


@contextlib.contextmanager
def _attached(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory connection with ``path`` attached read-only as ``scanned`` (a copy if locked)."""
    con = duckdb.connect(":memory:")
    tmp_dir: str | None = None
    try:
        # an exchange catalog's views name their files relative to the catalog's directory
        con.execute(f"SET file_search_path = {quote_literal(str(path.resolve().parent))}")
        try:
            con.execute(f"ATTACH {quote_literal(str(path.resolve()))} AS scanned (READ_ONLY)")
        except duckdb.Error:
            tmp_dir = tempfile.mkdtemp(prefix="tongban-leakscan-")
            copy = Path(tmp_dir) / path.name
            shutil.copyfile(path, copy)
            wal = path.with_name(path.name + ".wal")
            if wal.is_file():
                shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            try:
                con.execute(f"ATTACH {quote_literal(str(copy))} AS scanned (READ_ONLY)")
            except duckdb.Error as exc:
                raise LeakScanError(f"cannot open DuckDB file {path}: {type(exc).__name__}") from None
        con.execute("USE scanned")
        yield con
    finally:
        con.close()
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


def _scan_duckdb(path: Path, matcher: _Matcher) -> Iterator[Leak]:
    leaks: list[Leak] = []
    with _attached(path) as con:
        objects = con.execute(
            "SELECT 'table', schema_name, table_name, comment FROM duckdb_tables() "
            "WHERE database_name = 'scanned' "
            "UNION ALL SELECT 'view', schema_name, view_name, coalesce(comment, '') || chr(10) || sql FROM duckdb_views() "
            "WHERE database_name = 'scanned' AND NOT internal ORDER BY 2, 3"
        ).fetchall()
        for kind, schema, name, text in objects:
            qualified = f"scanned.{_quote_scanned_ident(schema)}.{_quote_scanned_ident(name)}"
            label = f"{kind} {schema}.{name}"
            try:
                hits = matcher.in_relation(con, qualified)
            except duckdb.Error as exc:
                raise LeakScanError(f"cannot scan {label} in {path}: {type(exc).__name__}") from None
            leaks.extend(Leak(path, f"{label} column {column}", needle) for column, needle in hits)
            leaks.extend(Leak(path, f"{label} definition", n) for n in matcher.in_text(text or ""))
        extra = con.execute(
            "SELECT string_agg(coalesce(comment, ''), chr(10)) FROM duckdb_columns() "
            "WHERE database_name = 'scanned'"
        ).fetchone()[0]
        macros = con.execute(
            "SELECT string_agg(coalesce(CAST(macro_definition AS VARCHAR), ''), chr(10)) "
            "FROM duckdb_functions() WHERE database_name = 'scanned' AND NOT internal"
        ).fetchone()[0]
        leaks.extend(Leak(path, "column comments", n) for n in matcher.in_text(extra or ""))
        leaks.extend(Leak(path, "macro definitions", n) for n in matcher.in_text(macros or ""))
    yield from leaks
    yield from _scan_bytes(path, matcher, binary=True)


#: Scanned as bytes decoded as UTF-8 only: GB18030 would turn their random byte pairs into CJK text.
_BINARY_SUFFIXES = frozenset(
    ".wal .gz .zip .zst .png .jpg .jpeg .gif .ico .woff .woff2 .ttf .pdf .xlsx".split()
)


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    child = Path(dirpath) / name
                    if child.is_file():
                        yield child
        elif path.is_file():
            yield path
        elif not path.exists():
            raise LeakScanError(f"nothing to scan at {path}")


def find_leaks(
    paths: Iterable[Path], needles: Iterable[str], *, limit: int = 100, min_length: int = 2
) -> list[Leak]:
    """Raw values (``needles``) found in ``paths`` (files, or directories walked recursively); at most
    ``limit`` leaks, one per (file, place, needle).

    * ``.parquet``: every column cast to VARCHAR (BLOBs decoded), the key-value metadata and the file's
      bytes as UTF-8 (compressed pages cannot be grepped, hence the column scan).
    * ``.duckdb``: attached read-only (a temporary copy if it is locked); every table and view of every
      schema (views over Parquet included), view definitions, comments and macros, plus the bytes.
    * anything else: the bytes decoded as UTF-8 (errors ignored) and, when they are not valid UTF-8, as
      GB18030 (UTF-16 when there is a BOM).

    Needles are stripped (and also searched in NFKC form); needles shorter than ``min_length`` (at least
    2) characters are skipped (a single character would match masked forms such as ``张*``); no needle
    left raises ValueError. Containment is exact and case-sensitive. A path that does not exist or a file
    that cannot be read raises :class:`LeakScanError` rather than pass as clean.
    """
    matcher = _Matcher(needles, min_length=min_length)
    if not matcher.needles:
        raise ValueError(f"no needles of at least {min_length} characters to search for")
    leaks: list[Leak] = []
    for path in _files(paths):
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            found = _scan_parquet(path, matcher)
        elif suffix == ".duckdb":
            found = _scan_duckdb(path, matcher)
        else:
            found = _scan_bytes(path, matcher, binary=suffix in _BINARY_SUFFIXES)
        for leak in found:
            leaks.append(leak)
            if len(leaks) >= limit:
                return leaks
    return leaks
