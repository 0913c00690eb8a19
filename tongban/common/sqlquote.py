"""Quoting for the SQL text DuckDB cannot bind.

Values go through parameters (``?``) wherever DuckDB allows it. DDL (``CREATE VIEW``), ``COPY ... TO``
and ``ATTACH`` take no parameters, so identifiers and paths that end up in such statements — and every
identifier that comes from configuration — pass through these two helpers and nowhere else.

* :func:`quote_ident` accepts only plain ASCII identifiers (``[A-Za-z_][A-Za-z0-9_]*``, at most 128
  characters) and returns them double-quoted. Anything else — spaces, quotes, dots, semicolons, CJK,
  an empty string — raises :class:`ValueError`; it never tries to escape its way around a bad name.
* :func:`quote_literal` turns any ``str`` into a single-quoted SQL string literal by doubling single
  quotes (DuckDB's standard strings give backslashes no special meaning). NUL characters are refused.
  The text it returns is also inert under Jinja, which dbt runs over every model before DuckDB sees
  it: a value holding ``{{``, ``{%`` or ``{#`` is split into concatenated literals
  (``('a{' || '{ b }}')``), so no Jinja delimiter ever appears in generated SQL. Plain values come out
  as one literal, byte for byte as before.
"""

from __future__ import annotations

import re

#: what Jinja (dbt) would evaluate: ``{{ expression }}``, ``{% statement %}``, ``{# comment #}``
JINJA_OPENERS = ("{{", "{%", "{#")
_JINJA_OPENER = re.compile(r"\{(?=[{%#])")


def has_jinja(text: str) -> bool:
    """True if ``text`` holds a Jinja delimiter that dbt would evaluate."""
    return _JINJA_OPENER.search(text) is not None

IDENTIFIER_MAX_LENGTH = 128
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_identifier(name: object) -> bool:
    """True if ``name`` is a plain ASCII identifier that :func:`quote_ident` accepts."""
    return (
        isinstance(name, str)
        and len(name) <= IDENTIFIER_MAX_LENGTH
        and IDENTIFIER_PATTERN.fullmatch(name) is not None
    )


def check_ident(name: object, *, what: str = "identifier") -> str:
    """Return ``name`` unchanged if it is a plain identifier, else raise ValueError."""
    if not is_identifier(name):
        raise ValueError(
            f"invalid {what} {name!r}: expected an ASCII identifier matching "
            f"[A-Za-z_][A-Za-z0-9_]* (at most {IDENTIFIER_MAX_LENGTH} characters)"
        )
    return name  # type: ignore[return-value]


def quote_ident(name: str) -> str:
    """``name`` validated and double-quoted, e.g. ``orders`` -> ``"orders"``."""
    return f'"{check_ident(name)}"'


def quote_qualified(name: str, *, parts: int = 2) -> str:
    """A dotted name such as ``schema.table`` with every part validated and quoted.

    ``parts`` is the exact number of parts required.
    """
    pieces = name.split(".") if isinstance(name, str) else []
    if len(pieces) != parts:
        raise ValueError(f"invalid qualified name {name!r}: expected exactly {parts} dot-separated parts")
    return ".".join(quote_ident(p) for p in pieces)


def quote_literal(value: str) -> str:
    """``value`` as a single-quoted SQL string literal, single quotes doubled."""
    if not isinstance(value, str):
        raise TypeError(f"quote_literal expects str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("string literal must not contain NUL characters")
    body = value.replace("'", "''")
    # "{" then "{", "%" or "#" would open Jinja: end the literal after the "{" and go on in a new one
    if not has_jinja(body):
        return "'" + body + "'"
    # parenthesised, so that a cast or COLLATE after it applies to the whole value
    return "('" + _JINJA_OPENER.sub("{' || '", body) + "')"
