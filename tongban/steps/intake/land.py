"""Intake: read one delivery, check its shape with pandera, land it raw as Parquet.

Each source lands in its own file (``<raw_dir>/<source_id>/<entity>.parquet``), so provinces can
be taken in parallel by Airflow's mapped tasks without sharing a DuckDB write lock. Every source
column is kept as text, plus the provenance columns; nothing is dropped.

A delivery may come in parts (``delivery.file`` is then a glob, see :mod:`tongban.common.parts`):
they are landed as one file, the rows numbered across the parts in their natural order, and
every part must have the same header.

A delivery that is unreadable or misses a required column is rejected whole: an empty raw
file with the declared columns is landed (so the transform still runs for everyone else), and
the result says why, naming the province, the file (the part) and the column.

The rows never pass through a pandas frame of the whole delivery: DuckDB reads them into
Parquet (:mod:`tongban.steps.intake.staging`, which falls back to the reference reader
:func:`~tongban.steps.intake.readers.read_delivery` where DuckDB cannot promise the same values), and
pandera checks the header and a bounded sample (:func:`_sample_frame`).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tongban.common.sqlquote import quote_literal
from tongban.standards.models import Entity, Mapping
from tongban.common import validators
from tongban.common.config import settings
from tongban.standards.targets.dbt import quote_source_column
from tongban.common.parts import delivery_location, locate_parts
from tongban.steps.intake.readers import DeliveryReadError
from tongban.steps.intake.staging import stage_delivery
from tongban.common.hashing import combined_sha256, sha256_file
from tongban.steps.intake.csvpass import sniff_delimiter
from tongban.steps.intake.staging import connect

PROVENANCE_TYPES = {"source_id": "varchar", "delivery_sha256": "varchar",
                    "source_row_number": "bigint", "run_id": "varchar"}


@dataclass
class IntakeResult:
    source_id: str
    entity: str
    province_code: str
    delivery_file: str
    status: str  # landed | rejected | empty | missing
    #: data lines delivered; None when the file could not be read (size_bytes and sha256 say what came)
    rows_delivered: int | None = 0
    delivery_sha256: str | None = None
    encoding: str | None = None
    format: str | None = None
    message: str = ""
    missing_columns: list[str] = field(default_factory=list)
    raw_path: str | None = None
    mapping_version: str = ""
    #: the delivery's files in row order: [{"file": path, "rows": n, "sha256": hex}]
    parts: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: identifier validators whose Python twin checks a delivery's shape on arrival
_SHAPE_VALIDATORS = {"gb11643": "GB 11643 citizen ID numbers", "gb32100": "GB 32100 unified social credit codes",
                     "gbt36904": "GB/T 36904 e-certificate identifiers"}
#: below this share of valid values, an identifier column holds something else (shifted or
#: mislabelled columns): the delivery is rejected whole instead of quarantining every row
SHAPE_MIN_VALID_SHARE = 0.5
_SHAPE_SAMPLE = 2000


def _valid_share(values, validator: str) -> float:
    """Share of the first non-empty values (up to _SHAPE_SAMPLE) the Python validator accepts."""
    from functools import partial
    from itertools import islice


    ref_dir = settings().reference_dir  # once, not per value
    check = {"gb11643": partial(validators.gb11643_problem, ref_dir=ref_dir),
             "gb32100": partial(validators.gb32100_problem, ref_dir=ref_dir),
             "gbt36904": validators.gbt36904_problem}[validator]
    # only the first values are read: the check must not walk a 10M-row column in Python; they
    # are read half-width, as the models read identifiers (３１０... typed in Chinese is an ID)
    stripped = (validators.half_width(str(v)).strip() for v in values if v is not None)
    sample = list(islice((v for v in stripped if v), _SHAPE_SAMPLE))
    if not sample:
        return 1.0
    return sum(check(v) is None for v in sample) / len(sample)


def identifier_columns(m: Mapping, entity: Entity | None) -> dict[str, tuple[str, str]]:
    """Delivery column -> (standard field, validator) for the identifier fields a mapping reads
    straight from one column (only trim/upper on the way)."""
    if entity is None:
        return {}
    out = {}
    for f in entity.fields:
        fm = m.fields.get(f.name)
        if f.validator in _SHAPE_VALIDATORS and fm is not None and fm.source \
                and all(step.op in ("trim", "upper") for step in fm.steps):
            out[fm.source] = (f.name, f.validator)
    return out


def pandera_schema(m: Mapping, entity: Entity | None = None):
    """The source's declared delivery schema. Required columns must be present; every value is
    text; a column feeding a national identifier must mostly hold such identifiers (checked with
    the Python validators; the message gives shares only, never a value — they are personal data)."""
    import pandera.pandas as pa

    ids = identifier_columns(m, entity)

    def column(c) -> pa.Column:
        checks = []
        if c.name in ids:
            field_name, validator = ids[c.name]
            checks.append(pa.Check(
                lambda s, v=validator: _valid_share(s, v) >= SHAPE_MIN_VALID_SHARE,
                name=f"mostly_{validator}",
                error=f"fewer than {SHAPE_MIN_VALID_SHARE:.0%} of the values of column {c.name!r} "
                      f"({field_name}) are valid {_SHAPE_VALIDATORS[validator]}"))
        return pa.Column(object, checks=checks, nullable=True, required=c.required, coerce=False)

    return pa.DataFrameSchema(
        {c.name: column(c) for c in m.delivery.columns},
        strict=False,
        name=f"{m.source_id}.{m.entity} delivery",
    )


def _quote_col(name: str) -> str:
    return quote_source_column(name)


def land(m: Mapping, *, inbox_dirs: tuple[Path, ...] | list[Path], raw_dir: Path, run_id: str,
         entity: Entity | None = None) -> IntakeResult:
    """Read ``m``'s delivery (all its parts) from the first inbox directory that has it and land
    it as Parquet. The rows go from the files to Parquet through DuckDB
    (:mod:`tongban.steps.intake.staging`); pandera checks the header and a bounded sample."""

    inbox_dirs = [Path(d) for d in inbox_dirs]
    found, paths = locate_parts(inbox_dirs, m.delivery.file)
    path = delivery_location(found, m.delivery.file, paths) if found is not None else inbox_dirs[0] / m.delivery.file
    result = IntakeResult(source_id=m.source_id, entity=m.entity, province_code=m.province_code,
                          delivery_file=str(path), status="landed", format=m.delivery.format,
                          mapping_version=m.version)
    out = raw_dir / m.source_id / f"{m.entity}.parquet"
    result.raw_path = str(out)
    who = f"{m.source_id} ({m.label.zh}) {m.entity}"
    if not paths:
        result.status = "missing"
        searched = ", ".join(str(d) for d in inbox_dirs)
        result.message = f"{who}: no delivery {m.delivery.file} in the inbox ({searched}) — deliver the file " \
                         f"(for the synthetic entities: `tongban sample`), or fix delivery.file in " \
                         f"standards/mappings/{m.source_id}/{m.entity}.yaml"
        _land_empty(m, out)
        return result
    out.parent.mkdir(parents=True, exist_ok=True)
    # named by the run, and renamed into place whole: no run reads another's half-written file
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{m.entity}.intake-{run_id}-"))
    try:
        try:
            staged = stage_delivery(paths, format=m.delivery.format, sheet=m.delivery.sheet,
                                    declared=[c.name for c in m.delivery.columns],
                                    required={c.name for c in m.delivery.columns if c.required},
                                    work_dir=work, source_id=m.source_id, run_id=run_id)
        except DeliveryReadError as exc:
            # rejected whole: what came is recorded by its size and sha256 and, where its lines can be
            # told apart, their count; never as 0 rows delivered
            declared = {c.name for c in m.delivery.columns}
            result.status = "rejected"
            result.size_bytes, result.delivery_sha256 = _file_facts(paths)
            result.rows_delivered, headerless = _count_lines(paths, m.delivery.format, declared)
            problem = (f"{exc.path.name}: the first line looks like data, not a header — the province must "
                       f"re-deliver with the column names in the first line") if headerless else str(exc)
            result.message = (f"{who}: {problem} (rejected whole, {result.size_bytes} bytes, "
                              f"sha256 {result.delivery_sha256[:12]}…)")
            _land_empty(m, out)
            return result
        result.parts = [p.to_dict() for p in staged.parts]
        result.rows_delivered = staged.rows
        result.delivery_sha256 = staged.sha256
        result.encoding = _joined(p.encoding for p in staged.parts)
        result.format = _joined(p.format for p in staged.parts)
        result.size_bytes = sum(p.path.stat().st_size for p in staged.parts)
        if not _check_schema(m, entity, staged, result, who, path):
            _land_empty(m, out)
            return result
        if staged.rows == 0 and not m.delivery.empty_is_valid:
            result.status = "empty"
            result.message = (f"{who}: delivery {path.name} has a header but no rows — nothing was published for "
                              f"{m.source_id}; its previous publication stays in the exchange. If the source "
                              f"really has no records now, set delivery.empty_is_valid: true in "
                              f"standards/mappings/{m.source_id}/{m.entity}.yaml")
            _land_empty(m, out)
            return result
        _land_staged(staged, out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _joined(values) -> str | None:
    distinct = list(dict.fromkeys(v for v in values if v))
    return ", ".join(distinct) if distinct else None


#: rows of the delivery in pandera's sample frame (the identifier columns hold what the shape
#: check reads instead, see :func:`_sample_frame`)
SAMPLE_ROWS = 10_000


def _delivery_columns(staged) -> list[str]:
    """The delivery's columns: the first part's, less any another part lacks (JSON only: the
    headers of CSV and XLSX parts are the same or the delivery was rejected)."""
    first = staged.parts[0].columns or []
    return [c for c in first if all(c in (p.columns or []) for p in staged.parts[1:])]


def _first_values(con, relation: str, column: str, wanted: int) -> list[str]:
    """The column's first ``wanted`` values that are not empty after strip, in row order."""
    q = _quote_col(column)
    out: list[str] = []
    after = 0
    while len(out) < wanted:
        # WHERE and LIMIT keep the rows' order (DuckDB's order preservation): no sort needed
        batch = con.execute(f"select source_row_number, {q} from {relation} where source_row_number > ? "
                            f"and {q} <> '' limit ?", [after, wanted]).fetchall()
        if not batch:
            break
        out.extend(v for _n, v in batch if v.strip())  # '' and whitespace only: _valid_share skips them
        after = batch[-1][0]
    return out[:wanted]


def _sample_frame(m: Mapping, entity: Entity | None, staged):
    """What pandera checks instead of the whole delivery: the delivery's declared columns, each
    with its first values in row order — ``SAMPLE_ROWS`` of them, and for a column feeding a
    national identifier exactly the values ``_valid_share`` reads (its first ``_SHAPE_SAMPLE``
    non-empty ones, wherever they are), so the decision is the one over the whole delivery.
    The checks are per column; the columns are padded with nulls to one length."""
    import duckdb
    import pandas as pd

    declared = [c.name for c in m.delivery.columns]
    columns = [c for c in _delivery_columns(staged) if c in declared]
    ids = identifier_columns(m, entity)
    relation = staged.relation()
    con = duckdb.connect()
    try:
        data: dict[str, list] = {}
        plain = [c for c in columns if c not in ids]
        if plain and staged.rows:
            head = con.execute(f"select {', '.join(_quote_col(c) for c in plain)} from {relation} "
                               f"limit {SAMPLE_ROWS}").fetchall()
            data = {c: list(values) for c, values in zip(plain, zip(*head, strict=True), strict=True)} if head else {}
        for c in columns:
            if c in ids:
                data[c] = _first_values(con, relation, c, _SHAPE_SAMPLE)
            data.setdefault(c, [])
    finally:
        con.close()
    length = max((len(v) for v in data.values()), default=0)
    return pd.DataFrame({c: data[c] + [None] * (length - len(data[c])) for c in columns}, columns=columns,
                        dtype=object)


def _check_schema(m: Mapping, entity: Entity | None, staged, result: IntakeResult, who: str, path: Path) -> bool:
    """pandera's verdict on the header and the sample; on a rejection the result says why."""
    import pandera.errors

    try:
        pandera_schema(m, entity).validate(_sample_frame(m, entity, staged), lazy=True)
        return True
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        missing = sorted(set(cases.loc[cases["check"].astype(str).str.contains("column_in_dataframe"),
                                       "failure_case"].astype(str)))
        result.status = "rejected"
        result.missing_columns = missing
        declared = {c.name for c in m.delivery.columns}
        if missing:
            # the part that lacks one (the delivery itself when it is one file)
            lacking = next((p for p in staged.parts if any(c not in (p.columns or []) for c in missing)),
                           staged.parts[0])
            name = lacking.path.name if len(staged.parts) > 1 else path.name
            header = lacking.columns or []
            if header_looks_like_data(header, declared):
                # its first data line was read as the header: that row is delivered too, and its
                # values (personal data, maybe) are named nowhere
                result.rows_delivered = staged.rows + 1
                found = "the first line looks like data, not a header"
            else:
                found = describe_columns(header, declared)
            result.message = (f"{who}: delivery {name} is rejected whole: required column(s) "
                              f"{', '.join(repr(c) for c in missing)} missing ({found}) "
                              f"— the province must re-deliver with the header and the column, or the committee "
                              f"must mark it optional in standards/mappings/{m.source_id}/{m.entity}.yaml")
        else:
            shape = [str(e) for e in cases["check"].dropna().astype(str) if e.startswith("fewer than")]
            if shape:
                result.message = (f"{who}: delivery {path.name} is rejected whole: {'; '.join(sorted(set(shape)))} "
                                  f"— are columns shifted or mislabelled? The province must re-deliver, or the "
                                  f"committee must fix the column in standards/mappings/{m.source_id}/{m.entity}.yaml")
            else:  # pandera's own text would quote the failing values: name the checks only
                checks = sorted({str(c) for c in cases["check"].dropna()})
                result.message = (f"{who}: delivery {path.name} does not match its declared schema "
                                  f"(failed checks: {', '.join(checks)})")
        return False


#: a header cell that holds a value rather than a name: digits in a row (ID numbers, phones, dates)
_DATA_LIKE = re.compile(r"[0-9０-９]{3,}|^[0-9.,:/\- ]+$")


def header_looks_like_data(header: list[str], declared: set[str]) -> bool:
    """True when a delivery's first line is a record, not column names: none of the declared names,
    and some cell holds what only values hold (runs of digits: ID numbers, phones, dates)."""
    return bool(header) and not (set(header) & declared) and any(_DATA_LIKE.search(h) for h in header)


def describe_columns(header: list[str], declared: set[str]) -> str:
    """The declared columns a delivery has, by name, and how many others — never an undeclared name,
    which comes from the file's content."""
    have = [c for c in header if c in declared]
    others = len(header) - len(have)
    named = f"it has {', '.join(repr(c) for c in have)}" if have else "it has none of the declared columns"
    return named + (f" and {others} other column(s)" if others else "")


def _file_facts(paths: list[Path]) -> tuple[int, str]:
    """(total size, sha256 as intake records a delivery's) of files that could not be read."""

    existing = [p for p in paths if p.is_file()]
    return sum(p.stat().st_size for p in existing), combined_sha256([(p.name, sha256_file(p)) for p in existing])


def _count_lines(paths: list[Path], format: str | None, declared: set[str]) -> tuple[int | None, bool]:
    """(data lines, whether the first line is a record) of a delivery that could not be read: its
    non-blank lines, less a CSV header that is one — for text in UTF-8 or GB18030 only; for anything
    else (a workbook, a JSON array, bytes that are not text) the count is unknown (None)."""

    total, headerless = 0, False
    for path in paths:
        suffix = path.suffix.lower().lstrip(".")
        kind = format or {"csv": "csv", "txt": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix)
        if kind not in ("csv", "jsonl") or not path.is_file():
            return None, False
        data = path.read_bytes()
        if b"\x00" in data:
            return None, False
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            return None, False
        lines = [line for line in text.splitlines() if line.strip()]
        if kind == "csv" and lines:
            first = next(csv.reader([lines[0]], delimiter=sniff_delimiter(lines[0])), [])
            if header_looks_like_data(first, declared):
                headerless = True
            else:
                lines = lines[1:]
        total += len(lines)
    return total, headerless


def _land_staged(staged, out: Path, work: Path) -> None:
    """The staged pieces become the landed file: moved when there is one, else copied into one."""

    pieces = staged.pieces
    if len(pieces) == 1:
        os.replace(pieces[0], out)
        return
    tmp = work / "landed.parquet"
    con = connect(work)
    try:
        con.execute(f"copy (select * from {staged.relation()}) to {quote_literal(str(tmp))} "
                    f"(format parquet, compression zstd)")
    finally:
        con.close()
    os.replace(tmp, out)


def _columns_sql(m: Mapping) -> str:
    """Declared columns as text, all null."""
    return ", ".join(f"null::varchar as {_quote_col(c.name)}" for c in m.delivery.columns)


def _land_empty(m: Mapping, out: Path) -> None:
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    cols = _columns_sql(m)
    prov = ", ".join(f"null::{t} as {k}" for k, t in PROVENANCE_TYPES.items())
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid():x}")
    con = duckdb.connect()
    try:
        con.execute(f"copy (select {cols}, {prov} where false) to {quote_literal(str(tmp))} (format parquet)")
    finally:
        con.close()
    os.replace(tmp, out)
