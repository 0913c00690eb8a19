"""A delivery file's rows as intake reads them, as a frame: for tests that compare what landed,
or went back to a province, with what the file holds. The rows come from intake's one reader
(:func:`tongban.steps.intake.staging.stage_delivery`), every column of the file (the header, or
every key of a JSON delivery in first-seen order) as text."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from tongban.steps.intake.staging import stage_delivery


@dataclass
class Delivery:
    path: Path
    format: str  # "json" | "jsonl" | "csv" | "xlsx"
    encoding: str | None  # detected encoding for text formats; None for xlsx
    sha256: str
    columns: list[str]
    frame: pd.DataFrame = field(repr=False)
    reader: str = ""  # duckdb | python: who read the rows

    @property
    def row_count(self) -> int:
        return len(self.frame)


def read_delivery(path: Path, format: str | None = None, *, sheet: str | int | None = None) -> Delivery:
    """Every column of one delivered file, every value ``str`` or ``None`` (object dtype)."""
    work = Path(tempfile.mkdtemp(prefix="tongban-read-"))
    try:
        # first the file's own columns (staging lands the declared ones), then its rows
        (part,) = stage_delivery([Path(path)], format=format, sheet=sheet, declared=[], work_dir=work / "0").parts
        columns = list(part.columns or [])
        staged = stage_delivery([Path(path)], format=format, sheet=sheet, declared=columns, work_dir=work / "1")
        with duckdb.connect() as con:
            names = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
            rows = con.execute(f"select {names} from {staged.relation()}").fetchall() if columns else []
        (part,) = staged.parts
        frame = pd.DataFrame(rows, columns=columns, dtype=object) if columns else pd.DataFrame()
        return Delivery(Path(path), part.format, part.encoding, part.sha256, columns, frame, part.reader)
    finally:
        shutil.rmtree(work, ignore_errors=True)
