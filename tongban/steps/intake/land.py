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
Parquet (:mod:`tongban.steps.intake.staging`, DuckDB's readers, fastexcel for XLSX, and a
streaming Python pass for what DuckDB cannot read as it is), and
pandera checks the header and a bounded sample (:func:`~tongban.steps.intake.shape.sample_frame`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tongban.common.parts import delivery_location, locate_parts
from tongban.common.sqlquote import quote_literal
from tongban.standards.models import Entity, Mapping
from tongban.standards.targets.dbt import quote_source_column
from tongban.steps.intake.readers import DeliveryReadError
from tongban.steps.intake.rejected import record_unreadable
from tongban.steps.intake.shape import SAMPLE_ROWS, check_schema
from tongban.steps.intake.staging import connect, present_columns, stage_delivery

__all__ = ["PROVENANCE_TYPES", "SAMPLE_ROWS", "IntakeResult", "land"]

HELD_FIELDS = ("held_path", "held_columns")
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
    #: a delivery rejected whole whose rows could be read keeps them here for its feedback (every
    #: declared column as text + provenance), with the declared columns it had
    held_path: str | None = None
    held_columns: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in HELD_FIELDS:  # absent unless held: the run record keeps its shape otherwise
            if out[name] is None:
                del out[name]
        return out


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
    held = out.with_name(f"{m.entity}.held.parquet")
    held.unlink(missing_ok=True)  # it describes only the delivery last read
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
            record_unreadable(result, exc, paths, m.delivery.format, {c.name for c in m.delivery.columns}, who)
            _land_empty(m, out)
            return result
        result.parts = [p.to_dict() for p in staged.parts]
        result.rows_delivered = staged.rows
        result.delivery_sha256 = staged.sha256
        result.encoding = _joined(p.encoding for p in staged.parts)
        result.format = _joined(p.format for p in staged.parts)
        result.size_bytes = sum(p.path.stat().st_size for p in staged.parts)
        if not check_schema(m, entity, staged, result, who, path):
            _hold(staged, held, work, result)
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


def _hold(staged, held: Path, work: Path, result: IntakeResult) -> None:
    """A delivery rejected whole keeps its rows beside the landed (empty) file, so that its
    feedback sends every row back with the reason without reading the delivery again."""
    present = {c for p in staged.parts for c in present_columns(p)}
    _land_staged(staged, held, work)
    result.held_path = str(held)
    result.held_columns = sorted(present)


def _columns_sql(m: Mapping) -> str:
    """Declared columns as text, all null."""
    return ", ".join(f"null::varchar as {_quote_col(c.name)}" for c in m.delivery.columns)


def _land_empty(m: Mapping, out: Path) -> None:
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
