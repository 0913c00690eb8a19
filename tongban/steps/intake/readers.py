"""What every delivery reader shares: the formats a delivery may come in, the error a province
reads when it cannot be read, and the rules a header must follow.

Intake has one reader (:mod:`tongban.steps.intake.staging`): DuckDB reads CSV and JSON Lines,
fastexcel reads XLSX (:mod:`tongban.steps.intake.xlsx`), and what DuckDB cannot read as it is
goes through one streaming Python pass (:mod:`tongban.steps.intake.csvpass`,
:mod:`tongban.steps.intake.jsonpass`) that feeds DuckDB and says precisely what is wrong. Every
value lands as the delivered text (``str``) or ``None`` when the delivery has no value: no type
inference, no cleaning, so the mapping layer sees exactly what the province sent.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DeliveryReadError", "PartsDiffer", "check_header", "excel_column", "resolve_delivery"]

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


class DeliveryReadError(Exception):
    """A delivery cannot be read. The message starts with the file path and says what to do;
    it names files, lines, rows and columns, never a delivered value."""

    def __init__(self, path: Path | str, problem: str, *, line: int | None = None, offset: int | None = None):
        self.path = Path(path)
        self.problem = problem
        self.line = line
        self.offset = offset
        super().__init__(f"{path}: {problem}")


class PartsDiffer(DeliveryReadError):
    """A part's columns are not those of the first part."""


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


def excel_column(position: int) -> str:
    """The spreadsheet letters of a 1-based column position (1 -> A, 27 -> AA)."""
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def check_header(path: Path, names: list[str | None], *, where: str, excel: bool = False) -> list[str]:
    """The header's names, after checking each is there and none repeats (the message names the
    column by position, and by letter in a workbook; a header is the file's content: not quoted)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, 1):
        label = f"column {position}" + (f" ({excel_column(position)})" if excel else "")
        if name is None or not name.strip():
            raise DeliveryReadError(
                path,
                f"{label} of the header ({where}) has an empty name — name every column (a delimiter at the end "
                "of the header line, or a stray value right of the table, also causes this)",
            )
        if name in seen:
            first = seen[name]
            first_label = f"column {first}" + (f" ({excel_column(first)})" if excel else "")
            raise DeliveryReadError(
                path,
                f"{label} of the header ({where}) repeats the name of {first_label} — give every "
                "column a unique name",
            )
        seen[name] = position
    return [n for n in names if n is not None]
