"""Profile every column of a delivery: fill rate, distinct share, samples and value patterns.

The delivery is read by intake's one reader (:func:`tongban.steps.intake.staging.stage_delivery`):
once to learn its columns, once with all of them declared. Values are counted in DuckDB; the
patterns are found in Python over the distinct values (weighted by their rows). Samples go only
into the report, never into a log or a message.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from tongban.common.validators import gb11643_problem, gb32100_problem
from tongban.standards.rules.fields import PHONE_NORMAL_RE
from tongban.standards.rules.sqlparts import EMAIL_RE, quote_source_column
from tongban.steps.intake.staging import present_columns, stage_delivery

CHINA = ZoneInfo("Asia/Shanghai")
#: values that stand for "no value" in the catalogues (无 none, 暂无 none yet)
NULL_MARKERS = ("无", "暂无", "-", "None", "null", "NULL", "暂无联系方式")
#: distinct values looked at per column (the most frequent first)
MAX_DISTINCT = 5000
#: list separators, most specific first
SEPARATORS = ("\r\n\t", "\n", "、", ",", "，", ";", "；", "|", " ")

# date forms -> the parse_date argument that reads them
_DATE_FORMS: list[tuple[str, re.Pattern[str], str]] = [
    ("YYYY-MM-DD", re.compile(r"\d{4}-\d{1,2}-\d{1,2}"), "%Y-%m-%d"),
    ("YYYY-MM-DD hh:mm:ss", re.compile(r"\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}:\d{2}"), "%Y-%m-%d %H:%M:%S"),
    ("YYYY/MM/DD", re.compile(r"\d{4}/\d{1,2}/\d{1,2}"), "%Y/%m/%d"),
    ("YYYY年M月D日", re.compile(r"\d{4}年\d{1,2}月\d{1,2}日"), "%Y年%m月%d日"),
    ("YYYYMMDD", re.compile(r"(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])"), "%Y%m%d"),
    ("epoch_s", re.compile(r"\d{10}"), "epoch_s"),
    ("epoch_ms", re.compile(r"\d{13}"), "epoch_ms"),
]
_EPOCH_RANGE = (dt.datetime(1990, 1, 1, tzinfo=CHINA).timestamp(), dt.datetime(2100, 1, 1, tzinfo=CHINA).timestamp())
_URL = re.compile(r"https?://\S+", re.I)
_EMAIL = re.compile(EMAIL_RE.strip("^$"))
_PHONE = re.compile(PHONE_NORMAL_RE.strip("^$"))
_PHONE_LOOSE = re.compile(r"(\(?0\d{2,3}\)?-?)?\d{7,8}|1[3-9]\d[\d*]{4}\d{4}")


def parse_date_value(value: str) -> tuple[str, dt.date] | None:
    """(form, date) of one value in any of the date forms; epoch seconds and milliseconds are
    read as instants and given as the date in China time (UTC+8), never the UTC date."""
    v = value.strip()
    for form, pattern, fmt in _DATE_FORMS:
        if not pattern.fullmatch(v):
            continue
        try:
            if form.startswith("epoch"):
                seconds = int(v) / (1000 if form == "epoch_ms" else 1)
                if not _EPOCH_RANGE[0] <= seconds < _EPOCH_RANGE[1]:
                    continue
                return form, dt.datetime.fromtimestamp(seconds, CHINA).date()
            return form, dt.datetime.strptime(v, fmt).date()
        except ValueError:
            continue
    return None


def date_format_arg(form: str) -> str:
    return next(fmt for f, _, fmt in _DATE_FORMS if f == form)


@dataclass
class ColumnProfile:
    name: str
    rows: int
    filled: int  # rows with a value that is neither empty nor a null marker
    distinct: int
    samples: list[str]  # for the report only
    patterns: dict[str, float] = field(default_factory=dict)  # pattern -> share of filled rows
    date_form: str | None = None  # the most frequent date form
    separator: str | None = None  # the list separator, when values are lists
    null_markers: list[str] = field(default_factory=list)
    values: Counter = field(default_factory=Counter, repr=False)  # distinct value -> rows (filled only)

    @property
    def fill_rate(self) -> float:
        return self.filled / self.rows if self.rows else 0.0

    @property
    def distinct_share(self) -> float:
        return self.distinct / self.filled if self.filled else 0.0

    def share(self, pattern: str) -> float:
        return self.patterns.get(pattern, 0.0)

    def to_report(self) -> dict:
        return {"name": self.name, "fill_rate": round(self.fill_rate, 4), "distinct_share": round(self.distinct_share, 4),
                "patterns": {k: round(v, 4) for k, v in sorted(self.patterns.items()) if v > 0},
                "date_form": self.date_form, "separator": self.separator, "null_markers": self.null_markers,
                "samples": self.samples}


def read_columns(paths: list[Path], *, format: str | None = None, sheet: str | int | None = None,
                 work_dir: Path) -> tuple[list[str], dict[str, Counter], int]:
    """(column names, rows per value of each column, rows) of a delivery, read by intake's reader."""
    first = stage_delivery(paths, format=format, sheet=sheet, declared=[], work_dir=work_dir / "columns")
    names: list[str] = []
    for part in first.parts:
        # a name with quotes or control characters cannot be declared in a mapping: left out
        names += [c for c in present_columns(part) if c not in names and c.strip()
                  and '"' not in c and not any(ord(ch) < 32 for ch in c)]
    staged = stage_delivery(paths, format=format, sheet=sheet, declared=names, work_dir=work_dir / "rows")
    counts: dict[str, Counter] = {}
    with duckdb.connect() as con:
        for name in names:
            col = quote_source_column(name)
            rows = con.execute(f"select {col}, count(*) from {staged.relation()} group by 1 "
                               f"order by 2 desc, 1 limit {MAX_DISTINCT}").fetchall()
            counts[name] = Counter({("" if v is None else v): n for v, n in rows})
    return names, counts, staged.rows


def profile_delivery(paths: list[Path], *, format: str | None = None, sheet: str | int | None = None,
                     samples: int = 3) -> list[ColumnProfile]:
    with tempfile.TemporaryDirectory(prefix="tongban-propose-") as work:
        names, counts, rows = read_columns(paths, format=format, sheet=sheet, work_dir=Path(work))
    return [profile_column(n, counts[n], rows, samples=samples) for n in names]


def profile_column(name: str, counts: Counter, rows: int, *, samples: int = 3) -> ColumnProfile:
    markers = [m for m in NULL_MARKERS if counts.get(m)]
    values = Counter({v: n for v, n in counts.items() if v.strip() and v.strip() not in NULL_MARKERS})
    filled = sum(values.values())
    p = ColumnProfile(name=name, rows=rows, filled=filled, distinct=len(values),
                      samples=[_short(v) for v, _ in values.most_common(samples)], null_markers=markers, values=values)
    if not filled:
        return p
    hits: Counter = Counter()
    forms: Counter = Counter()
    seps: Counter = Counter()
    for v, n in values.items():
        for pattern in _patterns(v, forms, seps, n):
            hits[pattern] += n
    p.patterns = {k: n / filled for k, n in hits.items()}
    p.date_form = forms.most_common(1)[0][0] if forms else None
    if seps and p.share("list") >= 0.2:
        p.separator = seps.most_common(1)[0][0]
    return p


def _short(value: str, width: int = 60) -> str:
    one_line = " ".join(value.split())
    return one_line if len(one_line) <= width else one_line[:width - 1] + "…"


def _patterns(value: str, forms: Counter, seps: Counter, n: int) -> list[str]:
    v = value.strip()
    out = []
    date = parse_date_value(v)
    if date:
        forms[date[0]] += n
        out.append("date")
    if _URL.fullmatch(v):
        out.append("url")
    if _EMAIL.search(v):
        out.append("email")
    if _PHONE.search(v) or (_PHONE_LOOSE.fullmatch(v) and not date):
        out.append("phone")
    if len(v) in (15, 18) and gb11643_problem(v.upper()) is None:
        out.append("id_number")
    if len(v) == 18 and gb32100_problem(v.upper()) is None:
        out.append("uscc")
    if re.fullmatch(r"-?[\d,]+(\.\d+)?", v) and not date:
        out.append("number")
    if v.startswith("[") and v.endswith("]"):
        try:
            items = json.loads(v.replace("'", '"'))
        except ValueError:
            items = None
        if isinstance(items, list):
            out.append("json_list")
            return out
    for sep in SEPARATORS:
        if (re.search(r"\S \S", v) and len(v) < 60) if sep == " " else sep in v:
            seps[sep] += n
            out.append("list")
            break
    return out
