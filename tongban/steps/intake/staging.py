"""Stage a delivery as Parquet through DuckDB, part by part, without holding it in Python.

Each part becomes one or more Parquet *pieces* in the landing schema (every declared column as
text, then the provenance columns), its rows numbered across the delivery. The values are
those of the reference reader, :func:`tongban.steps.intake.readers.read_delivery`, exactly; the
reading is DuckDB's wherever it can promise that:

* **CSV** in UTF-8 (with or without a byte-order mark) is read by ``read_csv`` straight into
  the piece; GB18030/GBK is first transcoded to a temporary UTF-8 file, streaming. The header
  is read by the reference reader (its delimiter sniffing, its checks and messages); the rows
  by DuckDB with every field as text and an explicit ordinal that follows the file.
* **JSON Lines** in UTF-8 or GB18030 are read by ``read_json`` with every declared key typed
  JSON; strings, integers and booleans are rendered in SQL, and everything whose text Python
  renders differently (floats, objects, arrays other than of plain strings) goes through a
  Python function applying the reference reader's rule to that one value.
* **XLSX** is read by python-calamine row by row (the reference reader's cell-to-text rule) and
  streamed to a temporary CSV file that DuckDB reads (cheaper than handing it Python objects).

Where DuckDB and Python's readers disagree (DuckDB is more lenient in places: a trailing
delimiter, spaces around quotes, a lone carriage return as a line end, trailing commas or
``null`` records in JSON), a cheap scan of the bytes in the same pass that computes the sha256
finds the construct, and such a part — like one DuckDB cannot read at all, a JSON array, or
another encoding — is read by the reference reader instead, which gives its precise error or
the very same values. A sheet holds at most 1,048,575 rows, so memory for XLSX is bounded by
one part (python-calamine parses a whole sheet); for CSV and JSON Lines it does not grow with
the delivery.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tongban.common.hashing import combined_sha256
from tongban.steps.intake.readers import DeliveryReadError
from tongban.common.sqlquote import quote_literal
from tongban.steps.intake.readers import _first_significant_char, csv_header, detect_encoding, resolve_delivery
from tongban.steps.intake.readers import _json_text
from tongban.common.config import duckdb_memory_limit, limit_memory
from tongban.standards.targets.dbt import quote_source_column
from tongban.steps.intake.readers import _cell_text
from tongban.steps.intake.readers import _check_header, open_xlsx
from tongban.steps.intake.readers import read_delivery

#: DuckDB's memory while staging (when tongban's own limit is not lower)
STAGING_MEMORY_LIMIT = "256MB"
_CHUNK = 4 * 1024 * 1024
#: text encodings (as detect_encoding names them) DuckDB reads, after transcoding where needed
_FAST_ENCODINGS = {"csv": ("utf-8", "utf-8-sig", "gb18030"), "jsonl": ("utf-8", "gb18030")}
#: nullstr for read_csv that no field holds: an empty field must stay '' (the reader never gives None)
_NO_NULL = "\x01tongban-no-null\x01"
_UDF = "tongban_json_text"

log = logging.getLogger(__name__)


class _NotEquivalent(Exception):
    """The DuckDB path cannot promise the reference reader's result for this part."""


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
    slow: str | None = None  # why the reference reader reads this part (None: DuckDB does)
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


class PartsDiffer(DeliveryReadError):
    """A part's columns are not those of the first part."""


# --------------------------------------------------------------------------------------------
# the pass over the bytes: sha256, transcoding, the constructs DuckDB reads differently

_CSV_AROUND_QUOTES = {d: re.compile(rb"(?:^|\n|" + re.escape(d.encode()) + rb")[ \t]+\"|\"[ \t]+(?:"
                                    + re.escape(d.encode()) + rb"|\r|\n|\Z)") for d in (",", "\t", "|", ";")}
_JSON_TRAILING_COMMA = re.compile(rb",[ \t]*[}\]]")
_JSON_NULL_RECORD = re.compile(rb"\n[ \t]*null")
_JSON_NON_FINITE = re.compile(rb"[:,\[][ \t]*-?(?:[nN][aA][nN]|[iI][nN][fF])")
_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?=\n)")


def _non_blank_lines(block: bytes) -> int:
    """Lines of ``block`` with more than spaces, tabs and carriage returns (the last one may be
    unterminated: the end of the file)."""
    lines = block.count(b"\n")
    blank = len(_BLANK_LINE.findall(b"\n" + block))
    if block and not block.endswith(b"\n"):
        lines += 1
        blank += not block[block.rfind(b"\n") + 1:].strip(b" \t\r")
    return lines - blank


def _lone_cr(block: bytes) -> bool:
    cr = block.count(b"\r")
    return bool(cr) and cr != block.count(b"\r\n")


def _csv_suspect(block: bytes, delimiter: str) -> str | None:
    if b"\x00" in block:
        return "a NUL byte"
    if _lone_cr(block):
        return "a carriage return that does not end a line"
    if b'"' in block and (b' "' in block or b'\t"' in block or b'" ' in block or b'"\t' in block) \
            and _CSV_AROUND_QUOTES[delimiter].search(b"\n" + block):
        return "spaces around a quoted field"
    return None


def _jsonl_suspect(block: bytes) -> str | None:
    if b"\x00" in block:
        return "a NUL byte"
    if _lone_cr(block):
        return "a carriage return that does not end a line"
    if _JSON_TRAILING_COMMA.search(block):  # one regex (literal prefix) beats four substring searches
        return "a trailing comma"
    if b"null" in block and _JSON_NULL_RECORD.search(b"\n" + block):
        return "a null record"
    lower = block.lower()
    if (b"nan" in lower or b"inf" in lower) and _JSON_NON_FINITE.search(block):
        return "NaN or Infinity"  # DuckDB also takes nan, inf, ... where Python takes NaN, Infinity only
    return None


def _scan(part: Part, work_dir: Path, index: int) -> None:
    """One streaming pass: the sha256 of the bytes; for text parts DuckDB may read, the UTF-8
    text it reads (transcoded when needed) and whether it holds a construct DuckDB reads
    differently from the reference reader."""
    h = hashlib.sha256()
    check = None
    if part.slow is None and part.format == "csv":
        delimiter = part.delimiter or ","
        check = lambda block: _csv_suspect(block, delimiter)  # noqa: E731
    elif part.slow is None and part.format == "jsonl":
        part.records = 0

        def check(block: bytes) -> str | None:
            # the records the reference reader will find: the lines that are not blank
            part.records += _non_blank_lines(block)
            return _jsonl_suspect(block)
    transcode = check is not None and part.encoding not in ("utf-8", "utf-8-sig")
    decoder = codecs.getincrementaldecoder(part.encoding or "utf-8")("strict") if transcode else None
    out = None
    if transcode:
        part.utf8_path = work_dir / f"part-{index}.utf8"
        out = part.utf8_path.open("wb")
    elif check is not None:
        part.utf8_path = part.path
    carry = b""
    try:
        with part.path.open("rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                h.update(chunk)
                if check is None:
                    if not chunk:
                        break
                    continue
                if decoder is not None:
                    try:
                        text = decoder.decode(chunk, final=not chunk).encode("utf-8")
                    except UnicodeDecodeError:
                        part.slow, check = f"not valid {part.encoding}", None  # the reader says where
                        continue
                    out.write(text)
                else:
                    text = chunk
                data = carry + text
                cut = len(data) if not chunk else data.rfind(b"\n") + 1  # whole lines only
                block, carry = data[:cut], data[cut:]
                if block and (why := check(block)):
                    part.slow, check = why, None
                if not chunk:
                    break
    finally:
        if out is not None:
            out.close()
    part.sha256 = h.hexdigest()
    if part.slow is not None and transcode and part.utf8_path is not None:
        part.utf8_path.unlink(missing_ok=True)
        part.utf8_path = None


def inspect_part(path: Path, format: str | None, sheet: str | int | None, work_dir: Path, index: int) -> Part:
    """Check the part can be read (the reference reader's checks and messages for the file, its
    encoding and a CSV header), hash it, and decide who reads it."""

    fmt = resolve_delivery(path, format, sheet)
    part = Part(path=path, format=fmt, sheet=sheet)
    if fmt != "xlsx":
        part.encoding = detect_encoding(path)
        if fmt in ("json", "jsonl"):  # the content decides, as in the reference reader
            first = _first_significant_char(path, part.encoding)
            if first == "{":
                part.format = "jsonl"
            elif first == "[":
                part.slow = "a JSON array"  # one document: the reference reader parses it whole
            else:
                part.slow = "not JSON Lines"  # the reference reader says what it is
        if part.format in _FAST_ENCODINGS and part.encoding not in _FAST_ENCODINGS[part.format]:
            part.slow = f"encoding {part.encoding}"
        if part.format == "csv":
            part.columns, part.delimiter, start, end = csv_header(path, part.encoding)
            if start != 1 or end != 1:
                part.slow = "the header is not the first line"
    _scan(part, work_dir, index)
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
    import duckdb



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
    con.create_function(_UDF, lambda text: _json_text(json.loads(text)), ["VARCHAR"], "VARCHAR",
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
    cols = ", ".join(f"c{position[c]} as {_q(c)}" if c in position else f"null::varchar as {_q(c)}"
                     for c in declared)
    ragged = f"c{len(columns) - 1} is null or extra is not null" if columns else "extra is not null"
    row = f"case when {ragged} then error('tongban: a row has another number of fields') " \
          f"else {offset} + ordinality end"
    return _copy_piece(con, f"select {cols}, {prov(row)} from {reader}", piece)


def _json_value_sql(col: str) -> str:
    """A JSON value (DuckDB's JSON text of it) as the reference reader's text (``_json_text``),
    decided on the text where that is safe and cheap; everything else goes through the
    reference rule in Python (``_UDF``)."""
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
    names = [f"j{k}" for k in range(len(declared))]
    spec = ", ".join(f"{quote_literal(c)}: 'JSON'" for c in declared)
    reader = (f"read_json({quote_literal(str(part.utf8_path))}, format = 'newline_delimited', "
              f"columns = {{{spec}}}, auto_detect = false) with ordinality as src({', '.join(names)}, ordinality)")
    cols = ", ".join(f"{_json_value_sql(n)} as {_q(c)}" for n, c in zip(names, declared, strict=True))
    return _copy_piece(con, f"select {cols}, {prov(f'{offset} + ordinality')} from {reader}", piece)


def _write_xlsx_text(fh, rows_iter, width: int, kept: int, offset: int) -> int:
    """python-calamine's rows as tab-separated text, each with its row number last: the
    reference reader's cells (``_cell_text``; an empty cell is an empty field, which DuckDB reads
    as NULL, and the rule never gives ``''``), its empty rows (kept only when a non-empty row
    follows). A row that needs quoting goes through the csv module; the rest are joined, which
    is several times cheaper."""

    quoted = csv.writer(fh, delimiter="\t", lineterminator="\n")
    rows = pending = 0
    for raw in rows_iter:
        values = [v if type(v) is str else (_cell_text(v) or "") for v in raw]
        if len(values) != width:
            raise _NotEquivalent("a row wider than the header")
        if not any(values):
            pending += 1  # kept only if a non-empty row follows
            continue
        if kept < width:
            if any(values[kept:]):
                raise _NotEquivalent("values right of the header")  # the reference reader rejects it
            del values[kept:]
        for _ in range(pending):
            rows += 1
            fh.write(f"{chr(9) * kept}{offset + rows}\n")
        pending = 0
        rows += 1
        values.append(str(offset + rows))
        line = "\t".join(values)
        if line.count("\t") != kept or '"' in line or "\n" in line or "\r" in line:
            quoted.writerow(values)
        else:
            fh.write(line)
            fh.write("\n")
    return rows


def _stage_xlsx(con, part: Part, declared: list[str], prov, offset: int, piece: Path, work_dir: Path,
                index: int) -> int:
    """python-calamine's rows, as text by the reference reader's rule, streamed to a temporary
    text file that DuckDB reads into the piece: cheaper than handing DuckDB Python objects, and
    nothing accumulates in memory but python-calamine's sheet."""

    text = work_dir / f"part-{index}.xlsx.tsv"
    try:
        with open_xlsx(part.path, part.sheet) as (name, header, rows_iter):
            width = len(header)
            kept = width
            while kept and header[kept - 1] is None:
                kept -= 1  # unnamed columns on the right: formatting leftovers if they stay empty
            try:
                columns = _check_header(part.path, header[:kept], where=f"first row of sheet {name!r}", excel=True)
            except DeliveryReadError:
                raise _NotEquivalent("the header") from None  # the reference reader names the column
            with text.open("w", encoding="utf-8", newline="") as fh:
                rows = _write_xlsx_text(fh, rows_iter, width, kept, offset)
        names = [f"c{k}" for k in range(kept)]
        spec = ", ".join([*(f"{quote_literal(n)}: 'VARCHAR'" for n in names), "'n': 'BIGINT'"])
        reader = (f"read_csv({quote_literal(str(text))}, columns = {{{spec}}}, header = false, auto_detect = false, "
                  f"delim = '\t', quote = '\"', escape = '\"', strict_mode = true, allow_quoted_nulls = false)")
        position = {c: k for k, c in enumerate(columns)}
        cols = ", ".join(f"c{position[c]} as {_q(c)}" if c in position else f"null::varchar as {_q(c)}"
                         for c in declared)
        copied = _copy_piece(con, f"select {cols}, {prov('n')} from {reader}", piece)
    except UnicodeEncodeError as exc:
        raise _NotEquivalent(f"text that is not UTF-8 ({exc.reason})") from None
    finally:
        text.unlink(missing_ok=True)
    if copied != rows:
        raise _NotEquivalent(f"{copied} rows read back, {rows} written")
    part.columns = columns
    return copied


def _stage_python(con, part: Part, declared: list[str], prov, offset: int, piece: Path) -> int:
    import duckdb


    d = read_delivery(part.path, part.format if part.format != "jsonl" else "json", sheet=part.sheet,
                      sha256=part.sha256, encoding=part.encoding)
    part.columns, part.columns_exact, part.format, part.encoding = d.columns, True, d.format, d.encoding
    frame = d.frame
    names = {c: f"c{k}" for k, c in enumerate(frame.columns)}
    frame.columns = list(names.values())
    con.register("tongban_python_frame", frame.assign(n=range(offset + 1, offset + len(frame) + 1)))
    try:
        cols = ", ".join(f"{names[c]}::varchar as {_q(c)}" if c in names else f"null::varchar as {_q(c)}"
                         for c in declared)
        return _copy_piece(con, f"select {cols}, {prov('n')} from tongban_python_frame", piece)
    except duckdb.InvalidInputException as exc:  # e.g. a JSON escape of a lone surrogate (\ud800)
        raise DeliveryReadError(
            part.path, f"holds a value that is not valid Unicode text ({str(exc).splitlines()[0][:160]}) — "
                       "fix the value and re-deliver the file") from None
    finally:
        con.unregister("tongban_python_frame")


def _present_keys(con, piece: Path, declared: list[str]) -> list[str]:
    counts = con.execute(f"select {', '.join(f'count({_q(c)})' for c in declared)} "
                         f"from read_parquet({quote_literal(str(piece))})").fetchall()[0]
    return [c for c, n in zip(declared, counts, strict=True) if n]


def stage_part(con, part: Part, *, declared: list[str], required: set[str], source_id: str, sha256: str,
               run_id: str, offset: int, work_dir: Path, index: int) -> Part:
    """Stage one part (rows numbered from ``offset`` + 1) as pieces in ``work_dir``."""
    import duckdb

    def prov(row_expr: str) -> str:
        return _provenance_sql(source_id, sha256, run_id, row_expr)

    if part.slow is None:
        piece = work_dir / f"part-{index}.parquet"
        try:
            if part.format == "csv":
                part.pieces = [piece]
                part.rows = _stage_csv(con, part, declared, prov, offset, piece)
            elif part.format == "jsonl":
                part.pieces = [piece]
                part.rows = _stage_jsonl(con, part, declared, prov, offset, piece)
                if part.rows != part.records:
                    raise _NotEquivalent(f"{part.rows} records read, {part.records} lines")
                part.columns, part.columns_exact = _present_keys(con, piece, declared), False
                if required - set(part.columns):
                    raise _NotEquivalent("a required key without values")  # missing, or only nulls?
            else:
                part.pieces = [piece]
                part.rows = _stage_xlsx(con, part, declared, prov, offset, piece, work_dir, index)
            part.reader = "duckdb"
        except (duckdb.Error, _NotEquivalent) as exc:
            part.slow = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            for p in part.pieces:
                p.unlink(missing_ok=True)
            part.pieces = []
    if part.utf8_path is not None and part.utf8_path != part.path:
        part.utf8_path.unlink(missing_ok=True)
        part.utf8_path = None
    if part.slow is not None:
        log.info("%s: read by the reference reader (%s)", part.path, part.slow)
        piece = work_dir / f"part-{index}.parquet"
        part.pieces = [piece]
        part.rows = _stage_python(con, part, declared, prov, offset, piece)
        part.reader = "python"
    return part


def present_columns(part: Part) -> list[str]:
    """The part's columns exactly (for JSON Lines read by DuckDB, ``columns`` holds only the
    declared keys that have a value somewhere; a key present only with nulls is found here)."""
    if part.columns_exact:
        return list(part.columns or [])
    if part.encoding == "utf-8":
        import duckdb

        con = duckdb.connect()
        try:
            return [k for (k,) in con.execute(
                "select distinct unnest(json_keys(json)) from read_json_objects(?, format = 'newline_delimited')",
                [str(part.path)]).fetchall()]
        finally:
            con.close()

    return read_delivery(part.path, sheet=part.sheet, sha256=part.sha256, encoding=part.encoding).columns


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
