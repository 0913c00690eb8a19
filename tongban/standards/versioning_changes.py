"""What changed between two loaded standards, change by change, each with the version bump it
needs (tongban.standards.versioning checks the bumps). A field attribute's change is classified
by the rule kind that owns it (tongban.standards.rules: ``stricter`` can reject rows that passed
before, a major change); a row rule by its kind (``added`` / ``removed``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from tongban.standards.load import Standards, line_of
from tongban.standards.models import CodeList, Entity, FieldDef, Mapping
from tongban.standards.rules import owner
from tongban.standards.rules.base import show as _show


@dataclass(frozen=True)
class Change:
    subject: str  # 'entity birth_registration' | 'code list sex' | 'mapping sh/data_resource'
    level: str  # 'major' | 'minor' | 'patch'
    what: str  # a sentence: "field 'summary' removed"
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.level}: {self.subject}: {self.what}"



# ---- where things are ------------------------------------------------------------------------

def _entity_file(std: Standards, name: str) -> str:
    for rel, raw in std.raw.items():
        if rel.startswith("standards/entities/") and isinstance(raw, dict) and raw.get("entity") == name:
            return rel
    return f"standards/entities/{name}.yaml"


def _code_list_file(name: str) -> str:
    return f"standards/code_lists/{name}.yaml"


def _line(std: Standards, rel: str, loc: tuple[Any, ...]) -> int:
    raw = std.raw.get(rel)
    return line_of(raw, loc) if raw is not None else 1


def _field_loc(std: Standards, rel: str, field_name: str) -> tuple[Any, ...]:
    raw = std.raw.get(rel)
    fields = raw.get("fields") if isinstance(raw, dict) else None
    for i, f in enumerate(fields if isinstance(fields, list) else []):
        if isinstance(f, dict) and f.get("name") == field_name:
            return ("fields", i)
    return ("fields",)



def _names(values: Any, limit: int = 5) -> str:
    values = [repr(v) for v in values]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


# ---- entities ----------------------------------------------------------------------------------

#: field attributes where turning the check on, or making it stricter, can reject rows that

def _field_changes(old: FieldDef, new: FieldDef) -> list[tuple[str, str, str]]:
    """(level, what, attribute) for each difference between two versions of one field: what the
    field is (type, derived, labels) here, the attributes that switch rules on by their rule kind."""
    out: list[tuple[str, str, str]] = []
    name = new.name
    for attr in type(new).model_fields:
        o, n = getattr(old, attr), getattr(new, attr)
        if o == n or attr == "name":
            continue
        rule = owner(attr)
        if attr in ("label", "description", "aliases"):  # words for people and for `propose`
            out.append(("patch", f"{attr} of field {name!r} changed", attr))
        elif attr == "type":
            out.append(("major", f"field {name!r} type changed from {o} to {n}", attr))
        elif attr == "derived":
            out.append(("major", f"field {name!r} derived changed from {_show(o)} to {_show(n)} "
                        "(mappings must map it, or stop mapping it)", attr))
        elif rule is not None:
            out.append((*rule.change(name, attr, o, n), attr))
        else:  # an attribute no rule kind owns: assume the worst
            out.append(("major", f"field {name!r} {attr} changed from {_show(o)} to {_show(n)} "
                        "(not classified; treated as breaking)", attr))
    return out


#: what a rule says but does not decide (words, and how strictly it acts: compared on their own)
_RULE_WORDS = ("description", "message", "severity")


def _rule_key(rule: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, str(v)) for k, v in rule.model_dump().items() if k not in _RULE_WORDS))


def _rule_name(rule: Any) -> str:
    return f"rule {rule.rule} (reason {rule.reason})"


def _entity_changes(old_std: Standards, new_std: Standards, old: Entity, new: Entity) -> list[Change]:
    subject = f"entity {new.entity}"
    rel = _entity_file(new_std, new.entity)
    out: list[Change] = []

    def add(level: str, what: str, loc: tuple[Any, ...] = ()) -> None:
        out.append(Change(subject, level, what, rel, _line(new_std, rel, loc)))

    for attr in ("label", "description"):
        if getattr(old, attr) != getattr(new, attr):
            add("patch", f"{attr} changed", (attr,))
    if old.key != new.key:
        add("major", f"key changed from {old.key!r} to {new.key!r}", ("key",))
    old_fields = {f.name: f for f in old.fields}
    new_fields = {f.name: f for f in new.fields}
    for name in old_fields:
        if name not in new_fields:
            add("major", f"field {name!r} removed", ("fields",))
    for f in new.fields:
        loc = _field_loc(new_std, rel, f.name)
        if f.name not in old_fields:
            if f.required and not f.derived:
                add("major", f"new required field {f.name!r}", loc)
            else:
                add("minor", f"new {'derived' if f.derived else 'optional'} field {f.name!r}", loc)
            continue
        for level, what, attr in _field_changes(old_fields[f.name], f):
            add(level, what, (*loc, attr))
    common_old = [n for n in old_fields if n in new_fields]
    common_new = [n for n in new_fields if n in old_fields]
    if common_old != common_new:
        add("patch", "fields reordered", ("fields",))
    old_rules = {_rule_key(r): r for r in old.rules}
    new_rules = {_rule_key(r): (i, r) for i, r in enumerate(new.rules)}
    for key, r in old_rules.items():
        if key not in new_rules:
            add(r.removed, f"{_rule_name(r)} removed", ("rules",))
    for key, (i, r) in new_rules.items():
        if key not in old_rules:
            add(r.added, f"{_rule_name(r)} added" + (" (can reject rows that passed before)"
                                                       if r.added == "major" else ""), ("rules", i))
            continue
        was = old_rules[key]
        if getattr(was, "severity", None) != getattr(r, "severity", None):
            stricter = getattr(r, "severity", None) == "quarantine"
            add("major" if stricter else "minor",
                f"{_rule_name(r)} severity changed from {getattr(was, 'severity', None)} to "
                f"{getattr(r, 'severity', None)}" + (" (can reject rows that passed before)" if stricter else ""),
                ("rules", i, "severity"))
        for words in ("description", "message"):
            if getattr(was, words, None) != getattr(r, words, None):
                add("patch", f"{words} of {_rule_name(r)} changed", ("rules", i, words))
    for attr in type(new).model_fields:
        # gate: the committee's publication policy (thresholds), not the data's contract: no bump
        if attr not in ("entity", "version", "label", "description", "key", "fields", "rules", "gate") \
                and getattr(old, attr) != getattr(new, attr):
            add("major", f"{attr} changed (not classified; treated as breaking)", (attr,))
    return out



# ---- code lists --------------------------------------------------------------------------------

def _code_list_changes(new_std: Standards, old: CodeList, new: CodeList) -> list[Change]:
    subject = f"code list {new.code_list}"
    rel = _code_list_file(new.code_list)
    out: list[Change] = []

    def add(level: str, what: str, loc: tuple[Any, ...] = ()) -> None:
        out.append(Change(subject, level, what, rel, _line(new_std, rel, loc)))

    if old.label != new.label:
        add("patch", "label changed", ("label",))
    old_codes = {c.code: c for c in old.codes}
    new_codes = {c.code: (i, c) for i, c in enumerate(new.codes)}
    for code in old_codes:
        if code not in new_codes:
            add("major", f"code {code!r} removed", ("codes",))
    for code, (i, c) in new_codes.items():
        if code not in old_codes:
            add("minor", f"code {code!r} added", ("codes", i))
        elif old_codes[code] != c:
            add("patch", f"label of code {code!r} changed", ("codes", i))
    if [c for c in old_codes if c in new_codes] != [c for c in new_codes if c in old_codes]:
        add("patch", "codes reordered", ("codes",))
    for attr in type(new).model_fields:
        if attr not in ("code_list", "version", "label", "codes") and getattr(old, attr) != getattr(new, attr):
            add("major", f"{attr} changed (not classified; treated as breaking)", (attr,))
    return out


def _code_list_users(old_std: Standards, new_std: Standards, code_list: str, removed: list[str],
                     added: list[str]) -> list[Change]:
    """A code removed from a list narrows every field that uses the list (major for its entity);
    a code added widens it (minor)."""
    out = []
    for name in sorted(set(old_std.entities) & set(new_std.entities)):
        ent = new_std.entities[name]
        users = [f.name for f in ent.fields if f.code_list == code_list]
        if not users:
            continue
        rel = _entity_file(new_std, name)
        line = _line(new_std, rel, _field_loc(new_std, rel, users[0]))
        fields = ", ".join(users)
        if removed:
            out.append(Change(f"entity {name}", "major", f"code list {code_list!r} lost code(s) {_names(removed)} "
                              f"(field {fields})", rel, line))
        if added:
            out.append(Change(f"entity {name}", "minor", f"code list {code_list!r} gained code(s) {_names(added)} "
                              f"(field {fields})", rel, line))
    return out


# ---- mappings ----------------------------------------------------------------------------------

def _mapping_changes(new_std: Standards, old: Mapping, new: Mapping) -> list[Change]:
    subject = f"mapping {new.source_id}/{new.entity}"
    rel = new_std.mapping_path(new)
    out: list[Change] = []

    def add(level: str, what: str, loc: tuple[Any, ...] = ()) -> None:
        out.append(Change(subject, level, what, rel, _line(new_std, rel, loc)))

    if old.label != new.label:
        add("patch", "label changed", ("label",))
    if old.standard_version != new.standard_version:
        add("patch", f"standard_version changed from {old.standard_version} to {new.standard_version}",
            ("standard_version",))
    if old.province_code != new.province_code:
        add("minor", f"province_code changed from {old.province_code!r} to {new.province_code!r}", ("province_code",))
    for name in old.fields:
        if name not in new.fields:
            add("minor", f"field {name!r} no longer mapped", ("fields",))
    for name, fm in new.fields.items():
        if name not in old.fields:
            add("minor", f"field {name!r} now mapped", ("fields", name))
        elif old.fields[name] != fm:
            add("minor", f"mapping of field {name!r} changed", ("fields", name))
    od, nd = old.delivery, new.delivery
    for attr in ("file", "format", "sheet"):
        if getattr(od, attr) != getattr(nd, attr):
            add("minor", f"delivery {attr} changed from {_show(getattr(od, attr))} to {_show(getattr(nd, attr))}",
                ("delivery", attr))
    if od.columns != nd.columns:
        old_cols, new_cols = {c.name: c for c in od.columns}, {c.name: c for c in nd.columns}
        parts = []
        if gone := [c for c in old_cols if c not in new_cols]:
            parts.append(f"removed {_names(gone)}")
        if added := [c for c in new_cols if c not in old_cols]:
            parts.append(f"added {_names(added)}")
        if req := [c for c in new_cols if c in old_cols and old_cols[c] != new_cols[c]]:
            parts.append(f"required changed for {_names(req)}")
        add("minor", f"delivery columns changed: {'; '.join(parts) or 'reordered'}", ("delivery", "columns"))
    if old.identity != new.identity:
        add("minor", f"identity changed from {old.identity} to {new.identity}", ("identity",))
    if old.null_values != new.null_values:
        add("minor", f"null_values changed from {old.null_values} to {new.null_values}", ("null_values",))
    for attr in type(new).model_fields:
        if attr not in ("source_id", "entity", "version", "standard_version", "label", "province_code", "fields",
                        "delivery", "identity", "null_values", "gate") and getattr(old, attr) != getattr(new, attr):
            add("minor", f"{attr} changed", (attr,))
    return out


def _row(entry: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in entry.model_dump().items() if k != "line"))


def _crosswalk_changes(old_std: Standards, new_std: Standards) -> list[Change]:
    """A crosswalk is part of its source's mappings: any change of its rows (a value added,
    retargeted, removed, or its review status) is a minor change of the mappings that use it."""
    out = []
    for key in sorted(set(old_std.crosswalks) | set(new_std.crosswalks)):
        source_id, code_list = key
        old_cw, new_cw = old_std.crosswalks.get(key), new_std.crosswalks.get(key)
        old_rows = Counter(_row(e) for e in old_cw.entries) if old_cw else Counter()
        new_rows = Counter(_row(e) for e in new_cw.entries) if new_cw else Counter()
        path = (new_cw or old_cw).path  # type: ignore[union-attr]
        line = 1
        if old_cw is None:
            what = f"crosswalk {code_list}.csv " + ("changed (it did not load at the compared ref)"
                                                     if _failed(old_std, path) else "added")
        elif new_cw is None:
            what = f"crosswalk {code_list}.csv removed"
        elif old_rows != new_rows:
            gone, came = old_rows - new_rows, new_rows - old_rows
            values = sorted({dict(r)["source_value"] for r in (*gone, *came)})
            what = (f"crosswalk {code_list}.csv: {sum(came.values())} row(s) added or changed, "
                    f"{sum(gone.values())} removed or changed (values {_names(values, 3)})")
            firsts = [e.line for e in new_cw.entries if _row(e) in came]
            line = min(firsts) if firsts else 1
        elif [_row(e) for e in old_cw.entries] != [_row(e) for e in new_cw.entries]:
            out += _attribute_crosswalk((old_std, new_std), key, "patch",
                                        f"crosswalk {code_list}.csv: rows reordered", (path, line))
            continue
        else:
            continue
        out += _attribute_crosswalk((old_std, new_std), key, "minor", what, (path, line))
    return out


def _attribute_crosswalk(stds: tuple[Standards, Standards], key: tuple[str, str], level: str, what: str,
                         where: tuple[str, int]) -> list[Change]:
    """The change of crosswalk ``key`` (source, code list) as a change of each mapping that reads
    it, in the old standards or the new ones; ``where`` is (file, line)."""
    old_std, new_std = stds
    source_id, code_list = key
    path, line = where

    def uses(std: Standards, m: Mapping) -> bool:
        return any(s.op == "crosswalk" and s.arg == code_list for fm in m.fields.values() for s in fm.steps)

    users = sorted({m.entity for std in (old_std, new_std) for m in std.mappings_for_source(source_id)
                    if uses(std, m)})
    if not users:  # nobody reads it (yet): still worth listing
        return [Change(f"crosswalk {source_id}/{code_list}", level, what, path, line)]
    return [Change(f"mapping {source_id}/{entity}", level, what, path, line) for entity in users]


def _failed(std: Standards, rel: str) -> bool:
    """The file exists in ``std`` but did not load (so it is missing from the models)."""
    return any(f.file == rel and f.severity == "error" for f in std.findings)


def _added(kind: str, old: Standards, rel: str) -> str:
    return f"{kind} added" if not _failed(old, rel) else f"{kind} did not load at the compared ref (not compared)"
