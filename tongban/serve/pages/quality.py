"""``/quality``: the committee's scorecard per province and entity over runs — quarantine share as a
line over time, the reasons that quarantine most (the standard's field names and the province's own
column names), pass rate per rule, rows published with warnings or with a field absent by decision,
deliveries held back and why, feedback packages sent, objections and their median time to resolution.
A row turns amber or red against the source's threshold."""

from __future__ import annotations

import datetime as dt
import json
import statistics

from fastapi import APIRouter
from sqlalchemy import select

from tongban.common.config import settings
from tongban.serve import state
from tongban.serve.pages import charts
from tongban.serve.pages.base import Page, PageDep
from tongban.serve.pages.data import run_records
from tongban.serve.pages.render import Section, Table, share, when
from tongban.serve.state.models import Objection
from tongban.standards.gate import threshold_for

router = APIRouter()


def grade(quarantine_share: float, threshold: float) -> str:
    """red over the threshold, amber over 75% of it, else none."""
    if quarantine_share > threshold:
        return "red"
    return "amber" if quarantine_share > 0.75 * threshold else ""


def _share(r: dict) -> float:
    return (r["rows_quarantined"] or 0) / r["rows_delivered"] if r["rows_delivered"] else 0.0


def _share_per_run(t, records: list[dict]) -> list[dict]:
    """One point per run, province and entity: the quarantine share of all that province's sources of
    the entity in that run (a province with city catalogues has several deliveries per run)."""
    runs: dict[tuple[str, str, str], list[int]] = {}
    for r in records:
        if r["rows_delivered"]:
            got = runs.setdefault((r["started_at"], r["province_code"], r["entity"]), [0, 0])
            got[0] += r["rows_quarantined"] or 0
            got[1] += r["rows_delivered"]
    return [{"at": when(at), "share": round(q / n, 4), "province": t.province(pc), "entity": t.entity(e)}
            for (at, pc, e), (q, n) in sorted(runs.items())]


def _records(p: Page) -> list[dict]:
    f = p.f
    out = []
    for r in run_records(p.ctx.exchange_root):
        day = r["started_at"].date() if r["started_at"] else None
        if (f.province and r["province_code"] != f.province) or (f.entity and r["entity"] != f.entity) \
                or (f.start and day and day < f.start) or (f.end and day and day > f.end):
            continue
        out.append(r)
    return out


def _own_column(p: Page, source_id: str, entity: str, field: str) -> str:
    for m in p.std.mappings:
        if m.source_id == source_id and m.entity == entity and field in m.fields:
            return m.fields[field].source or "—"
    return "—"


def _reasons(p: Page, latest: list[dict]):
    t = p.t
    rows, values, rules, notes = [], [], [], []
    for r in latest:
        for item in json.loads(r.get("top_reasons") or "[]"):
            if item.get("severity"):  # warnings and fields absent by decision (issue 18): nothing quarantined,
                notes.append([t.entity(r["entity"]), t.province(r["province_code"]), r["source_id"],  # counted apart
                              item["severity"], item.get("reason") or "", t.field(r["entity"], item.get("field") or ""),
                              str(item.get("rows", 0))])
                continue
            field = item.get("field") or ""
            words = f"{item.get('reason')} · {t.field(r['entity'], field)}"
            rows.append([t.entity(r["entity"]), t.province(r["province_code"]), item.get("reason") or "",
                         t.field(r["entity"], field), _own_column(p, r["source_id"], r["entity"], field),
                         str(item.get("rows", 0))])
            values.append({"reason": words, "province": t.province(r["province_code"]), "n": item.get("rows", 0)})
            rules.append([t.entity(r["entity"]), t.province(r["province_code"]), f"{item.get('reason')}:{field}",
                          share(r["rows_delivered"] - item.get("rows", 0), r["rows_delivered"])])
    # the chart ranks the reasons that quarantine most, largest first, and shows the top 15
    totals: dict[str, int] = {}
    for v in values:
        totals[v["reason"]] = totals.get(v["reason"], 0) + int(v["n"] or 0)
    top = set(sorted(totals, key=lambda k: (-totals[k], k))[:15])
    values = sorted((v for v in values if v["reason"] in top), key=lambda v: (-totals[v["reason"]], v["reason"]))
    return rows, values, rules, notes


def _objections(p: Page) -> list[list[str]]:
    with state.session(p.ctx.state_url) as s:
        found = list(s.scalars(select(Objection)))
    groups: dict[tuple[str, str], list[Objection]] = {}
    for o in found:
        if (p.f.province and o.province != p.f.province) or (p.f.entity and o.entity != p.f.entity):
            continue
        groups.setdefault((o.entity, o.province), []).append(o)
    rows = []
    for (entity, province), items in sorted(groups.items()):
        hours = [(o.resolved_at - o.created_at).total_seconds() / 3600 for o in items if o.resolved_at]
        rows.append([p.t.entity(entity), p.t.province(province), str(sum(o.status == "open" for o in items)),
                     str(len(hours)), f"{statistics.median(hours):.1f}" if hours else "—"])
    return rows


def _feedback() -> list[list[str]]:
    root = settings().feedback_dir
    rows = []
    for folder in sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []:
        files = [f for f in folder.rglob("*") if f.is_file()]
        if files:
            newest = max(f.stat().st_mtime for f in files)
            rows.append([folder.name, str(len(files)),
                         when(dt.datetime.fromtimestamp(newest, dt.UTC))])
    return rows


@router.get("/quality")
def quality(p: PageDep):
    t = p.t
    records = _records(p)
    latest_by: dict[tuple[str, str], dict] = {}
    for r in records:
        latest_by[(r["entity"], r["source_id"])] = r
    latest = [latest_by[k] for k in sorted(latest_by)]
    runs = sorted({r["run_id"] for r in records})
    subtitle = f"{t('run')}: {runs[0]} … {runs[-1]} ({len(runs)})" if runs else "—"

    line = charts.line("quarantine_share", _share_per_run(t, records),
        x="at", y="share", x_title=f"{t('run')} ({t('time')})", y_title=f"{t('quarantine_share')} (%)",
        title=t("quarantine_over_time"), subtitle=subtitle, color="province", color_title=t("province"), percent=True,
        dash="entity", dash_title=t("entity"))
    score_rows, css = [], []
    for r in latest:
        limit, _origin = threshold_for(p.std, r["entity"], r["source_id"])  # the gate's own limit
        score_rows.append([t.entity(r["entity"]), t.province(r["province_code"]), r["source_id"], r["run_id"],
                           str(r["rows_delivered"] or 0), str(r["rows_quarantined"] or 0),
                           share(r["rows_quarantined"] or 0, r["rows_delivered"]), f"{100 * limit:.0f}%", t.status(r["status"])])
        css.append(grade(_share(r), limit))
    scorecard = Table("scorecard", [t("entity"), t("province"), t("source"), t("run"), t("delivered"),
                                    t("quarantined"), t("quarantine_share"), t("threshold"), t("status")],
                      score_rows, css)
    reason_rows, reason_values, rule_rows, note_rows = _reasons(p, latest)
    reason_chart = charts.bar("top_reasons", reason_values, x="n", y="reason", x_title=t("quarantined") + " (rows)",
                              y_title=t("reason"), title=t("top_reasons"), subtitle=subtitle, color="province",
                              color_title=t("province"))
    reasons = Table("top_reasons", [t("entity"), t("province"), t("reason"), t("field"), t("own_column"),
                                    t("quarantined")], reason_rows)
    notes = Table("published_notes", [t("entity"), t("province"), t("source"), t("severity"), t("reason"),
                                      t("field"), t("rows")], note_rows)
    rules = Table("rule_pass", [t("entity"), t("province"), t("reason"), t("pass_rate")], rule_rows)
    held = Table("held", [t("run"), t("entity"), t("province"), t("status"), t("message")],
                 [[r["run_id"], t.entity(r["entity"]), t.province(r["province_code"]), t.status(r["status"]),
                   r.get("held_reason") or r.get("message") or r.get("gate_summary") or "—"]
                  for r in records if r["status"] != "published"])
    feedback = Table("feedback", [t("source"), t("files"), t("latest")], _feedback())
    objections = Table("objections", [t("entity"), t("province"), t("open"), t("resolved"), t("median_hours")],
                       _objections(p))
    return p.respond("quality", [
        Section(t("scorecard"), [line], [scorecard]),
        Section(t("top_reasons"), [reason_chart], [reasons]),
        Section(t("rule_pass"), [], [rules]),
        Section(t("published_notes"), [], [notes]),
        Section(t("held"), [], [held]),
        Section(t("feedback"), [], [feedback]),
        Section(t("objections"), [], [objections]),
    ], entities=True)
