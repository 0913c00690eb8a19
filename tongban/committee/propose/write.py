"""Turn the field choices into a mapping file, crosswalk proposals and the report.

The mapping is written as text (not dumped), so that each field carries its confidence, reason
and runners-up as YAML comments. Every field entry is ``status: proposed``; every crosswalk row
too. Strings are written as JSON strings, which YAML reads as the same double-quoted scalars.
"""

from __future__ import annotations

import csv
import io
import json

from tongban.committee.propose.profile import ColumnProfile, date_format_arg
from tongban.committee.propose.score import Choice, items
from tongban.standards.models import CROSSWALK_HEADER, Entity, FieldDef


def _s(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _list_steps(p: ColumnProfile) -> list:
    if p.share("json_list") >= 0.5:
        return ["parse_list"]
    if p.separator:
        return [{"split": [p.separator]}]
    return ["trim", "to_list"]


def propose_steps(fdef: FieldDef, p: ColumnProfile) -> tuple[list, str | None]:
    """(steps for the field from this column, a note for the reviewer or None)."""
    if fdef.type == "date":
        form = p.date_form or "YYYY-MM-DD"
        arg = date_format_arg(form)
        if arg == "epoch_s":  # read as milliseconds they would become silent 1970 dates: fail loudly instead
            return ["trim", {"parse_date": ["epoch_s"]}], ("epoch seconds: a parse_date that cannot read epoch_s "
                                                          "rejects every value as invalid_date — check before approving")
        return ["trim", {"parse_date": [arg]}], None
    if fdef.format in ("email", "phone"):
        return ["trim", fdef.format], None
    if fdef.type == "varchar[]":
        steps = _list_steps(p)
        if fdef.code_list:
            steps = steps + (["lower"] if fdef.code_list == "format" else []) + [{"crosswalk": fdef.code_list}]
        return steps, None
    if fdef.code_list:
        if p.share("json_list") >= 0.5 or p.separator:
            return _list_steps(p) + ["first", {"crosswalk": fdef.code_list}], None
        return ["trim", {"crosswalk": fdef.code_list}], None
    return ["trim"], None


def _step_text(step) -> str:
    if isinstance(step, str):
        return step
    ((op, arg),) = step.items()
    if isinstance(arg, list):
        return "{" + f"{op}: [" + ", ".join(_s(a) for a in arg) + "]}"
    return "{" + f"{op}: {arg}" + "}"


def crosswalk_proposals(fdef: FieldDef, p: ColumnProfile, known: dict[str, str]
                        ) -> tuple[list[tuple[str, str, int]], list[tuple[str, int]]]:
    """([(source value, proposed target, rows)], [(value with no proposal, rows)]) for a coded field,
    the values as the crosswalk step will see them (the first item of a list for a single-valued field)."""
    counts: dict[str, int] = {}
    for v, n in p.values.items():
        its = items(v, p.separator) if (p.share("json_list") >= 0.5 or p.separator) else [v.strip()]
        its = its if fdef.type == "varchar[]" else its[:1]
        for x in its:
            x = x.lower() if fdef.code_list == "format" else x
            counts[x] = counts.get(x, 0) + n
    proposed, missing = [], []
    for value, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        target = known.get(value.lower())
        if target:
            proposed.append((value, target, n))
        else:
            missing.append((value, n))
    return proposed, missing


def crosswalk_csv(rows: list[tuple[str, str, int]], author: str, existing: str | None = None) -> str:
    """The crosswalk with a proposed row per value; an existing crosswalk (the source's other
    entities use it, its rows reviewed) is kept as it is and gets rows only for values it lacks."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if existing:
        buf.write(existing if existing.endswith("\n") else existing + "\n")
        known = {r.get("source_value") for r in csv.DictReader(io.StringIO(existing))}
        rows = [r for r in rows if r[0] not in known]
    else:
        w.writerow(CROSSWALK_HEADER)
    for value, target, _ in rows:
        w.writerow([value, target, "proposed", author, "", ""])
    return buf.getvalue()


def mapping_yaml(*, entity: Entity, source_id: str, province: str, label: str, delivery_file: str, fmt: str | None,
                 profiles: list[ColumnProfile], choices: dict[str, Choice], steps: dict[str, tuple[list, str | None]],
                 identity: list[str], author: str) -> str:
    required_cols = {c.column for f, c in choices.items() if c.column and entity.field(f).required}
    markers = sorted({m for p in profiles for m in p.null_markers} | {""})
    out = [
        "# yaml-language-server: $schema=../../schema/mapping.schema.json",
        f"# Proposed by `tongban standards propose` from {delivery_file}: every field is status: proposed.",
        "# Review each field (its confidence, reason and runners-up are the comments above it), then set",
        "# status: approved with reviewer and reviewed_on, and run `tongban standards check`.",
        f"source_id: {source_id}",
        f"entity: {entity.entity}",
        f"province_code: {_s(province)}",
        "version: 0.1.0",
        f"standard_version: {entity.version}",
        f"label: {{zh: {_s(label)}, en: {_s(label)}}}",
        "delivery:",
        f"  file: {_s(delivery_file)}",
        *([f"  format: {fmt}"] if fmt else []),
        "  columns:",
        *[f"    - {{name: {_s(p.name)}" + (", required: true}" if p.name in required_cols else "}") for p in profiles],
        f"identity: [{', '.join(_s(c) for c in identity)}]",
        f"null_values: [{', '.join(_s(m) for m in markers)}]",
        "fields:",
    ]
    for fdef in entity.fields:
        c = choices.get(fdef.name)
        if c is None:
            continue
        if c.column is None:
            out.append(f"  # {fdef.name}: no column proposed — {c.reason}")
            continue
        out.append(f"  # {fdef.name} ← {c.column} (confidence {c.confidence:.2f}): {c.reason}")
        for r in c.runners_up:
            out.append(f"  #   runner-up {r.column} ({r.score:.2f}): {r.why}")
        step_list, note = steps[fdef.name]
        if note:
            out.append(f"  #   note: {note}")
        out.append(f"  {fdef.name}: {{from: {_s(c.column)}, steps: [{', '.join(_step_text(s) for s in step_list)}], "
                   f"status: proposed, author: {_s(author)}}}")
    # a required coded field with no column is a decision the committee takes (issue 18): proposed here
    absent = [f for f in entity.fields if f.required and f.code_list and not f.derived
              and f.name in choices and choices[f.name].column is None]
    if absent:
        out.append("absent:  # required fields no column holds: their rows get 'unknown' once a reviewer approves")
        out += [f"  {f.name}: {{reason: {_s('no column of the delivery holds it (tongban standards propose)')}, "
                f"status: proposed, author: {_s(author)}}}" for f in absent]
    return "\n".join(out) + "\n"
