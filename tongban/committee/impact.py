"""Impact preview: what a change to the standards or mappings would do, before it runs.

``tongban standards impact --against <git-ref>`` builds the old standards (at the ref) and the new
ones (the working tree) side by side, each in a scratch dbt project with its own warehouse, over
the latest deliveries of every affected source — nothing is published, the real warehouse and
exchange are not touched. It then compares the two ``int_<entity>__unioned`` tables row by row
(same source, same source row) and reports per source and field how many values change and to
what, and which rows move into or out of quarantine and why: as a terminal table and as Markdown
for the review. Values of personal-data fields are shown masked.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tongban.common.config import Settings, settings
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.steps.intake.land import land
from tongban.common.reference import load_reference
from tongban.standards.generate import scratch_project
from tongban.steps.harmonize import TransformError, run_dbt
from tongban.standards.generate import load_checked
from tongban.standards.gitref import resolve, standards_at
from tongban.common.pii import sql_ddl



@dataclass
class ValueChange:
    old: str | None
    new: str | None
    rows: int


@dataclass
class FieldImpact:
    field: str
    rows_changed: int
    top: list[ValueChange] = field(default_factory=list)
    note: str = ""  # e.g. "field added"


@dataclass
class QuarantineMove:
    direction: str  # "into" | "out of"
    reason: str  # reason code(s) added (into) or gone (out of), with the field
    rows: int


@dataclass
class SourceImpact:
    entity: str
    source_id: str
    rows: int  # rows of the latest delivery
    old_published: int
    new_published: int
    fields: list[FieldImpact] = field(default_factory=list)
    moves: list[QuarantineMove] = field(default_factory=list)
    note: str = ""


@dataclass
class ImpactReport:
    ref: str
    commit: str
    affected: list[tuple[str, str]]  # (entity, source_id)
    sources: list[SourceImpact] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------- affected


def _fingerprint(std, m) -> str:
    """Everything that decides how a mapping's rows come out: the mapping, its entity, the code
    lists the entity uses and the crosswalks the mapping reads (with review status)."""
    ent = std.entities.get(m.entity)
    code_lists = sorted({f.code_list for f in ent.fields if f.code_list}) if ent else []
    crosswalks = sorted({s.arg for fm in m.fields.values() for s in fm.steps if s.op == "crosswalk"})
    return json.dumps({
        "mapping": m.model_dump(mode="json"),
        "entity": ent.model_dump(mode="json") if ent else None,
        "code_lists": {c: std.code_lists[c].model_dump(mode="json") for c in code_lists if c in std.code_lists},
        "crosswalks": {c: [(e.source_value, e.target_code, e.status) for e in std.crosswalks[(m.source_id, c)].entries]
                       for c in crosswalks if (m.source_id, c) in std.crosswalks},
    }, sort_keys=True, ensure_ascii=False, default=str)


def affected_mappings(old, new) -> list[tuple[str, str]]:
    """(entity, source_id) whose outcome may differ between the two standards."""
    old_fp = {(m.entity, m.source_id): _fingerprint(old, m) for m in old.mappings}
    new_fp = {(m.entity, m.source_id): _fingerprint(new, m) for m in new.mappings}
    return sorted(k for k in old_fp.keys() | new_fp.keys() if old_fp.get(k) != new_fp.get(k))


# ------------------------------------------------------------------------------------------- build


@contextmanager
def _scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="tongban-impact-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _build_side(std, entities: list[str], s: Settings, work: Path, run_id: str) -> Path:
    """A scratch dbt project generated from ``std``; the latest deliveries landed; the lineage of
    ``entities`` built (models and seeds, no data tests) into a warehouse of its own."""


    project = scratch_project(std, s.project_root, work / "project")
    raw = work / "raw"
    for entity in entities:
        for m in std.mappings_for(entity):
            land(m, inbox_dirs=s.inbox_dirs, raw_dir=raw, run_id=run_id, entity=std.entities[entity])
    warehouse = work / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        load_reference(con, s.reference_dir)
    finally:
        con.close()
    select = [f"+int_{e}__unioned" for e in entities]
    outcome = run_dbt(project, warehouse=warehouse, raw_dir=raw, build_dir=work / "build",
                      args=["build", "--select", *select, "--exclude-resource-type", "test",
                            "--vars", '{"tongban_unioned_materialized": "table"}'])
    if not outcome.success:
        raise TransformError("impact preview: dbt failed on the " + work.name + " standards:\n"
                             + "\n".join(outcome.failures))
    return warehouse


# ----------------------------------------------------------------------------------------- compare


def _compare(con, std_old, std_new, entity: str, source_ids: list[str], top: int) -> list[SourceImpact]:
    rel = f"intermediate.{quote_ident(f'int_{entity}__unioned')}"
    old_ent, new_ent = std_old.entities.get(entity), std_new.entities.get(entity)
    old_fields = {f.name: f for f in (old_ent.fields if old_ent else [])}
    new_fields = {f.name: f for f in (new_ent.fields if new_ent else [])}
    out = []
    for source_id in source_ids:
        src = quote_literal(source_id)
        pair = (f"(select * from old.{rel} where source_id = {src}) as o full join "
                f"(select * from new.{rel} where source_id = {src}) as n using (source_id, source_row_number)")
        rows, old_pub, new_pub = con.execute(
            f"select count(*), count(*) filter (where len(o.reasons) = 0), count(*) filter (where len(n.reasons) = 0) "
            f"from {pair}").fetchone()
        si = SourceImpact(entity=entity, source_id=source_id, rows=rows, old_published=old_pub, new_published=new_pub)
        for name in sorted(old_fields.keys() | new_fields.keys(), key=lambda n: _order(n, new_ent, old_ent)):
            if name == (new_ent or old_ent).key:
                continue
            f = new_fields.get(name) or old_fields[name]
            if name not in old_fields or name not in new_fields:
                side, alias = ("new", "n") if name not in old_fields else ("old", "o")
                n_values = con.execute(f"select count({alias}.{quote_ident(name)}) from {pair}").fetchone()[0]
                si.fields.append(FieldImpact(name, n_values, note=f"field {'added' if side == 'new' else 'removed'}"
                                                                  f" ({n_values} rows with a value)"))
                continue
            o, n = _shown(f"o.{quote_ident(name)}", f.pii), _shown(f"n.{quote_ident(name)}", f.pii)
            changed = con.execute(f"select count(*) from {pair} where o.{quote_ident(name)} is distinct from "
                                  f"n.{quote_ident(name)}").fetchone()[0]
            if not changed:
                continue
            top_changes = con.execute(
                f"select {o} as old, {n} as new, count(*) as rows from {pair} "
                f"where o.{quote_ident(name)} is distinct from n.{quote_ident(name)} "
                f"group by all order by rows desc, old nulls first, new nulls first limit {int(top)}").fetchall()
            si.fields.append(FieldImpact(name, changed, [ValueChange(a, b, r) for a, b, r in top_changes]))
        for direction, cond, reasons in [
            ("into", "len(o.reasons) = 0 and len(n.reasons) > 0", "n.reasons"),
            ("out of", "len(o.reasons) > 0 and len(n.reasons) = 0", "o.reasons"),
        ]:
            for reason, count in con.execute(
                    f"select array_to_string(list_sort(list_distinct(list_transform({reasons}, "
                    f"lambda r: r.reason || ':' || r.field))), ', ') as why, count(*) from {pair} "
                    f"where {cond} group by 1 order by 2 desc, 1 limit {int(top)}").fetchall():
                si.moves.append(QuarantineMove(direction, reason, count))
        out.append(si)
    return out


def _order(name: str, *entities) -> tuple[int, str]:
    for ent in entities:
        if ent is not None:
            names = [f.name for f in ent.fields]
            if name in names:
                return names.index(name), name
    return 10_000, name


def _shown(column: str, pii: str | None) -> str:
    """The value as text for the report; personal data masked (the report is pasted into reviews)."""
    text = f"({column})::varchar"
    return f"tongban_mask({quote_literal(pii)}, {text})" if pii else text


def impact(ref: str, *, s: Settings | None = None, entities: list[str] | None = None, top: int = 5) -> ImpactReport:
    """Build both sides and compare them (see the module docstring)."""


    s = s or settings()
    new = load_checked(s.standards_dir)
    commit = resolve(ref, s.project_root)
    with standards_at(commit, s.project_root) as old_dir:
        old = load_checked(old_dir, legacy=True)  # refs from before review columns
    affected = [(e, sid) for e, sid in affected_mappings(old, new) if not entities or e in entities]
    report = ImpactReport(ref=ref, commit=commit, affected=affected)
    if not affected:
        return report
    wanted = sorted({e for e, _ in affected})
    with _scratch() as work:
        old_wh = _build_side(old, [e for e in wanted if e in old.entities], s, work / "old", "impact-old")
        new_wh = _build_side(new, [e for e in wanted if e in new.entities], s, work / "new", "impact-new")
        con = duckdb.connect()  # both warehouses attached read-only, side by side
        try:
            con.execute(sql_ddl())  # tongban_mask, for personal-data values in the report
            con.execute(f"attach {quote_literal(str(old_wh))} as old (read_only)")
            con.execute(f"attach {quote_literal(str(new_wh))} as new (read_only)")
            for entity in wanted:
                if entity not in old.entities or entity not in new.entities:
                    note = "entity added" if entity not in old.entities else "entity removed"
                    report.sources += [SourceImpact(entity, sid, 0, 0, 0, note=note) for e, sid in affected if e == entity]
                    continue
                report.sources += _compare(con, old, new, entity, [sid for e, sid in affected if e == entity], top)
        finally:
            con.close()
    return report


# ------------------------------------------------------------------------------------------ output


def to_markdown(report: ImpactReport) -> str:
    lines = [f"## Impact of the standards change (against `{report.ref}`, {report.commit[:12]})", ""]
    if not report.affected:
        lines.append("No mapping, crosswalk, entity or code list change affects any source.")
        return "\n".join(lines) + "\n"
    lines += ["| entity | source | rows | published before | published after | change |",
              "|---|---|---:|---:|---:|---:|"]
    for si in report.sources:
        delta = si.new_published - si.old_published
        lines.append(f"| {si.entity} | {si.source_id} | {si.rows} | {si.old_published} | {si.new_published} | "
                     f"{delta:+d} |")
    for si in report.sources:
        lines += ["", f"### {si.source_id} · {si.entity}", ""]
        if si.note:
            lines.append(si.note)
            continue
        if si.fields:
            lines += ["| field | rows changed | top changes (before → after × rows) |", "|---|---:|---|"]
            for fi in si.fields:
                changes = fi.note or "; ".join(f"{_md(v.old)} → {_md(v.new)} ×{v.rows}" for v in fi.top)
                lines.append(f"| {fi.field} | {fi.rows_changed} | {changes} |")
        else:
            lines.append("No published value changes.")
        if si.moves:
            lines += ["", "| quarantine | reasons | rows |", "|---|---|---:|"]
            for mv in si.moves:
                lines.append(f"| {mv.direction} | {_md(mv.reason)} | {mv.rows} |")
    return "\n".join(lines) + "\n"


def _md(value: str | None) -> str:
    if value is None:
        return "∅"
    return "`" + value.replace("|", "\\|").replace("`", "'").replace("\n", " ") + "`"


def to_text(report: ImpactReport) -> str:
    if not report.affected:
        return f"impact against {report.ref}: no source is affected"
    lines = [f"impact against {report.ref} ({report.commit[:12]}); nothing was published", ""]
    src = max([8, *(len(si.source_id) + 2 for si in report.sources)])  # city source ids are long
    head = f"{'entity':<20}{'source':<{src}}{'rows':>8}{'before':>9}{'after':>9}{'change':>8}"
    lines += [head, "-" * len(head)]
    for si in report.sources:
        lines.append(f"{si.entity:<20}{si.source_id:<{src}}{si.rows:>8}{si.old_published:>9}{si.new_published:>9}"
                     f"{si.new_published - si.old_published:>+8d}")
    for si in report.sources:
        lines += ["", f"{si.source_id} {si.entity}: {si.note}" if si.note else f"{si.source_id} {si.entity}:"]
        for fi in si.fields:
            detail = fi.note or "; ".join(f"{v.old!r} → {v.new!r} ×{v.rows}" for v in fi.top)
            lines.append(f"  {fi.field}: {fi.rows_changed} rows change — {detail}")
        for mv in si.moves:
            lines.append(f"  {mv.rows} rows move {mv.direction} quarantine: {mv.reason}")
    return "\n".join(lines)
