"""The streaming Python pass over a CSV delivery, for what DuckDB cannot read as it is (another
encoding in a header spanning lines, spaces around quotes, a lone carriage return, a ragged
row ...): Python's csv module reads it line by line, strictly, and either says precisely what is
wrong (the line, the column, never a value) or writes the rows to a :class:`Sink` that DuckDB
reads. The header of every CSV delivery is read here too: its delimiter is sniffed from it, its
names are checked.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tongban.steps.intake.encoding import Lines
from tongban.steps.intake.readers import DeliveryReadError, check_header

_DELIMITERS = (",", "\t", "|", ";")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", "|": "pipe", ";": "semicolon"}


class Sink:
    """What the Python pass writes for DuckDB (:func:`tongban.steps.intake.staging.stage_part`):
    UTF-8 CSV, one line per row, the declared columns' values quoted (quotes doubled), a missing
    value as an empty unquoted field (which DuckDB reads as NULL, while ``""`` stays ``''``), and
    the row number last."""

    def __init__(self, path: Path, source: Path):
        self.path = path
        self.source = source
        self.rows = 0
        self._fh = path.open("w", encoding="utf-8", newline="")

    def write(self, values: list[str | None], number: int, line: int | None = None) -> None:
        fields = ["" if v is None else '"' + v.replace('"', '""') + '"' for v in values]
        fields.append(str(number))
        try:
            self._fh.write(",".join(fields) + "\n")
        except UnicodeEncodeError:  # a JSON escape of a lone surrogate (\ud800)
            where = f"line {line}" if line is not None else f"record {self.rows + 1}"
            raise DeliveryReadError(
                self.source, f"{where} holds a value that is not valid Unicode text (a lone surrogate escape) "
                             "— fix the value and re-deliver the file", line=line) from None
        self.rows += 1

    def close(self) -> None:
        self._fh.close()


def sniff_delimiter(header_line: str) -> str:
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties: the earlier candidate wins
    return best if counts[best] else ","


@dataclass
class _OpenCsv:
    """A CSV delivery whose header has been read: the rows follow from ``reader``."""

    lines: Lines
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
    lines = Lines(path, encoding)
    source = iter(lines)
    first = None
    for text in source:
        if text.strip("\r\n"):
            first = text.lstrip("\ufeff")
            break
    if first is None:
        raise DeliveryReadError(path, "has no header line — a CSV delivery must start with the column names")
    delimiter = sniff_delimiter(first)
    if csv.field_size_limit() < 64 * 1024 * 1024:
        csv.field_size_limit(64 * 1024 * 1024)
    reader = csv.reader(itertools.chain([first], source), delimiter=delimiter, strict=True)
    header_start = lines.line
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _csv_error(path, lines, exc, header_start) from None
    header_line = lines.line
    columns = check_header(path, header, where=f"line {header_line}")
    return _OpenCsv(lines, source, reader, columns, delimiter, header_start, header_line)


def _csv_error(path: Path, lines: Lines, exc: csv.Error, start: int) -> DeliveryReadError:
    where = f"line {start}" if lines.line == start else f"the record on lines {start}-{lines.line}"
    return DeliveryReadError(
        path,
        f"{where} is malformed CSV ({exc}) — check the quoting: a field containing quotes must be quoted "
        'and its quotes doubled ("")',
        line=start,
    )


def csv_header(path: Path, encoding: str) -> tuple[list[str], str, int, int]:
    """(columns, delimiter, first and last physical line of the header) of a CSV delivery, with
    the pass's errors, without reading the rows."""
    opened = _open_csv(path, encoding)
    opened.close()
    return opened.columns, opened.delimiter, opened.header_start, opened.header_end


def csv_to_sink(path: Path, encoding: str, declared: list[str], sink: Sink, offset: int) -> list[str]:
    """Every row of the CSV delivery into ``sink`` (the declared columns, numbered from
    ``offset`` + 1); blank lines are no rows. Returns the header."""
    opened = _open_csv(path, encoding)
    lines, reader, columns, delimiter = opened.lines, opened.reader, opened.columns, opened.delimiter
    width = len(columns)
    position = {c: k for k, c in enumerate(columns)}
    picks = [position.get(c) for c in declared]
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
        sink.write([None if k is None else row[k] for k in picks], offset + sink.rows + 1, start)
    return columns


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
