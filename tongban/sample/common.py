"""Shared pieces of the synthetic-delivery generators: provinces, random streams, synthetic
names, date and identity-number helpers, defect planning and byte-deterministic writers.

Nothing here depends on ``hash()``, dict/set iteration of unordered inputs, the current date or
the wall clock: the same seed and row count give byte-identical files.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import datetime as dt
import functools
import itertools
import json
import math
import operator
import os
import random
import re
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from tongban.common import reference
from tongban.common.validators import USCC_ALPHABET

# --------------------------------------------------------------------------------------------
# provinces

#: the window of the "future date" defect (births and licences alike): far enough ahead that a
#: sample stays defective whatever day the pipeline runs
FUTURE_FIRST = dt.date(2031, 1, 1)
FUTURE_LAST = dt.date(2035, 12, 31)


@dataclass(frozen=True)
class Province:
    key: str  # sh / js / zj / ah (the delivery folder)
    code: str  # GB/T 2260 province prefix: 31 / 32 / 33 / 34
    name: str  # 上海市 ...
    short: str  # 上海 ...
    number: int  # 1..4, the hash-free offset of its random stream


PROVINCES: tuple[Province, ...] = (
    Province("sh", "31", "上海市", "上海", 1),
    Province("js", "32", "江苏省", "江苏", 2),
    Province("zj", "33", "浙江省", "浙江", 3),
    Province("ah", "34", "安徽省", "安徽", 4),
)
YRD_CODES = tuple(p.code for p in PROVINCES)

ENTITY_NUMBERS = {"births": 1, "licenses": 2}


def province_rng(seed: int, entity: str, province: Province) -> random.Random:
    """The random stream of one delivery: seed, entity and province mixed without ``hash()``."""
    return random.Random(int(seed) * 1000 + ENTITY_NUMBERS[entity] * 100 + province.number)


# --------------------------------------------------------------------------------------------
# reference views used by both generators


class RefView:
    """Sorted, cached views of the reference lists (sorted so that choices are reproducible)."""

    def __init__(self, ref_dir: Path | None = None):
        self.ref_dir = ref_dir
        self.current = reference.divisions_current(ref_dir)
        self.history = reference.division_history(ref_dir)
        self.nbs = reference.nbs_statistical_codes(ref_dir)
        self.industries = reference.industry_classes(ref_dir)
        self._county_entries = sorted(
            (code, e.start_year, e.end_year)
            for code, entries in self.history.items()
            for e in entries
            if e.level == "县级"
        )
        self._in_use_cache: dict[int, list[str]] = {}
        self._lists: dict[tuple, list[str]] = {}

    # current divisions -------------------------------------------------------------------
    def counties(self, prefix: str) -> list[str]:
        """Current county-level codes whose code starts with ``prefix``."""
        return sorted(c for c, d in self.current.items() if d.level == "county" and c.startswith(prefix))

    def prefectures(self, prefix: str) -> list[str]:
        return sorted(c for c, d in self.current.items() if d.level == "prefecture" and c.startswith(prefix))

    def counties_not_in(self, prefix: str) -> list[str]:
        return sorted(c for c, d in self.current.items() if d.level == "county" and not c.startswith(prefix))

    def nbs_codes(self, prefix: str) -> list[str]:
        return sorted(c for c in self.nbs if c.startswith(prefix))

    def name(self, code: str) -> str:
        return self.current[code].name

    def city_name(self, code: str) -> str:
        """The prefecture (or, for municipality districts, province) name above a county."""
        d = self.current[code]
        if d.level == "county" and d.parent_code and d.parent_code in self.current:
            return self.current[d.parent_code].name
        return d.name

    # history ----------------------------------------------------------------------------
    def _county_codes_in_use(self, year: int) -> list[str]:
        y = max(year, reference.HISTORY_FIRST_YEAR)
        cached = self._in_use_cache.get(y)
        if cached is None:
            cached = sorted({c for c, start, end in self._county_entries if start <= y and (end is None or y <= end)})
            self._in_use_cache[y] = cached
        return cached

    def id_address_codes(self, year: int, prefix: str, *, current: bool | None) -> list[str]:
        """County-level codes in use in ``year`` starting with ``prefix`` (cached).

        ``current`` True: only codes still in the MCA 2024 list; False: only abolished ones;
        None: both.
        """
        key = ("own", max(year, reference.HISTORY_FIRST_YEAR), prefix, current)
        cached = self._lists.get(key)
        if cached is None:
            codes = [c for c in self._county_codes_in_use(year) if c.startswith(prefix)]
            if current is not None:
                codes = [c for c in codes if (c in self.current) is current]
            cached = self._lists[key] = codes
        return cached

    def id_address_codes_elsewhere(self, year: int, excluded_prefix: str) -> list[str]:
        """Codes in force both in ``year`` and now, outside ``excluded_prefix`` (cached)."""
        key = ("elsewhere", max(year, reference.HISTORY_FIRST_YEAR), excluded_prefix, None)
        cached = self._lists.get(key)
        if cached is None:
            cached = self._lists[key] = [c for c in self._county_codes_in_use(year)
                                         if not c.startswith(excluded_prefix) and c in self.current]
        return cached

    def in_use(self, code: str, year: int) -> bool:
        """``reference.division_in_use`` on the history already loaded (no settings look-up)."""
        y = max(year, reference.HISTORY_FIRST_YEAR)
        return any(e.start_year <= y and (e.end_year is None or y <= e.end_year)
                   for e in self.history.get(code, ()))

    def county_codes_not_in_use(self, year: int, prefix: str) -> list[str]:
        """County-level codes of the history (starting with ``prefix``) NOT in use in ``year`` (cached)."""
        key = ("unused", max(year, reference.HISTORY_FIRST_YEAR), prefix, None)
        cached = self._lists.get(key)
        if cached is None:
            candidates = self._lists.get(("all", 0, prefix, None))
            if candidates is None:
                candidates = self._lists[("all", 0, prefix, None)] = sorted(
                    {c for c, _s, _e in self._county_entries if c.startswith(prefix)})
            cached = self._lists[key] = [c for c in candidates if not self.in_use(c, year)]
        return cached


# --------------------------------------------------------------------------------------------
# fast random primitives: ``random.choice``/``randint`` go through Python-level rejection
# sampling, ~3x slower than scaling ``random()``; these are as deterministic.


def pick(rng: random.Random, seq: Sequence):
    return seq[int(rng.random() * len(seq))]


def rand_int(rng: random.Random, a: int, b: int) -> int:
    """An integer in [a, b]."""
    return a + int(rng.random() * (b - a + 1))


# --------------------------------------------------------------------------------------------
# synthetic names (all synthetic: a surname list and common given-name characters)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤"
)
# the first surnames are far more common: weight by rank
_SURNAME_WEIGHTS = tuple(1.0 / (i + 8) for i in range(len(SURNAMES)))
_SURNAME_CUM = tuple(itertools.accumulate(_SURNAME_WEIGHTS))
GIVEN_FEMALE = "芳娜敏静丽艳娟秀霞桂英玉萍红玲芬燕丹颖蕾薇蓉倩慧洁莉琳婷雪晴佳琪露晓兰梅春云凤珍荣娇琴月"
GIVEN_MALE = "伟强磊军洋勇杰涛明超平刚华彬斌宇浩凯鹏俊帆辉鑫博文晨宁阳毅峰健永立志建国海波林飞亮松柏涌勤"
GIVEN_ADULT = GIVEN_FEMALE + GIVEN_MALE
GIVEN_CHILD = (
    "梓涵子轩睿诗雨萱思佳琪嘉然一诺依可馨语彤梦瑶晗泽昊宸铭航奕沐安锦瑞天乐心若雅悦妍沫溪宁恩朵昕禾米"
    "星辰逸煜皓宇浩然俊熙晨阳博文景铄书瑾言希曦芮桐乔知予谦亦歆"
)


def person_name(rng: random.Random, given: str) -> str:
    r = rng.random
    surname = SURNAMES[bisect.bisect_left(_SURNAME_CUM, r() * _SURNAME_CUM[-1])]
    n = len(given)
    if r() < 0.78:
        return surname + given[int(r() * n)] + given[int(r() * n)]
    return surname + given[int(r() * n)]


def weighted_choice(rng: random.Random, items: Sequence, cum_weights: Sequence[float]):
    return items[min(bisect.bisect_left(cum_weights, rng.random() * cum_weights[-1]), len(items) - 1)]


def cumulative(weights: Iterable[float]) -> tuple[float, ...]:
    return tuple(itertools.accumulate(weights))


MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182", "183", "184",
    "185", "186", "187", "188", "189", "191", "198", "199",
)


def mobile_phone(rng: random.Random) -> str:
    return pick(rng, MOBILE_PREFIXES) + f"{int(rng.random() * 10**8):08d}"


# --------------------------------------------------------------------------------------------
# dates

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_BEIJING_OFFSET_MS = 8 * 3600 * 1000


def random_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return dt.date.fromordinal(rand_int(rng, first.toordinal(), last.toordinal()))


def years_before(d: dt.date, years: int) -> dt.date:
    """The same day ``years`` earlier (28 February for a 29 February that does not exist)."""
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


@functools.lru_cache(maxsize=65536)
def _age_window(on: dt.date, age: int) -> tuple[int, int]:
    """First and last ordinal of the birth dates that make someone ``age`` years old on ``on``."""
    return years_before(on, age + 1).toordinal() + 1, years_before(on, age).toordinal()


def born_at_age(rng: random.Random, on: dt.date, age: int) -> dt.date:
    """A birth date that makes someone exactly ``age`` (completed years) old on ``on``."""
    first, last = _age_window(on, age)
    return dt.date.fromordinal(first + int(rng.random() * (last - first + 1)))


def age_on(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def epoch_ms_beijing(d: dt.date) -> int:
    """Epoch milliseconds of midnight Beijing time (UTC+8) at the start of ``d``."""
    return (d.toordinal() - _EPOCH_ORDINAL) * 86_400_000 - _BEIJING_OFFSET_MS


def zh_date(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


# --------------------------------------------------------------------------------------------
# GB 11643 identity numbers


_GB11643_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_ASCII_OFFSET = 48 * sum(_GB11643_W)


def fast_gb11643_check_char(first17: str) -> str:
    """``validators.gb11643_check_char`` without its argument checks (digits only), table-free."""
    return "10X98765432"[(sum(map(operator.mul, _GB11643_W, first17.encode())) - _GB11643_ASCII_OFFSET) % 11]


def id18(address: str, born: dt.date, seq: int) -> str:
    first17 = f"{address}{born.year:04d}{born.month:02d}{born.day:02d}{seq:03d}"
    return first17 + fast_gb11643_check_char(first17)


def id15(address: str, born: dt.date, seq: int) -> str:
    return f"{address}{born.year % 100:02d}{born.month:02d}{born.day:02d}{seq:03d}"


# GB 32100 / GB 11714 / MOD 37,36: the rules of tongban.common.validators, table-driven for speed
# (the tests compare every generated code with the validators).
_USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_W = tuple(pow(3, i, 31) for i in range(17))
_ORG_VALUES = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_ORG_W = (3, 7, 9, 10, 5, 8, 4, 2)


def fast_gb32100_check_char(first17: str) -> str:
    total = sum(map(operator.mul, _USCC_W, map(_USCC_VALUES.__getitem__, first17)))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def fast_gb11714_check_char(first8: str) -> str:
    c9 = 11 - sum(map(operator.mul, _ORG_W, map(_ORG_VALUES.__getitem__, first8))) % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


_MOD37_36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD37_36_VALUES = {c: i for i, c in enumerate(_MOD37_36)}
# next state for (state p in 1..36, character value v)
_MOD37_36_STEP = [[((p + v) % 36 or 36) * 2 % 37 for v in range(36)] if p else [] for p in range(37)]


def mod37_36_state(s: str, state: int = 36) -> int:
    step = _MOD37_36_STEP
    for c in s:
        state = step[state][_MOD37_36_VALUES[c]]
    return state


def mod37_36_check_from_state(state: int) -> str:
    return _MOD37_36[(37 - state) % 36]


def sex_sequence(rng: random.Random, female: bool) -> int:
    """A 3-digit sequence code: even for women, odd for men (never 000)."""
    n = rand_int(rng, 1, 499) * 2
    return n if female else n - 1


def wrong_check_char(rng: random.Random, correct: str, alphabet: str) -> str:
    return pick(rng, [c for c in alphabet if c != correct])


# --------------------------------------------------------------------------------------------
# defects


@dataclass(frozen=True)
class DefectClass:
    name: str  # defect class in the answer key
    field: str  # the standard field (for a class whose field varies: the default)
    expected_reason: str
    rate: float


@dataclass(frozen=True)
class KeyRow:
    row_number: int  # 1-based data row
    defect: str
    field: str
    expected_reason: str


def defect_count(rate: float, rows: int) -> int:
    n = round(rate * rows)
    return max(1, n) if rows >= 100 else n


def plan_defects(rng: random.Random, rows: int, classes: Sequence[DefectClass]) -> dict[int, DefectClass]:
    """Row index (0-based) → its one defect class; disjoint rows, row 0 always clean."""
    counts = [defect_count(c.rate, rows) for c in classes]
    total = sum(counts)
    if total > max(rows - 1, 0):
        raise ValueError(f"{rows} rows cannot hold {total} defective rows")
    chosen = rng.sample(range(1, rows), total) if total else []
    plan: dict[int, DefectClass] = {}
    it = iter(chosen)
    for cls, n in zip(classes, counts, strict=True):
        for _ in range(n):
            plan[next(it)] = cls
    return plan


# --------------------------------------------------------------------------------------------
# writers: every one streams (rows are consumed one by one and written through a buffer), so a
# delivery of millions of rows needs no more memory than its generator's state (and, for XLSX,
# the part's shared-string table); each file is written beside its final name and renamed.

_BUFFER = 1 << 20

#: an XLSX sheet holds 1,048,576 rows, one of them the header: a larger XLSX delivery is written
#: in parts ``<name>-1.xlsx``, ``<name>-2.xlsx``, ... (rows in order, numbered across the parts)
XLSX_MAX_ROWS = 1_048_575
#: a smaller part size (tests, small dry runs); the ``xlsx_max_rows`` keyword takes precedence
XLSX_MAX_ROWS_ENV = "TONGBAN_SAMPLE_XLSX_MAX_ROWS"


def resolve_xlsx_max_rows(value: int | None = None) -> int:
    """Data rows per XLSX part: ``value``, else ``$TONGBAN_SAMPLE_XLSX_MAX_ROWS``, else 1,048,575."""
    if value is None:
        env = os.environ.get(XLSX_MAX_ROWS_ENV, "").strip()
        try:
            value = int(env.replace("_", "")) if env else XLSX_MAX_ROWS
        except ValueError:
            raise ValueError(f"{XLSX_MAX_ROWS_ENV}={env!r} is not a whole number") from None
    if not 1 <= value <= XLSX_MAX_ROWS:
        raise ValueError(f"xlsx_max_rows must be between 1 and {XLSX_MAX_ROWS:,} (one sheet), not {value:,}")
    return value


@contextlib.contextmanager
def _replacing(path: Path):
    """A temporary path beside ``path`` that becomes ``path`` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]], *, encoding: str,
              lineterminator: str = "\n") -> None:
    with _replacing(path) as tmp, open(tmp, "w", encoding=encoding, newline="", buffering=_BUFFER) as fh:
        w = csv.writer(fh, lineterminator=lineterminator)
        w.writerow(header)
        w.writerows(rows)  # strict encoding: a character GBK lacks is an error


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with _replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="", buffering=_BUFFER) as fh:
        fh.writelines(enc(r) + "\n" for r in records)


def write_answer_key(path: Path, keys: Sequence[KeyRow]) -> None:
    write_csv(path, ["row_number", "defect", "field", "expected_reason"],
              ([str(k.row_number), k.defect, k.field, k.expected_reason] for k in keys), encoding="utf-8")


# XLSX: written directly (openpyxl's write-only mode needs ~12 s for 50,000 × 15 cells). The
# package is minimal but complete (content types, workbook, styles, shared strings, core/app
# properties); zip entries carry a fixed timestamp and the document properties fixed dates.
# The sheet's rows and the shared strings are streamed to temporary files and then into their
# zip entries, so that only the shared-string table is held in memory.

XLSX_FIXED_TIMESTAMP = "2025-01-01T00:00:00Z"
_ZIP_DATE = (2025, 1, 1, 0, 0, 0)
_ZIP_LEVEL = 1


def _col_letter(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def _xlsx_number(v: int | float | Decimal) -> str:
    if isinstance(v, bool):
        raise TypeError("booleans are not written")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"cannot write {v!r}")
    return str(int(v)) if v.is_integer() else repr(v)


_XLSX_STATIC_HEAD = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/>'
        '<Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
        'Target="docProps/core.xml"/>'
        '<Relationship Id="rId3" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" '
        'Target="docProps/app.xml"/>'
        "</Relationships>"
    ),
    "docProps/core.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<dc:creator>tongban sample</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{XLSX_FIXED_TIMESTAMP}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{XLSX_FIXED_TIMESTAMP}</dcterms:modified>'
        "</cp:coreProperties>"
    ),
    "docProps/app.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        "<Application>tongban sample</Application></Properties>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/>'
        '<Relationship Id="rId3" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        'Target="sharedStrings.xml"/>'
        "</Relationships>"
    ),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<fonts count="1"><font><sz val="11"/><name val="等线"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}


def _zip_entry(zf: zipfile.ZipFile, name: str, pieces: Sequence[str | Path]) -> None:
    """One deflated entry (fixed time, level 1) of text pieces and files, streamed; the same bytes
    as ``zf.writestr(info, b"".join(pieces), compresslevel=1)``, which also opens the entry for
    writing with the size known beforehand."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    if hasattr(info, "compress_level"):  # Python 3.13+
        info.compress_level = _ZIP_LEVEL
    else:
        info._compresslevel = _ZIP_LEVEL
    encoded = [p if isinstance(p, Path) else p.encode("utf-8") for p in pieces]
    info.file_size = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in encoded)
    with zf.open(info, "w") as dest:
        for piece in encoded:
            if isinstance(piece, Path):
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, dest, _BUFFER)
            else:
                dest.write(piece)


def write_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], sheet: str = "Sheet1") -> int:
    """One-sheet workbook: ``str`` values become text cells (number format ``@``), ``int``/``float``/
    ``Decimal`` numeric cells, ``None`` or ``""`` an empty cell. Returns the number of data rows."""
    strings: dict[str, int] = {}
    letters = [_col_letter(i) for i in range(len(header))]
    rows_tmp = path.with_name(path.name + ".rows.tmp")
    sst_tmp = path.with_name(path.name + ".sst.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        n_rows = 0
        with open(rows_tmp, "w", encoding="utf-8", newline="", buffering=_BUFFER) as fh:
            write = fh.write
            for r, row in enumerate(itertools.chain((header,), rows), start=1):
                n_rows = r
                cells = []
                for letter, v in zip(letters, row, strict=True):
                    if v is None or v == "":
                        continue
                    if isinstance(v, str):
                        idx = strings.get(v)
                        if idx is None:
                            idx = strings[v] = len(strings)
                        cells.append(f'<c r="{letter}{r}" s="1" t="s"><v>{idx}</v></c>')
                    else:
                        cells.append(f'<c r="{letter}{r}"><v>{_xlsx_number(v)}</v></c>')
                write(f'<row r="{r}">{"".join(cells)}</row>')
        with open(sst_tmp, "w", encoding="utf-8", newline="", buffering=_BUFFER) as fh:
            fh.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                     f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" '
                     f'uniqueCount="{len(strings)}">')
            fh.writelines(f"<si><t>{escape(s)}</t></si>" for s in strings)
            fh.write("</sst>")
        strings.clear()
        last = f"{letters[-1]}{n_rows}" if letters else "A1"
        sheet_head = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<dimension ref="A1:{last}"/><sheetData>'
        )
        with _replacing(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, text in _XLSX_STATIC_HEAD.items():
                _zip_entry(zf, name, [text.replace("{sheet}", escape(sheet)) if name == "xl/workbook.xml" else text])
            _zip_entry(zf, "xl/sharedStrings.xml", [sst_tmp])
            _zip_entry(zf, "xl/worksheets/sheet1.xml", [sheet_head, rows_tmp, "</sheetData></worksheet>"])
    finally:
        rows_tmp.unlink(missing_ok=True)
        sst_tmp.unlink(missing_ok=True)
    return n_rows - 1


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class WrittenDelivery:
    entity: str
    province: str
    path: Path  # the delivery file (the first part when it is written in parts)
    answer_key: Path
    rows: int
    defects: int
    parts: tuple[Path, ...] = ()  # every file of the delivery, in row order (one unless XLSX was split)

    @property
    def files(self) -> tuple[Path, ...]:
        return self.parts or (self.path,)


def select_provinces(keys: Iterable[str] | None) -> tuple[Province, ...]:
    """``PROVINCES`` (in their order), or only those whose key is in ``keys``."""
    if keys is None:
        return PROVINCES
    wanted = set(keys)
    unknown = wanted - {p.key for p in PROVINCES}
    if unknown:
        raise ValueError(f"unknown province(s) {sorted(unknown)}; use {', '.join(p.key for p in PROVINCES)}")
    return tuple(p for p in PROVINCES if p.key in wanted)


def part_names(file_name: str, parts: int) -> list[str]:
    """``births.xlsx`` for one part; ``births-1.xlsx`` ... ``births-<parts>.xlsx`` for several."""
    if parts == 1:
        return [file_name]
    stem, dot, ext = file_name.rpartition(".")
    return [f"{stem}-{k}{dot}{ext}" for k in range(1, parts + 1)]


def _remove_stale_parts(folder: Path, file_name: str) -> None:
    """An earlier run's ``births.xlsx`` / ``births-<k>.xlsx`` (another row count or part size): a
    glob in the mapping would read them as parts of this delivery."""
    stem, dot, ext = file_name.rpartition(".")
    pattern = re.compile(re.escape(stem) + r"(-[0-9]+)?" + re.escape(dot + ext))
    if folder.is_dir():
        for f in folder.iterdir():
            if pattern.fullmatch(f.name) and f.is_file():
                f.unlink()


def write_delivery(entity: str, province: str, out_dir: Path, columns: dict[str, Sequence[str]],
                   file_names: dict[str, str], shaped: Iterable, keys: Sequence[KeyRow], rows: int,
                   *, xlsx_max_rows: int | None = None) -> WrittenDelivery:
    """Write one province's delivery in its shape (sh UTF-8 CSV, js GBK CSV with CRLF, zj JSON
    Lines, ah XLSX) and its answer key beside it.

    ``shaped`` may be a generator that fills ``keys`` while it is consumed: the delivery is
    written first, then the answer key. An XLSX delivery of more than ``xlsx_max_rows`` rows
    (:func:`resolve_xlsx_max_rows`) is written as ``<name>-1.xlsx``, ``<name>-2.xlsx``, ...,
    each with the header row and at most that many data rows, the rows in order."""
    name = file_names[province]
    folder = out_dir / province
    path = folder / name
    paths: tuple[Path, ...] = (path,)
    if province == "sh":
        write_csv(path, columns["sh"], shaped, encoding="utf-8")
    elif province == "js":
        write_csv(path, columns["js"], shaped, encoding="gbk", lineterminator="\r\n")
    elif province == "zj":
        write_jsonl(path, shaped)
    else:
        per_part = resolve_xlsx_max_rows(xlsx_max_rows)
        paths = tuple(folder / n for n in part_names(name, max(1, -(-rows // per_part))))
        _remove_stale_parts(folder, name)
        it = iter(shaped)
        written = 0
        for part in paths:
            written += write_xlsx(part, columns["ah"], itertools.islice(it, per_part))
        if next(it, None) is not None or written != rows:
            raise ValueError(f"{province}/{name}: {rows} rows declared, the generator gave a different number")
    key_path = folder / f"{entity}.answer_key.csv"
    write_answer_key(key_path, keys)
    return WrittenDelivery(entity, province, paths[0], key_path, rows, len(keys), paths)
