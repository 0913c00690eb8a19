"""Load ``standards/`` into typed models, with findings that name file:line and a fix.

A committee member's typo must produce
``standards/mappings/js/data_resource.yaml:14: unknown field 'titel' (did you mean 'title'?)``,
never a traceback. Loading collects every finding it can instead of stopping at the first.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tongban.standards.models import CROSSWALK_HEADER, CodeList, Crosswalk, CrosswalkEntry, Entity, Mapping
from tongban.standards.rules.base import suggest

__all__ = ["Finding", "Standards", "StandardsError", "line_of", "load_standards", "suggest"]


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    message: str
    hint: str = ""
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.severity}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "severity": self.severity,
                "message": self.message, "hint": self.hint}


class StandardsError(Exception):
    exit_code = 1

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        super().__init__("\n".join(str(f) for f in findings))


class _LineDict(dict):
    """A mapping that remembers the line of each key (1-based)."""

    lines: dict[Any, int]
    line: int


class _LineList(list):
    lines: list[int]
    line: int


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.lines = {}
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(n, deep=True) for n in node.value)
    out.lines = [n.start_mark.line + 1 for n in node.value]
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def line_of(data: Any, loc: tuple[Any, ...]) -> int:
    """The line of the deepest node of ``loc`` that exists in ``data``."""
    line = getattr(data, "line", 1)
    node = data
    for part in loc:
        if isinstance(node, _LineDict) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, _LineList) and isinstance(part, int) and part < len(node):
            line = node.lines[part]
            node = node[part]
        else:
            break
    return line


@dataclass
class Standards:
    root: Path
    entities: dict[str, Entity] = field(default_factory=dict)
    code_lists: dict[str, CodeList] = field(default_factory=dict)
    mappings: list[Mapping] = field(default_factory=list)
    crosswalks: dict[tuple[str, str], Crosswalk] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # relative path -> parsed YAML with lines
    findings: list[Finding] = field(default_factory=list)
    #: standards from before crosswalks had review columns (an old git ref): their entries read as
    #: approved, since that is how they ran then
    legacy: bool = False

    def rel(self, path: Path) -> str:
        try:
            return str(Path("standards") / path.relative_to(self.root))
        except ValueError:
            return str(path)

    def mapping(self, source_id: str, entity: str) -> Mapping:
        for m in self.mappings:
            if m.source_id == source_id and m.entity == entity:
                return m
        raise KeyError((source_id, entity))

    def mappings_for(self, entity: str) -> list[Mapping]:
        return sorted((m for m in self.mappings if m.entity == entity), key=lambda m: m.source_id)

    def mappings_for_source(self, source_id: str) -> list[Mapping]:
        return sorted((m for m in self.mappings if m.source_id == source_id), key=lambda m: m.entity)

    def mapping_path(self, m: Mapping) -> str:
        return f"standards/mappings/{m.source_id}/{m.entity}.yaml"

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def _read_yaml(std: Standards, path: Path) -> Any:
    rel = std.rel(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        std.findings.append(Finding(rel, line, f"not valid YAML: {exc.problem}", "check indentation and quoting"))
        return None
    except UnicodeDecodeError:
        std.findings.append(Finding(rel, 1, "not UTF-8 text", "save the file as UTF-8"))
        return None
    std.raw[rel] = data
    return data


def _validate(std: Standards, model: type, data: Any, path: Path) -> Any:
    rel = std.rel(path)
    if not isinstance(data, dict):
        std.findings.append(Finding(rel, 1, "expected a YAML mapping at the top level"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            if not loc and (at := _RULE_AT.match(err["msg"])):  # an entity's check of one of its rules
                loc = ("rules", int(at.group(1)))
                err = {**err, "msg": err["msg"][at.end():]}
            line = line_of(data, loc)
            where = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
            if err["type"] == "extra_forbidden":
                known = list(getattr(_model_at(model, loc[:-1]), "model_fields", {}).keys())
                aliases = [f.alias for f in getattr(_model_at(model, loc[:-1]), "model_fields", {}).values() if f.alias]
                std.findings.append(Finding(rel, line, f"unknown key {loc[-1]!r} in {where.rsplit('.', 1)[0] or 'top level'}",
                                            suggest(str(loc[-1]), known + aliases)))
            elif err["type"] == "missing":
                std.findings.append(Finding(rel, line, f"missing required key {where!r}", f"add '{loc[-1]}:'"))
            else:
                msg = err["msg"].removeprefix("Value error, ")
                std.findings.append(Finding(rel, line, f"{where}: {msg}" if where else msg))
        return None


#: how the entity model names the rule a check of its own is about (tongban.standards.models.Entity)
_RULE_AT = re.compile(r"^Value error, rules\[(\d+)\]: ")


def _model_at(model: type, loc: tuple[Any, ...]) -> Any:
    """Best effort: the pydantic model class at a location (for key suggestions)."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if fields is None or not isinstance(part, str):
            continue
        if part in fields:
            ann = fields[part].annotation
            args = getattr(ann, "__args__", ())
            candidates = [a for a in (ann, *args) if hasattr(a, "model_fields")]
            for a in args:
                candidates += [b for b in getattr(a, "__args__", ()) if hasattr(b, "model_fields")]
            current = candidates[0] if candidates else None
    return current


def _read_crosswalk(std: Standards, path: Path, source_id: str) -> Crosswalk | None:
    rel = std.rel(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        std.findings.append(Finding(rel, 1, "not UTF-8 text", "save the crosswalk as UTF-8 CSV"))
        return None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    cols = [h.strip() for h in header] if header else []
    if cols[:2] != ["source_value", "target_code"]:
        std.findings.append(Finding(rel, 1, f"a crosswalk starts with the header '{','.join(CROSSWALK_HEADER)}'"))
        return None
    if cols == ["source_value", "target_code"] and std.legacy:
        return Crosswalk(source_id=source_id, code_list=path.stem, path=rel, entries=[
            CrosswalkEntry(source_value=row[0], target_code=row[1].strip(), line=n, status="approved")
            for n, row in enumerate(reader, start=2) if len(row) >= 2 and any(c.strip() for c in row)])
    if cols != CROSSWALK_HEADER:
        std.findings.append(Finding(rel, 1, "the crosswalk has no review columns",
                                    f"use the header '{','.join(CROSSWALK_HEADER)}' and give every row a status "
                                    "(proposed, approved or rejected) and its author"))
        return None
    entries = []
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2:
            std.findings.append(Finding(rel, line_no, "a crosswalk row needs source_value and target_code"))
            continue
        row = row + [""] * (len(CROSSWALK_HEADER) - len(row))
        entries.append(CrosswalkEntry(source_value=row[0], target_code=row[1].strip(), line=line_no,
                                      status=row[2].strip(), author=row[3].strip(), reviewer=row[4].strip(),
                                      reviewed_on=row[5].strip()))
    return Crosswalk(source_id=source_id, code_list=path.stem, path=rel, entries=entries)


def load_standards(root: Path, *, legacy: bool = False) -> Standards:
    """Parse every standards file. Structural problems become findings; see ``check`` for the rest.
    ``legacy`` reads standards from before the crosswalk review columns (old git refs)."""
    std = Standards(root=root, legacy=legacy)
    for path in sorted((root / "code_lists").glob("*.yaml")):
        cl = _validate(std, CodeList, _read_yaml(std, path), path)
        if cl is not None:
            if cl.code_list != path.stem:
                std.findings.append(Finding(std.rel(path), 1, f"code_list {cl.code_list!r} does not match the file name",
                                            f"rename the file to {cl.code_list}.yaml or fix code_list"))
            std.code_lists[cl.code_list] = cl
    for path in sorted((root / "entities").glob("*.yaml")):
        ent = _validate(std, Entity, _read_yaml(std, path), path)
        if ent is not None:
            std.entities[ent.entity] = ent
    for path in sorted((root / "mappings").glob("*/*.yaml")):
        source_id = path.parent.name
        m = _validate(std, Mapping, _read_yaml(std, path), path)
        if m is None:
            continue
        if m.source_id != source_id:
            std.findings.append(Finding(std.rel(path), line_of(std.raw[std.rel(path)], ("source_id",)),
                                        f"source_id {m.source_id!r} differs from its folder {source_id!r}",
                                        f"set source_id: {source_id}"))
            continue
        if m.entity != path.stem:
            std.findings.append(Finding(std.rel(path), line_of(std.raw[std.rel(path)], ("entity",)),
                                        f"entity {m.entity!r} differs from the file name {path.stem!r}",
                                        f"rename the file to {m.entity}.yaml"))
            continue
        std.mappings.append(m)
    for path in sorted((root / "mappings").glob("*/crosswalks/*.csv")):
        source_id = path.parent.parent.name
        cw = _read_crosswalk(std, path, source_id)
        if cw is not None:
            std.crosswalks[(source_id, cw.code_list)] = cw
    return std
