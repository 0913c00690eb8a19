"""The run summary a data engineer reads at the end of `tongban run`, from the run record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tongban.common.config import settings


#: intake statuses of a delivery that came but was not published (`tongban run` exits 3)
HELD_STATUSES = ("rejected", "empty")


def held_back_deliveries(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in report["deliveries"] if d["status"] in HELD_STATUSES]


def summarize(report: dict[str, Any], published: dict[str, Any] | None = None) -> str:
    """The run summary a data engineer reads at the end of `tongban run`. Called with the run
    report, or (from the DAG) with the run and publish's result, whose report file it reads."""
    if published is not None:
        report = json.loads(Path(published["report"]).read_text(encoding="utf-8"))
    lines = [f"tongban run {report['run_id']}", ""]
    lines += _deliveries(report)
    lines += _worklists(report)
    lines += _gates(report)
    s = settings()
    lines += ["", f"exchange: {s.exchange_dir / 'catalog.duckdb'}   feedback: {s.feedback_dir}",
              f"data dictionary: {s.exchange_dir / 'dictionary' / 'index.html'}",
              "query it:  tongban query \"select province_code, count(*) from data_resource group by 1\"",
              "           tongban query \"select * from births_by_month_division limit 10\""]
    return "\n".join(lines)


def _deliveries(report: dict[str, Any]) -> list[str]:
    """One line per delivery, then what the run says of them."""
    head = f"{'entity':<20}{'source':<8}{'prov':<6}{'status':<13}{'delivered':>10}{'published':>10}{'quarantined':>12}  top reasons"
    lines = [head, "-" * len(head)]
    for d in report["deliveries"]:
        reasons = ", ".join(f"{r['reason']}:{r['field']}×{r['rows']}" for r in json.loads(d["top_reasons"] or "[]")[:3])
        delivered = "?" if d["rows_delivered"] is None else d["rows_delivered"]  # unreadable: size + sha256 said
        quarantined = "?" if d["rows_quarantined"] is None else d["rows_quarantined"]
        lines.append(f"{d['entity']:<20}{d['source_id']:<8}{d['province_code']:<6}{d['status']:<13}"
                     f"{delivered:>10}{d['rows_published']:>10}{quarantined:>12}  {reasons}")
    for msg in report.get("messages", []):
        lines.append(f"  ! {msg}")
    for d in report["deliveries"]:
        if d.get("kept_snapshot_version"):
            lines.append(f"  ! {d['source_id']} {d['entity']}: this delivery was not published ({d['status']}); "
                         f"its previous publication stays in the exchange (v{d['kept_snapshot_version']})")
    held = held_back_deliveries(report)
    if held:
        lines.append(f"\n{len(held)} deliver{'y was' if len(held) == 1 else 'ies were'} held back (not published; "
                     "the province's feedback says why): " + ", ".join(f"{d['source_id']}/{d['entity']} ({d['status']})"
                                                                        for d in held))
    for problem in report.get("exchange_problems", []):
        lines.append(f"  ✗ EXCHANGE FILE CHANGED AFTER PUBLICATION — {problem}; written again from the warehouse, "
                     "find out who changed it (`tongban exchange verify`)")
    return lines


def _worklists(report: dict[str, Any]) -> list[str]:
    """The committee's worklists: values no crosswalk maps, entries awaiting review."""
    lines = []
    unmapped = [(e, sid, u) for e, per in report.get("unmapped", {}).items() for sid, us in per.items() for u in us]
    if unmapped:
        lines += ["", "values no crosswalk maps (the committee's worklist):"]
        for e, sid, u in unmapped:
            lines.append(f"  {sid} {e}.{u['field']}: {u['value']!r} ×{u['rows']} → {u['policy']}")
    held = report.get("held_back", [])
    if held:
        lines += ["", "held back by crosswalk entries awaiting review (approve them to publish these rows):"]
        for h in held:
            where = ", ".join(f"{e['file']}:{e['line']}" for e in h["entries"]) or "?"
            lines.append(f"  {h['source_id']} {h['entity']}.{h['field']}: {h['value']!r} ×{h['rows']} "
                         f"({h['policy']}) ← {where}")
    return lines


def _gates(report: dict[str, Any]) -> list[str]:
    lines = []
    for entity, g in report["gate"]["entities"].items():
        state = "passed" if g["success"] else "FAILED — publication stopped, the previous snapshot stays current"
        again = (f"; nothing changed since run {g['reused_from_run']}, whose result this is"
                 if g.get("reused_from_run") else "")
        lines.append(f"\nquality gate {entity}: {state} ({g['evaluated']} expectations{again})")
        for f in g["blocking_failures"]:
            lines.append(f"  ✗ {f}")
        for w in g["warnings"]:
            lines.append(f"  ! {w}")
        if g.get("docs_index"):
            lines.append(f"  Data Docs: {g['docs_index']}")
    return lines


def summary_json(report: dict[str, Any], exit_code: int) -> dict[str, Any]:
    """The run summary for a machine (``tongban run --format json``): per delivery its status and
    counts (and why it was held, when it was), the snapshot versions, the gate's outcome and the
    exit code. The same facts the text summary prints, in tongban's words; no delivery values."""
    deliveries = []
    for d in report["deliveries"]:
        row = {"entity": d["entity"], "source_id": d["source_id"], "province_code": d["province_code"],
               "status": d["status"], "rows_delivered": d["rows_delivered"], "rows_published": d["rows_published"],
               "rows_quarantined": d["rows_quarantined"]}
        if d["status"] in HELD_STATUSES or d.get("kept_snapshot_version"):
            row["held_reason"] = d.get("message") or d["status"]
            row["kept_snapshot_version"] = d.get("kept_snapshot_version")
        deliveries.append(row)
    gate = report["gate"]
    return {
        "run_id": report["run_id"],
        "finished_at": report.get("finished_at"),
        "exit_code": exit_code,
        "deliveries": deliveries,
        "snapshots": {e: s["version"] for e, s in report.get("snapshots", {}).items()},
        "gate": {"success": gate["success"],
                 "entities": {e: {"success": g["success"], "evaluated": g["evaluated"],
                                  "blocking_failures": g["blocking_failures"], "warnings": g["warnings"],
                                  **({"reused_from_run": g["reused_from_run"]} if g.get("reused_from_run") else {})}
                              for e, g in gate["entities"].items()}},
        "held_back": [f"{d['source_id']}/{d['entity']}" for d in held_back_deliveries(report)],
        "messages": report.get("messages", []),
        "exchange_problems": report.get("exchange_problems", []),
    }
