"""Loaders of the real reference data in ``settings().reference_dir`` (see its SOURCES.md).

Every loader takes ``ref_dir`` (None means ``tongban.common.config.settings().reference_dir``, which
``TONGBAN_REFERENCE_DIR`` moves) and caches its result per resolved directory. A missing file
raises :class:`ReferenceDataError`, a ``FileNotFoundError`` that names the file.

``load_reference`` puts the same data into a DuckDB connection (schema ``reference``) for the
SQL validators in ``macros/validators.sql``.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tongban.common.config import settings

MCA_2024_FILE = "gbt2260/gbt2260_mca_2024_all.csv"
HISTORY_FILE = "gbt2260/yescallop_areacodes_history_result.csv"
NBS_AREAS_FILE = "gbt2260/nbs2022_modood_areas.csv"
INDUSTRY_FILE = "code_lists/gbt4754_2017_industry_classification_cqsss.json"
REAL_USCC_FILE = "identifiers/uscc_real_numbers_python-stdnum.csv"

#: the division history starts in 1981; codes in use then count for earlier years too
HISTORY_FIRST_YEAR = 1981


class ReferenceDataError(FileNotFoundError):
    """A reference file is missing."""

    exit_code = 1  # bad input: the reference directory (tongban.cli)


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str  # 'province' | 'prefecture' | 'county'
    parent_code: str | None


@dataclass(frozen=True)
class HistoryEntry:
    code: str
    name: str
    level: str  # as in the file: 省级 / 地级 / 县级
    status: str  # 在用 / 弃用 / 变更
    start_year: int
    end_year: int | None  # None while in use; inclusive
    new_codes: tuple[str, ...]  # as in the file, e.g. ('340104', '340111[2006]')


@dataclass(frozen=True)
class IndustryClass:
    code: str  # 4 digits
    name: str
    group_code: str
    group_name: str
    division_code: str
    division_name: str
    section_code: str  # a letter
    section_name: str


@dataclass(frozen=True)
class RealUscc:
    uscc: str
    authority: str
    entity_type: str
    region_code: str
    region_name: str | None
    is_yrd: bool


# --------------------------------------------------------------------------------------------
# files


def _resolve(ref_dir: Path | str | None) -> Path:
    if ref_dir is None:
        return settings().reference_dir
    return _resolved(str(ref_dir))


@functools.lru_cache(maxsize=8)
def _resolved(ref_dir: str) -> Path:
    """Resolved once per directory: the validators ask per value (intake's shape check, 2,000 a column)."""
    return Path(ref_dir).expanduser().resolve()


def _file(ref_dir: Path, relative: str) -> Path:
    path = ref_dir / relative
    if not path.is_file():
        raise ReferenceDataError(
            f"reference file {relative} not found at {path}; set TONGBAN_REFERENCE_DIR to the "
            f"reference data directory (currently {ref_dir})"
        )
    return path


def _csv_rows(ref_dir: Path, relative: str) -> list[dict[str, str]]:
    # utf-8-sig drops the BOM that the history file starts with
    with _file(ref_dir, relative).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------------------------
# GB/T 2260


@functools.lru_cache(maxsize=8)
def _divisions_current(ref_dir: Path) -> dict[str, Division]:
    return {
        r["code"]: Division(r["code"], r["name"], r["level"], r["parent_code"] or None)
        for r in _csv_rows(ref_dir, MCA_2024_FILE)
    }


def divisions_current(ref_dir: Path | None = None) -> dict[str, Division]:
    """The GB/T 2260 codes in force (MCA list at the end of 2024), code → Division."""
    return _divisions_current(_resolve(ref_dir))


@functools.lru_cache(maxsize=8)
def _division_history(ref_dir: Path) -> dict[str, list[HistoryEntry]]:
    history: dict[str, list[HistoryEntry]] = {}
    for r in _csv_rows(ref_dir, HISTORY_FILE):
        end = r["变更/弃用时间"].strip()
        entry = HistoryEntry(
            code=r["代码"],
            name=r["名称"],
            level=r["级别"],
            status=r["状态"],
            start_year=int(r["启用时间"]),
            end_year=int(end) if end else None,
            new_codes=tuple(c for c in r["新代码"].split(";") if c),
        )
        history.setdefault(entry.code, []).append(entry)
    for entries in history.values():
        entries.sort(key=lambda e: e.start_year)
    return history


def division_history(ref_dir: Path | None = None) -> dict[str, list[HistoryEntry]]:
    """Every county-level-and-above code since 1981, code → its entries (oldest first).

    A code can have several entries (codes are reused: 340111 was 合肥郊区 1983–2002 and is
    包河区 since 2002).
    """
    return _division_history(_resolve(ref_dir))


def division_in_use(code: str, year: int, ref_dir: Path | None = None) -> bool:
    """Whether ``code`` was a division code in ``year`` (both ends of an entry inclusive).

    Years before 1981 (where the history starts) count as 1981.
    """
    y = max(year, HISTORY_FIRST_YEAR)
    return any(
        e.start_year <= y and (e.end_year is None or y <= e.end_year)
        for e in division_history(ref_dir).get(code, ())
    )


@functools.lru_cache(maxsize=8)
def _nbs_statistical_codes(ref_dir: Path) -> dict[str, str]:
    current = _divisions_current(ref_dir)
    history = _division_history(ref_dir)
    return {
        r["code"]: r["name"]
        for r in _csv_rows(ref_dir, NBS_AREAS_FILE)
        if r["code"] not in current and r["code"] not in history
    }


def nbs_statistical_codes(ref_dir: Path | None = None) -> dict[str, str]:
    """NBS county-level codes that are not GB/T 2260 codes (e.g. 320576 苏州工业园区), code → name."""
    return _nbs_statistical_codes(_resolve(ref_dir))


@functools.lru_cache(maxsize=8)
def _all_division_codes(ref_dir: Path) -> frozenset[str]:
    return frozenset(_divisions_current(ref_dir)) | frozenset(_division_history(ref_dir))


def all_division_codes(ref_dir: Path | None = None) -> frozenset[str]:
    """Every code in the MCA 2024 list or anywhere in the history."""
    return _all_division_codes(_resolve(ref_dir))


# --------------------------------------------------------------------------------------------
# GB/T 4754-2017


@functools.lru_cache(maxsize=8)
def _industry_classes(ref_dir: Path) -> dict[str, IndustryClass]:
    with _file(ref_dir, INDUSTRY_FILE).open(encoding="utf-8") as fh:
        tree: list[dict[str, Any]] = json.load(fh)
    classes: dict[str, IndustryClass] = {}
    for section in tree:
        for division in section.get("children") or ():
            for group in division.get("children") or ():
                for cls in group.get("children") or ():
                    code = cls["code"]
                    if code in classes:
                        raise ValueError(f"{INDUSTRY_FILE}: class {code} appears twice")
                    classes[code] = IndustryClass(
                        code=code,
                        name=cls["name"],
                        group_code=group["code"],
                        group_name=group["name"],
                        division_code=division["code"],
                        division_name=division["name"],
                        section_code=section["code"],
                        section_name=section["name"],
                    )
    return classes


def industry_classes(ref_dir: Path | None = None) -> dict[str, IndustryClass]:
    """GB/T 4754-2017 4-digit classes, code → IndustryClass (with its group, division, section)."""
    return _industry_classes(_resolve(ref_dir))


# --------------------------------------------------------------------------------------------
# real identifiers


@functools.lru_cache(maxsize=8)
def _real_usccs(ref_dir: Path) -> tuple[RealUscc, ...]:
    return tuple(
        RealUscc(
            uscc=r["uscc"],
            authority=r["registration_authority_code"],
            entity_type=r["entity_type_code"],
            region_code=r["region_code"],
            region_name=r["region_name_mca2024"] or None,
            is_yrd=r["is_yrd"].strip().lower() == "true",
        )
        for r in _csv_rows(ref_dir, REAL_USCC_FILE)
    )


def real_usccs(ref_dir: Path | None = None) -> list[RealUscc]:
    """The 383 real USCCs from python-stdnum's tests."""
    return list(_real_usccs(_resolve(ref_dir)))


# --------------------------------------------------------------------------------------------
# DuckDB


def _create_table(con: Any, table: str, columns: list[tuple[str, str]], rows: list[tuple]) -> None:
    """create or replace ``table`` from Python rows, passed as one list parameter per column."""
    lists = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns]
    select = ", ".join(
        f"cast(unnest(${i + 1}) as {sqltype}) as {name}" for i, (name, sqltype) in enumerate(columns)
    )
    con.execute(f"create or replace table {table} as select {select}", lists)


def load_reference(con: Any, ref_dir: Path | None = None) -> None:
    """(Re)create the ``reference.*`` tables that the SQL validators read."""
    ref = _resolve(ref_dir)
    current = _divisions_current(ref)
    history = _division_history(ref)
    nbs = _nbs_statistical_codes(ref)
    classes = _industry_classes(ref)
    con.execute("create schema if not exists reference")
    _create_table(
        con,
        "reference.gbt2260_current",
        [("code", "varchar"), ("name", "varchar"), ("level", "varchar"), ("parent_code", "varchar"),
         ("province_code", "varchar")],
        [(d.code, d.name, d.level, d.parent_code, d.code[:2]) for d in current.values()],
    )
    _create_table(
        con,
        "reference.gbt2260_history",
        [("code", "varchar"), ("name", "varchar"), ("level", "varchar"), ("status", "varchar"),
         ("start_year", "integer"), ("end_year", "integer")],
        [(e.code, e.name, e.level, e.status, e.start_year, e.end_year)
         for entries in history.values() for e in entries],
    )
    _create_table(
        con,
        "reference.nbs_statistical_codes",
        [("code", "varchar"), ("name", "varchar")],
        list(nbs.items()),
    )
    _create_table(
        con,
        "reference.gbt4754_classes",
        [("code", "varchar"), ("name", "varchar"), ("group_code", "varchar"), ("group_name", "varchar"),
         ("division_code", "varchar"), ("division_name", "varchar"), ("section_code", "varchar"),
         ("section_name", "varchar")],
        [(c.code, c.name, c.group_code, c.group_name, c.division_code, c.division_name, c.section_code,
          c.section_name) for c in classes.values()],
    )
