"""What every page handler starts from: the logged-in consumer (else a redirect to /login), the
standard, the page's words and its filters (noted for the audit by name, never by value)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from tongban.serve.deps import Context, note
from tongban.serve.pages import session
from tongban.serve.pages.data import Filters, parse_filters
from tongban.serve.pages.render import Section, Words, language, link, respond
from tongban.serve.state.models import Consumer
from tongban.standards.load import Standards


class LoginNeeded(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


@dataclass
class Page:
    request: Request
    ctx: Context
    std: Standards
    user: Consumer
    t: Words
    f: Filters

    def provinces(self) -> list[tuple[str, str]]:
        codes = sorted({m.province_code for m in self.std.mappings})
        return [(c, self.t.province(c)) for c in codes]

    def respond(self, page: str, sections: list[Section], *, title: str | None = None, entities: bool = False,
                dates: bool = True, search: bool = False, form: bool = True, provinces: bool = True,
                status_code: int = 200) -> Response:
        form_values = None
        if form:
            form_values = {"provinces": self.provinces() if provinces else None, "province": self.f.province, "entity": self.f.entity,
                           "entities": [(e, self.t.entity(e)) for e in sorted(self.std.entities)] if entities else None,
                           "dates": dates, "start": self.f.start.isoformat()[:7] if self.f.start else "",
                           "end": self.f.end.isoformat()[:7] if self.f.end else "", "search": search,
                           "q": self.f.q or ""}
        return respond(self.request, self.t, page, title or self.t(page), sections, filters=form_values,
                       status_code=status_code, extra={"user": self.user})

    def link(self, path: str, **params: str | None) -> str:
        return link(self.request, path, **params)


def page(request: Request) -> Page:
    ctx: Context = request.app.state.context
    std: Standards = request.app.state.standards
    words = Words(std, language(request))
    user = session.current_consumer(request, ctx.state_url)
    if user is None:
        note(request, denied="not logged in")
        raise LoginNeeded(link(request, "/login", next=request.url.path))
    filters = parse_filters(request.query_params, std.entities)
    if filters.names():
        note(request, filters=filters.names())
    return Page(request, ctx, std, user, words, filters)


PageDep = Annotated[Page, Depends(page)]
