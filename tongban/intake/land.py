"""Intake: read one delivery, check its shape with pandera, land it raw as Parquet.

Each source lands in its own file (``<raw_dir>/<source_id>/<entity>.parquet``), so provinces can
be taken in parallel by Airflow's mapped tasks without sharing a DuckDB write lock. Every source
column is kept as text, plus the provenance columns; nothing is dropped.

A delivery that is unreadable or misses a required column is rejected whole: an empty raw
file with the declared columns is landed (so the transform still runs for everyone else), and
the result says why, naming the province, the file and the column.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tongban.sqlquote import quote_literal
from tongban.standards.models import Entity, Mapping

PROVENANCE_TYPES = {"source_id": "varchar", "delivery_sha256": "varchar",
                    "source_row_number": "bigint", "run_id": "varchar"}


@dataclass
class IntakeResult:
    source_id: str
    entity: str
    province_code: str
    delivery_file: str
    status: str  # landed | rejected | missing
    rows_delivered: int = 0
    delivery_sha256: str | None = None
    encoding: str | None = None
    format: str | None = None
    message: str = ""
    missing_columns: list[str] = field(default_factory=list)
    raw_path: str | None = None
    mapping_version: str = ""

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

    from tongban import validators
    from tongban.config import settings

    ref_dir = settings().reference_dir  # once, not per value
    check = {"gb11643": partial(validators.gb11643_problem, ref_dir=ref_dir),
             "gb32100": partial(validators.gb32100_problem, ref_dir=ref_dir),
             "gbt36904": validators.gbt36904_problem}[validator]
    # only the first values are read: the check must not walk a 10M-row column in Python
    stripped = (str(v).strip() for v in values if v is not None)
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
    from tongban.standards.dbtgen import quote_source_column

    return quote_source_column(name)


def land(m: Mapping, *, inbox_dirs: tuple[Path, ...] | list[Path], raw_dir: Path, run_id: str,
         entity: Entity | None = None) -> IntakeResult:
    """Read ``m``'s delivery from the first inbox directory that has it and land it as Parquet."""
    from tongban.intake.readers import DeliveryReadError, read_delivery

    inbox_dirs = [Path(d) for d in inbox_dirs]
    path = next((d / m.delivery.file for d in inbox_dirs if (d / m.delivery.file).is_file()),
                inbox_dirs[0] / m.delivery.file)
    result = IntakeResult(source_id=m.source_id, entity=m.entity, province_code=m.province_code,
                          delivery_file=str(path), status="landed", format=m.delivery.format,
                          mapping_version=m.version)
    out = raw_dir / m.source_id / f"{m.entity}.parquet"
    result.raw_path = str(out)
    who = f"{m.source_id} ({m.label.zh}) {m.entity}"
    if not path.is_file():
        result.status = "missing"
        searched = ", ".join(str(d) for d in inbox_dirs)
        result.message = f"{who}: no delivery {m.delivery.file} in the inbox ({searched}) — deliver the file " \
                         f"(for the synthetic entities: `tongban sample`), or fix delivery.file in " \
                         f"standards/mappings/{m.source_id}/{m.entity}.yaml"
        _land_empty(m, out)
        return result
    try:
        delivery = read_delivery(path, m.delivery.format, sheet=m.delivery.sheet)
    except DeliveryReadError as exc:
        result.status = "rejected"
        result.message = f"{who}: {exc}"
        _land_empty(m, out)
        return result
    frame = delivery.frame
    result.rows_delivered = len(frame)
    result.delivery_sha256 = delivery.sha256
    result.encoding = delivery.encoding
    result.format = delivery.format

    import pandera.errors

    try:
        pandera_schema(m, entity).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        missing = sorted(set(cases.loc[cases["check"].astype(str).str.contains("column_in_dataframe"),
                                       "failure_case"].astype(str)))
        result.status = "rejected"
        result.missing_columns = missing
        if missing:
            result.message = (f"{who}: delivery {path.name} is rejected whole: required column(s) "
                              f"{', '.join(repr(c) for c in missing)} missing (it has {', '.join(delivery.columns[:20])}) "
                              f"— the province must re-deliver with the column, or the committee must mark it "
                              f"optional in standards/mappings/{m.source_id}/{m.entity}.yaml")
        else:
            shape = [str(e) for e in cases["check"].dropna().astype(str) if e.startswith("fewer than")]
            if shape:
                result.message = (f"{who}: delivery {path.name} is rejected whole: {'; '.join(sorted(set(shape)))} "
                                  f"— are columns shifted or mislabelled? The province must re-deliver, or the "
                                  f"committee must fix the column in standards/mappings/{m.source_id}/{m.entity}.yaml")
            else:
                result.message = f"{who}: delivery {path.name} does not match its declared schema: {exc}"
        _land_empty(m, out)
        return result

    _land_frame(m, frame, out, sha256=delivery.sha256, run_id=run_id)
    return result


def _columns_sql(m: Mapping, frame_columns: list[str] | None) -> str:
    """Declared columns as text (null when the delivery lacks an optional one), then provenance."""
    parts = []
    for c in m.delivery.columns:
        q = _quote_col(c.name)
        if frame_columns is not None and c.name in frame_columns:
            parts.append(f"{q}::varchar as {q}")
        else:
            parts.append(f"null::varchar as {q}")
    return ", ".join(parts)


def _land_frame(m: Mapping, frame, out: Path, *, sha256: str, run_id: str) -> None:
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent)) / "part.parquet"
    con = duckdb.connect()
    try:
        # An explicit ordinal: a parallel scan does not promise row_number() over () follows the file.
        con.register("delivery", frame.assign(__tongban_row=range(1, len(frame) + 1)))
        cols = _columns_sql(m, list(frame.columns))
        con.execute(
            f"copy (select {cols}, {quote_literal(m.source_id)} as source_id, "
            f"{quote_literal(sha256)} as delivery_sha256, "
            f"__tongban_row::bigint as source_row_number, "
            f"{quote_literal(run_id)} as run_id from delivery) "
            f"to {quote_literal(str(tmp))} (format parquet, compression zstd)")
    finally:
        con.close()
    os.replace(tmp, out)
    tmp.parent.rmdir()


def _land_empty(m: Mapping, out: Path) -> None:
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    cols = _columns_sql(m, None)
    prov = ", ".join(f"null::{t} as {k}" for k, t in PROVENANCE_TYPES.items())
    con = duckdb.connect()
    try:
        con.execute(f"copy (select {cols}, {prov} where false) to {quote_literal(str(out))} (format parquet)")
    finally:
        con.close()
