"""``/births`` (出生一件事) and ``/licenses`` (营业执照): aggregates of the current snapshots only.

Births are about persons: every count under 5 is shown as "<5" — in the table, the chart (no bar or
point, the text "<5") and the CSV — never as the number, as statistical offices do.
"""

from __future__ import annotations

from fastapi import APIRouter

from tongban.common.reference import ReferenceDataError, industry_classes
from tongban.serve.pages import charts
from tongban.serve.pages.base import Page, PageDep
from tongban.serve.pages.data import SnapshotReader, date_clause, province_clause
from tongban.serve.pages.render import SMALL, Section, Table, share, suppressed

router = APIRouter()
BIRTHS, BIRTHS_MART = "birth_registration", "births_by_month_division"
LICENSES = "business_license"
TOP_DIVISIONS = 30


def _where(p: Page, date_column: str) -> tuple[str, list]:
    params: list = []
    sql = " WHERE true" + province_clause(p.f, params) + date_clause(date_column, p.f, params)
    return sql, params


def _shown(n: int) -> int | None:
    """The value a chart may draw: none for a suppressed cell."""
    return None if 0 < n < SMALL else n


@router.get("/births")
def births(p: PageDep):
    t = p.t
    mart = SnapshotReader(p.ctx.exchange_root, BIRTHS_MART)
    where, params = _where(p, "birth_month")
    by_month = mart.rows(f"SELECT strftime(birth_month, '%Y-%m'), province_code, sum(births)::BIGINT FROM snap{where} "
                         "GROUP BY ALL ORDER BY 1, 2", params)
    month_values = [{"month": m, "province": t.province(pc), "births": _shown(n), "label": suppressed(n)}
                    for m, pc, n in by_month]
    month_chart = charts.line("births_by_month", month_values, x="month", y="births", x_title=t("month"),
                              y_title=t("births_n"), title=t("births_by_month"), subtitle=mart.caption(),
                              color="province", color_title=t("province"), months=True, label="label")
    month_table = Table("births_by_month", [t("month"), t("province"), t("births_n")],
                        [[m, t.province(pc), suppressed(n)] for m, pc, n in by_month])

    by_division = mart.rows(f"SELECT birth_division_code, any_value(division_name_zh), province_code, "
                            f"sum(births)::BIGINT AS n FROM snap{where} GROUP BY birth_division_code, province_code "
                            "ORDER BY n DESC, 1", params)
    division_rows = [[f"{name or ''} ({code})", t.province(pc), suppressed(n)] for code, name, pc, n in by_division]
    division_chart = charts.bar("births_by_division", [
        {"division": r[0], "births": _shown(n), "label": r[2]}
        for r, (*_, n) in zip(division_rows[:TOP_DIVISIONS], by_division, strict=False)],
        x="births", y="division", x_title=t("births_n"), y_title=t("division"), title=t("births_by_division"),
        subtitle=f"{mart.caption()} · top {TOP_DIVISIONS}", label="label", ranked=True)
    division_table = Table("births_by_division", [t("division"), t("province"), t("births_n")], division_rows)

    ent = SnapshotReader(p.ctx.exchange_root, BIRTHS)
    where, params = _where(p, "birth_date")
    totals = dict(ent.rows(f"SELECT province_code, count(*) FROM snap{where} GROUP BY 1", params))
    services = ent.rows(f"SELECT province_code, s, count(*) FROM (SELECT province_code, unnest(services_requested) AS s "
                        f"FROM snap{where}) GROUP BY ALL ORDER BY 1, 3 DESC, 2", params) \
        if "services_requested" in ent.columns else []
    service_rows, service_values = [], []
    for pc, code, n in services:
        small = 0 < n < SMALL
        service_rows.append([t.province(pc), t.code("birth_service", code), suppressed(n),
                             "—" if small else share(n, totals.get(pc))])
        service_values.append({"service": t.code("birth_service", code), "province": t.province(pc),
                               "share": None if small else round(100 * n / totals[pc], 1),
                               "label": f"<{SMALL}" if small else share(n, totals.get(pc))})
    service_chart = charts.bar("services", service_values, x="share", y="service", x_title=t("share_pct"),
                               y_title=t("service"), title=t("services"), subtitle=ent.caption(),
                               color="province", color_title=t("province"), grouped=True)
    service_table = Table("services", [t("province"), t("service"), t("requests"), t("share")], service_rows)

    cross = ent.rows(f"SELECT province_code, substr(hukou_division_code, 1, 2) AS hp, count(*) FROM snap{where} "
                     "AND substr(hukou_division_code, 1, 2) <> province_code GROUP BY ALL ORDER BY 3 DESC, 1, 2",
                     params) if "hukou_division_code" in ent.columns else []
    cross_rows = [[t.province(a), t.province(b), suppressed(n)] for a, b, n in cross]
    cross_chart = charts.bar("cross_province", [
        {"pair": f"{r[0]} → {r[1]}", "cases": _shown(n), "label": r[2]} for r, (*_, n) in zip(cross_rows, cross, strict=True)],
        x="cases", y="pair", x_title=t("cases"), y_title=f"{t('province')} → {t('province')}",
        title=t("cross_province"), subtitle=ent.caption(), label="label", ranked=True)
    cross_table = Table("cross_province", [f"{t('province')} ({t.field(BIRTHS, 'birth_division_code')})",
                                           f"{t('province')} ({t.field(BIRTHS, 'hukou_division_code')})", t("cases")],
                        cross_rows)
    note = t("suppressed_note")
    return p.respond("births", [
        Section(t("births_by_month"), [month_chart], [month_table], note),
        Section(t("births_by_division"), [division_chart], [division_table], note),
        Section(t("services"), [service_chart], [service_table], note),
        Section(t("cross_province"), [cross_chart], [cross_table], note),
    ])


#: the licences' registrations are drawn by month over at most this many months, else by year
MONTHS_SHOWN = 36


def _sections() -> dict[str, tuple[str, str]]:
    """GB/T 4754 class code -> (section letter, section name); empty without the reference data."""
    try:
        return {code: (c.section_code, c.section_name) for code, c in industry_classes().items()}
    except ReferenceDataError:
        return {}


@router.get("/licenses")
def licenses(p: PageDep):
    t = p.t
    snap = SnapshotReader(p.ctx.exchange_root, LICENSES)
    where, params = _where(p, "established_date")
    # by month over at most three years, else by year (thirty years of months is no chart to read)
    span = snap.rows(f"SELECT date_diff('month', min(established_date), max(established_date)) FROM snap{where}",
                     params)
    by_year = bool(span and span[0][0] is not None and span[0][0] > MONTHS_SHOWN)
    period = "'%Y'" if by_year else "'%Y-%m'"
    by_period = snap.rows(f"SELECT strftime(established_date, {period}), province_code, count(*) FROM snap{where} "
                          "AND established_date IS NOT NULL GROUP BY ALL ORDER BY 1, 2", params)
    unit = "year" if by_year else "month"
    month_chart = charts.line("licenses_by_month", [{"month": m, "province": t.province(pc), "n": n}
                                                    for m, pc, n in by_period],
                              x="month", y="n", x_title=t(unit), y_title=t("licenses_n"),
                              title=t(f"licenses_by_{unit}"), subtitle=snap.caption(), color="province",
                              color_title=t("province"), months=not by_year)
    month_table = Table("licenses_by_month", [t(unit), t("province"), t("licenses_n")],
                        [[m, t.province(pc), str(n)] for m, pc, n in by_period])

    sections = _sections()
    per: dict[tuple[str, str], int] = {}
    for code, pc, n in snap.rows(f"SELECT industry_code, province_code, count(*) FROM snap{where} GROUP BY ALL", params):
        letter, name = sections.get(code or "", ("?", "—"))
        key = (t.section(letter, name), pc)
        per[key] = per.get(key, 0) + n
    section_rows = sorted(per.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    section_chart = charts.bar("licenses_by_section", [{"section": s, "province": t.province(pc), "n": n}
                                                        for (s, pc), n in section_rows],
                               x="n", y="section", x_title=t("licenses_n"), y_title=t("section"),
                               title=t("by_section"), subtitle=snap.caption(), color="province",
                               color_title=t("province"))
    section_table = Table("licenses_by_section", [t("section"), t("province"), t("licenses_n")],
                          [[s, t.province(pc), str(n)] for (s, pc), n in section_rows])

    status = snap.rows(f"SELECT province_code, status_code, count(*) FROM snap{where} GROUP BY ALL ORDER BY 1, 2", params)
    status_chart = charts.bar("status_mix", [{"province": t.province(pc), "status": t.code("license_status", sc), "n": n}
                                             for pc, sc, n in status],
                              x="n", y="province", x_title=t("licenses_n"), y_title=t("province"),
                              title=t("status_mix"), subtitle=snap.caption(), color="status",
                              color_title=t.field(LICENSES, "status_code"))
    status_table = Table("status_mix", [t("province"), t.field(LICENSES, "status_code"), t("licenses_n"), t("share")],
                         [[t.province(pc), t.code("license_status", sc), str(n),
                           share(n, sum(m for q, _, m in status if q == pc))] for pc, sc, n in status])
    return p.respond("licenses", [
        Section(t(f"licenses_by_{unit}"), [month_chart], [month_table]),
        Section(t("by_section"), [section_chart], [section_table]),
        Section(t("status_mix"), [status_chart], [status_table]),
    ])
