"""The committee's lint: referential integrity between entities, code lists, mappings and
crosswalks. Every finding names file:line and suggests the fix."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

from tongban.common.sqlquote import JINJA_OPENERS, has_jinja
from tongban.standards.load import Finding, Standards, line_of, load_standards, suggest
from tongban.standards.models import REVIEW_STATUSES, Mapping
from tongban.standards.rules import STEPS

_FIELD_SHAPE = {"varchar[]": "l", "date": "date", "decimal(20,2)": "number", "double": "number", "bigint": "number"}


def check(root: Path, *, legacy: bool = False) -> Standards:
    std = load_standards(root, legacy=legacy)
    _check_template_text(std, root)
    for m in std.mappings:
        _check_mapping(std, m)
        _check_field_reviews(std, m)
    for source_id, code_list in std.crosswalks:
        _check_crosswalk(std, source_id, code_list)
    for ent in std.entities.values():
        _check_gate(std, f"standards/entities/{ent.entity}.yaml", ent.gate)
        for f in ent.fields:
            if f.code_list and f.code_list not in std.code_lists:
                std.findings.append(Finding(f"standards/entities/{ent.entity}.yaml", _entity_line(std, ent.entity, f.name),
                                            f"field {f.name!r} refers to unknown code list {f.code_list!r}",
                                            suggest(f.code_list, list(std.code_lists))))
            if f.on_unmapped == "unknown" and f.code_list in std.code_lists and \
                    "unknown" not in std.code_lists[f.code_list].values:
                std.findings.append(Finding(f"standards/entities/{ent.entity}.yaml", _entity_line(std, ent.entity, f.name),
                                            f"field {f.name!r} says on_unmapped: unknown but code list "
                                            f"{f.code_list!r} has no 'unknown' code", "add the code or quarantine instead"))
            if ent.sharing_of(f.name) is None:
                std.findings.append(Finding(f"standards/entities/{ent.entity}.yaml", _entity_line(std, ent.entity, f.name),
                                            f"field {f.name!r} has no sharing class",
                                            "give the entity (or the field) sharing: unconditional, conditional or none"))
    return std


def _check_template_text(std: Standards, root: Path) -> None:
    """No ``{{``, ``{%`` or ``{#`` anywhere in the standards: dbt runs Jinja over the models and YAML
    generated from them. The generator already writes such text so that Jinja leaves it alone; the
    lint refuses it besides, so that nobody relies on that."""
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".csv")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue  # the loader reports files it cannot read
        for n, line in enumerate(lines, start=1):
            if has_jinja(line):
                std.findings.append(Finding(
                    std.rel(path), n, f"template markers ({' '.join(JINJA_OPENERS)}) are not allowed in the "
                    "standards: dbt would run them as code",
                    "write the value without them (e.g. '{ {' or a full-width ｛)"))


def _check_gate(std: Standards, rel: str, gate) -> None:
    """Every threshold of a ``gate:`` section is a share, in [0, 1]."""
    if gate is None:
        return
    raw = std.raw.get(rel)
    limits = [(("gate", "max_quarantine_share"), "max_quarantine_share", gate.max_quarantine_share)]
    limits += [(("gate", "max_share_by_rule", r), f"max_share_by_rule {r}", x) for r, x in gate.max_share_by_rule.items()]
    for loc, name, value in limits:
        if value is not None and not 0 <= value <= 1:
            std.findings.append(Finding(rel, line_of(raw, loc), f"gate {name} is {value}: a share is between 0 and 1",
                                        "write e.g. 0.2 for 20%"))


def _entity_line(std: Standards, entity: str, field_name: str) -> int:
    raw = std.raw.get(f"standards/entities/{entity}.yaml")
    if raw is None:
        return 1
    for i, f in enumerate(raw.get("fields", [])):
        if isinstance(f, dict) and f.get("name") == field_name:
            return line_of(raw, ("fields", i))
    return 1


def _check_mapping(std: Standards, m: Mapping) -> None:
    rel = std.mapping_path(m)
    raw = std.raw.get(rel)
    add = std.findings.append
    _check_gate(std, rel, m.gate)
    if m.gate is not None and not (m.gate.reason or "").strip():
        add(Finding(rel, line_of(raw, ("gate",)), "a gate override needs the committee's reason beside it",
                    "add 'reason: <why this source gets its own limit>' under gate:"))
    ent = std.entities.get(m.entity)
    if ent is None:
        add(Finding(rel, line_of(raw, ("entity",)), f"unknown entity {m.entity!r}", suggest(m.entity, list(std.entities))))
        return
    if m.standard_version.split(".")[0] != ent.version.split(".")[0]:
        add(Finding(rel, line_of(raw, ("standard_version",)),
                    f"mapping targets {m.entity} {m.standard_version} but the standard is {ent.version}",
                    "review the mapping against the new major version and update standard_version"))
    if "province" in std.code_lists and m.province_code not in std.code_lists["province"].values:
        add(Finding(rel, line_of(raw, ("province_code",)), f"province_code {m.province_code!r} is not in the province code list"))
    columns = m.column_names
    dupes = {c for c in columns if columns.count(c) > 1}
    for c in sorted(dupes):
        add(Finding(rel, line_of(raw, ("delivery", "columns")), f"delivery column {c!r} is declared twice"))
    for i, col in enumerate(m.identity):
        if col not in columns:
            add(Finding(rel, line_of(raw, ("identity", i)), f"identity column {col!r} is not a delivery column",
                        suggest(col, columns)))
    if not m.identity:
        add(Finding(rel, line_of(raw, ("identity",)), "identity is empty", "name the source columns that identify a record"))
    field_names = [f.name for f in ent.fields]
    for name, fm in m.fields.items():
        line = line_of(raw, ("fields", name))
        if name not in field_names:
            add(Finding(rel, line, f"unknown field {name!r}", suggest(name, field_names)))
            continue
        fdef = ent.field(name)
        if fdef.derived:
            add(Finding(rel, line, f"field {name!r} is derived by tongban ({fdef.derived}) and cannot be mapped",
                        "remove it from fields"))
            continue
        if fm.source is not None and fm.source not in columns:
            add(Finding(rel, line_of(raw, ("fields", name, "from")), f"field {name!r} reads column {fm.source!r}, "
                        "which the delivery does not declare", suggest(fm.source, columns)))
        shape = _check_steps(std, m, fdef, fm)
        want = _FIELD_SHAPE.get(fdef.type, "s")
        if fdef.type == "date" and shape != "date":
            add(Finding(rel, line, f"field {name!r} is a date: end its steps with {{parse_date: ['%Y-%m-%d']}}"))
        elif want == "number" and shape != "number":
            add(Finding(rel, line, f"field {name!r} is a number ({fdef.type}): end its steps with "
                        "{parse_amount: 元} (or the delivery's unit)"))
        elif fdef.type != "date" and shape != want:
            add(Finding(rel, line, f"field {name!r} is {fdef.type} but its steps give a "
                        f"{'list' if shape == 'l' else 'single value'}",
                        "use split/parse_list for lists, first for one value"))
        if fdef.code_list and not any(STEPS[s.op].lookup_cte for s in fm.steps):
            add(Finding(rel, line, f"field {name!r} is coded ({fdef.code_list}) but has no crosswalk step",
                        f"add {{crosswalk: {fdef.code_list}}} (or {{match_code: {fdef.code_list}}} when the "
                        "delivery already holds the standard's codes or Chinese labels) as its last step"))
    _check_absent(std, m, ent)


def _has_unknown(std: Standards, fdef) -> bool:
    return bool(fdef.code_list and fdef.code_list in std.code_lists and "unknown" in std.code_lists[fdef.code_list].values)


def _all_unknown(std: Standards, m: Mapping, name: str) -> bool:
    """Whether every approved crosswalk entry of a mapped coded field targets ``unknown``."""
    steps = [s for s in m.fields[name].steps if s.op == "crosswalk"]
    cw = std.crosswalks.get((m.source_id, steps[-1].arg)) if steps else None
    targets = {e.target_code for e in cw.entries if e.status == "approved"} if cw else set()
    return targets == {"unknown"}


def _check_absent(std: Standards, m: Mapping, ent) -> None:
    """An absent blocking field is a decision, not a default (issue 18): a required field with no
    source column, or whose values all crosswalk to ``unknown``, needs ``absent: {field: {reason:
    ...}}`` approved through the review workflow; the rows then get ``unknown`` and are counted."""
    rel = std.mapping_path(m)
    raw = std.raw.get(rel)
    add = std.findings.append
    names = [f.name for f in ent.fields]
    for name, d in m.absent.items():
        line = line_of(raw, ("absent", name))
        if name not in names:
            add(Finding(rel, line, f"absent: unknown field {name!r}", suggest(name, names)))
            continue
        fdef = ent.field(name)
        if fdef.derived:
            add(Finding(rel, line, f"field {name!r} is derived by tongban; it cannot be absent", "remove it from absent"))
        elif name in m.fields and not (fdef.required and _all_unknown(std, m, name)):
            add(Finding(rel, line, f"field {name!r} is mapped and absent at once",
                        "remove the absent decision, or the field's mapping"))
        elif fdef.required and not _has_unknown(std, fdef):
            add(Finding(rel, line, f"required field {name!r} cannot be absent: it has no code list with 'unknown', "
                        "so every row would be quarantined (missing_required)", "map it from a column"))
        if not std.legacy:
            _check_review(std, rel, SimpleNamespace(source_value=f"absent: {name}", line=line, status=d.status,
                                                    author=d.author, reviewer=d.reviewer, reviewed_on=d.reviewed_on))
    for f in ent.fields:
        if not f.required or f.derived:
            continue
        decided = m.absent.get(f.name)
        if f.name not in m.fields:
            what = f"required field {f.name!r} is not mapped"
            hint = (f"add '{f.name}: {{from: <column>}}' under fields, or — when the source has no such column — "
                    f"decide it: 'absent: {{{f.name}: {{reason: \"…\", status: proposed, author: <you>}}}}' "
                    "and have another member approve it")
        elif f.code_list and _all_unknown(std, m, f.name):
            what = f"required field {f.name!r}: every value crosswalks to 'unknown'"
            hint = (f"that is an absent field: record it as a decision under absent ({f.name}: {{reason: \"…\"}}), "
                    "approved by another member, or map the values to real codes")
        else:
            continue
        line = line_of(raw, ("absent", f.name)) if decided else line_of(raw, ("fields", f.name) if f.name in m.fields
                                                                          else ("fields",))
        if decided is None or decided.status == "rejected":
            add(Finding(rel, line, what + " and no decision says why", hint))
        elif decided.status != "approved":
            add(Finding(rel, line, f"{what}: the absent decision is {decided.status}, not approved",
                        "another committee member reviews it (status: approved, reviewer, reviewed_on)"))



def blocking_field(fdef) -> bool:
    """A field whose wrong mapping holds rows back or publishes a wrong decision: a required field,
    or a coded one whose unmapped values quarantine the row (unless the standard gates it as a warning)."""
    return fdef.gate == "blocking" and (fdef.required or bool(fdef.code_list and fdef.on_unmapped == "quarantine"))


def _check_field_reviews(std: Standards, m: Mapping) -> None:
    """Field entries written by `tongban standards propose` carry a crosswalk row's review columns:
    the same checks, and a proposed entry on a blocking field is an error until it is approved."""
    ent = std.entities.get(m.entity)
    if ent is None or std.legacy:
        return
    rel = std.mapping_path(m)
    names = [f.name for f in ent.fields]
    for name, fm in m.fields.items():
        if fm.status is None or name not in names:
            continue
        line = line_of(std.raw.get(rel), ("fields", name))
        _check_review(std, rel, SimpleNamespace(source_value=f"fields.{name}", line=line, status=fm.status,
                                                author=fm.author, reviewer=fm.reviewer, reviewed_on=fm.reviewed_on))
        if fm.status == "proposed":
            blocking = blocking_field(ent.field(name))
            std.findings.append(Finding(
                rel, line, f"field {name!r} is a proposed mapping" + (" of a blocking field" if blocking else ""),
                "review it: set status: approved with reviewer and reviewed_on (another member than the author)",
                severity="error" if blocking else "warning"))


def _check_steps(std: Standards, m: Mapping, fdef, fm) -> str:
    """Each step of one mapping field against what the step before gives and against the field
    (the step kinds' own lint); returns what the last step gives."""
    rel = std.mapping_path(m)
    raw = std.raw.get(rel)
    add = std.findings.append
    name = fdef.name
    shape = "-" if fm.source is None else "s"
    for j, step in enumerate(fm.steps):
        kind = STEPS[step.op]
        takes, gives = kind.takes, kind.gives
        step_line = line_of(raw, ("fields", name, "steps", j))
        if takes not in ("*", shape) and not (takes == "-" and j == 0):
            add(Finding(rel, step_line, f"field {name!r}: step {step.op!r} needs a "
                        f"{'list' if takes == 'l' else 'single value'}, but gets a "
                        f"{'list' if shape == 'l' else 'single value'}",
                        "add 'split'/'parse_list' or 'first' before it"))
        for message, hint in kind.lint(std, m, fdef, step.arg):
            add(Finding(rel, step_line, message, hint))
        shape = shape if gives == "=" else gives
    return shape


def _check_crosswalk(std: Standards, source_id: str, code_list: str) -> None:
    cw = std.crosswalks[(source_id, code_list)]
    cl = std.code_lists.get(code_list)
    if cl is None:
        std.findings.append(Finding(cw.path, 1, f"crosswalk for unknown code list {code_list!r}",
                                    suggest(code_list, list(std.code_lists))))
        return
    seen: dict[str, tuple[str, int]] = {}
    for e in cw.entries:
        if not std.legacy:
            _check_review(std, cw.path, e)
        if e.target_code not in cl.values:
            std.findings.append(Finding(cw.path, e.line, f"target {e.target_code!r} is not a code of {code_list!r}",
                                        suggest(e.target_code, cl.values)))
        if e.status == "rejected":  # a rejected alternative may stand beside the entry that replaced it
            continue
        if e.source_value in seen:
            first_target, first_line = seen[e.source_value]
            what = f"to {first_target!r} (line {first_line}) and to {e.target_code!r}" \
                if first_target != e.target_code else f"twice (lines {first_line} and {e.line})"
            std.findings.append(Finding(cw.path, e.line, f"{e.source_value!r} is mapped {what}",
                                        "keep one of the two rows, or mark the other rejected"))
        seen.setdefault(e.source_value, (e.target_code, e.line))


def _check_review(std: Standards, path: str, e) -> None:
    """Who proposed the entry, who reviewed it and when; the reviewer is not the author."""
    add = std.findings.append
    if e.status not in REVIEW_STATUSES:
        add(Finding(path, e.line, f"status {e.status!r} of {e.source_value!r} is not a review status",
                    suggest(e.status, list(REVIEW_STATUSES)) if e.status else
                    "write proposed (new entries), approved or rejected"))
        return
    if not e.author:
        add(Finding(path, e.line, f"entry {e.source_value!r} has no author", "put who proposed it in the author column"))
    if e.status == "proposed":
        if e.reviewer or e.reviewed_on:
            add(Finding(path, e.line, f"entry {e.source_value!r} is proposed but has a reviewer or review date",
                        "set the status to approved or rejected, or clear reviewer and reviewed_on"))
        return
    if not e.reviewer or not e.reviewed_on:
        add(Finding(path, e.line, f"entry {e.source_value!r} is {e.status} without reviewer and reviewed_on",
                    "name the reviewer and the date (YYYY-MM-DD) of the review"))
    elif e.reviewer == e.author:
        add(Finding(path, e.line, f"entry {e.source_value!r} is reviewed by its own author {e.author!r}",
                    "another committee member reviews it (four eyes)"))
    if e.reviewed_on:
        try:
            date.fromisoformat(e.reviewed_on)
        except ValueError:
            add(Finding(path, e.line, f"reviewed_on {e.reviewed_on!r} is not a date", "write it as YYYY-MM-DD"))
