"""`tongban standards propose`: a proposed mapping for a new source, from one of its deliveries.

profile (:mod:`.profile`) → score and assign (:mod:`.score`) → mapping, crosswalks and report
(:mod:`.write`). No mapping is written over an existing one without ``force``; an existing
crosswalk keeps its rows and gains proposed rows for the values it lacks. Every entry is
``status: proposed`` and the lint refuses proposed entries on blocking fields until reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tongban.committee.propose.profile import ColumnProfile, profile_delivery
from tongban.committee.propose.score import Choice, assign, known_values, score_matrix
from tongban.committee.propose.write import crosswalk_csv, crosswalk_proposals, mapping_yaml, propose_steps
from tongban.standards.load import Standards

__all__ = ["Proposal", "ProposeError", "propose"]


class ProposeError(Exception):
    """The proposal cannot be written (the message names files, never a delivered value)."""


@dataclass
class Proposal:
    entity: str
    source_id: str
    mapping_path: Path
    profiles: list[ColumnProfile]
    choices: dict[str, Choice]
    crosswalks: dict[str, Path] = field(default_factory=dict)  # code list -> CSV written
    unproposed: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # field -> (value, rows)
    written: list[Path] = field(default_factory=list)

    @property
    def unmapped_columns(self) -> list[str]:
        used = {c.column for c in self.choices.values() if c.column}
        return [p.name for p in self.profiles if p.name not in used]

    def to_dict(self) -> dict:
        """The report: per field its choice, confidence and reason; unmapped columns; code values
        with no crosswalk proposal; the column profiles (with their samples)."""
        return {
            "source_id": self.source_id, "entity": self.entity, "mapping": str(self.mapping_path),
            "fields": [{"field": c.field, "column": c.column, "confidence": c.confidence, "reason": c.reason,
                        "runners_up": [{"column": r.column, "score": r.score} for r in c.runners_up]}
                       for c in self.choices.values()],
            "unmapped_columns": self.unmapped_columns,
            "crosswalks": {k: str(v) for k, v in self.crosswalks.items()},
            "values_without_proposal": {f: [{"value": v, "rows": n} for v, n in vals]
                                        for f, vals in self.unproposed.items() if vals},
            "columns": [p.to_report() for p in self.profiles],
        }


def choose(std: Standards, entity: str, profiles: list[ColumnProfile]) -> tuple[dict[str, Choice], dict]:
    """The field choices for profiled columns, and the known values per code list."""
    ent = std.entities[entity]
    crosswalks = list(std.crosswalks.values())
    known = {f.code_list: known_values(f.code_list, std.code_lists, crosswalks) for f in ent.fields if f.code_list}
    return assign(score_matrix(ent, profiles, known)), known


def best_entity(std: Standards, profiles: list[ColumnProfile]) -> str:
    """The entity whose fields the columns fit best (mean score over its mappable fields)."""
    def fit(name: str) -> float:
        choices, _ = choose(std, name, profiles)
        return sum(c.confidence for c in choices.values()) / max(1, len(choices))
    return max(sorted(std.entities), key=fit)


def _identity(profiles: list[ColumnProfile], choices: dict[str, Choice]) -> list[str]:
    by_name = {p.name: p for p in profiles}
    for f in ("detail_url", "title"):
        col = choices.get(f) and choices[f].column
        if col and by_name[col].distinct_share >= 0.99 and by_name[col].fill_rate >= 0.99:
            return [col]
    cols = [choices[f].column for f in ("title", "provider_name") if f in choices and choices[f].column]
    return cols or [profiles[0].name]


def propose(std: Standards, paths: list[Path], *, source_id: str, province: str, entity: str | None, out_dir: Path,
            delivery_file: str, fmt: str | None = None, force: bool = False, label: str | None = None,
            author: str = "tongban-propose") -> Proposal:
    if entity is not None and entity not in std.entities:
        raise ProposeError(f"unknown entity {entity!r}; the standard has: {', '.join(sorted(std.entities))}")
    if entity is not None and (out_dir / f"{entity}.yaml").exists() and not force:
        raise ProposeError(f"{out_dir / f'{entity}.yaml'} exists — review it, or pass --force to replace it")
    profiles = profile_delivery(paths, format=fmt)
    if not profiles:
        raise ProposeError(f"{paths[0]}: the delivery has no columns a mapping can declare")
    if entity is None:
        entity = best_entity(std, profiles)
    ent = std.entities[entity]
    mapping_path = out_dir / f"{entity}.yaml"
    if mapping_path.exists() and not force:
        raise ProposeError(f"{mapping_path} exists — review it, or pass --force to replace it")
    choices, known = choose(std, entity, profiles)
    by_name = {p.name: p for p in profiles}
    steps = {f: propose_steps(ent.field(f), by_name[c.column]) for f, c in choices.items() if c.column}
    proposal = Proposal(entity, source_id, mapping_path, profiles, choices)
    files: dict[Path, str] = {}
    for f, c in choices.items():
        fdef = ent.field(f)
        if not (c.column and fdef.code_list):
            continue
        rows, missing = crosswalk_proposals(fdef, by_name[c.column], known[fdef.code_list])
        proposal.unproposed[f] = missing
        path = out_dir / "crosswalks" / f"{fdef.code_list}.csv"
        files[path] = crosswalk_csv(rows, author, path.read_text(encoding="utf-8") if path.exists() else None)
        proposal.crosswalks[fdef.code_list] = path
    files[mapping_path] = mapping_yaml(
        entity=ent, source_id=source_id, province=province, label=label or source_id, delivery_file=delivery_file,
        fmt=fmt, profiles=profiles, choices=choices, steps=steps, identity=_identity(profiles, choices), author=author)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        proposal.written.append(path)
    return proposal
