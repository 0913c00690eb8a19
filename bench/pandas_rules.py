"""The pandas twin of the rule catalogue (tongban.standards.rules): one pandas implementation per
rule kind, looked up by the kind's name, for the benchmark's pandas + GX path (bench.pandas_gx).

``STEPS`` maps a mapping step to a function over the field's values, ``FIELD_RULES`` a field rule
to the columns it adds (``prob__<field>``: a validator's problem code; ``chk__<reason>__<field>``:
a failing row), ``ROW_RULES`` a row rule likewise. A kind the twin does not implement either
says where its work happens instead (``ELSEWHERE``), or is a step listed in ``NOT_MIRRORED`` with
the reason (using one stops the bench with a message naming it); tests/unit/test_pandas_twin.py
checks that every catalogue kind is one of these, so the benchmark never compares different work. Pandas is imported lazily (a heavy import the rest of
the bench does not need).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tongban.common import validators
from tongban.standards.rules import AMOUNT_UNITS, VALIDATORS
from tongban.standards.rules.sqlparts import AMOUNT_PARTS_RE, EMAIL_RE, PHONE_FIXED_RE, PHONE_MOBILE_RE

TRIM = " \t\n\r\u3000\xa0"  # the characters the generated SQL trims (sqlparts.TRIM_CHARS)

#: catalogue kinds whose work the twin does elsewhere (or that only describe), and where
ELSEWHERE = {
    "required": "bench.pandas_gx._row_suite: a not-null expectation of the GX row suite",
    "format": "the gate's suite (expectations/*.json) checks the normalised form; the email/phone steps make it",
    "too_precise": "the parse_amount step",
    "half_width": "bench.pandas_gx.map_delivery reads the value half-width (reads_half_width)",
    "code_list": "the crosswalk and match_code steps",
    "on_invalid": "each step's checks are blocking or notes by the field's on_invalid",
    "gate": "the gate's suite (expectations/*.json) carries each expectation's blocking flag",
    "pii": "bench.pandas_gx.run publishes personal data as pseudonym and mask",
}


@dataclass
class Values:
    """One mapping field's values while its steps run: ``s`` a Series of text (or of lists when
    ``is_list``); ``checks`` collects ``chk__<reason>__<field>`` -> (bool Series, blocking)."""

    s: Any
    is_list: bool
    checks: dict[str, tuple[Any, bool]]
    f: Any
    std: Any
    m: Any
    has_unknown: bool

    def check(self, reason: str, flags: Any, blocking: bool) -> None:
        self.checks[f"chk__{reason}__{self.f.name}"] = (flags, blocking)

    @property
    def blocking_invalid(self) -> bool:
        return self.f.on_invalid == "quarantine"


def _series(values: list, dtype: Any = object) -> Any:
    import pandas as pd  # lazy: heavy

    return pd.Series(values, dtype=dtype)


def _blank_to_none(s):
    return s.where(s.notna() & (s != ""), None).astype(object)


def trim(s):
    return _blank_to_none(s.str.strip(TRIM))


# ---- steps -------------------------------------------------------------------------------------

def _trim(v: Values, arg: Any) -> None:
    v.s = v.s.map(lambda x: [y.strip(TRIM) or None for y in x] if x is not None else None) if v.is_list \
        else trim(v.s)


def _case(op: str):
    def step(v: Values, arg: Any) -> None:
        s = v.s.str.upper() if op == "upper" else v.s.str.lower()
        v.s = s.where(s.notna(), None)
    return step


def _remove_regex(v: Values, arg: Any) -> None:
    v.s = trim(v.s.str.replace(arg, "", n=1, regex=True))


def _split(v: Values, arg: Any) -> None:
    first, rest = arg[0], arg[1:]
    vals = []
    for x in v.s.tolist():
        if x is None:
            vals.append(None)
            continue
        for sep in rest:
            x = x.replace(sep, first)
        vals.append([p.strip(TRIM) for p in x.split(first) if p.strip(TRIM)])
    v.s, v.is_list = _series(vals), True


def _parse_one_list(x: str | None) -> list[str] | None:
    if x is None:
        return None
    text = x.replace("'", '"')
    if not text.strip().startswith("["):
        raise ValueError
    items = json.loads(text)
    if not isinstance(items, list):
        raise ValueError
    return [i if isinstance(i, str) else json.dumps(i) for i in items if i is not None and str(i).strip()]


def _parse_list(v: Values, arg: Any) -> None:
    vals, bad = [], []
    for x in v.s.tolist():
        try:
            vals.append(_parse_one_list(x))
            bad.append(False)
        except ValueError:
            vals.append(None)
            bad.append(True)
    v.check("invalid_list", _series(bad), True)
    v.s, v.is_list = _series(vals), True


def _lookup(v: Values, op: str, arg: str) -> tuple[dict[str, str], dict[str, str]]:
    if op == "crosswalk":
        cw = v.std.crosswalks.get((v.m.source_id, arg))
        return (cw.lookup("approved") if cw else {}), (cw.lookup("proposed") if cw else {})
    lookup: dict[str, str] = {}
    for c in v.std.code_lists[arg].codes:
        for k in (c.code, c.zh):
            lookup[k] = min(lookup.get(k, c.code), c.code)
    return lookup, {}


def _code_step(op: str):
    def step(v: Values, arg: Any):
        lookup, pending = _lookup(v, op, arg)
        blocking = v.f.on_unmapped == "quarantine"
        fallback = "unknown" if v.has_unknown else None
        vals, unmapped, held = [], [], []
        for x in v.s.tolist():
            if x is None:
                vals.append(None if v.is_list else fallback)
                unmapped.append(False)
                held.append(False)
                continue
            items = x if v.is_list else [x]
            mapped = [lookup.get(i) for i in items]
            if not blocking:
                mapped = [a if a is not None else pending.get(i) for a, i in zip(mapped, items, strict=True)]
            unmapped.append(any(lookup.get(i) is None and pending.get(i) is None for i in items))
            held.append(any(lookup.get(i) is None and pending.get(i) is not None for i in items))
            if v.is_list:
                vals.append([a if a is not None else fallback for a in mapped])
            else:
                vals.append(mapped[0] if mapped[0] is not None else (None if blocking else fallback))
        v.check("unmapped_code", _series(unmapped), blocking)
        if pending:
            v.check("mapping_not_approved", _series(held), blocking)
        return _series(vals)
    return step


def _parse_date(v: Values, arg: Any):
    import pandas as pd  # lazy: heavy

    s = v.s
    parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    for fmt in arg:
        if fmt == "epoch_ms":
            ok = s.str.fullmatch(r"[0-9]{10,13}").fillna(False).astype(bool)
            ms = pd.to_numeric(s.where(ok), errors="coerce")
            when = pd.to_datetime(ms, unit="ms", errors="coerce") + pd.Timedelta(hours=8)
            parsed = parsed.fillna(when.dt.floor("D"))
        else:
            parsed = parsed.fillna(pd.to_datetime(s, format=fmt.replace("%-", "%"), errors="coerce"))
    v.check("invalid_date", s.notna() & parsed.isna(), v.blocking_invalid)
    return parsed.dt.floor("D")  # datetime64; written as DATE


def _parse_amount(v: Values, arg: Any):
    import pandas as pd  # lazy: heavy

    factor = float(AMOUNT_UNITS[arg])
    text = v.s.str.replace(",", "").str.replace("，", "")
    number = pd.to_numeric(text, errors="coerce")
    fits = (number.abs() * factor) < 1e17
    parts = text.str.extract(AMOUNT_PARTS_RE)  # as the SQL: places stated, trailing zeros aside
    places = parts[0].str.len().fillna(0) - pd.to_numeric(parts[1], errors="coerce").fillna(0)
    exact = places <= 2 + round(math.log10(factor))
    v.check("invalid_number", v.s.notna() & number.isna(), v.blocking_invalid)
    v.check("out_of_range", number.notna() & ~fits, v.blocking_invalid)
    v.check("too_precise", number.notna() & fits & ~exact, v.blocking_invalid)
    return (number * factor).where(fits & exact)


def _phones(values: list) -> list:
    fixed, mobile = re.compile(PHONE_FIXED_RE), re.compile(PHONE_MOBILE_RE)
    table = str.maketrans({"—": "-"})  # full-width characters were read half-width already
    out = []
    for x in values:
        if x is None:
            out.append(None)
            continue
        cleaned = x.translate(table)
        m = fixed.search(cleaned)
        if m:
            out.append(f"{m.group(1)}-{m.group(2)}")
            continue
        m = mobile.search(cleaned)
        out.append(m.group(1) if m else None)
    return out


def _phone(v: Values, arg: Any):
    has_at = v.s.str.contains("@", regex=False).fillna(False).astype(bool)
    found = _series(_phones(v.s.tolist()))
    v.check("invalid_phone", v.s.notna() & ~has_at & found.isna(), v.blocking_invalid)
    return found.where(~has_at, None)


def _email(v: Values, arg: Any):
    lowered = v.s.str.lower()
    ok = lowered.str.fullmatch(EMAIL_RE).fillna(False).astype(bool)
    has_at = v.s.str.contains("@", regex=False).fillna(False).astype(bool)
    v.check("invalid_email", has_at & ~ok, v.blocking_invalid)
    return lowered.where(ok, None)


def _to_list(v: Values, arg: Any) -> None:
    v.s, v.is_list = _series([None if x is None else [x] for x in v.s.tolist()]), True


def _first(v: Values, arg: Any) -> None:
    v.s, v.is_list = _series([x[0] if x else None for x in v.s.tolist()]), False


def _constant(v: Values, arg: Any) -> None:
    v.s = _series([arg] * len(v.s))


#: step name -> fn(values, arg); a terminal step's fn returns the field's values
STEPS = {"trim": _trim, "upper": _case("upper"), "lower": _case("lower"), "remove_regex": _remove_regex,
         "split": _split, "parse_list": _parse_list, "to_list": _to_list, "first": _first,
         "constant": _constant, "crosswalk": _code_step("crosswalk"), "match_code": _code_step("match_code"),
         "parse_date": _parse_date, "parse_amount": _parse_amount, "email": _email, "phone": _phone}
#: steps the twin does not implement, and why
NOT_MIRRORED = {"concat": "it reads other delivery columns of the row; no benchmark mapping uses it"}


def step(op: str, where: str):
    if op not in STEPS:
        raise ValueError(f"the pandas bench path does not mirror step {op!r} (used by {where}); add it there")
    return STEPS[op]


# ---- field rules and row rules ------------------------------------------------------------------

def _validator(frame, f, today: dt.date, ref_dir: Path | None) -> None:
    if not f.validator:
        return
    v = VALIDATORS[f.validator]
    # ref_dir given: without it every call re-reads tongban's settings (~0.5 ms a value)
    frame[f"prob__{f.name}"] = frame[f.name].map(lambda x: v.problem(x, f, ref_dir) if x is not None else None)


def _range(frame, f, today: dt.date, ref_dir: Path | None) -> None:
    import pandas as pd  # lazy: heavy

    if f.min is None and f.max is None:
        return
    num = pd.to_numeric(frame[f.name], errors="coerce")
    bad = pd.Series(False, index=frame.index)
    if f.min is not None:
        bad |= num < f.min
    if f.max is not None:
        bad |= num > f.max
    frame[f"chk__out_of_range__{f.name}"] = bad.fillna(False).astype(bool)


def _not_future(frame, f, today: dt.date, ref_dir: Path | None) -> None:
    import pandas as pd  # lazy: heavy

    if f.not_future:
        frame[f"chk__date_in_future__{f.name}"] = (frame[f.name] > pd.Timestamp(today)).fillna(False).astype(bool)


def _not_before(frame, f, today: dt.date, ref_dir: Path | None) -> None:
    import pandas as pd  # lazy: heavy

    if f.not_before is not None:
        frame[f"chk__date_too_early__{f.name}"] = (frame[f.name] < pd.Timestamp(f.not_before)).fillna(False).astype(bool)


def _unique(frame, f, today: dt.date, ref_dir: Path | None) -> None:
    if f.unique:
        col = frame[f.name]
        frame[f"chk__duplicate_value__{f.name}"] = col.notna() & col.duplicated()


#: field rule name -> fn(frame, field, today, ref_dir) adding its columns
FIELD_RULES = {"validator": _validator, "range": _range, "not_future": _not_future, "not_before": _not_before,
               "unique": _unique}


def _min_age_at(frame, ent, r) -> None:
    import pandas as pd  # lazy: heavy

    earliest = ent.field(r.date_field).not_before

    def too_young(idn, day):
        born = validators.gb11643_birth_date(idn)
        if born is None or day is None or day is pd.NaT:
            return False
        day = day.date()
        if earliest is not None and day < earliest:
            return False  # the date's own reason (date_too_early), no age from it
        try:
            limit = born.replace(year=born.year + r.years)
        except ValueError:  # 29 February
            limit = born.replace(year=born.year + r.years, day=28)
        return limit > day
    frame[f"chk__{r.reason}__{r.id_field}"] = [too_young(a, b) for a, b in
                                               zip(frame[r.id_field], frame[r.date_field], strict=True)]


def _uscc_region_agrees(frame, ent, r) -> None:
    frame[f"chk__{r.reason}__{r.division_field}"] = [
        validators.uscc_region_agrees(u, d) is False
        for u, d in zip(frame[r.uscc_field], frame[r.division_field], strict=True)]


_OPS = {">=": "ge", ">": "gt", "<=": "le", "<": "lt", "=": "eq", "!=": "ne"}


def _side(frame, ent, c):
    """The right side of a comparison: the other field's values, or the literal in the left field's type."""
    import pandas as pd  # lazy: heavy

    if c.right_is_field:
        return frame[c.right]
    kind = ent.field(c.left).type
    return pd.Timestamp(c.right) if kind == "date" else c.right if kind == "varchar" else float(c.right)


def _holds(frame, ent, c):
    """(both sides known, the comparison holds) as boolean series (the generated SQL's known_sql/holds_sql)."""
    right = _side(frame, ent, c)
    known = frame[c.left].notna() & (frame[c.right].notna() if c.right_is_field else True)
    holds = getattr(frame[c.left].where(known), _OPS[c.op])(right if not c.right_is_field else right.where(known))
    return known, holds.fillna(False).astype(bool)


def _cross_field(frame, ent, r) -> None:
    """The committee's cross-field rules (tongban.standards.rules.cross_field): a quarantine rule adds
    ``chk__<reason>__<field>`` (a row reason); a warn rule ``note__<reason>__<field>``, which holds
    nothing back (the row is published with a warning), as in the generated models."""
    import pandas as pd  # lazy: heavy

    from tongban.standards.rules.cross_field import Comparison

    if r.rule == "compare":
        c = Comparison.parse(r.expr)
        known, holds = _holds(frame, ent, c)
        broken, field = known & ~holds, c.left
    elif r.rule == "required_if":
        known, holds = _holds(frame, ent, Comparison.parse(r.when))
        broken, field = frame[r.field].isna() & known & holds, r.field
    elif r.rule == "at_least_one_of":
        broken, field = frame[list(r.fields)].isna().all(axis=1), r.fields[0]
    elif r.rule == "not_in_future":
        broken, field = (frame[r.field] > pd.Timestamp(dt.date.today())).fillna(False), r.field
    else:  # not_before
        broken, field = (frame[r.field] < pd.Timestamp(r.bound)).fillna(False), r.field
    prefix = "chk" if r.severity == "quarantine" else "note"
    frame[f"{prefix}__{r.reason}__{field}"] = broken.astype(bool)


#: row rule name -> fn(frame, entity, rule) adding its column
ROW_RULES = {"min_age_at": _min_age_at, "uscc_region_agrees": _uscc_region_agrees, "compare": _cross_field,
             "required_if": _cross_field, "at_least_one_of": _cross_field, "not_in_future": _cross_field,
             "not_before": _cross_field}
