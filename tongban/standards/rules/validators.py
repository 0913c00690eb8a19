"""The national identifier and code validators a field may name (``validator: <name>``).

Each is one class: the SQL that yields the validator's problem code (macros/validators.sql,
per dialect), the same check in Python (tongban.common.validators, for the pandas benchmark twin),
the published shape the gate checks again, and its name in the dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from tongban.common import validators as py
from tongban.common.sqlquote import quote_literal
from tongban.standards.rules import spark
from tongban.standards.rules.base import Catalogue

VALIDATORS: Catalogue[Validator] = Catalogue("validator")


class Validator:
    name: ClassVar[str]
    shape: ClassVar[str]  # the published form (upper case, no spaces), checked again by the gate
    words: ClassVar[tuple[str, str]]  # (zh, en)

    def sql_duckdb(self, value: str, f: Any) -> str:
        """The problem code of ``value`` (SQL), null when it passes."""
        return f"{self.name}_problem({value})"

    def sql_spark(self, value: str, f: Any) -> str:
        """The same problem code in Spark SQL (inlined: Spark has no SQL macros)."""
        return spark.PROBLEMS[self.name](value, f)

    def problem(self, value: str, f: Any, ref_dir: Path | None) -> str | None:
        """The same check in Python."""
        return getattr(py, f"{self.name}_problem")(value, ref_dir)

    def describe(self, f: Any) -> tuple[str, str]:
        return self.words


@VALIDATORS.register
class GB11643(Validator):
    name = "gb11643"
    shape = r"^[0-9]{17}[0-9X]$"
    words = ("GB 11643 公民身份号码（校验码；出生年份时在用的地址码）",
             "GB 11643 citizen ID (check character, birthplace code in use in the birth year)")


@VALIDATORS.register
class GB32100(Validator):
    name = "gb32100"
    shape = r"^[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}$"
    words = ("GB 32100 统一社会信用代码（校验码；第3-8位为行政区划码）",
             "GB 32100 unified social credit code (check characters, region code in positions 3-8)")


_LEVELS = {"province": ("省级", "province level"), "prefecture": ("地级", "prefecture level"),
           "county": ("县级", "county level")}


@VALIDATORS.register
class GBT2260(Validator):
    """A division code in force; ``division_level`` (on the field) names the level it must have."""

    name = "gbt2260"
    shape = r"^[1-9][0-9]{5}$"
    words = ("GB/T 2260 现行行政区划代码", "GB/T 2260 administrative division code in force")

    def sql_duckdb(self, value: str, f: Any) -> str:
        level = quote_literal(f.division_level) if f.division_level else "null::varchar"
        return f"gbt2260_problem({value}, {level})"

    def problem(self, value: str, f: Any, ref_dir: Path | None) -> str | None:
        return py.gbt2260_problem(value, f.division_level, ref_dir)

    def describe(self, f: Any) -> tuple[str, str]:
        zh, en = self.words
        if f.division_level:
            lz, le = _LEVELS.get(f.division_level, (f.division_level, f.division_level))
            zh, en = f"{zh}（{lz}）", f"{en} ({le})"
        return zh, en


@VALIDATORS.register
class GBT36904(Validator):
    name = "gbt36904"
    shape = r"^1\.2\.156\.3005\.2\.[0-9A-Z]+\.[0-9A-Z]+\.[0-9A-Z]+\.[0-9]{3}\.[0-9A-Z]$"
    words = ("GB/T 36904 电子证照标识（MOD 37,36 校验码）",
             "GB/T 36904 e-certificate identifier (MOD 37,36 check character)")

    def problem(self, value: str, f: Any, ref_dir: Path | None) -> str | None:
        return py.gbt36904_problem(value)


@VALIDATORS.register
class GBT4754(Validator):
    name = "gbt4754"
    shape = r"^[0-9]{4}$"
    words = ("GB/T 4754-2017 四位行业小类代码", "GB/T 4754-2017 4-digit industry class")
