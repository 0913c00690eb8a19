"""A tiny document tree (headings, paragraphs, tables, lists, facts with links and code), rendered
as offline HTML pages and as one Markdown document, and written as a set of files swapped in by
renames (the data dictionary, tongban.standards.targets.dictionary, is built with it)."""

from __future__ import annotations

import html
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

_STYLE = """\
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:0;color:#1b1b1b;background:#fff;line-height:1.5}
nav{background:#18453b;padding:.5em 1.5em}nav a{color:#fff;margin-right:1.2em;text-decoration:none}
nav a:hover{text-decoration:underline}
main{padding:1em 1.5em;max-width:80em}
h1{font-size:1.6em;margin:.4em 0}h2{font-size:1.3em;margin-top:1.6em;border-bottom:1px solid #ccc}
h3{font-size:1.1em;margin-top:1.3em}h4{font-size:1em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .55em;vertical-align:top;text-align:left}
th{background:#eef3f1}tr:target{background:#fff6cc}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95em;background:#f4f4f4;padding:0 .2em}
.note{background:#f7f7ef;border-left:4px solid #b8a500;padding:.5em 1em}
.muted{color:#666}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
dd{margin:0}footer{color:#666;font-size:.85em;padding:1em 1.5em;border-top:1px solid #ddd}
"""

# ---- a tiny document tree, rendered as HTML pages and as one Markdown document -----------------


@dataclass(frozen=True)
class Link:
    text: str
    page: str  # relative path of the target page in the set
    anchor: str = ""
    code: bool = False


@dataclass(frozen=True)
class Code:
    text: str


class _Br:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "BR"


BR = _Br()
Inline = str | Link | Code | _Br
Rich = tuple[Inline, ...]


def _rich(value: Any) -> Rich:
    if isinstance(value, tuple):
        return value
    if value is None or value == "":
        return ()
    if isinstance(value, str | Link | Code | _Br):
        return (value,)
    return (str(value),)


def _lines(*parts: Any) -> Rich:
    """Rich text: the non-empty parts on separate lines."""
    out: list[Inline] = []
    for p in parts:
        r = _rich(p)
        if not r:
            continue
        if out:
            out.append(BR)
        out.extend(r)
    return tuple(out)


def _desc(label: Any) -> Rich:
    """A bilingual description (zh, then en on its own line); () when there is none."""
    return _lines(label.zh, label.en) if label is not None else ()


def _join(items: list[Rich], sep: str = ", ") -> Rich:
    out: list[Inline] = []
    for i, r in enumerate(items):
        if i:
            out.append(sep)
        out.extend(r)
    return tuple(out)


@dataclass(frozen=True)
class Heading:
    level: int
    text: Rich
    id: str = ""


@dataclass(frozen=True)
class Para:
    text: Rich
    note: bool = False


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: list[tuple[Rich, ...]]
    row_ids: list[str] | None = None


@dataclass(frozen=True)
class Items:
    items: list[Rich]


@dataclass(frozen=True)
class Facts:
    pairs: list[tuple[str, Rich]]


Block = Heading | Para | Table | Items | Facts


@dataclass
class Page:
    path: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


# ---- HTML -----------------------------------------------------------------------------------

def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _href(from_page: str, link: Link) -> str:
    start = posixpath.dirname(from_page) or "."
    target = posixpath.relpath(link.page, start) if link.page != from_page or not link.anchor else ""
    if link.anchor:
        target += "#" + link.anchor
    return target


def _html_inline(page: str, rich: Rich) -> str:
    out = []
    for piece in rich:
        if isinstance(piece, _Br):
            out.append("<br>")
        elif isinstance(piece, Code):
            out.append(f"<code>{_esc(piece.text)}</code>")
        elif isinstance(piece, Link):
            text = f"<code>{_esc(piece.text)}</code>" if piece.code else _esc(piece.text)
            out.append(f'<a href="{_esc(_href(page, piece))}">{text}</a>')
        else:
            out.append(_esc(piece))
    return "".join(out)


def _html_block(page: str, b: Block) -> str:
    if isinstance(b, Heading):
        ident = f' id="{_esc(b.id)}"' if b.id else ""
        return f"<h{b.level}{ident}>{_html_inline(page, b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = ' class="note"' if b.note else ""
        return f"<p{cls}>{_html_inline(page, b.text)}</p>"
    if isinstance(b, Items):
        lis = "".join(f"<li>{_html_inline(page, it)}</li>\n" for it in b.items)
        return f"<ul>\n{lis}</ul>"
    if isinstance(b, Facts):
        rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_html_inline(page, v)}</dd>\n" for k, v in b.pairs)
        return f"<dl>\n{rows}</dl>"
    head = "".join(f"<th>{_esc(h)}</th>" for h in b.headers)
    body = []
    for i, row in enumerate(b.rows):
        rid = b.row_ids[i] if b.row_ids and b.row_ids[i] else ""
        ident = f' id="{_esc(rid)}"' if rid else ""
        cells = "".join(f"<td>{_html_inline(page, c)}</td>" for c in row)
        body.append(f"<tr{ident}>{cells}</tr>\n")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{''.join(body)}</tbody>\n</table>"


def _nav(page: str) -> str:
    links = [Link("首页 Index", "index.html"), Link("实体 Entities", "index.html", "entities"),
             Link("代码表 Code lists", "index.html", "code-lists"),
             Link("数据来源 Sources", "index.html", "sources")]
    inner = _join([(lk,) for lk in links], " ")
    return f'<nav aria-label="数据字典 Data dictionary">{_html_inline(page, inner)}</nav>'


def _render_html(p: Page) -> str:
    body = "\n".join(_html_block(p.path, b) for b in p.blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(p.title)} — 数据字典 Data dictionary</title>\n"
        f"<style>\n{_STYLE}</style>\n</head>\n<body>\n{_nav(p.path)}\n<main>\n{body}\n</main>\n"
        "<footer>由 tongban 根据 standards/ 生成，请勿手工编辑。"
        "Generated by tongban from standards/; do not edit by hand.</footer>\n"
        "</body>\n</html>\n"
    )


# ---- Markdown -------------------------------------------------------------------------------

def _md_text(text: str) -> str:
    text = re.sub(r"\s+", " ", str(text))  # no line breaks inside a paragraph or cell
    text = "".join("\\" + ch if ch in "\\`*_[]|" else ch for ch in text)
    return html.escape(text, quote=False)


def _md_code(text: str) -> str:
    if any(ch in text for ch in "<>&"):
        # a code span shows entities literally; such a value is written as escaped plain text
        # instead, so no markup from the standards reaches the Markdown unescaped
        return _md_text(text)
    text = re.sub(r"\s+", " ", str(text)).replace("|", "\\|")
    if "`" in text:
        return f"`` {text} ``"
    return f"`{text}`"


def _md_slug(page: str) -> str:
    return PurePosixPath(page).with_suffix("").as_posix().replace("/", "-")


class _MdRenderer:
    def __init__(self, pages: list[Page]):
        self.ids = {p.path: {b.id for b in p.blocks if isinstance(b, Heading) and b.id} for p in pages}

    def anchor(self, page: str, anchor: str = "") -> str:
        if anchor and anchor in self.ids.get(page, ()):
            return f"{_md_slug(page)}-{anchor}"
        return _md_slug(page)

    def inline(self, rich: Rich) -> str:
        out = []
        for piece in rich:
            if isinstance(piece, _Br):
                out.append("<br>")
            elif isinstance(piece, Code):
                out.append(_md_code(piece.text))
            elif isinstance(piece, Link):
                text = _md_code(piece.text) if piece.code else _md_text(piece.text)
                out.append(f"[{text}](#{self.anchor(piece.page, piece.anchor)})")
            else:
                out.append(_md_text(piece))
        return "".join(out)

    def page(self, p: Page, shift: int) -> str:
        out = [f'<a id="{_md_slug(p.path)}"></a>\n']
        for b in p.blocks:
            if isinstance(b, Heading):
                if b.id:
                    out.append(f'<a id="{self.anchor(p.path, b.id)}"></a>\n')
                out.append(f"{'#' * min(6, b.level + shift)} {self.inline(b.text)}\n")
            elif isinstance(b, Para):
                out.append(("> " if b.note else "") + self.inline(b.text) + "\n")
            elif isinstance(b, Items):
                out.append("".join(f"- {self.inline(it)}\n" for it in b.items))
            elif isinstance(b, Facts):
                out.append("".join(f"- **{_md_text(k)}**: {self.inline(v)}\n" for k, v in b.pairs))
            else:
                lines = ["| " + " | ".join(_md_text(h) for h in b.headers) + " |",
                         "|" + "|".join("---" for _ in b.headers) + "|"]
                for row in b.rows:
                    lines.append("| " + " | ".join(self.inline(c) or " " for c in row) + " |")
                out.append("\n".join(lines) + "\n")
        return "\n".join(out)


# ---- writing --------------------------------------------------------------------------------

def _safe_rel(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if rel in ("", ".") or p.is_absolute() or ".." in p.parts or "\\" in rel:
        raise ValueError(f"not a relative path inside the dictionary: {rel!r}")
    return p


def write_dictionary(out_dir: Path, files: dict[str, str]) -> Path:
    """Write ``files`` as the directory ``out_dir``, replacing whatever was there.

    The set is written into a temporary sibling directory first; then the old directory is renamed
    away, the new one renamed in and the old one removed, so a reader never sees half a
    dictionary. Returns the path of ``index.html``."""
    out_dir = Path(out_dir)
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    rels = [(_safe_rel(rel), content) for rel, content in sorted(files.items())]
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=parent))
    old: Path | None = None
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; consumers read the dictionary
        for rel, content in rels:
            path = tmp.joinpath(*rel.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        if out_dir.exists() or out_dir.is_symlink():
            old = parent / f".{out_dir.name}.old-{uuid.uuid4().hex}"
            out_dir.rename(old)
        try:
            tmp.rename(out_dir)
        except BaseException:
            if old is not None and not out_dir.exists():
                old.rename(out_dir)  # put the previous dictionary back
                old = None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    return out_dir / "index.html"
