"""Logging in to the pages as a browser would (the CSRF token from the form), and reading the tables
and CSV links of a page."""

from __future__ import annotations

import csv
import html
import io
import re
from html.parser import HTMLParser

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(text: str) -> str:
    found = CSRF.search(text)
    assert found, "no CSRF field on the page"
    return html.unescape(found.group(1))


def login(client, token: str, follow: bool = False):
    form = client.get("/login")
    assert form.status_code == 200
    return client.post("/login", data={"token": token, "csrf": csrf_of(form.text), "next": "/"},
                       follow_redirects=follow)


class Tables(HTMLParser):
    """Every ``<table class="data" data-table=...>``: {id: [header row, body rows...]} as shown, and the
    CSV links."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.csv_links: list[str] = []
        self.charts: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "data" in (a.get("class") or "").split():
            self._table = a["data-table"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and a.get("class") == "csv":
            self.csv_links.append(a["href"])
        elif tag == "figure" and a.get("class") == "chart":
            self.charts.append(a["data-chart"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Tables:
    p = Tables()
    p.feed(text)
    return p


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))
