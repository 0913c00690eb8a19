"""XLSX deliveries: fastexcel (Rust calamine) reads the sheet into Arrow, which DuckDB turns into
the landing piece, every cell as text by the rule of :func:`cell_text` (written in SQL here).

A column fastexcel reads as one kind (all numbers, all dates, all booleans) follows the rule
exactly: an integral number is its integer text (``330106``), other numbers Python's text of the
float (``12.5``, ``3.2058619850312e+17`` for an ID that lost its digits in Excel), booleans
``true``/``false``, a date ``2024-03-05``, a date and time ``2024-03-05T10:00:00``, a time
``10:00:00``. A column that mixes text with other kinds is read as text by fastexcel, whose text
of a number or date cell is its own (``1e20`` as ``100000000000000000000``, a date as
``2024-03-05 00:00:00``); fastexcel's Arrow does not say which cell was which.
An empty cell (or empty text) is NULL; empty rows are kept when a non-empty row follows them
(trailing rows of blanks only are not rows). The header is the first row of the sheet's used
area, so a table that starts below row 1 is read from its own first row.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tongban.steps.intake.jsonpass import json_text
from tongban.steps.intake.readers import DeliveryReadError, check_header

# fastexcel logs, per column, when it falls back to text: intake's rule covers that case
logging.getLogger("fastexcel").setLevel(logging.ERROR)
logging.getLogger("fastexcel.types.dtype").setLevel(logging.ERROR)

_FLOAT_SQL = ("case when {c} = trunc({c}) and abs({c}) < 9007199254740992 then {c}::bigint::varchar "
              "else {c}::varchar end")  # DuckDB's text of a double is Python's repr
_DATETIME_SQL = ("case when {c} < timestamp '1900-01-01' then strftime({c}, '%H:%M:%S') "  # an Excel time
                 "|| case when epoch_us({c}) % 1000000 <> 0 then strftime({c}, '.%f') else '' end "
                 "when {c} = date_trunc('day', {c}) then strftime({c}, '%Y-%m-%d') "
                 "else strftime({c}, '%Y-%m-%dT%H:%M:%S') "
                 "|| case when epoch_us({c}) % 1000000 <> 0 then strftime({c}, '.%f') else '' end end")
_VIEW = "tongban_sheet"
_TEXT_SQL = {
    "string": "nullif({c}, '')",
    "float": _FLOAT_SQL,
    "int": "{c}::varchar",
    "boolean": "case when {c} then 'true' when not {c} then 'false' end",
    "datetime": _DATETIME_SQL,
    "date": "strftime({c}, '%Y-%m-%d')",
    "duration": "tongban_duration_text({c})",
    "null": "null::varchar",
}


def cell_text(value: object) -> str | None:
    """A workbook cell (as Python's calamine bindings give it) as text: intake's rule, which the
    SQL above implements on fastexcel's typed columns (the benchmark's lower bound uses it).
    Numbers and booleans as in JSON (:func:`.jsonpass.json_text`), dates and times ISO."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return json_text(value) or None  # an empty cell's text is no value


def _duration_text(value: dt.timedelta | None) -> str | None:
    return None if value is None else str(value)


def _open(path: Path):
    import fastexcel  # a compiled extension; imported where a workbook is read

    try:
        return fastexcel.read_excel(str(path))
    except (fastexcel.FastExcelError, OSError, ValueError) as exc:  # zip, xml, password and I/O errors
        raise DeliveryReadError(
            path,
            f"cannot be opened as an xlsx workbook ({str(exc).splitlines()[0][:160]}) — check it is a real .xlsx "
            "file (not .xls, CSV or HTML renamed to .xlsx) and that it is not password-protected or truncated",
        ) from None


def _sheet_name(path: Path, names: list[str], sheet: str | int | None) -> str:
    if sheet is None:
        if not names:
            raise DeliveryReadError(path, "the workbook has no sheets")
        return names[0]
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise DeliveryReadError(
                path, f"has no sheet number {sheet} (0-based); its sheets are {names} — fix the sheet setting")
        return names[sheet]
    if sheet not in names:
        raise DeliveryReadError(path, f"has no sheet {sheet!r}; its sheets are {names} — fix the sheet setting")
    return sheet


def _header(path: Path, reader, name: str, infos) -> list[str]:
    """The header's names with intake's checks: fastexcel names an empty header cell itself
    (``__UNNAMED__n``) and a repeated name ``name_1``; the row is read as text again only when a
    name looks like such a repetition, to tell it from a real one."""
    names = [None if i.column_name_from == "generated" else i.name for i in infos]
    where = f"first row of sheet {name!r}"
    if any((m := re.fullmatch(r"(.*)_\d+", n or "")) and m.group(1) in names[:k] for k, n in enumerate(names)):
        raw = reader.load_sheet(name, header_row=None, n_rows=1, dtypes="string",
                                use_columns=[i.index for i in infos])
        with duckdb.connect() as con:
            con.register("tongban_header", raw)
            (row,) = con.execute("select * from tongban_header").fetchall()
        check_header(path, [v or None for v in row], where=where, excel=True)
    return check_header(path, names, where=where, excel=True)


@dataclass
class Sheet:
    """A workbook's sheet as fastexcel loaded it: its checked header, each column's kind, and
    the Arrow stream DuckDB reads once (:meth:`register`)."""

    path: Path
    name: str
    columns: list[str]
    kinds: list[str]
    data: object = field(repr=False)

    def texts(self, declared: list[str]) -> list[str]:
        """SQL for each declared column's text (NULL for one the sheet lacks), over :meth:`source`."""
        position = {c: k for k, c in enumerate(self.columns)}
        return [_TEXT_SQL[self.kinds[position[c]]].format(c=f"c{position[c]}") if c in position
                else "null::varchar" for c in declared]

    def source(self, offset: int) -> str:
        """The registered sheet, its columns renamed by position (no text of the file reaches SQL),
        each row numbered ``n`` from ``offset`` + 1 in sheet order."""
        alias = ", ".join(f"c{k}" for k in range(len(self.columns)))
        return f"(select *, {int(offset)} + row_number() over () as n from {_VIEW} as t({alias}))"

    def register(self, con) -> None:
        if "duration" in self.kinds:
            con.create_function("tongban_duration_text", _duration_text, side_effects=False)
        con.register(_VIEW, self.data)

    def unregister(self, con) -> None:
        con.unregister(_VIEW)


def _load(path: Path, reader, name: str):
    """The sheet, each column's kind decided by every row (a text cell after row 1,000 must not
    become NULL). A column mixing kinds fastexcel cannot coerce (durations with text ...) is
    read as text: it is named in fastexcel's error, and the sheet is loaded again."""
    import fastexcel  # a compiled extension; imported where a workbook is read

    as_text: dict[str, str] = {}
    while True:
        try:
            return reader.load_sheet(name, header_row=0, schema_sample_rows=None, dtype_coercion="coerce",
                                     skip_whitespace_tail_rows=True, dtypes=as_text or None)
        except fastexcel.UnsupportedColumnTypeCombinationError as exc:
            column = str(exc).partition("could not determine dtype for column ")[2].split("\n")[0]
            if not column or column in as_text:
                raise DeliveryReadError(path, f"sheet {name!r} cannot be read (a column mixes kinds of cells "
                                              "fastexcel cannot read as text) — export it again") from None
            as_text[column] = "string"
        except Exception as exc:  # noqa: BLE001 - fastexcel's errors for a broken sheet share no base
            raise DeliveryReadError(
                path, f"sheet {name!r} cannot be read ({type(exc).__name__}) — re-save the workbook in Excel or "
                      "export it again") from None


def open_sheet(path: Path, sheet: str | int | None) -> Sheet:
    """The first sheet (or ``sheet``) of the workbook, loaded, its header checked."""
    reader = _open(path)
    name = _sheet_name(path, list(reader.sheet_names), sheet)
    data = _load(path, reader, name)
    infos = list(data.available_columns())
    if not infos:
        raise DeliveryReadError(path, f"sheet {name!r} is empty — the first row must hold the column names")
    columns = _header(path, reader, name, infos)
    return Sheet(path, name, columns, [str(i.dtype) for i in infos], data)
