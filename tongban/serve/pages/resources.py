"""``/resources``: the data resource catalogue by domain, open condition and format per province, and
a searchable list (``?q=``) linking to each resource's page ``/resources/{id}`` (its fields without
personal ones: no contact person's phone or e-mail)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from tongban.common.sqlquote import quote_ident
from tongban.serve.pages import charts
from tongban.serve.pages.base import Page, PageDep
from tongban.serve.pages.data import SnapshotReader, date_clause, province_clause
from tongban.serve.pages.render import Section, Table
from tongban.serve.sharing import PII_SUFFIXES

router = APIRouter()
RESOURCES = "data_resource"
LIST_LIMIT = 200
LISTED = ("resource_id", "title", "province_code", "domain_code", "open_condition_code")
CONTACT = {"contact_email", "contact_phone"}  # a person's contact, even where the standard calls it not personal


def _where(p: Page) -> tuple[str, list]:
    params: list = []
    return " WHERE true" + province_clause(p.f, params) + date_clause("published_date", p.f, params), params


def _breakdown(p: Page, snap: SnapshotReader, chart_id: str, column: str, code_list: str, title: str,
               listed: bool = False):
    t = p.t
    where, params = _where(p)
    if column not in snap.columns:
        rows = []
    elif listed:
        rows = snap.rows(f"SELECT province_code, v, count(*) FROM (SELECT province_code, unnest({column}) AS v "
                         f"FROM snap{where}) GROUP BY ALL ORDER BY 1, 3 DESC, 2", params)
    else:
        rows = snap.rows(f"SELECT province_code, {column}, count(*) FROM snap{where} GROUP BY ALL ORDER BY 1, 3 DESC, 2",
                         params)
    label = t.field(RESOURCES, column)
    chart = charts.bar(chart_id, [{"v": t.code(code_list, v), "province": t.province(pc), "n": n} for pc, v, n in rows],
                       x="n", y="v", x_title=t("resources_n"), y_title=label, title=title, subtitle=snap.caption(),
                       color="province", color_title=t("province"))
    table = Table(chart_id, [t("province"), label, t("resources_n")],
                  [[t.province(pc), t.code(code_list, v), str(n)] for pc, v, n in rows])
    return Section(title, [chart], [table])


@router.get("/resources")
def resources(p: PageDep):
    t = p.t
    snap = SnapshotReader(p.ctx.exchange_root, RESOURCES)
    where, params = _where(p)
    if p.f.q:
        where += r" AND (title ILIKE ? ESCAPE '\' OR array_to_string(keywords, ' ') ILIKE ? ESCAPE '\')"
        needle = "%" + p.f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [needle, needle]
    picked = ", ".join(quote_ident(c) if c in snap.columns else "NULL" for c in LISTED)
    found = snap.rows(f"SELECT {picked} FROM snap{where} ORDER BY province_code, resource_id LIMIT {LIST_LIMIT}", params)
    listing = Table("catalogue", [t.field(RESOURCES, "resource_id"), t("title"), t("province"), t("domain"),
                                  t("open_condition")],
                    [[rid, title or "", t.province(pc), t.code("domain", d), t.code("open_condition", o)]
                     for rid, title, pc, d, o in found])
    listing.links = {(i, 1): p.link(f"/resources/{row[0]}") for i, row in enumerate(found)}
    return p.respond("resources", [
        _breakdown(p, snap, "by_domain", "domain_code", "domain", t("by_domain")),
        _breakdown(p, snap, "by_open_condition", "open_condition_code", "open_condition", t("by_open")),
        _breakdown(p, snap, "by_format", "formats", "format", t("by_format"), listed=True),
        Section(t("catalogue"), [], [listing], f"{snap.caption()} · ≤ {LIST_LIMIT}"),
    ], search=True)


@router.get("/resources/{resource_id}")
def resource(resource_id: str, p: PageDep):
    t = p.t
    ent = p.std.entities[RESOURCES]
    snap = SnapshotReader(p.ctx.exchange_root, RESOURCES)
    names = [c for c in snap.columns if not c.endswith(PII_SUFFIXES) and c not in ent.pii and c not in CONTACT]
    cols = ", ".join(quote_ident(c) for c in names)
    found = snap.rows(f"SELECT {cols} FROM snap WHERE resource_id = ? LIMIT 1", [resource_id]) if cols else []
    if not found:
        return HTMLResponse("no such resource in the current snapshot", status_code=404)
    codes = {f.name: f.code_list for f in ent.fields if f.code_list}
    rows = []
    for c, v in zip(names, found[0], strict=True):
        if isinstance(v, list):
            v = ", ".join(t.code(codes[c], x) if c in codes else str(x) for x in v)
        elif c in codes:
            v = t.code(codes[c], v)
        rows.append([t.field(RESOURCES, c), "" if v is None else str(v)])
    title = next((r[1] for r, c in zip(rows, names, strict=True) if c == "title"), resource_id)
    return p.respond("resources", [Section(snap.caption(), [], [Table("resource", [t("field"), t("value")], rows)])],
                     title=f"{t('resources')}: {title}", form=False)
