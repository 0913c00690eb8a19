"""The streaming Python pass over a JSON delivery, for what DuckDB cannot read as it is (a JSON
array, trailing commas, ``null`` records, NaN, a record that is not an object ...): Python's json
module reads it (JSON Lines line by line; an array, one document, whole) and either says
precisely what is wrong (the line or record, never a value) or writes the declared keys' values
to a :class:`~tongban.steps.intake.csvpass.Sink` that DuckDB reads.

A value's text is :func:`json_text`: a string as it is, a number as Python writes it (an integral
one as its integer text), ``true``/``false``, anything else as compact JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from tongban.steps.intake.csvpass import Sink
from tongban.steps.intake.encoding import Lines, first_significant_char
from tongban.steps.intake.readers import DeliveryReadError

# json.dumps builds a new encoder per call when given options; these are reused.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_PLAIN_JSON = json.JSONEncoder()
#: every integer below this is exactly a float (53-bit significand)
_EXACT_FLOAT_INTEGERS = 2**53


def integral_text(value: float) -> str | None:
    """An integral float as its integer text, else None. Exporters write identifiers and codes
    as numbers (an XLSX cell, a JSON ``330106.0``): the digits are the value, ``.0`` is not.
    From 2^53 on a float no longer holds every digit (an 18-digit ID typed into Excel has lost
    its last ones), so None: the caller keeps the float's own text, which no identifier
    validator accepts, rather than digits nobody delivered."""
    if value.is_integer() and abs(value) < _EXACT_FLOAT_INTEGERS:  # is_integer: False for nan, inf
        return str(int(value))
    return None


def json_text(value: object) -> str | None:
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
        return integral_text(value) or _PLAIN_JSON.encode(value)
    if isinstance(value, str):
        return str(value)
    return _COMPACT_JSON.encode(value)


def json_kind(value: object) -> str:
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


def json_to_sink(path: Path, encoding: str, declared: list[str], sink: Sink, offset: int) -> tuple[str, list[str]]:
    """Every record of the JSON delivery into ``sink``: (the format the content shows, ``json``
    for an array or ``jsonl``; the keys of all records in first-seen order)."""
    first = first_significant_char(path, encoding)
    if first == "[":
        return "json", _array_to_sink(path, encoding, declared, sink, offset)
    if first == "{":
        return "jsonl", _lines_to_sink(path, encoding, declared, sink, offset)
    if first == "":
        raise DeliveryReadError(path, "is empty — expected a JSON array of records or JSON Lines")
    raise DeliveryReadError(
        path,
        "does not start with '[' or '{' — a JSON delivery must be an array of flat objects "
        "or one object per line (JSON Lines)",
    )


def _add(record: dict, keys: dict[str, None], declared: list[str], sink: Sink, number: int,
         line: int | None = None) -> None:
    for key in record:
        if key not in keys:
            keys[key] = None
    sink.write([json_text(record.get(c)) for c in declared], number, line)


def _array_to_sink(path: Path, encoding: str, declared: list[str], sink: Sink, offset: int) -> list[str]:
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
    keys: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DeliveryReadError(
                path,
                f"record {index + 1} of the array is a JSON {json_kind(record)}, not an object — every record "
                "must be a flat object of field names to values",
            )
        _add(record, keys, declared, sink, offset + index + 1)
        records[index] = None  # release each record once it is written
    return list(keys)


def _lines_to_sink(path: Path, encoding: str, declared: list[str] | None, sink: Sink | None,
                   offset: int) -> list[str]:
    """JSON Lines into ``sink`` (None: only the keys are wanted)."""
    lines = Lines(path, encoding)
    keys: dict[str, None] = {}
    records = 0
    for text in lines:
        stripped = text.strip().lstrip("\ufeff")
        if not stripped:
            continue
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            hint = _whole_document_hint(path, encoding) if records == 0 else ""
            raise DeliveryReadError(
                path,
                f"line {lines.line} is not a JSON object: {exc.msg} at column {exc.colno} — JSON Lines needs one "
                f"complete object per line{hint}",
                line=lines.line,
            ) from None
        if not isinstance(record, dict):
            raise DeliveryReadError(
                path,
                f"line {lines.line} (record {records + 1}) is a JSON {json_kind(record)}, not an object — "
                "every record must be a flat object of field names to values",
                line=lines.line,
            )
        records += 1
        if sink is None:
            keys.update(dict.fromkeys(k for k in record if k not in keys))
        else:
            _add(record, keys, declared or [], sink, offset + records, lines.line)
    return list(keys)


def jsonl_keys(path: Path, encoding: str) -> list[str]:
    """The keys of every record of a JSON Lines delivery, in first-seen order."""
    return _lines_to_sink(path, encoding, None, None, 0)


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
