"""Stage a delivery as Parquet through DuckDB, part by part, without holding it in Python.

Each part becomes a Parquet *piece* in the landing schema (every declared column as text, then
the provenance columns), its rows numbered across the delivery. One reader:

* **CSV** is read by DuckDB's ``read_csv`` straight into the piece (a file in another encoding
  than UTF-8 is first transcoded into the work directory, streaming, by :mod:`.scan`). The
  header is read by :mod:`.csvpass` (its delimiter sniffing, its checks and messages); the rows
  by DuckDB with every field as text and an explicit ordinal that follows the file.
* **JSON Lines** are read by ``read_json`` with every declared key typed JSON; strings,
  integers and booleans are rendered in SQL, and everything whose text Python renders
  differently (floats, objects, arrays other than of plain strings) goes through a Python
  function applying :func:`.jsonpass.json_text` to that one value.
* **XLSX** is read by fastexcel into Arrow, which DuckDB reads (:mod:`.xlsx`).

What DuckDB cannot read as it is — a construct :mod:`.scan` finds in the same pass that
computes the sha256 (DuckDB is more lenient in places), a JSON array, a row DuckDB refuses —
goes through one streaming Python pass (:mod:`.csvpass`, :mod:`.jsonpass`) that gives the
precise error or writes the rows to a UTF-8 text file in the work directory, which DuckDB reads
into the piece. Memory does not grow with the delivery for CSV and JSON Lines; for XLSX it is
bounded by one sheet (at most 1,048,575 rows).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tongban.common.config import duckdb_memory_limit, limit_memory
from tongban.common.hashing import combined_sha256
from tongban.common.sqlquote import quote_literal
from tongban.standards.targets.dbt import quote_source_column
from tongban.steps.intake import xlsx
from tongban.steps.intake.csvpass import Sink, csv_header, csv_to_sink
from tongban.steps.intake.encoding import detect_encoding, first_significant_char
from tongban.steps.intake.jsonpass import json_text, json_to_sink, jsonl_keys
from tongban.steps.intake.readers import DeliveryReadError, PartsDiffer, resolve_delivery
from tongban.steps.intake.scan import scan

__all__ = ["Part", "PartsDiffer", "Staged", "connect", "limit_threads", "present_columns", "stage_delivery"]

#: DuckDB's memory while staging (when tongban's own limit is not lower)
STAGING_MEMORY_LIMIT = "256MB"
#: nullstr for read_csv that no field holds: an empty field must stay '' (the reader never gives None)
_NO_NULL = "\x01tongban-no-null\x01"
_UDF = "tongban_json_text"

log = logging.getLogger(__name__)


class _NotEquivalent(Exception):
    """DuckDB's reading of this part is not intake's: the Python pass reads it."""


@dataclass
class Part:
    """One file of a delivery, after the pass over its bytes, then after staging."""

    path: Path
    format: str  # csv | json (an array) | jsonl | xlsx; "json" until the content is seen
    sheet: str | int | None
    encoding: str | None = None
    sha256: str = ""
    columns: list[str] | None = None  # the part's columns (CSV: the header, known before staging)
    columns_exact: bool = True  # False: JSON Lines read by DuckDB (the declared keys that hold values)
    delimiter: str | None = None
    utf8_path: Path | None = None  # the UTF-8 text DuckDB reads (the file, or its transcoding)
    slow: str | None = None  # why the Python pass reads this part (None: DuckDB does)
    reader: str = ""  # duckdb | python, once staged
    records: int | None = None  # JSON Lines: the non-blank lines (DuckDB must find as many records)
    rows: int = 0
    pieces: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "rows": self.rows, "sha256": self.sha256}


@dataclass
class Staged:
    """A whole delivery staged: its parts in order and their pieces (in row order)."""

    parts: list[Part]
    sha256: str
    declared: list[str]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def pieces(self) -> list[Path]:
        return [piece for p in self.parts for piece in p.pieces]

    def relation(self) -> str:
        """SQL for all staged rows, in row order (DuckDB keeps the order of the file list)."""
        files = ", ".join(quote_literal(str(p)) for p in self.pieces)
        return f"read_parquet([{files}])"


def inspect_part(path: Path, format: str | None, sheet: str | int | None, work_dir: Path, index: int) -> Part:
    """Check the part can be read (the file, its encoding, a CSV header: with their messages),
    hash it, and decide who reads it."""
    fmt = resolve_delivery(path, format, sheet)
    part = Part(path=path, format=fmt, sheet=sheet)
    if fmt != "xlsx":
        part.encoding = detect_encoding(path)
        if fmt in ("json", "jsonl"):  # the content decides between an array and JSON Lines
            first = first_significant_char(path, part.encoding)
            if first == "{":
                part.format = "jsonl"
            else:
                part.format, part.slow = "json", "a JSON array" if first == "[" else "not JSON Lines"
        if part.format == "csv":
            part.columns, part.delimiter, start, end = csv_header(path, part.encoding)
            if start != 1 or end != 1:
                part.slow = "the header is not the first line"
    scan(part, work_dir, index)
    return part


# --------------------------------------------------------------------------------------------
# staging


_lane = threading.local()


def limit_threads(threads: Callable[[], int | None] | None) -> None:
    """DuckDB threads of the staging connections this thread opens from now on: ``threads()``
    asked at each connection (None: DuckDB's default, the cores). Intake's DuckDB lane leaves a
    core to the XLSX lane while it runs, whose Python thread would otherwise compete with
    DuckDB's threads for both cores."""
    _lane.threads = threads


def connect(work_dir: Path):
    """A DuckDB connection for staging: bounded memory, spilling to ``work_dir``, order kept."""
    # tongban's DuckDB memory limit (TONGBAN_DUCKDB_MEMORY_LIMIT), at most STAGING_MEMORY_LIMIT:
    # staging streams, and DuckDB would otherwise fill whatever it may while writing Parquet.
    # Beyond it DuckDB spills to the work directory; intake's memory stays flat in the delivery.
    con = limit_memory(duckdb.connect(), work_dir / "duckdb_tmp")
    project = _bytes(duckdb_memory_limit())
    if project is None or project > _bytes(STAGING_MEMORY_LIMIT):
        con.execute(f"set memory_limit = {quote_literal(STAGING_MEMORY_LIMIT)}")
    con.execute("set preserve_insertion_order = true")
    threads = getattr(_lane, "threads", None)
    if threads is not None and (n := threads()):
        con.execute(f"set threads = {int(n)}")
    con.create_function(_UDF, lambda text: json_text(json.loads(text)), ["VARCHAR"], "VARCHAR",
                        side_effects=False)
    return con


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _bytes(size: str) -> int | None:
    """'256MB', '1 GiB', ... in bytes (None when it is not such a size)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", size)
    unit = _UNITS.get((m.group(2) or "b").lower()) if m else None
    try:
        return int(float(m.group(1)) * unit) if m and unit else None
    except ValueError:
        return None


def _q(name: str) -> str:
    return quote_source_column(name)


def _copy_piece(con, select: str, piece: Path) -> int:
    return int(con.execute(f"copy ({select}) to {quote_literal(str(piece))} (format parquet, compression zstd)")
               .fetchall()[0][0])


def _provenance_sql(source_id: str, sha256: str, run_id: str, row_expr: str) -> str:
    return (f"{quote_literal(source_id)} as source_id, {quote_literal(sha256)} as delivery_sha256, "
            f"({row_expr})::bigint as source_row_number, {quote_literal(run_id)} as run_id")


def _select(texts: list[str], declared: list[str], provenance: str) -> str:
    return ", ".join([*(f"{t} as {_q(c)}" for t, c in zip(texts, declared, strict=True)), provenance])


def _stage_csv(con, part: Part, declared: list[str], prov, offset: int, piece: Path) -> int:
    columns = part.columns or []
    names = [f"c{k}" for k in range(len(columns))]
    # one column more than the header: a row with an extra (even empty) field fills it; a short
    # row leaves the last column NULL (null_padding, and no field is ever read as NULL)
    spec = ", ".join(f"{quote_literal(n)}: 'VARCHAR'" for n in [*names, "extra"])
    reader = (f"read_csv({quote_literal(str(part.utf8_path))}, columns = {{{spec}}}, header = true, "
              f"auto_detect = false, delim = {quote_literal(part.delimiter or ',')}, quote = '\"', escape = '\"', "
              f"strict_mode = true, null_padding = true, allow_quoted_nulls = false, "
              f"nullstr = {quote_literal(_NO_NULL)}, parallel = true) with ordinality")
    position = {c: k for k, c in enumerate(columns)}
    texts = [f"c{position[c]}" if c in position else "null::varchar" for c in declared]
    ragged = f"c{len(columns) - 1} is null or extra is not null" if columns else "extra is not null"
    row = f"case when {ragged} then error('tongban: a row has another number of fields') " \
          f"else {offset} + ordinality end"
    return _copy_piece(con, f"select {_select(texts, declared, prov(row))} from {reader}", piece)


def _json_value_sql(col: str) -> str:
    """A JSON value (DuckDB's JSON text of it) as :func:`.jsonpass.json_text` renders it, decided
    on the text where that is safe and cheap; everything else goes through that rule in Python
    (``_UDF``)."""
    t = f"{col}::varchar"
    return (f"case when {col} is null then null "
            # a string without escapes: the text between the quotes
            f"when starts_with({t}, '\"') then case when contains({t}, '\\') then {col} ->> '$' "
            f"else substring({t}, 2, length({t}) - 2) end "
            f"when {t} = 'true' or {t} = 'false' then {t} "
            # an integer: its digits are Python's int() text (JSON has no leading zeros or '+')
            f"when regexp_full_match({t}, '-?[0-9]+') then case when {t} = '-0' then '0' else {t} end "
            # an array of strings without escapes: DuckDB's compact text is Python's
            f"when regexp_full_match({t}, '\\[(\"[^\"\\\\]*\"(,\"[^\"\\\\]*\")*)?\\]') then {t} "
            f"else {_UDF}({t}) end")


def _stage_jsonl(con, part: Part, declared: list[str], prov, offset: int, piece: Path) -> int:
    if not declared:
        raise _NotEquivalent("no declared keys")  # read_json needs a column: the pass finds the keys
    names = [f"j{k}" for k in range(len(declared))]
    spec = ", ".join(f"{quote_literal(c)}: 'JSON'" for c in declared)
    reader = (f"read_json({quote_literal(str(part.utf8_path))}, format = 'newline_delimited', "
              f"columns = {{{spec}}}, auto_detect = false) with ordinality as src({', '.join(names)}, ordinality)")
    texts = [_json_value_sql(n) for n in names]
    return _copy_piece(con, f"select {_select(texts, declared, prov(f'{offset} + ordinality'))} from {reader}",
                       piece)


def _stage_xlsx(con, part: Part, declared: list[str], prov, offset: int, piece: Path) -> int:
    sheet = xlsx.open_sheet(part.path, part.sheet)
    part.columns = sheet.columns
    sheet.register(con)
    try:
        return _copy_piece(con, f"select {_select(sheet.texts(declared), declared, prov('n'))} "
                                f"from {sheet.source(offset)}", piece)
    except duckdb.Error as exc:
        raise DeliveryReadError(part.path, f"sheet {sheet.name!r} cannot be read ({type(exc).__name__}) — "
                                           "re-save the workbook in Excel or export it again") from None
    finally:
        sheet.unregister(con)


def _stage_python(con, part: Part, declared: list[str], prov, offset: int, piece: Path) -> int:
    """The Python pass: the part's rows into a text file beside the piece (or its precise error),
    which DuckDB reads into the piece."""
    text = piece.with_suffix(".pass.csv")
    sink = Sink(text, part.path)
    try:
        try:
            if part.format == "csv":
                part.columns = csv_to_sink(part.path, part.encoding, declared, sink, offset)
            else:
                part.format, part.columns = json_to_sink(part.path, part.encoding, declared, sink, offset)
        finally:
            sink.close()
        part.columns_exact = True
        names = [f"c{k}" for k in range(len(declared))]
        spec = ", ".join([*(f"{quote_literal(n)}: 'VARCHAR'" for n in names), "'n': 'BIGINT'"])
        reader = (f"read_csv({quote_literal(str(text))}, columns = {{{spec}}}, header = false, auto_detect = false, "
                  f"delim = ',', quote = '\"', escape = '\"', new_line = '\\n', strict_mode = true, "
                  f"allow_quoted_nulls = false)")
        return _copy_piece(con, f"select {_select(names, declared, prov('n'))} from {reader}", piece)
    finally:
        text.unlink(missing_ok=True)


def _present_keys(con, piece: Path, declared: list[str]) -> list[str]:
    counts = con.execute(f"select {', '.join(f'count({_q(c)})' for c in declared)} "
                         f"from read_parquet({quote_literal(str(piece))})").fetchall()[0]
    return [c for c, n in zip(declared, counts, strict=True) if n]


def _stage_duckdb(con, part: Part, declared: list[str], required: set[str], prov, offset: int,
                  piece: Path) -> None:
    """DuckDB reads the part; :class:`_NotEquivalent` when its reading is not intake's."""
    if part.format == "csv":
        part.rows = _stage_csv(con, part, declared, prov, offset, piece)
    else:
        part.rows = _stage_jsonl(con, part, declared, prov, offset, piece)
        if part.rows != part.records:
            raise _NotEquivalent(f"{part.rows} records read, {part.records} lines")
        part.columns, part.columns_exact = _present_keys(con, piece, declared), False
        if required - set(part.columns):
            raise _NotEquivalent("a required key without values")  # missing, or only nulls?


def stage_part(con, part: Part, *, declared: list[str], required: set[str], source_id: str, sha256: str,
               run_id: str, offset: int, work_dir: Path, index: int) -> Part:
    """Stage one part (rows numbered from ``offset`` + 1) as a piece in ``work_dir``. (Keyword
    arguments: the provenance every row carries and where the part stands in the delivery.)"""

    def prov(row_expr: str) -> str:
        return _provenance_sql(source_id, sha256, run_id, row_expr)

    piece = work_dir / f"part-{index}.parquet"
    part.pieces = [piece]
    if part.format == "xlsx":
        part.rows, part.reader = _stage_xlsx(con, part, declared, prov, offset, piece), "duckdb"
        return part
    if part.slow is None:
        try:
            _stage_duckdb(con, part, declared, required, prov, offset, piece)
            part.reader = "duckdb"
        except (duckdb.Error, _NotEquivalent) as exc:
            part.slow = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            piece.unlink(missing_ok=True)
    if part.utf8_path is not None and part.utf8_path != part.path:
        part.utf8_path.unlink(missing_ok=True)
        part.utf8_path = None
    if part.slow is not None:
        log.info("%s: read by the Python pass (%s)", part.path, part.slow)
        part.rows = _stage_python(con, part, declared, prov, offset, piece)
        part.reader = "python"
    return part


def present_columns(part: Part) -> list[str]:
    """The part's columns exactly, in first-seen order (for JSON Lines read by DuckDB, ``columns``
    holds only the declared keys that have a value somewhere; a key present only with nulls is
    found here)."""
    if part.columns_exact:
        return list(part.columns or [])
    if part.encoding != "utf-8":
        return jsonl_keys(part.path, part.encoding or "utf-8")
    with duckdb.connect() as con:
        return [k for (k,) in con.execute(
            "select k from (select o, unnest(json_keys(json)) as k, generate_subscripts(json_keys(json), 1) as i "
            "from read_json_objects(?, format = 'newline_delimited') with ordinality as t(json, o)) "
            "group by k order by min({'o': o, 'i': i})", [str(part.path)]).fetchall()]


def _check_same_columns(parts: list[Part], declared: list[str] | None = None) -> None:
    """Every part must have the first part's columns (in any order): CSV headers before reading
    the rows, XLSX headers as each part is read. JSON has no header: each part is checked for
    the required columns on its own."""
    first = parts[0]
    if first.columns is None or first.format not in ("csv", "xlsx"):
        return
    for p in parts[1:]:
        if p.columns is None or p.format not in ("csv", "xlsx"):
            continue
        missing = [c for c in first.columns if c not in p.columns]
        extra = [c for c in p.columns if c not in first.columns]
        if missing or extra:
            # a column the mapping declares is named; any other came from the file's content: counted
            def names(cols: list[str]) -> str:
                known = [repr(c) for c in cols if declared is not None and c in declared]
                others = len(cols) - len(known)
                return ", ".join(known + ([f"{others} undeclared column(s)"] if others else []))
            what = "lacks the column(s) " + names(missing) if missing else "has the column(s) " + names(extra)
            other = "has" if missing else "lacks"
            raise PartsDiffer(
                p.path, f"part {p.path.name} of the delivery {what}, which the first part {first.path.name} "
                        f"{other} — every part must have the same header: re-deliver the part with the "
                        f"columns of the others")


def stage_delivery(paths: list[Path], *, format: str | None, sheet: str | int | None, declared: list[str],
                   required: set[str] | None = None, work_dir: Path, source_id: str = "",
                   run_id: str = "") -> Staged:
    """Stage every part of a delivery in ``work_dir`` (which the caller removes). Raises
    :class:`DeliveryReadError` for a part that cannot be read (naming it) and
    :class:`PartsDiffer` for parts whose headers differ."""
    work_dir.mkdir(parents=True, exist_ok=True)
    required = required or set()
    parts = [inspect_part(p, format, sheet, work_dir, k) for k, p in enumerate(paths)]
    _check_same_columns(parts, declared)  # CSV: before any row is read
    sha256 = combined_sha256([(p.path.name, p.sha256) for p in parts])
    con = connect(work_dir)
    try:
        offset = 0
        for k, part in enumerate(parts):
            stage_part(con, part, declared=declared, required=required, source_id=source_id, sha256=sha256,
                       run_id=run_id, offset=offset, work_dir=work_dir, index=k)
            offset += part.rows
            _check_same_columns(parts[:k + 1], declared)  # XLSX: its header is known now
    finally:
        con.close()
        shutil.rmtree(work_dir / "duckdb_tmp", ignore_errors=True)
    return Staged(parts=parts, sha256=sha256, declared=declared)
