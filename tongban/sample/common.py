"""Shared pieces of the synthetic-delivery generators: provinces, random streams, synthetic
names, date and identity-number helpers and defect planning (the writers: tongban.sample.writers).

Nothing here depends on ``hash()``, dict/set iteration of unordered inputs, the current date or
the wall clock: the same seed and row count give byte-identical files.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import operator
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
