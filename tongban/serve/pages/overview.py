"""``/``: per entity, rows published per province in the current snapshot, freshness of each
province's last delivery against the entity's expected update frequency, the last run's gate
outcome per source, and the operators' recent alerts."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from tongban.common.alerts import read_alerts
from tongban.common.config import settings
from tongban.serve.pages import charts
from tongban.serve.pages.base import PageDep
from tongban.serve.pages.data import SnapshotReader, province_clause, run_records
from tongban.serve.pages.render import Section, Table, when

router = APIRouter()


def freshness(age_days: float | None, every_days: int | None) -> str:
    """on_time within the expected period, late within two, overdue after (unknown without a period)."""
    if every_days is None or age_days is None:
        return "unknown"
    if age_days <= every_days:
        return "on_time"
    return "late" if age_days <= 2 * every_days else "overdue"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@router.get("/")
def overview(p: PageDep):
    t, f = p.t, p.f
    entities = [f.entity] if f.entity else sorted(p.std.entities)
    rows_table, values = [], []
    for name in entities:
        snap = SnapshotReader(p.ctx.exchange_root, name)
        params: list = []
        counts = snap.rows("SELECT province_code, count(*) FROM snap WHERE true" + province_clause(f, params)
                           + " GROUP BY 1 ORDER BY 1", params) if "province_code" in snap.columns else []
        for province, n in counts:
            rows_table.append([t.entity(name), f"v{snap.snapshot.version}", when(snap.snapshot.created_at),
                               t.province(province), str(n)])
            values.append({"entity": t.entity(name), "province": t.province(province), "rows": n})
    versions = ", ".join(sorted({f"{r[0]} {r[1]}" for r in rows_table})) or "—"
    chart = charts.bar("rows_per_province", values, x="rows", y="entity", x_title=t("rows_unit"),
                       y_title=t("entity"), color="province", color_title=t("province"),
                       title=t("rows_per_province"), subtitle=f"{t('snapshot')}: {versions}")
    rows = Table("rows_per_province", [t("entity"), t("version"), t("published_at"), t("province"), t("rows")],
                 rows_table)

    records = [r for r in run_records(p.ctx.exchange_root) if r["entity"] in entities
               and (not f.province or r["province_code"] == f.province)]
    # a province's last delivery: the first run that saw its newest file (an unchanged file read again
    # by a later run is not a new delivery)
    newest: dict[tuple[str, str], tuple[str, dt.datetime]] = {}
    last_run: dict[tuple[str, str], dict] = {}
    for r in records:
        key, sha = (r["entity"], r["province_code"]), r.get("delivery_sha256")
        if sha and newest.get(key, ("",))[0] != sha:
            newest[key] = (sha, r["started_at"])
        last_run[(r["entity"], r["source_id"])] = r
    last_delivery = {key: at for key, (_, at) in newest.items()}
    fresh_rows, fresh_css = [], []
    now = _now()
    for (entity, province), at in sorted(last_delivery.items()):
        every = getattr(p.std.entities[entity], "update_frequency_days", None)
        age = (now - at).total_seconds() / 86400
        state = freshness(age, every)
        fresh_rows.append([t.entity(entity), t.province(province), when(at), f"{age:.1f}",
                           str(every) if every else "—", t(state)])
        fresh_css.append({"late": "amber", "overdue": "red"}.get(state, ""))
    fresh = Table("freshness", [t("entity"), t("province"), t("last_delivery"), t("age_days"), t("expected_days"),
                                t("freshness")], fresh_rows, fresh_css)
    runs = Table("last_run", [t("entity"), t("source"), t("province"), t("run"), t("status"), t("gate")],
                 [[t.entity(r["entity"]), r["source_id"], t.province(r["province_code"]), r["run_id"], t.status(r["status"]),
                   r["gate_summary"] or "—"] for (_, _), r in sorted(last_run.items())],
                 ["" if r["status"] == "published" else "red" for _, r in sorted(last_run.items())])
    alerts = Table("alerts", [t("at"), t("source"), t("run"), t("message")],
                   [[when(a.get("at")), a.get("source") or "", a.get("run_id") or "—", a.get("message") or ""]
                    for a in read_alerts(limit=10, build_dir=settings().build_dir)])
    return p.respond("overview", [
        Section(t("rows_per_province"), [chart], [rows]),
        Section(t("freshness"), [], [fresh]),
        Section(t("last_run"), [], [runs]),
        Section(t("alerts"), [], [alerts]),
    ], entities=True, dates=False)
