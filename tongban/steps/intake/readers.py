"""Read a province delivery (JSON, JSON Lines, CSV or XLSX) into a frame of raw text values.

The readers do no type inference and no cleaning: every value is the delivered text (``str``) or
``None`` when the delivery has no value, so the mapping layer sees exactly what the province sent.

Encoding detection for text formats does not trust a statistical detector on its own: Chinese
files in GBK are routinely misread as Big5, CP949, EUC-JP, UTF-16 or Latin-1 by detectors when the
sample is short. The order is: byte-order mark, strict UTF-8, strict GB18030 (a superset of GBK),
and only then charset-normalizer's best guess. See :func:`detect_encoding`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tongban.common.hashing import sha256_file

__all__ = ["Delivery", "DeliveryReadError", "detect_encoding", "read_delivery"]

# Files up to this size are decoded completely while detecting the encoding; larger files are
# sampled from the head (cut at a line boundary) and decoded strictly while they are parsed.
LARGE_FILE_BYTES = 8 * 1024 * 1024
# Size of one detection sample for large files.
SAMPLE_BYTES = 1024 * 1024

_SUFFIX_FORMATS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
}
_FORMAT_ALIASES = {
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "csv": "csv",
    "txt": "csv",
    "xlsx": "xlsx",
}
_DELIMITERS = (",", "\t", "|", ";")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", "|": "pipe", ";": "semicolon"}

# Byte-order marks, longest first (the UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0 control characters that never occur in a text delivery (tab, newlines and form feed excluded).
_BINARY_CHARS = re.compile("[\x00-\x08\x0e-\x1f]")
_ASCII_BYTES = bytes(range(128))
# json.dumps builds a new encoder per call when given options; these are reused.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_PLAIN_JSON = json.JSONEncoder()
#: every integer below this is exactly a float (53-bit significand)
_EXACT_FLOAT_INTEGERS = 2**53


class DeliveryReadError(Exception):
    """A delivery cannot be read. The message starts with the file path and says what to do."""

    def __init__(self, path: Path | str, problem: str, *, line: int | None = None, offset: int | None = None):
        self.path = Path(path)
        self.problem = problem
        self.line = line
        self.offset = offset
        super().__init__(f"{path}: {problem}")


@dataclass
class Delivery:
    path: Path
    format: str  # "json" | "jsonl" | "csv" | "xlsx"
    encoding: str | None  # detected encoding for text formats; None for xlsx
    sha256: str
    columns: list[str]
    frame: pd.DataFrame = field(repr=False)

    @property
    def row_count(self) -> int:
        return len(self.frame)


# --------------------------------------------------------------------------------------------
# public API


def read_delivery(path: Path, format: str | None = None, *, sheet: str | int | None = None,
                  sha256: str | None = None, encoding: str | None = None) -> Delivery:
    """Read one delivered file; every value in the frame is ``str`` or ``None`` (object dtype).

    This is the reference reader: intake lands through DuckDB (:mod:`tongban.steps.intake.staging`)
    and falls back to this reader whenever DuckDB cannot promise its result, so its error
    messages are the ones a province sees. ``sha256`` and ``encoding``, when the caller has
    already computed them for this file, are not computed again."""
    path = Path(path)
    fmt = resolve_delivery(path, format, sheet)
    digest = sha256 or sha256_file(path)
    if fmt == "xlsx":
        columns, frame = _read_xlsx(path, sheet)
        return Delivery(path, "xlsx", None, digest, columns, frame)
    encoding = encoding or detect_encoding(path)
    if fmt == "csv":
        columns, frame = _read_csv(path, encoding)
        return Delivery(path, "csv", encoding, digest, columns, frame)
    # JSON family: the content decides between one array and one object per line.
    first = _first_significant_char(path, encoding)
    if first == "[":
        columns, frame = _read_json_array(path, encoding)
        actual = "json"
    elif first == "{":
        columns, frame = _read_json_lines(path, encoding)
        actual = "jsonl"
    elif first == "":
        raise DeliveryReadError(path, "is empty — expected a JSON array of records or JSON Lines")
    else:
        raise DeliveryReadError(
            path,
            "does not start with '[' or '{' — a JSON delivery must be an array of flat objects "
            "or one object per line (JSON Lines)",
        )
    return Delivery(path, actual, encoding, digest, columns, frame)


def resolve_delivery(path: Path, format: str | None, sheet: str | int | None) -> str:
    """The delivery's format (``json`` stands for the JSON family until the content is seen),
    after checking the file is there and the settings fit it."""
    if not path.exists():
        raise DeliveryReadError(path, "file not found — check the delivery path and that the upload finished")
    if not path.is_file():
        raise DeliveryReadError(path, "is not a regular file — point the reader at the delivered file itself")
    fmt = _resolve_format(path, format)
    if sheet is not None and fmt != "xlsx":
        raise DeliveryReadError(path, f"a sheet ({sheet!r}) was given but the delivery is {fmt}, not xlsx")
    return fmt


def detect_encoding(path: Path) -> str:
    """Detect the text encoding of a delivery.

    Order: byte-order mark (``utf-8-sig``, ``utf-16``, ``utf-32``); NUL bytes mean BOM-less UTF-16
    or a binary file; strict UTF-8 (``utf-8``); strict GB18030 (``gb18030``, covers GBK/GB2312);
    charset-normalizer's best guess, accepted only when it decodes without control characters.
    Files up to ``LARGE_FILE_BYTES`` are checked completely; larger files are sampled from the head
    in ``SAMPLE_BYTES`` pieces cut at line boundaries (pure-ASCII pieces are skipped, since they
    cannot tell UTF-8 from GBK) and the parser then decodes the whole file strictly.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                sample = f.read(LARGE_FILE_BYTES if size <= LARGE_FILE_BYTES else SAMPLE_BYTES)
                _check_decodes(path, sample, encoding, final=size <= LARGE_FILE_BYTES)
                return encoding
        if size <= LARGE_FILE_BYTES:
            return _detect_bytes(path, f.read(), final=True)
        offset = 0
        line = 1
        carry = b""
        while True:
            chunk = f.read(SAMPLE_BYTES)
            data = carry + chunk
            if not chunk:  # end of file: the remainder is complete
                if data and (b"\x00" in data or not data.isascii()):
                    return _detect_bytes(path, data, final=True, base_offset=offset, base_line=line)
                return "utf-8"
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < 4 * SAMPLE_BYTES:
                carry = data  # no line boundary yet: read on
                continue
            if cut == 0:
                cut = len(data)  # a very long line: decode incrementally, tolerating a cut character
            sample, carry = data[:cut], data[cut:]
            if b"\x00" in sample or not sample.isascii():
                return _detect_bytes(path, sample, final=False, base_offset=offset, base_line=line)
            offset += len(sample)
            line += sample.count(b"\n")


# --------------------------------------------------------------------------------------------
# encoding detection


def _decode(data: bytes, encoding: str, *, final: bool) -> str:
    return codecs.getincrementaldecoder(encoding)("strict").decode(data, final=final)


def _check_decodes(path: Path, data: bytes, encoding: str, *, final: bool) -> None:
    try:
        _decode(data, encoding, final=final)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DeliveryReadError(
            path,
            f"starts with a {encoding} byte-order mark but byte offset {exc.start} (line {line}) is not valid "
            f"{encoding} — the file is corrupted or mixes encodings; re-export it in one encoding (UTF-8)",
            line=line,
            offset=exc.start,
        ) from None


def _detect_bytes(path: Path, data: bytes, *, final: bool, base_offset: int = 0, base_line: int = 1) -> str:
    def where(pos: int) -> tuple[int, int]:
        return base_offset + pos, base_line + data.count(b"\n", 0, pos)

    nul = data.find(b"\x00")
    if nul >= 0:
        encoding = _guess_bomless_utf16(data, final=final)
        if encoding:
            return encoding
        offset, line = where(nul)
        raise DeliveryReadError(
            path,
            f"byte offset {offset} (line {line}) is a NUL byte and the file is not UTF-16 — this is not a "
            "text file; check it is the right file and re-export it as UTF-8 text",
            line=line,
            offset=offset,
        )
    if data.isascii():
        return "utf-8"
    try:
        _decode(data, "utf-8", final=final)
        return "utf-8"
    except UnicodeDecodeError as exc:
        utf8_bad = exc.start
    if _mostly_utf8(data):
        # Valid UTF-8 except for a few bytes: reading it as GB18030 or a code page would silently
        # turn every Chinese character into mojibake, so refuse instead.
        offset, line = where(utf8_bad)
        raise DeliveryReadError(
            path,
            f"is UTF-8 except for invalid bytes starting at byte offset {offset} (line {line}) — the file is "
            "corrupted or mixes encodings; re-export it as a whole in UTF-8",
            line=line,
            offset=offset,
        )
    try:
        _decode(data, "gb18030", final=final)
        return "gb18030"
    except UnicodeDecodeError as exc:
        gb_bad = exc.start
    guess = _charset_normalizer_guess(data, final=final)
    if guess:
        return guess
    offset, line = where(utf8_bad)
    gb_offset, gb_line = where(gb_bad)
    raise DeliveryReadError(
        path,
        f"cannot be decoded: not UTF-8 (bad byte at offset {offset}, line {line}), not GB18030/GBK (bad byte "
        f"at offset {gb_offset}, line {gb_line}), and no other encoding fits — check the file is text and "
        "not truncated, then re-export it as UTF-8",
        line=line,
        offset=offset,
    )


def _mostly_utf8(data: bytes) -> bool:
    """True when the non-ASCII text is overwhelmingly valid UTF-8 (a few stray bytes at most)."""
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    ascii_count = len(data) - len(data.translate(None, _ASCII_BYTES))
    good = len(text) - ascii_count - bad
    return bad > 0 and good >= 20 and good >= 10 * bad


def _guess_bomless_utf16(data: bytes, *, final: bool) -> str | None:
    half = max(len(data) // 2, 1)
    even_nuls = data[0::2].count(0)
    odd_nuls = data[1::2].count(0)
    if odd_nuls > 0.2 * half and even_nuls < 0.05 * half:
        candidate = "utf-16-le"
    elif even_nuls > 0.2 * half and odd_nuls < 0.05 * half:
        candidate = "utf-16-be"
    else:
        return None
    try:
        text = _decode(data, candidate, final=final)
    except UnicodeDecodeError:
        return None
    return None if _BINARY_CHARS.search(text) else candidate


def _charset_normalizer_guess(data: bytes, *, final: bool) -> str | None:
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        return None
    try:
        encoding = codecs.lookup(best.encoding).name
        text = _decode(data, encoding, final=final)
    except (LookupError, UnicodeDecodeError):
        return None
    if _BINARY_CHARS.search(text):
        return None
    return encoding


def _ascii_compatible(encoding: str) -> bool:
    """Whether line feeds are the single byte 0x0A, so the file can be split into lines as bytes."""
    try:
        return "\n".encode(encoding) == b"\n" and ",".encode(encoding) == b","
    except (LookupError, UnicodeEncodeError):
        return False


class _Lines:
    """Decoded lines of a text file, decoded strictly, keeping the physical line number."""

    def __init__(self, path: Path, encoding: str):
        self.path = path
        self.encoding = encoding
        self.line = 0  # number of physical lines handed out so far

    def __iter__(self) -> Iterator[str]:
        if _ascii_compatible(self.encoding):
            yield from self._by_bytes()
        else:
            yield from self._by_text()

    def _fail(self, offset: int | None) -> DeliveryReadError:
        where = f"line {self.line}" + (f" (byte offset {offset})" if offset is not None else "")
        return DeliveryReadError(
            self.path,
            f"{where} is not valid {self.encoding} although the start of the file is — the file mixes "
            "encodings or is corrupted; re-export it as a whole in one encoding (UTF-8)",
            line=self.line,
            offset=offset,
        )

    def _by_bytes(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        offset = 0
        with self.path.open("rb") as f:
            for raw in f:
                self.line += 1
                try:
                    text = decoder.decode(raw)
                except UnicodeDecodeError as exc:
                    raise self._fail(offset + max(exc.start, 0)) from None
                offset += len(raw)
                yield text
            try:
                tail = decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise self._fail(offset) from None
        if tail:
            yield tail

    def _by_text(self) -> Iterator[str]:
        with self.path.open("r", encoding=self.encoding, errors="strict", newline="") as f:
            while True:
                try:
                    text = f.readline()
                except UnicodeDecodeError:
                    self.line += 1
                    raise self._fail(None) from None
                if not text:
                    return
                self.line += 1
                yield text


def _first_significant_char(path: Path, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    with path.open("rb") as f:
        while chunk := f.read(64 * 1024):
            text = decoder.decode(chunk).lstrip("\ufeff \t\r\n")
            if text:
                return text[0]
    return ""


# --------------------------------------------------------------------------------------------
# JSON


def _integral_text(value: float) -> str | None:
    """An integral float as its integer text, else None. Exporters write identifiers and codes
    as numbers (an XLSX cell, a JSON ``330106.0``): the digits are the value, ``.0`` is not.
    From 2^53 on a float no longer holds every digit (an 18-digit ID typed into Excel has lost
    its last ones), so None: the caller keeps the float's own text, which no identifier
    validator accepts, rather than digits nobody delivered."""
    if value.is_integer() and abs(value) < _EXACT_FLOAT_INTEGERS:  # is_integer: False for nan, inf
        return str(int(value))
    return None



def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _integral_text(value) or _PLAIN_JSON.encode(value)
    if isinstance(value, str):
        return str(value)
    return _COMPACT_JSON.encode(value)


class _Columns:
    """Column-wise accumulation of records whose keys may differ (union of keys, first-seen order)."""

    def __init__(self) -> None:
        self.data: dict[str, list[str | None]] = {}
        self.rows = 0

    def add(self, record: dict) -> None:
        data = self.data
        for key, value in record.items():
            column = data.get(key)
            if column is None:
                column = data[key] = [None] * self.rows
            column.append(_json_text(value))
        self.rows += 1
        if len(record) < len(data):
            for column in data.values():
                if len(column) < self.rows:
                    column.append(None)

    def frame(self) -> tuple[list[str], pd.DataFrame]:
        columns = list(self.data)
        if not columns:
            return columns, pd.DataFrame(index=pd.RangeIndex(self.rows))
        frame = pd.DataFrame(self.data, columns=columns, dtype=object)
        self.data = {}
        return columns, frame


def _read_json_array(path: Path, encoding: str) -> tuple[list[str], pd.DataFrame]:
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DeliveryReadError(
            path,
            f"byte offset {exc.start} (line {line}) is not valid {encoding} although the start of the file is "
            "— the file mixes encodings or is corrupted; re-export it as a whole in UTF-8",
            line=line,
            offset=exc.start,
        ) from None
    del raw
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeliveryReadError(
            path,
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} — fix the JSON syntax "
            "(a truncated upload also ends this way)",
            line=exc.lineno,
        ) from None
    del text
    if not isinstance(records, list):  # pragma: no cover - guarded by the first-character check
        raise DeliveryReadError(path, "the top level is not an array of records")
    columns = _Columns()
    for index in range(len(records)):
        record = records[index]
        records[index] = None  # release each record once it is in the columns
        if not isinstance(record, dict):
            raise DeliveryReadError(
                path,
                f"record {index + 1} of the array is a JSON {_json_kind(record)}, not an object — every record "
                "must be a flat object of field names to values",
                line=None,
            )
        columns.add(record)
    del records
    return columns.frame()


def _read_json_lines(path: Path, encoding: str) -> tuple[list[str], pd.DataFrame]:
    lines = _Lines(path, encoding)
    columns = _Columns()
    for text in lines:
        stripped = text.strip().lstrip("\ufeff")
        if not stripped:
            continue
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            hint = _whole_document_hint(path, encoding) if columns.rows == 0 else ""
            raise DeliveryReadError(
                path,
                f"line {lines.line} is not a JSON object: {exc.msg} at column {exc.colno} — JSON Lines needs one "
                f"complete object per line{hint}",
                line=lines.line,
            ) from None
        if not isinstance(record, dict):
            raise DeliveryReadError(
                path,
                f"line {lines.line} (record {columns.rows + 1}) is a JSON {_json_kind(record)}, not an object — "
                "every record must be a flat object of field names to values",
                line=lines.line,
            )
        columns.add(record)
    return columns.frame()


def _whole_document_hint(path: Path, encoding: str) -> str:
    """If the file is one JSON object (e.g. ``{"data": [...]}``), say so."""
    try:
        document = json.loads(path.read_text(encoding=encoding))
    except (ValueError, UnicodeDecodeError, OSError):
        return ""
    if isinstance(document, dict):
        return (  # its keys come from the file's content: counted, not quoted
            f"; the file is a single JSON object ({len(document)} key(s)) — deliver the records as a top-level "
            "array or as JSON Lines"
        )
    return ""


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# CSV


def _sniff_delimiter(header_line: str) -> str:
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties: the earlier candidate wins
    return best if counts[best] else ","


def _check_header(path: Path, names: list[str | None], *, where: str, excel: bool = False) -> list[str]:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, 1):
        label = f"column {position}" + (f" ({_excel_column(position)})" if excel else "")
        if name is None or not name.strip():
            raise DeliveryReadError(
                path,
                f"{label} of the header ({where}) has an empty name — name every column (a delimiter at the end "
                "of the header line, or a stray value right of the table, also causes this)",
            )
        if name in seen:
            first = seen[name]
            first_label = f"column {first}" + (f" ({_excel_column(first)})" if excel else "")
            raise DeliveryReadError(
                path,
                f"{label} of the header ({where}) repeats the name of {first_label} — give every "
                "column a unique name",
            )
        seen[name] = position
    return [n for n in names if n is not None]


@dataclass
class _OpenCsv:
    """A CSV delivery whose header has been read: the rows follow from ``reader``."""

    lines: _Lines
    source: Iterator[str]
    reader: Iterator[list[str]]
    columns: list[str]
    delimiter: str
    header_start: int  # physical line the header starts on
    header_end: int  # and ends on

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def _open_csv(path: Path, encoding: str) -> _OpenCsv:
    """Read up to the end of the header: the delimiter is sniffed from it, its names checked."""
    lines = _Lines(path, encoding)
    source = iter(lines)
    first = None
    for text in source:
        if text.strip("\r\n"):
            first = text.lstrip("\ufeff")
            break
    if first is None:
        raise DeliveryReadError(path, "has no header line — a CSV delivery must start with the column names")
    delimiter = _sniff_delimiter(first)
    if csv.field_size_limit() < 64 * 1024 * 1024:
        csv.field_size_limit(64 * 1024 * 1024)
    reader = csv.reader(itertools.chain([first], source), delimiter=delimiter, strict=True)
    header_start = lines.line
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _csv_error(path, lines, exc, header_start) from None
    header_line = lines.line
    columns = _check_header(path, header, where=f"line {header_line}")
    return _OpenCsv(lines, source, reader, columns, delimiter, header_start, header_line)


def _csv_error(path: Path, lines: _Lines, exc: csv.Error, start: int) -> DeliveryReadError:
    where = f"line {start}" if lines.line == start else f"the record on lines {start}-{lines.line}"
    return DeliveryReadError(
        path,
        f"{where} is malformed CSV ({exc}) — check the quoting: a field containing quotes must be quoted "
        'and its quotes doubled ("")',
        line=start,
    )


def csv_header(path: Path, encoding: str) -> tuple[list[str], str, int, int]:
    """(columns, delimiter, first and last physical line of the header) of a CSV delivery, read
    as :func:`read_delivery` reads it (same errors), without reading the rows."""
    opened = _open_csv(path, encoding)
    opened.close()
    return opened.columns, opened.delimiter, opened.header_start, opened.header_end


def _read_csv(path: Path, encoding: str) -> tuple[list[str], pd.DataFrame]:
    opened = _open_csv(path, encoding)
    lines, reader, columns, delimiter = opened.lines, opened.reader, opened.columns, opened.delimiter
    width = len(columns)
    rows: list[list[str]] = []
    end = lines.line
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_error(path, lines, exc, start) from None
        end = lines.line
        if not row:  # a blank line
            continue
        if len(row) != width:
            raise DeliveryReadError(path, _ragged_message(row, width, start, end, delimiter), line=start)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    del rows
    return columns, frame


def _ragged_message(row: list[str], width: int, start: int, end: int, delimiter: str) -> str:
    where = f"line {start}" if start == end else f"the record on lines {start}-{end}"
    name = _DELIMITER_NAMES[delimiter]
    message = f"{where} has {len(row)} fields, header has {width} — "
    if len(row) > width and not any(row[width:]):
        return message + f"the extra fields are empty: remove the trailing {name} delimiter(s) from the row"
    if len(row) > width:
        return message + f"fix the row or quote the field containing the {name} delimiter"
    return (
        message + f"fix the row: a value or a {name} delimiter is missing, or a quoted field broke the line"
    )


# --------------------------------------------------------------------------------------------
# XLSX


def _excel_column(position: int) -> str:
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _cell_text(value: object) -> str | None:
    if type(value) is str:
        return value if value != "" else None
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return _integral_text(value) or repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, str):
        return str(value) or None
    return str(value)


@contextlib.contextmanager
def open_xlsx(path: Path, sheet: str | int | None) -> Iterator[tuple[str, list[str | None], Iterator[list]]]:
    """(sheet name, header cells as text, iterator of the raw rows below it) of the first sheet
    (or ``sheet``), with the reader's errors; the workbook is closed on leaving the block."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError, ValueError) as exc:  # zip, xml, password and I/O errors
        raise DeliveryReadError(
            path,
            f"cannot be opened as an xlsx workbook ({exc}) — check it is a real .xlsx file (not .xls, "
            "CSV or HTML renamed to .xlsx) and that it is not password-protected or truncated",
        ) from None
    with workbook:
        names = list(workbook.sheet_names)
        if sheet is None:
            if not names:
                raise DeliveryReadError(path, "the workbook has no sheets")
            name = names[0]
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(names):
                raise DeliveryReadError(
                    path,
                    f"has no sheet number {sheet} (0-based); its sheets are {names} — fix the sheet setting",
                )
            name = names[sheet]
        else:
            if sheet not in names:
                raise DeliveryReadError(
                    path, f"has no sheet {sheet!r}; its sheets are {names} — fix the sheet setting"
                )
            name = sheet
        try:
            worksheet = workbook.get_sheet_by_name(name)
        except (CalamineError, ValueError) as exc:  # broken sheet XML, chart sheet, ...
            raise DeliveryReadError(
                path,
                f"sheet {name!r} cannot be read ({exc}) — re-save the workbook in Excel or export it again",
            ) from None
        rows_iter = iter(worksheet.iter_rows())
        raw_header = next(rows_iter, None)
        if raw_header is None:
            raise DeliveryReadError(
                path, f"sheet {name!r} is empty — the first row must hold the column names"
            )
        yield name, [_cell_text(v) for v in raw_header], rows_iter


def xlsx_rows(rows_iter: Iterator[list]) -> Iterator[list[str | None]]:
    """The data rows as text; empty rows are kept only when a non-empty row follows them."""
    pending_empty = 0
    for raw in rows_iter:
        values = [v if type(v) is str and v else _cell_text(v) for v in raw]
        if values.count(None) == len(values):
            pending_empty += 1  # kept only if a non-empty row follows
            continue
        if pending_empty:
            yield from ([None] * len(values) for _ in range(pending_empty))
            pending_empty = 0
        yield values


def _read_xlsx(path: Path, sheet: str | int | None) -> tuple[list[str], pd.DataFrame]:
    with open_xlsx(path, sheet) as (name, header, rows_iter):
        rows: list[list[str | None]] = list(xlsx_rows(rows_iter))
    width = len(header)
    while width and header[width - 1] is None and all(r[width - 1] is None for r in rows):
        width -= 1  # fully empty, unnamed columns on the right are formatting leftovers
    if width < len(header):
        header = header[:width]
        rows = [r[:width] for r in rows]
    columns = _check_header(path, header, where=f"first row of sheet {name!r}", excel=True)
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    return columns, frame


# --------------------------------------------------------------------------------------------
# format


def _resolve_format(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = _FORMAT_ALIASES.get(format.lower().lstrip("."))
        if fmt is None:
            raise DeliveryReadError(path, f"unknown format {format!r} — use one of json, jsonl, csv or xlsx")
        return fmt
    suffix = path.suffix.lower()
    fmt = _SUFFIX_FORMATS.get(suffix)
    if fmt is None:
        hint = " (old Excel format: ask for .xlsx or save it as .xlsx)" if suffix == ".xls" else ""
        raise DeliveryReadError(
            path,
            f"cannot tell the format from the suffix {suffix or '(none)'!r}{hint} — rename the file to .json, "
            ".jsonl, .csv or .xlsx, or pass the format explicitly",
        )
    return fmt
