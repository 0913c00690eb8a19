"""What users would write instead (``make bench``'s third path): pandas and a GX suite on pandas.

Per entity: pandas reads every delivery (``read_csv`` with the GBK encoding for 江苏,
``read_json(lines=True)``, ``read_excel(engine="calamine")``; a delivery in parts, found and
ordered by :func:`tongban.common.parts.find_parts`, part by part, concatenated); the mapping
steps and the standard's rules are applied kind by kind from the same rule catalogue the dbt
models are generated from (tongban.standards.rules), each kind by its pandas twin in
:mod:`bench.pandas_rules` (pandas string methods and Python; the validators' Python checks of
:mod:`tongban.common.validators`); a kind without a twin stops the run with its name; then

1. a GX 1.x suite on a pandas data source (ephemeral context, ``add_pandas``, a dataframe
   asset, whole-dataframe batch) holds one expectation per row check — not null for required
   fields, "is null" for each validator's problem column, "in [False]" for each mapping check
   (unmapped code, invalid date, ...), duplicates — run with result_format COMPLETE, whose
   ``unexpected_index_list`` says which rows fail and why: those rows are quarantined;
2. the gate's own suite, ``expectations/<entity>.json`` as committed (table shape, not null, in
   set, regex shapes, between, unique key, provenance), runs on the rows that passed, on pandas;
3. the published rows get their personal-data fields as pseudonym and mask (the Python
   functions of :mod:`tongban.common.pii`, ``Series.map``) and are written to Parquet through DuckDB
   (no pyarrow here), with the rejections (key and reason codes).

It leaves out what the lower bound also leaves out, and in addition the dashboard marts and
the reason values (rejections carry the reason codes only). The published rows are compared
with tongban's by the bench (row counts per entity in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import pandas_rules as rules
from bench.common import Stages as _Stages
from tongban.standards.targets.dbt import field_columns, reads_half_width
from bench.lower_bound import _is_utf8
from tongban.steps.intake.jsonpass import json_text as _json_text
from tongban.standards.rules import FIELD_RULES, STEPS
from tongban.common.validators import half_width
from tongban.common import reference
from tongban.steps.gate import _build_suite, load_suite_dict
from tongban.common import pii
from tongban.common.hashing import combined_sha256, sha256_file
from tongban.standards.generate import load_checked
from bench.common import ENTITIES
from tongban.common.config import quiet_third_parties, settings
from tongban.common.parts import find_parts
from tongban.common.pii import pseudonym_key

TRIM = rules.TRIM  # the characters the generated SQL trims (sqlparts.TRIM_CHARS)


# ------------------------------------------------------------------------------------------ read


def read_delivery(path: Path | list[Path], fmt: str, sheet: str | int | None):
    """Every declared column as text (``str`` or missing), as the province sent it. A delivery in
    several parts (a list, in intake's order) is read part by part and concatenated in order."""
    import pandas as pd


    if isinstance(path, list):
        if len(path) != 1:
            return pd.concat([read_delivery(p, fmt, sheet) for p in path], ignore_index=True)
        path = path[0]
    if fmt == "csv":
        encoding = "utf-8" if _is_utf8(path) else "gb18030"
        return pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False, na_filter=False)
    if fmt == "xlsx":
        return pd.read_excel(path, engine="calamine", sheet_name=sheet if sheet is not None else 0, dtype=str,
                             keep_default_na=False, na_filter=False)
    frame = pd.read_json(path, lines=True, dtype=False)
    for c in frame.columns:  # numbers and arrays as their JSON text, like intake
        frame[c] = [_text(v) for v in frame[c].tolist()]
    return frame


def _text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        if v != v:
            return None
        if v.is_integer():  # pandas turns an integer column with a null into floats
            return str(int(v))
    return _json_text(v)


# ------------------------------------------------------------------------------------------ mapping


def _half_width(s):
    """The SQL's half_width_sql: only the values with a non-ASCII character are translated."""

    wide = s.notna() & ~s.str.isascii().fillna(True).astype(bool)
    return s.where(~wide, s[wide].map(half_width)) if wide.any() else s


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _nested_objects(frame, columns: list[str], n: int):
    """Rows where one of ``columns`` holds a JSON object (the SQL's nested_object)."""
    import pandas as pd

    flag = pd.Series(False, index=pd.RangeIndex(n))
    for c in columns:
        if c not in frame.columns:
            continue
        t = frame[c].astype(object).where(frame[c].notna(), None).str.strip(TRIM)
        candidate = t.str.startswith("{").fillna(False).astype(bool)
        if candidate.any():
            hit = t[candidate].map(_is_json_object).astype(bool)  # the few values starting with '{'
            flag[hit[hit].index] = True
    return flag


def map_delivery(std, m, frame, *, sha256: str, run_id: str):
    """The standard's columns of one delivery, plus provenance, ``__block`` (blocking issues:
    list of (reason, field)) and the mapping checks as boolean columns ``chk__<reason>__<field>``."""
    import pandas as pd

    ent = std.entities[m.entity]
    n = len(frame)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    checks: dict[str, tuple[Any, bool]] = {}  # column -> (bool series, blocking)

    def source(name: str | None, null_values: list[str]):
        if name is None or name not in frame.columns:
            return pd.Series([None] * n, dtype=object)
        s = frame[name].astype(object)
        s = s.where(s.notna(), None)
        t = s.str.strip(TRIM)
        return s.where(~t.isin(null_values), None)

    for f in ent.fields:
        if f.derived == "identity_hash":
            ids = [frame[c].fillna("").astype(str).tolist() if c in frame.columns else [""] * n for c in m.identity]
            sid = m.source_id
            out[f.name] = [f"{sid}-" + hashlib.sha256("\x1f".join((sid, *parts)).encode()).hexdigest()[:24]
                           for parts in zip(*ids, strict=True)]
            continue
        if f.derived == "mapping_constant":
            out[f.name] = m.province_code if f.name == "province_code" else None
            continue
        code_list = std.code_lists.get(f.code_list) if f.code_list else None
        has_unknown = code_list is not None and "unknown" in code_list.values
        fm = m.fields.get(f.name)
        if fm is None:
            out[f.name] = "unknown" if has_unknown else None
            continue
        s = source(fm.source, m.null_values if fm.null_values is None else fm.null_values)
        if reads_half_width(f, fm):
            s = _half_width(s)
        if not any(STEPS[step.op].reads_json for step in fm.steps):
            objects = _nested_objects(frame, field_columns(fm), n)
            if objects.any():
                s = s.where(~objects, None)
            checks[f"chk__nested_object__{f.name}"] = (objects, f.on_invalid == "quarantine")
        v = rules.Values(s, False, checks, f, std, m, has_unknown)
        steps = list(fm.steps)
        terminal = steps.pop() if steps and STEPS[steps[-1].op].terminal else None
        where = f"{m.source_id}/{m.entity}"
        for step in steps:
            rules.step(step.op, where)(v, step.arg)
        if terminal is None:
            out[f.name] = ("unknown" if has_unknown else v.s) if code_list is not None else v.s
        else:
            out[f.name] = rules.step(terminal.op, where)(v, terminal.arg)
    out["source_id"] = m.source_id
    out["delivery_sha256"] = sha256
    out["source_row_number"] = range(1, n + 1)
    out["run_id"] = run_id
    out["mapping_version"] = m.version
    out["crosswalk_version"] = _crosswalk_version(std, m)
    for name, (flag, blocking) in checks.items():
        out[name] = flag.fillna(False).astype(bool).to_numpy()
        if not blocking:
            out[name] = False  # a note, not a reason: the row is published
    return out


def _crosswalk_version(std, m) -> str:
    """What the staging SQL records: md5 over each crosswalk's approved entries (macros/lookups.sql)."""
    lists = sorted({s.arg for fm in m.fields.values() for s in fm.steps if s.op == "crosswalk"})
    if not lists:
        return "none"
    parts = []
    for cl in lists:
        cw = std.crosswalks.get((m.source_id, cl))
        entries = sorted((e.source_value, e.target_code) for e in (cw.entries if cw else []) if e.status == "approved")
        body = "\x1e".join(f"{a}\x1f{b}" for a, b in entries)
        parts.append(f"{cl}:" + hashlib.md5(body.encode()).hexdigest()[:12])
    return hashlib.md5("|".join(parts).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------ rules


def standard_checks(std, ent, frame, *, ref_dir: Path | None):
    """The standard's rules as columns: ``prob__<field>`` (validator problem code or None) and
    boolean ``chk__<reason>__<field>``; the frame must be in (source_id, source_row_number) order."""


    # The Python validators resolve the reference directory on every call (Path.resolve, ~0.1 ms
    # a value, more than the check itself); memoised in this process only, so that this path is
    # not charged for it: a user's own validator would not pay it.
    if not hasattr(reference._resolve, "cache_info"):
        reference._resolve = functools.lru_cache(maxsize=8)(reference._resolve)

    today = dt.date.today()
    for f in ent.fields:
        for rule in FIELD_RULES:
            if rule.name in rules.FIELD_RULES:
                rules.FIELD_RULES[rule.name](frame, f, today, ref_dir)
            elif rule.name not in rules.ELSEWHERE:
                raise ValueError(f"the pandas bench path does not mirror field rule {rule.name!r}; add it to "
                                 "bench/pandas_rules.py")
    for r in ent.rules:
        if r.rule not in rules.ROW_RULES:
            raise ValueError(f"the pandas bench path does not mirror row rule {r.rule!r}; add it to "
                             "bench/pandas_rules.py")
        rules.ROW_RULES[r.rule](frame, ent, r)
    key = ent.key
    content = None
    for f in ent.fields:
        if f.name != key:
            text = frame[f.name].map(str).astype(object)
            content = text if content is None else content + "|" + text
    later = frame[key].duplicated()
    conflicting = content.groupby(frame[key]).transform("nunique") > 1
    frame[f"chk__duplicate_record__{key}"] = later & ~conflicting
    frame[f"chk__conflicting_duplicate__{key}"] = later & conflicting
    return frame


# ------------------------------------------------------------------------------------------ GX


def _row_suite(gx, ent, frame):
    """One expectation per row check; (expectation, reason or None for 'the problem value', field)."""
    items = []
    for f in ent.fields:
        if f.required:
            items.append((gx.expectations.ExpectColumnValuesToNotBeNull(column=f.name), "missing_required", f.name))
    for c in frame.columns:
        if c.startswith("prob__"):
            items.append((gx.expectations.ExpectColumnValuesToBeNull(column=c), None, c[len("prob__"):]))
        elif c.startswith("chk__"):
            _, reason, field = c.split("__", 2)
            items.append((gx.expectations.ExpectColumnValuesToBeInSet(column=c, value_set=[False]), reason, field))
    return items


def validate(context, gx, ent, frame) -> tuple[list[list[str]], dict[str, Any]]:
    """Run the row suite (COMPLETE) and return each row's reason codes; then nothing else."""
    ds = context.data_sources.add_pandas(f"rows_{ent.entity}")
    asset = ds.add_dataframe_asset(name=ent.entity)
    bd = asset.add_batch_definition_whole_dataframe("all")
    items = _row_suite(gx, ent, frame)
    suite = context.suites.add(gx.ExpectationSuite(name=f"{ent.entity}_rows"))
    for exp, _, _ in items:
        suite.add_expectation(exp)
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=f"{ent.entity}_rows", data=bd, suite=suite))
    result = vd.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
    reasons: list[set[str]] = [set() for _ in range(len(frame))]
    blocked_fields: list[set[str]] = [set() for _ in range(len(frame))]
    by_id = {exp.id: (reason, field) for exp, reason, field in items}
    missing_required: list[tuple[int, str]] = []
    for evr in result.results:
        if evr.success:
            continue
        reason, field = by_id[evr.expectation_config.id]
        idx = evr.result.get("unexpected_index_list") or []
        if reason == "missing_required":
            missing_required += [(i, field) for i in idx]
            continue
        problems = frame[f"prob__{field}"] if reason is None else None
        for i in idx:
            reasons[i].add(problems.iat[i] if problems is not None else reason)
            blocked_fields[i].add(field)
    for i, field in missing_required:  # as the SQL: not when the field already has a blocking issue
        if field not in blocked_fields[i]:
            reasons[i].add("missing_required")
    return [sorted(r) for r in reasons], {"row_expectations": len(items), "row_suite_success": result.success}


def gate(context, gx, ent, frame, suite_path: Path) -> bool:
    """The committed gate suite (expectations/<entity>.json), counts only, on pandas."""

    ds = context.data_sources.add_pandas(f"gate_{ent.entity}")
    bd = ds.add_dataframe_asset(name=ent.entity).add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(_build_suite(load_suite_dict(suite_path)))
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=f"{ent.entity}_gate", data=bd, suite=suite))
    result = vd.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "BASIC",
                                                                           "partial_unexpected_count": 0})
    return bool(result.success)


# ------------------------------------------------------------------------------------------ run


def run(*, standards_dir: Path, expectations_dir: Path, find_parts, out_dir: Path, reference_dir: Path,
        key: bytes, entities: tuple[str, ...]) -> dict[str, Any]:
    """``find_parts(file)``: the delivery's files in order (:func:`tongban.common.parts.find_parts`)."""
    st = _Stages()
    import duckdb
    import great_expectations as gx
    import pandas as pd


    st.mark("import")
    std = load_checked(standards_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm bars in the log
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-pd" + secrets.token_hex(2)
    st.mark("prepare")
    rows: dict[str, dict[str, int]] = {}
    gate_ok = {}
    info = {}
    for entity in entities:
        ent = std.entities[entity]
        frames = []
        for m in std.mappings_for(entity):
            paths = [Path(p) for p in find_parts(m.delivery.file)]
            if not paths:
                raise FileNotFoundError(f"{m.source_id}/{entity}: no delivery matches {m.delivery.file!r}")
            raw = read_delivery(paths, m.delivery.format, m.delivery.sheet)
            sha = combined_sha256([(p.name, sha256_file(p)) for p in paths])  # intake's digest of the parts
            st.mark("read")
            frames.append(map_delivery(std, m, raw, sha256=sha, run_id=run_id))
            del raw
            st.mark("map")
        frame = pd.concat(frames, ignore_index=True)
        del frames
        for c in [c for c in frame.columns if c.startswith("chk__")]:
            frame[c] = frame[c].fillna(False).astype(bool)
        frame = frame.sort_values(["source_id", "source_row_number"], kind="stable", ignore_index=True)
        frame = standard_checks(std, ent, frame, ref_dir=reference_dir)
        st.mark("rules")
        reasons, info[entity] = validate(context, gx, ent, frame)
        st.mark("gx_rows")
        passed = pd.Series([not r for r in reasons])
        frame["standard_version"] = ent.version
        out_cols = [f.name for f in ent.fields] + ["source_id", "delivery_sha256", "source_row_number", "run_id",
                                                   "standard_version", "mapping_version", "crosswalk_version"]
        good = frame.loc[passed.to_numpy(), out_cols].reset_index(drop=True)
        gate_ok[entity] = gate(context, gx, ent, good, expectations_dir / f"{entity}.json")
        st.mark("gx_gate")
        pub = pd.DataFrame(index=good.index)
        for c in out_cols:
            kind = ent.pii.get(c)
            if kind is None:
                pub[c] = good[c]
            else:
                values = good[c].astype(object).where(good[c].notna(), None)
                pub[f"{c}_pseudonym"] = values.map(lambda v, k=kind: pii.pseudonym(k, v, key) if v is not None else None)
                pub[f"{c}_masked"] = values.map(lambda v, k=kind: pii.mask(k, v) if v is not None else None)
        bad = frame.loc[~passed.to_numpy(), ["source_id", "source_row_number", "delivery_sha256", "run_id", ent.key]]
        bad = bad.assign(reason_codes=[r for r in reasons if r]).reset_index(drop=True)
        st.mark("pii")
        con = duckdb.connect()
        types = {f.name: f.type for f in ent.fields}
        cols = []
        for c in pub.columns:
            t = types.get(c)
            q = '"' + c + '"'
            cols.append(f"cast({q} as {t}) as {q}" if t in ("date", "decimal(20,2)", "varchar[]") else q)
        con.register("pub", pub)
        con.execute(f"copy (select {', '.join(cols)} from pub) to '{out_dir / (entity + '.parquet')}' "
                    "(format parquet, compression zstd)")
        con.register("bad", bad)
        con.execute(f"copy (select * from bad) to '{out_dir / (entity + '__rejections.parquet')}' "
                    "(format parquet, compression zstd)")
        con.close()
        rows[entity] = {"delivered": len(frame), "published": len(pub), "quarantined": len(bad)}
        del frame, good, pub, bad
        st.mark("write")
    return {"stages": st.seconds, "rows": rows, "gate_success": all(gate_ok.values()), "gx": info}


def run_from_env() -> dict[str, Any]:
    quiet_third_parties()
    s = settings()
    return run(standards_dir=s.standards_dir, expectations_dir=s.expectations_dir,
               find_parts=lambda file: find_parts(s.inbox_dirs, file), out_dir=s.exchange_dir,
               reference_dir=s.reference_dir, key=pseudonym_key(s.build_dir),
               entities=ENTITIES)


if __name__ == "__main__":  # pragma: no cover - a quick manual run
    import os

    os.environ.setdefault("TONGBAN_PSEUDONYM_KEY", "b3" * 32)
    print(json.dumps(run_from_env(), indent=2, default=str))
