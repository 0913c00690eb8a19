"""The run summary a data engineer reads at the end of `tongban run`, from the run record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tongban.common.config import settings


#: statuses of a delivery that came but was not published (`tongban run` exits 3): rejected or
#: empty at intake, or held by a gate threshold of the committee
HELD_STATUSES = ("rejected", "empty", "held")


def held_back_deliveries(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in report["deliveries"] if d["status"] in HELD_STATUSES]


def summarize(report: dict[str, Any], published: dict[str, Any] | None = None) -> str:
    """The run summary a data engineer reads at the end of `tongban run`. Called with the run
    report, or (from the DAG) with the run and publish's result, whose report file it reads."""
    if published is not None:
        report = json.loads(Path(published["report"]).read_text(encoding="utf-8"))
    lines = [f"tongban run {report['run_id']}" + (f"  (dbt on {report['engine']})" if report.get("engine", "duckdb")
                                                   != "duckdb" else ""), ""]
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
    # a source id of any length keeps the columns straight (city sources have long ids)
    src = max([8, *(len(d["source_id"]) + 2 for d in report["deliveries"])])
    head = (f"{'entity':<20}{'source':<{src}}{'prov':<6}{'status':<13}{'delivered':>10}{'published':>10}"
            f"{'quarantined':>12}{'share':>7}  top reasons")
    lines = [head, "-" * len(head)]
    for d in report["deliveries"]:
        reasons = ", ".join(f"{r['reason']}:{r['field']}×{r['rows']}" for r in quarantine_reasons(d)[:3])
        delivered = "?" if d["rows_delivered"] is None else d["rows_delivered"]  # unreadable: size + sha256 said
        quarantined = "?" if d["rows_quarantined"] is None else d["rows_quarantined"]
        share = f"{d['rows_quarantined'] / d['rows_delivered']:.1%}" if d["rows_delivered"] and \
            d["rows_quarantined"] is not None else "—"  # of the delivery's rows: what the gate thresholds limit
        lines.append(f"{d['entity']:<20}{d['source_id']:<{src}}{d['province_code']:<6}{d['status']:<13}"
                     f"{delivered:>10}{d['rows_published']:>10}{quarantined:>12}{share:>7}  {reasons}")
    lines += _notes(report)
    for msg in report.get("messages", []):
        lines.append(f"  ! {msg}")
    for d in report["deliveries"]:
        if d.get("kept_snapshot_version"):
            lines.append(f"  ! {d['source_id']} {d['entity']}: this delivery was not published ({d['status']}); "
                         f"its previous publication stays in the exchange (v{d['kept_snapshot_version']})")
        if d.get("held_reason"):
            lines.append(f"  ! {d['source_id']} {d['entity']} held: {d['held_reason']}; {d.get('rows_held') or 0} rows "
                         "that passed are held, not published (change the data, or the committee the threshold)")
    held = held_back_deliveries(report)
    if held:
        lines.append(f"\n{len(held)} deliver{'y was' if len(held) == 1 else 'ies were'} held back (not published; "
                     "the province's feedback says why): " + ", ".join(f"{d['source_id']}/{d['entity']} ({d['status']})"
                                                                        for d in held))
    for problem in report.get("exchange_problems", []):
        lines.append(f"  ✗ EXCHANGE FILE CHANGED AFTER PUBLICATION — {problem}; written again from the warehouse, "
                     "find out who changed it (`tongban exchange verify`)")
    return lines


def _entries(d: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(d.get("top_reasons") or "[]")


def quarantine_reasons(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The reasons rows of a delivery were quarantined (its run record's top_reasons without the
    entries that carry a severity: warnings and absent fields, which held nothing back)."""
    return [r for r in _entries(d) if "severity" not in r]


def _notes(report: dict[str, Any]) -> list[str]:
    """Rows published with warnings (a warn rule of the standard), and fields absent by decision:
    published, so never called held back."""
    lines = []
    for d in report["deliveries"]:
        entries = _entries(d)
        warned = next((r["rows"] for r in entries if r.get("reason") == "published_with_warnings"), 0)
        if warned and d["rows_published"]:
            rules = ", ".join(f"{r['reason']}×{r['rows']}" for r in entries
                              if r.get("severity") == "warn" and r["reason"] != "published_with_warnings")
            lines.append(f"  ! {d['source_id']} {d['entity']}: {warned} rows published with warnings "
                         f"(rows breaking each warn rule, published or not: {rules}); the province's feedback lists them")
        for r in entries:
            if r.get("severity") == "absent" and d["rows_published"]:
                lines.append(f"  · {d['source_id']} {d['entity']}.{r['field']}: absent by decision — "
                             f"{d['rows_published']} rows published with 'unknown'")
    return lines


def _worklists(report: dict[str, Any]) -> list[str]:
    """The committee's worklists: values no crosswalk maps, entries awaiting review."""
    lines = []
    unmapped = [(e, sid, u) for e, per in report.get("unmapped", {}).items() for sid, us in per.items() for u in us]
    if unmapped:
        lines += ["", "values no crosswalk maps (the committee's worklist):"]
        for e, sid, u in unmapped:
            lines.append(f"  {sid} {e}.{u['field']}: {u['value']!r} ×{u['rows']} → {u['policy']}")
    pending = report.get("held_back", [])
    # "held back" means not published: values of a field that does not block were published unreviewed
    for title, entries in [
            ("held back by crosswalk entries awaiting review (approve them to publish these rows):",
             [h for h in pending if h["policy"] == "quarantine"]),
            ("published with crosswalk entries awaiting review (the value was used; approve or reject them):",
             [h for h in pending if h["policy"] != "quarantine"])]:
        if entries:
            lines += ["", title]
        for h in entries:
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
        "engine": report.get("engine", "duckdb"),
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
