"""谁产生、谁提供、谁负责: rejected rows go back to the province that produced them, in its own
column names and original values, with the reasons. One CSV per province per run:
``feedback/<source_id>/<run_id>__<entity>.csv``. A province's file never holds another province's rows.
A delivery that was held back whole (unreadable, a required column missing, no rows) gets a file
too: its rows with the reason where they could be read, else one line saying why. Rows that passed
but broke a ``warn`` cross-field rule of the standard (published with warnings) go back in
``<run_id>__<entity>__warnings.csv``, each with the rule's message and the columns it read.

The files are opened in spreadsheets: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return (or ``'``) is written with a ``'`` in front, so it is shown, not run (OWASP CSV
injection); strip that one ``'`` to get the province's value back.

A delivery held by a gate threshold (quarantined share over the committee's limit) is said so in
``feedback/<source_id>/<run_id>__README.txt``: which threshold, the share, the limit and by how
much, and that the previous publication stays (tongban's words only, never a delivery's value).

Each row carries ``tongban_row_number``, its row in the delivery; when the delivery came in
several files (parts), also ``tongban_file`` (the part's name) and ``tongban_file_row`` (its row in
that part), so the province finds the row in the file it sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tongban.common.config import Settings
from tongban.common.parts import part_offsets
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.standards.targets.dbt import quote_source_column
from tongban.steps.loaded import standards
from tongban.steps.results import Feedback, Landed


def write_feedback(s: Settings, run_id: str, intakes: list[Landed | dict[str, Any]]) -> list[str]:
    """Every delivery's feedback file (none for a delivery with nothing to send back); the paths."""
    import duckdb  # heavy enough to keep lazy

    std = standards(s)
    written: list[str] = []
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    try:
        for i in map(Landed.from_xcom, intakes):
            source_id, entity = i.source_id, i.entity
            m = std.mapping(source_id, entity)
            out_dir = s.feedback_dir / source_id
            out = out_dir / f"{run_id}__{entity}.csv"
            cols = ", ".join(f"raw.{quote_source_column(c.name)}" for c in m.delivery.columns)
            if i.status == "landed":
                warned = _write_warnings(con, std, m, i, out_dir / f"{run_id}__{entity}__warnings.csv", cols)
                written += [warned] if warned else []
                rej = f"harmonized.{quote_ident(entity + '__rejections')}"
                n = con.execute(f"select count(*) from {rej} where source_id = ?", [source_id]).fetchall()[0][0]
                if n == 0:
                    continue
            elif i.status not in ("rejected", "empty"):
                continue  # missing: nothing came, nothing to send back
            out_dir.mkdir(parents=True, exist_ok=True)
            if i.status == "landed":
                sql = (f"select rej.source_row_number as tongban_row_number, "
                       f"{_part_columns_sql(i.parts, 'rej.source_row_number')}{cols}, "
                       f"array_to_string(rej.reason_codes, ';') as tongban_reasons, "
                       f"array_to_string(list_transform(rej.reasons, lambda r: r.reason || ':' || r.field || "
                       f"coalesce('=' || r.value, '')), '; ') as tongban_details "
                       f"from {rej} as rej join read_parquet({quote_literal(i.raw_path)}) as raw "
                       f"on raw.source_row_number = rej.source_row_number "
                       f"where rej.source_id = {quote_literal(source_id)} order by rej.source_row_number")
            else:
                sql = _rejected_sql(m, i)
            written.append(_copy(con, sql, out))
    finally:
        con.close()
    return written


def warning_text(m, rule) -> str:
    """A warn rule as the province reads it: its reason, message (zh / en) and the province's own
    columns the rule reads (never a value)."""
    columns = [m.fields[f].source for f in rule.refs() if f in m.fields and m.fields[f].source]
    where = f" [{', '.join(columns)}]" if columns else ""
    return f"{rule.reason}: {rule.message.zh} / {rule.message.en}{where}"


def _write_warnings(con, std, m, i: Landed, out: Path, cols: str) -> str | None:
    """``feedback/<source_id>/<run_id>__<entity>__warnings.csv``: the rows that passed every rule
    but broke a warn rule of the standard (published with warnings), in the province's columns,
    each with the rules' messages. None when there are none."""
    warn = [r for r in std.entities[m.entity].rules if getattr(r, "severity", None) == "warn"]
    if not warn:
        return None
    unioned = f"intermediate.{quote_ident(f'int_{m.entity}__unioned')}"
    codes = "[" + ", ".join(quote_literal(r.reason) for r in warn) + "]"
    noted = f"list_filter(u.note_issues, lambda r: list_contains({codes}, r.reason))"
    where = f"u.source_id = {quote_literal(m.source_id)} and len(u.reasons) = 0 and len({noted}) > 0"
    if con.execute(f"select count(*) from {unioned} as u where {where}").fetchall()[0][0] == 0:
        return None
    text = "case r.reason " + " ".join(f"when {quote_literal(r.reason)} then {quote_literal(warning_text(m, r))}"
                                       for r in warn) + " end"
    sql = (f"select u.source_row_number as tongban_row_number, "
           f"{_part_columns_sql(i.parts, 'u.source_row_number')}{cols}, "
           f"array_to_string(list_distinct(list_transform({noted}, lambda r: r.reason)), ';') as tongban_warnings, "
           f"array_to_string(list_distinct(list_transform({noted}, lambda r: {text})), '; ') as tongban_details "
           f"from {unioned} as u join read_parquet({quote_literal(i.raw_path)}) as raw "
           f"on raw.source_row_number = u.source_row_number where {where} order by u.source_row_number")
    out.parent.mkdir(parents=True, exist_ok=True)
    return _copy(con, sql, out)


def _copy(con, sql: str, out: Path) -> str:
    """``sql``'s rows to the CSV ``out`` (formula-safe), written whole or not at all."""
    tmp = out.with_suffix(f".csv.tmp-{out.stem}")
    con.execute(f"copy ({_formula_safe(sql)}) to {quote_literal(str(tmp))} (header, delimiter ',')")
    tmp.replace(out)
    return str(out)


#: a cell a spreadsheet would run as a formula starts with one of these (OWASP: CSV injection); a
#: leading ' is in the set too, so that the rule can be undone: strip one ' where it is followed by
#: one of them
FORMULA_START = "=+-@\t\r'"
_FORMULA_START_RE = "^[=+\\-@\t\r']"


def _formula_safe(sql: str) -> str:
    """Every column of ``sql`` as text, a cell starting with :data:`FORMULA_START` prefixed with ``'``
    (Excel and LibreOffice then show it as text; the province's value stays recoverable)."""
    cells = "columns(*)::varchar"
    return (f"select case when regexp_matches({cells}, {quote_literal(_FORMULA_START_RE)}) "
            f"then {quote_literal(chr(39))} || {cells} else {cells} end from ({sql})")


def feedback(s: Settings, run_id: str, intakes: list[Landed]) -> Feedback:
    return Feedback(files=write_feedback(s, run_id, intakes) + write_held_notes(s, run_id))


def write_held_notes(s: Settings, run_id: str) -> list[str]:
    """For each province with a delivery held by a gate threshold in run ``run_id`` (its run record,
    ``build/runs/<run_id>.json``, written by publish): ``<run_id>__README.txt`` saying why."""
    record = s.build_dir / "runs" / f"{run_id}.json"
    if not record.is_file():
        return []
    held: dict[str, list[dict[str, Any]]] = {}
    for d in json.loads(record.read_text(encoding="utf-8"))["deliveries"]:
        if d.get("held_reason"):
            held.setdefault(d["source_id"], []).append(d)
    written = []
    for source_id, deliveries in sorted(held.items()):
        lines = [f"tongban run {run_id}: feedback for {source_id}", ""]
        for d in deliveries:
            kept = (f"your previous publication stays in the exchange (v{d['kept_snapshot_version']})"
                    if d.get("kept_snapshot_version") else "nothing of this source was published before")
            lines += [f"{d['entity']}: HELD, not published — {d['held_reason']}.",
                      f"  {d['rows_delivered']} rows delivered, {d['rows_quarantined']} quarantined "
                      f"(their reasons: {run_id}__{d['entity']}.csv), {d['rows_held']} passed but held; {kept}.",
                      "  Correct the quarantined rows and deliver again; the limits are the committee's "
                      "(standards/entities, or this source's mapping), shown in the data dictionary.", ""]
        out = s.feedback_dir / source_id / f"{run_id}__README.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".txt.tmp-{run_id}")
        tmp.write_text("\n".join(lines), encoding="utf-8")
        tmp.replace(out)
        written.append(str(out))
    return written


def _rejected_sql(m, i: Landed) -> str:
    """A delivery held back whole goes back whole where its rows can be read (each with the reason),
    else as one line saying why."""

    if i.status == "rejected" and i.held_columns and i.held_path and Path(i.held_path).is_file():
        return _whole_delivery_sql(i, m)
    return _notice_sql(i)  # unreadable, or its header unusable (a first line that is a record)


def _notice_sql(i: Landed) -> str:
    """A delivery that could not be read, or had no rows: one line with the reason (the message
    names the file, its size and sha256, never a value of it)."""
    reason = "delivery_empty" if i.status == "empty" else "delivery_rejected"
    return (f"select null::bigint as tongban_row_number, {quote_literal(reason)} as tongban_reasons, "
            f"{quote_literal(i.message or reason)} as tongban_details")


def _part_columns_sql(parts: list[dict[str, Any]], row: str) -> str:
    """``tongban_file, tongban_file_row, `` for a delivery in several parts ('' for one file):
    the part a delivery row is in and its row there, from the intake's ``parts``."""

    if len(parts) < 2:
        return ""
    spans = part_offsets(parts)
    name = " ".join(f"when {row} between {first} and {last} then {quote_literal(n)}" for n, first, last in spans)
    start = " ".join(f"when {row} between {first} and {last} then {first - 1}" for _n, first, last in spans)
    return (f"case {name} end as tongban_file, "
            f"{row} - case {start} end as tongban_file_row, ")


def _whole_delivery_sql(i: Landed, m) -> str:
    """A delivery rejected whole goes back whole, each row with the delivery's reason, from the rows
    intake kept for it (``held_path``): the delivery is not read again."""

    present = [c for c in m.delivery.columns if c.name in set(i.held_columns or ())]
    cols = "".join(f", raw.{quote_source_column(c.name)}" for c in present)
    reason = "delivery_rejected:missing_column=" + ",".join(i.missing_columns) \
        if i.missing_columns else "delivery_rejected"
    parts = _part_columns_sql(i.parts, "raw.source_row_number").rstrip(", ")
    return (f"select raw.source_row_number as tongban_row_number{', ' + parts if parts else ''}"
            f"{cols}, 'delivery_rejected' as tongban_reasons, "
            f"{quote_literal(reason)} as tongban_details "
            f"from read_parquet({quote_literal(str(i.held_path))}) as raw order by 1")
