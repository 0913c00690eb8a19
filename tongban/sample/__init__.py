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

if TYPE_CHECKING:
    from tongban.sample.common import WrittenDelivery

__all__ = ["DEFAULT_ROWS", "DEFAULT_SEED", "ENTITIES", "PROVINCES", "WrittenDelivery", "generate_deliveries",
           "write_samples"]

ENTITIES = ("births", "licenses")
DEFAULT_ROWS = 50_000
DEFAULT_SEED = 20261127


def __getattr__(name: str) -> Any:
    # PROVINCES and WrittenDelivery load the reference and validator modules: only on use, so
    # that building the CLI parser stays cheap
    if name in ("PROVINCES", "WrittenDelivery"):
        from tongban.sample import common

        return getattr(common, name)
    raise AttributeError(name)


def generate_deliveries(entity: str, rows: int, seed: int, out_dir: Path,
                        ref_dir: Path | None = None) -> list[WrittenDelivery]:
    """Write one delivery per province (``rows`` rows each) and its answer key; describe them."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}; use one of {', '.join(ENTITIES)}")
    if rows < 1:
        raise ValueError("rows must be at least 1")
    out_dir = Path(out_dir)
    if entity == "births":
        from tongban.sample import births

        return births.write(out_dir, rows, seed, ref_dir)
    from tongban.sample import licenses

    return licenses.write(out_dir, rows, seed, ref_dir)


def write_samples(entity: str, rows: int, seed: int, out_dir: Path) -> list[Path]:
    """The paths written: for each province its delivery, then its answer key."""
    return [p for d in generate_deliveries(entity, rows, seed, out_dir) for p in (d.path, d.answer_key)]
