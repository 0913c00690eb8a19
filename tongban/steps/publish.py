"""Publish: the entities whose gate passed into the exchange, and the run's record either way.

Each entity's snapshot is written under a new version directory (tongban.exchange); the one
commit point is the catalog swap, after the run record and the dictionary: a run killed before it
published nothing (``integrity.recover`` removes what it left). ``TONGBAN_CRASH_AT`` kills the
process at a named point, for the crash-consistency tests.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tongban.common.config import Settings
from tongban.common.pii import pseudonym_key
from tongban.exchange import (DICTIONARIES_DIR, DICTIONARY_LINK, integrity, publish_snapshot, rebuild_catalog,
                              record_run)
from tongban.steps.conserve import held_deliveries
from tongban.steps.loaded import standards
from tongban.steps.results import DeliveryRecord, Landed, Published, RunReport, Walk, now

#: for the crash-consistency tests only: the process kills itself (SIGKILL, no clean-up at all) at
#: this point of publish, e.g. ``snapshot:birth_registration``, ``recorded``, ``dictionary``, ``catalog``
CRASH_AT_ENV = "TONGBAN_CRASH_AT"

#: writes the run's data dictionary into ``out_dir`` and returns its index (the committee's
#: coverage is above the steps, so the caller passes it in): (out_dir, generated_at, intakes) -> Path
DictionaryWriter = Callable[[Path, str, list[Landed]], Path]


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def publish(s: Settings, walk: Walk, write_dictionary: DictionaryWriter) -> Published:
    """Publish the entities whose gate passed; record the run either way."""
    run = walk.run
    passed = {e for e in run.entities if walk.gated.entities[e].success}
    # nothing on disk is trusted: a part that no longer matches its manifest is named, and never
    # linked into a new snapshot. The entities published below are checked part by part by
    # publish_snapshot itself (its problems are added after); the others are checked here.
    problems = integrity.verify(s.exchange_dir, skip=passed)
    snapshots, messages = _snapshots(s, walk, passed)
    problems += [p for snap in snapshots.values() for p in snap["problems"] if p not in problems]
    finished = now()
    rows = _delivery_records(s, walk, snapshots, finished)
    record_run(s.exchange_dir, run.run_id, [r.to_xcom() for r in rows])
    crash_point("recorded")
    write_dictionary(s.exchange_dir / DICTIONARIES_DIR / run.run_id, finished, walk.intakes)
    crash_point("dictionary")
    # the one commit point: the new catalog names the new snapshots, this run's record and its
    # dictionary; a run killed before this line published nothing (integrity.recover removes it)
    rebuild_catalog(s.exchange_dir, dictionary=run.run_id)
    crash_point("catalog")
    integrity.link_dictionary(s.exchange_dir, run.run_id)
    integrity.recover(s.exchange_dir)  # the dictionary this run replaced
    report = _report(s, walk, snapshots, rows, problems, finished)
    report.messages += messages
    path = write_report(s, report)
    return Published(run_id=run.run_id, snapshots=snapshots, report=str(path),
                     dictionary=str(s.exchange_dir / DICTIONARY_LINK / "index.html"))


def _snapshots(s: Settings, walk: Walk, passed: set[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The snapshots published, and what the run must say of those it did not publish."""
    run, transformed = walk.run, walk.transformed
    snapshots: dict[str, dict[str, Any]] = {}
    messages: list[str] = []
    # a province whose delivery was rejected (or is missing) keeps its last good publication; so
    # does one whose delivery is held by a gate threshold (its rows are in the warehouse, not published)
    held = held_deliveries(walk.conservation)
    hold = {e: sorted(i.source_id for i in walk.intakes if i.entity == e and i.key in held) for e in run.entities}
    keep = {e: sorted(i.source_id for i in walk.intakes if i.entity == e and i.status != "landed")
            for e in run.entities}
    key = pseudonym_key(s.build_dir) if any(run.pii.get(e) for e in passed) else None
    for entity in run.entities:
        if entity in passed:
            pii = run.pii.get(entity) or None
            # personal data leaves the restricted warehouse only as pseudonym + masked form
            snap = publish_snapshot(s.exchange_dir, entity=entity, warehouse_path=s.warehouse_path,
                                    relation=f"harmonized.{entity}", run_id=run.run_id,
                                    standard_version=run.standard_versions[entity],
                                    pii=pii, pseudonym_key=key if pii else None,
                                    partition_by="source_id",
                                    # built from the same as last time: the same rows, unread
                                    content_key=transformed.entity_fingerprints.get(entity),
                                    keep=keep[entity], hold=hold[entity])
            snapshots[entity] = snap.to_dict()
            crash_point(f"snapshot:{entity}")
    for mart, spec in transformed.marts.items():
        if any(hold[e] for e in spec.entities):
            # a mart reads every source's rows: a held delivery's would be published through it
            held_here = ", ".join(f"{sid}/{e}" for e in spec.entities for sid in hold[e])
            messages.append(f"{mart}: not published this run ({held_here} held); its previous snapshot stays current")
            continue
        if all(e in passed for e in spec.entities):
            snap = publish_snapshot(s.exchange_dir, entity=mart, warehouse_path=s.warehouse_path,
                                    relation=spec.relation, run_id=run.run_id,
                                    standard_version=run.standard_versions[spec.entities[0]])
            snapshots[mart] = snap.to_dict()
            crash_point(f"snapshot:{mart}")
    return snapshots, messages


def _delivery_records(s: Settings, walk: Walk, snapshots: dict[str, dict[str, Any]],
                      finished: str) -> list[DeliveryRecord]:
    run, rows = walk.run, []
    for i in walk.intakes:
        g = walk.gated.entities[i.entity]
        counts = walk.conservation.per_delivery[i.key]
        tc = walk.transformed.counts.get(i.entity, {}).get(i.source_id, {})
        gate_ok = bool(g.success)
        status = i.status if i.status != "landed" else ("gate_failed" if not gate_ok else
                                                        "held" if counts.held_reason else "published")
        kept = i.source_id in snapshots.get(i.entity, {}).get("kept", [])
        rows.append(DeliveryRecord(
            run_id=run.run_id, started_at=run.started_at, finished_at=finished,
            entity=i.entity, source_id=i.source_id, province_code=i.province_code,
            delivery_file=s.inbox_relative(i.delivery_file), delivery_sha256=i.delivery_sha256, status=status,
            rows_delivered=counts.delivered,
            rows_published=counts.published if gate_ok and status == "published" else 0,
            rows_held=(counts.held or 0) if status == "held" else 0, held_reason=counts.held_reason if status == "held" else None,
            rows_quarantined=counts.quarantined, gate_success=gate_ok,
            gate_summary="; ".join(g.blocking_failures) or ("passed" if gate_ok else "failed"),
            standard_version=run.standard_versions[i.entity], mapping_version=i.mapping_version,
            snapshot_version=snapshots.get(i.entity, {}).get("version"), message=i.message or None,
            # then the rows published with warnings and the fields absent by decision (entries with a
            # "severity": warn | absent; tongban.steps.harmonize.source_counts)
            top_reasons=json.dumps(tc.get("top_reasons", [])[:10] + tc.get("notes", []), ensure_ascii=False),
            kept_snapshot_version=snapshots[i.entity]["version"] if kept else None))
    return rows


def _report(s: Settings, walk: Walk, snapshots: dict[str, dict[str, Any]], rows: list[DeliveryRecord],
            problems: list[str], finished: str) -> RunReport:
    run, counts = walk.run, walk.transformed.counts
    return RunReport(
        run_id=run.run_id, finished_at=finished, snapshots=snapshots, deliveries=rows,
        unmapped={e: {sid: c.get("unmapped", []) for sid, c in counts.get(e, {}).items()} for e in run.entities},
        held_back=held_back_entries(s, run.entities, counts),
        crosswalk_versions={e: {sid: c.get("crosswalk_versions", []) for sid, c in counts.get(e, {}).items()}
                            for e in run.entities},
        gate=walk.gated, messages=[i.message for i in walk.intakes if i.message], exchange_problems=problems,
        engine=walk.transformed.engine)


def write_report(s: Settings, report: RunReport) -> Path:
    """The run record, as ``build/runs/<run_id>.json`` and ``latest.json``."""
    runs_dir = s.build_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.to_xcom(), ensure_ascii=False, indent=2, default=str)
    path = runs_dir / f"{report.run_id}.json"
    path.write_text(text, encoding="utf-8")
    (runs_dir / "latest.json").write_text(text, encoding="utf-8")
    return path


def held_back_entries(s: Settings, entities: list[str],
                      counts: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The proposed crosswalk entries that held rows back (or were used unreviewed, on fields that
    do not block), each with its file and line: what the committee must review."""
    std = standards(s)
    out = []
    for entity in entities:
        ent = std.entities[entity]
        for source_id, per_source in sorted(counts.get(entity, {}).items()):
            m = std.mapping(source_id, entity)
            for h in per_source.get("held_back", []):
                fm = m.fields.get(h["field"])
                code_list = ent.field(h["field"]).code_list if h["field"] in [f.name for f in ent.fields] else None
                cw = std.crosswalks.get((source_id, code_list)) if code_list and fm else None
                entries = [e for e in (cw.entries if cw else []) if e.status == "proposed"]
                values = _list_values(h["value"])
                hit = [e for e in entries if e.source_value in values]
                out.append({"entity": entity, "source_id": source_id, "field": h["field"], "value": h["value"],
                            "rows": h["rows"], "policy": h["policy"],
                            "entries": [{"file": cw.path, "line": e.line, "source_value": e.source_value,
                                         "target_code": e.target_code, "author": e.author} for e in hit]})
    return out


def _list_values(value: str | None) -> set[str]:
    """A reason's value is the text entering the crosswalk: one value, or a list printed as [a, b]."""
    if value is None:
        return set()
    if value.startswith("[") and value.endswith("]"):
        return {v.strip() for v in value[1:-1].split(",")}
    return {value}
