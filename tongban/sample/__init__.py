"""Synthetic province deliveries with injected defects and answer keys (``tongban sample``).

Real births and business licences cannot be published, so these are generated: real reference
code lists (GB/T 2260, NBS codes, GB 3304, GB/T 4754, the shape of real USCCs) with synthetic
people, certificates and enterprises. Each province delivers in its own shape; every defective
row carries exactly one injected defect, listed in the answer key beside the delivery.
See docs/samples.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tongban.sample.common import PROVINCES
from tongban.sample.writers import XLSX_MAX_ROWS, WrittenDelivery, resolve_xlsx_max_rows
from tongban.sample import births
from tongban.sample import licenses

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DEFAULT_ROWS", "DEFAULT_SEED", "ENTITIES", "PROVINCES", "XLSX_MAX_ROWS", "WrittenDelivery",
           "generate_deliveries", "write_samples"]

ENTITIES = ("births", "licenses")
DEFAULT_ROWS = 50_000
DEFAULT_SEED = 20261127


def generate_deliveries(entity: str, rows: int, seed: int, out_dir: Path,
                        ref_dir: Path | None = None, *, xlsx_max_rows: int | None = None,
                        provinces: Iterable[str] | None = None) -> list[WrittenDelivery]:
    """Write one delivery per province (``rows`` rows each) and its answer key; describe them.

    Rows are generated, rendered and written one at a time (memory does not grow with ``rows``
    beyond a few small per-row lists). An XLSX delivery with more than ``xlsx_max_rows`` rows
    (default ``$TONGBAN_SAMPLE_XLSX_MAX_ROWS``, else 1,048,575: one sheet) is written in parts
    ``<name>-1.xlsx``, ``<name>-2.xlsx``, ...; the answer key's row numbers count across them.
    ``provinces`` (keys such as ``("js",)``) writes only those; each province's data depends only
    on the seed and the row count, never on which others are written."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}; use one of {', '.join(ENTITIES)}")
    if rows < 1:
        raise ValueError("rows must be at least 1")

    xlsx_max_rows = resolve_xlsx_max_rows(xlsx_max_rows)  # a bad value fails before anything is written
    out_dir = Path(out_dir)
    if entity == "births":
        return births.write(out_dir, rows, seed, ref_dir, xlsx_max_rows=xlsx_max_rows, provinces=provinces)

    return licenses.write(out_dir, rows, seed, ref_dir, xlsx_max_rows=xlsx_max_rows, provinces=provinces)


def write_samples(entity: str, rows: int, seed: int, out_dir: Path, **kwargs: Any) -> list[Path]:
    """The paths written: for each province its delivery (every part of it), then its answer key.
    ``kwargs``: ``xlsx_max_rows``, ``provinces`` (see :func:`generate_deliveries`)."""
    return [p for d in generate_deliveries(entity, rows, seed, out_dir, **kwargs) for p in (*d.files, d.answer_key)]
