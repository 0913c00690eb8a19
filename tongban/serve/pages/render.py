"""How a page is put together: the language (Chinese first, ``?lang=en``), labels from the standard's
bilingual names, sections of charts and tables, and one helper that answers a page as HTML or, with
``&download=<table id>``, as the CSV of exactly the rows and columns that table shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from tongban.serve import reader
from tongban.serve.deps import note
from tongban.serve.pages import session
from tongban.serve.pages.words import SECTIONS_EN, WORDS
from tongban.standards.load import Standards

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
LANGS = ("zh", "en")
SMALL = 5  # cells below this many births are shown as "<5", never the number (statistical disclosure)


def suppressed(n: int | None) -> str:
    """A count as shown: "<5" for 1-4 (never the number), else the number."""
    if n is None:
        return "—"
    return f"<{SMALL}" if 0 < n < SMALL else str(n)


def when(value: object) -> str:
    """A time as shown: to the minute, in UTC ("2026-12-04 17:18 UTC")."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def share(part: float | None, whole: float | None) -> str:
    return "—" if not whole or part is None else f"{100 * part / whole:.1f}%"


class Words:
    """The page's words in its language: UI strings and the standard's bilingual labels."""

    def __init__(self, std: Standards, lang: str):
        self.std, self.lang = std, lang

    def __call__(self, key: str) -> str:
        pair = WORDS.get(key)
        return key if pair is None else pair[0 if self.lang == "zh" else 1]

    def label(self, label) -> str:
        return getattr(label, self.lang) if label is not None else ""

    def entity(self, name: str) -> str:
        ent = self.std.entities.get(name)
        return self.label(ent.label) if ent else name

    def field(self, entity: str, name: str) -> str:
        ent = self.std.entities.get(entity)
        try:
            return self.label(ent.field(name).label) if ent else name
        except KeyError:
            return name

    def code(self, code_list: str, code: str | None) -> str:
        if code is None:
            return "—"
        cl = self.std.code_lists.get(code_list)
        for c in cl.codes if cl else []:
            if c.code == code:
                return getattr(c, self.lang)
        return code

    def province(self, code: str | None) -> str:
        return self.code("province", code)

    def status(self, status: str | None) -> str:
        """A delivery's run status (published, held, rejected, …) in the page's language."""
        return "—" if status is None else self(f"status_{status}") if f"status_{status}" in WORDS else status

    def section(self, letter: str, name_zh: str) -> str:
        """A GB/T 4754 section: its letter and its name in the page's language."""
        return f"{letter} {SECTIONS_EN.get(letter, name_zh) if self.lang == 'en' else name_zh}"


def language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        request.session["lang"] = asked
        return asked
    kept = request.session.get("lang")
    return kept if kept in LANGS else "zh"


@dataclass
class Table:
    id: str
    headers: list[str]
    rows: list[list[str]]  # every cell as shown (so the CSV is exactly the table)
    row_classes: list[str] = field(default_factory=list)
    links: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) -> href

    def __post_init__(self) -> None:
        self.rows = [[c if isinstance(c, str) else suppressed(c) if c is None else str(c) for c in r]
                     for r in self.rows]

    def css(self, i: int) -> str:
        return self.row_classes[i] if i < len(self.row_classes) else ""


@dataclass
class Section:
    title: str
    charts: list = field(default_factory=list)  # charts.Chart
    tables: list[Table] = field(default_factory=list)
    note: str = ""


def link(request: Request, path: str, **params: str | None) -> str:
    """``path`` with the page's language and the given query parameters."""
    kept = {k: v for k, v in params.items() if v}
    lang = request.session.get("lang")
    if lang == "en":
        kept.setdefault("lang", "en")
    return path + ("?" + urlencode(kept) if kept else "")


def csv_href(request: Request, table_id: str) -> str:
    """The page's own query string plus ``download=<table id>``."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "download"]
    return request.url.path + "?" + urlencode([*params, ("download", table_id)])


def respond(request: Request, words: Words, page: str, title: str, sections: list[Section], *,
            filters: dict | None = None, status_code: int = 200, extra: dict | None = None) -> Response:
    wanted = request.query_params.get("download")
    if wanted and status_code < 400:
        for table in (t for s in sections for t in s.tables):
            if table.id == wanted:
                note(request, download=table.id)
                return Response(reader.to_csv(table.headers, table.rows), media_type="text/csv; charset=utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{table.id}.csv"'})
        return HTMLResponse("no such table on this page", status_code=404)
    context = {"t": words, "lang": words.lang, "page": page, "title": title, "sections": sections,
               "filters": filters, "csrf": session.csrf_token(request), "csv_href": lambda tid: csv_href(request, tid),
               "link": lambda path, **kw: link(request, path, **kw), "lang_href": lang_href(request, words.lang),
               **(extra or {})}
    return TEMPLATES.TemplateResponse(request, "page.html", context, status_code=status_code)


def lang_href(request: Request, lang: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "download")]
    return request.url.path + "?" + urlencode([*params, ("lang", "en" if lang == "zh" else "zh")])
