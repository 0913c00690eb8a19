"""pandera's check of a delivery on arrival: the declared columns are there, and a column that
feeds a national identifier mostly holds such identifiers — decided on a bounded sample of the
staged rows (:func:`sample_frame`), exactly as over the whole delivery. Also what a rejection says
about a header: the declared columns by name, the others counted (they come from the file)."""

from __future__ import annotations

import re
from functools import partial
from itertools import islice
from pathlib import Path

import duckdb
import pandas as pd

from tongban.common import validators
from tongban.common.config import settings
from tongban.standards.models import Entity, Mapping
from tongban.standards.targets.dbt import quote_source_column


def _quote_col(name: str) -> str:
    return quote_source_column(name)


#: identifier validators whose Python twin checks a delivery's shape on arrival
_SHAPE_VALIDATORS = {"gb11643": "GB 11643 citizen ID numbers", "gb32100": "GB 32100 unified social credit codes",
                     "gbt36904": "GB/T 36904 e-certificate identifiers"}
#: below this share of valid values, an identifier column holds something else (shifted or
#: mislabelled columns): the delivery is rejected whole instead of quarantining every row
SHAPE_MIN_VALID_SHARE = 0.5
_SHAPE_SAMPLE = 2000


def _valid_share(values, validator: str) -> float:
    """Share of the first non-empty values (up to _SHAPE_SAMPLE) the Python validator accepts."""
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
    import pandera.pandas as pa  # pandera pulls in pandas: imported only when a delivery's shape is checked

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


#: rows of the delivery in pandera's sample frame (the identifier columns hold what the shape
#: check reads instead, see :func:`sample_frame`)
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


def sample_frame(m: Mapping, entity: Entity | None, staged):
    """What pandera checks instead of the whole delivery: the delivery's declared columns, each
    with its first values in row order — ``SAMPLE_ROWS`` of them, and for a column feeding a
    national identifier exactly the values ``_valid_share`` reads (its first ``_SHAPE_SAMPLE``
    non-empty ones, wherever they are), so the decision is the one over the whole delivery.
    The checks are per column; the columns are padded with nulls to one length."""
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


def check_schema(m: Mapping, entity: Entity | None, staged, result, who: str, path: Path) -> bool:
    """pandera's verdict on the header and the sample; on a rejection ``result`` (the
    :class:`~tongban.steps.intake.land.IntakeResult`) says why."""
    import pandera.errors  # pandera pulls in pandas: imported only when a delivery's shape is checked

    try:
        pandera_schema(m, entity).validate(sample_frame(m, entity, staged), lazy=True)
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
