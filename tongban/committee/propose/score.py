"""Score every standard field against every profiled column, and assign columns to fields one to one.

A score is the column name's likeness to the field's names (its bilingual label, its name and the
committee's ``aliases:``) weighted by how well the values fit the field (a date field wants dates,
an e-mail field e-mail addresses, a coded field values the code list or an existing crosswalk
knows). Columns are assigned to fields one to one by the Hungarian method (scipy), or greedily
by score where scipy is missing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from tongban.committee.propose.profile import ColumnProfile
from tongban.standards.models import Crosswalk, Entity, FieldDef

#: below this a field is left unmapped rather than guessed
THRESHOLD = 0.3
_PUNCT = re.compile(r"[\s_\-()（）【】\[\]:：/·.]+")


def norm(name: str) -> str:
    return _PUNCT.sub("", name).lower()


def _bigrams(s: str) -> set[str]:
    return {s[i:i + 2] for i in range(len(s) - 1)} or {s}


@dataclass
class Candidate:
    column: str
    score: float
    name: float
    fit: float
    why: str


@dataclass
class Choice:
    field: str
    column: str | None
    confidence: float
    reason: str
    runners_up: list[Candidate] = field(default_factory=list)


def name_score(fdef: FieldDef, column: str) -> tuple[float, str]:
    """(likeness 0..1, what matched) of a column name to a field's names."""
    n = norm(column)
    if not n:
        return 0.0, ""
    own = [norm(fdef.label.zh), norm(fdef.label.en), norm(fdef.name)]
    if n in own:
        return 1.0, "the standard's name"
    aliases = [norm(a) for a in fdef.aliases]
    if n in aliases:
        return 0.95 - 0.005 * aliases.index(n), "an alias"
    best, why = 0.0, ""
    for cand in [c for c in own + aliases if c]:
        if len(cand) >= 2 and (cand in n or n in cand):
            s = 0.6 + 0.25 * min(len(cand), len(n)) / max(len(cand), len(n))
            what = f"contains {cand!r}" if cand in n else f"part of {cand!r}"
        else:
            a, b = _bigrams(cand), _bigrams(n)
            s = 0.7 * 2 * len(a & b) / (len(a) + len(b))
            what = f"like {cand!r}"
        if s > best:
            best, why = s, what
    return best, why


def known_values(code_list: str, codes: dict, crosswalks: list[Crosswalk]) -> dict[str, str]:
    """Source value (lower-cased) -> target code: the code list's codes and labels, then every
    source's crosswalk entries (not rejected) for it, the most frequent target first."""
    out: dict[str, str] = {}
    votes: dict[str, Counter] = {}
    for cw in crosswalks:
        if cw.code_list != code_list:
            continue
        for e in cw.entries:
            if e.status != "rejected":
                votes.setdefault(e.source_value.strip().lower(), Counter())[e.target_code] += 1
    for value, c in votes.items():
        out[value] = c.most_common(1)[0][0]
    cl = codes.get(code_list)
    for code in cl.codes if cl else []:
        if code.code == "unknown":
            continue
        for v in (code.code, code.zh, code.en):
            out[v.strip().lower()] = code.code
    return out


def items(value: str, separator: str | None) -> list[str]:
    """The items of a value that holds a list (a JSON list or separated text), else the value."""
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):
        try:
            parsed = json.loads(v.replace("'", '"'))
            if isinstance(parsed, list):
                return [str(x).strip() for x in parsed if str(x).strip()]
        except ValueError:
            pass
    if separator and separator in v:
        return [x.strip() for x in v.split(separator) if x.strip()]
    return [v]


def overlap(p: ColumnProfile, known: dict[str, str], *, first_only: bool) -> float:
    """Share of the column's filled rows whose value (its first item, or every item) a code list or
    crosswalk knows."""
    if not p.filled:
        return 0.0
    hit = 0.0
    for v, n in p.values.items():
        its = items(v, p.separator)
        its = its[:1] if first_only else its
        if its:
            hit += n * sum(1 for x in its if x.lower() in known) / len(its)
    return hit / p.filled


def fit(fdef: FieldDef, p: ColumnProfile, known: dict[str, str] | None) -> tuple[float, str]:
    """How well the column's values fit the field (0..1), and why."""
    if not p.filled:
        return 0.5, "no values"
    date, url = p.share("date"), p.share("url")
    if fdef.type == "date":
        return date, f"{date:.0%} dates" + (f" ({p.date_form})" if p.date_form else "")
    if fdef.format in ("email", "phone"):
        s = p.share(fdef.format)
        return s, f"{s:.0%} {fdef.format}"
    if "url" in fdef.name or "网址" in fdef.label.zh:
        return url, f"{url:.0%} URLs"
    if fdef.code_list and known is not None:
        s = overlap(p, known, first_only=fdef.type != "varchar[]")
        return 0.15 + 0.85 * s, f"{s:.0%} of rows known to the code list or a crosswalk"
    off = max(date, url, p.share("number"), p.share("email"), p.share("phone"))
    if fdef.type == "varchar[]":
        lists = min(1.0, p.share("list") + p.share("json_list"))
        return max(0.0, 0.5 + 0.5 * lists - off), f"{lists:.0%} lists"
    return max(0.0, 1.0 - off), "text" if off < 0.5 else f"{off:.0%} dates, URLs, numbers or contacts"


def score_matrix(entity: Entity, profiles: list[ColumnProfile], known: dict[str, dict[str, str]]
                 ) -> dict[str, list[Candidate]]:
    """Field name -> candidates (every column), best first."""
    out: dict[str, list[Candidate]] = {}
    for fdef in entity.fields:
        if fdef.derived:
            continue
        cands = []
        for p in profiles:
            ns, nwhy = name_score(fdef, p.name)
            fs, fwhy = fit(fdef, p, known.get(fdef.code_list or ""))
            specific = bool(fdef.format or fdef.type == "date" or "url" in fdef.name)
            s = ns * ((0.2 + 0.8 * fs) if specific else (0.4 + 0.6 * fs))
            if fs >= 0.8 and (fdef.format or fdef.code_list or "url" in fdef.name):
                s = max(s, 0.35 * fs)  # values this specific speak for themselves (dates do not: two fields are dates)
            why = "; ".join(w for w in (f"name {nwhy} ({ns:.2f})" if nwhy else "", f"values: {fwhy}") if w)
            cands.append(Candidate(p.name, round(s, 4), ns, fs, why))
        out[fdef.name] = sorted(cands, key=lambda c: (-c.score, c.column))
    return out


def assign(scores: dict[str, list[Candidate]], threshold: float = THRESHOLD) -> dict[str, Choice]:
    """One column per field at most, one field per column, maximising the total score."""
    fields = list(scores)
    columns = sorted({c.column for cs in scores.values() for c in cs})
    table = {(f, c.column): c for f in fields for c in scores[f] if c.score >= threshold}
    pairs = _hungarian(fields, columns, table)
    if pairs is None:
        pairs = _greedy(fields, table)
    out = {}
    for f in fields:
        col = pairs.get(f)
        chosen = table.get((f, col)) if col else None
        if chosen is None:
            best = scores[f][0] if scores[f] else None
            out[f] = Choice(f, None, 0.0, "no column scores high enough" + (
                f" (best {best.column!r} {best.score:.2f}, {best.why})" if best and best.score > 0 else ""),
                [c for c in scores[f][:3] if c.score > 0])
            continue
        others = [c for c in scores[f] if c.column != col and c.score > 0][:3]
        margin = chosen.score - (others[0].score if others else 0.0)
        confidence = round(min(1.0, chosen.score * (0.7 + 0.3 * min(1.0, margin / 0.2))), 2)
        out[f] = Choice(f, col, confidence, chosen.why, others)
    return out


def _hungarian(fields, columns, table) -> dict[str, str] | None:
    try:
        import numpy as np  # scipy brings numpy; both are optional here, hence the lazy import
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return None
    m = np.zeros((len(fields), len(columns)))
    for i, f in enumerate(fields):
        for j, c in enumerate(columns):
            cand = table.get((f, c))
            m[i, j] = cand.score if cand else 0.0
    rows, cols = linear_sum_assignment(m, maximize=True)
    return {fields[i]: columns[j] for i, j in zip(rows, cols, strict=True) if m[i, j] > 0}


def _greedy(fields, table) -> dict[str, str]:
    pairs: dict[str, str] = {}
    used: set[str] = set()
    for (f, c), cand in sorted(table.items(), key=lambda kv: (-kv[1].score, fields.index(kv[0][0]), kv[0][1])):
        if f not in pairs and c not in used and cand.score > 0:
            pairs[f] = c
            used.add(c)
    return pairs
