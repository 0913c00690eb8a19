"""The data dictionary: the regional standard as static, bilingual (中文 / English) pages.

``build_dictionary(std)`` turns the loaded ``standards/`` into a set of files (relative path ->
content) that reads offline from ``file://``: no JavaScript, no web fonts, no links to the
internet, one small inline style sheet, relative links only.

* ``index.html`` — every entity, code list and source at a glance; the personal-data note.
* ``entities/<entity>.html`` — the fields and their rules in words, cross-field rules, the
  provenance columns every harmonized row carries, the sources that map the entity.
* ``code_lists/<name>.html`` — the codes with their Chinese and English labels.
* ``sources/<source_id>.html`` — per mapping: the delivery, its declared and identity columns,
  standard field <- source column + steps in words, the crosswalks, and (when coverage is
  given) the committee's worklist of values no approved crosswalk entry maps.
* ``dictionary.md`` — the same content as one Markdown document.

Every page is built once as a small document tree and rendered twice (HTML and Markdown), so the
two can't drift apart. Every value from the standards is escaped: the files are committee-edited
text. Output is deterministic for the same inputs (the generation time appears only if given).

``write_dictionary(out_dir, files)`` writes the set next to ``out_dir`` and swaps it in by
renames, so a reader sees the old dictionary or the new one, never half of one.
"""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tongban.standards.load import Standards
from tongban.standards.models import FieldCoverage, ValueCount
from tongban.standards.models import Entity, FieldDef, Mapping, MinAgeAt, Step, UsccRegionAgrees

__all__ = ["PROVENANCE_COLUMNS", "WORKLIST_LIMIT", "build_dictionary", "write_dictionary"]

#: Columns every harmonized row carries after the standard's fields: (name, type, zh, en).
PROVENANCE_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("source_id", "varchar", "数据来源标识（省份交付方）", "Source (delivering province) id"),
    ("delivery_sha256", "varchar", "交付文件的 SHA-256 摘要", "SHA-256 of the delivery file the row came from"),
    ("source_row_number", "bigint", "该行在交付文件中的行号", "Row number of the record in that delivery"),
    ("run_id", "varchar", "产生该行的流水线运行标识", "The pipeline run that produced the row"),
    ("standard_version", "varchar", "生成该行时的实体标准版本", "Version of the entity standard the row conforms to"),
    ("mapping_version", "varchar", "所用映射的版本", "Version of the source's mapping that was applied"),
    ("crosswalk_version", "varchar", "所用代码对照表的版本", "Version of the source's crosswalks that were applied"),
)

#: How many worklist values (unmapped / proposed) a coverage table lists per field.
WORKLIST_LIMIT = 20

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


# ---- the standard in words ------------------------------------------------------------------

_VALIDATORS: dict[str, tuple[str, str]] = {
    "gb11643": ("GB 11643 公民身份号码（校验码；出生年份时在用的地址码）",
                "GB 11643 citizen ID (check character, birthplace code in use in the birth year)"),
    "gb32100": ("GB 32100 统一社会信用代码（校验码；第3-8位为行政区划码）",
                "GB 32100 unified social credit code (check characters, region code in positions 3-8)"),
    "gbt2260": ("GB/T 2260 现行行政区划代码", "GB/T 2260 administrative division code in force"),
    "gbt36904": ("GB/T 36904 电子证照标识（MOD 37,36 校验码）",
                 "GB/T 36904 e-certificate identifier (MOD 37,36 check character)"),
    "gbt4754": ("GB/T 4754-2017 四位行业小类代码", "GB/T 4754-2017 4-digit industry class"),
}
_LEVELS = {"province": ("省级", "province level"), "prefecture": ("地级", "prefecture level"),
           "county": ("县级", "county level")}
_PII = {"name": ("姓名", "name"), "id_number": ("证件号码", "ID number"), "phone": ("电话", "phone")}
_STEP_WORDS: dict[str, tuple[str, str]] = {
    "trim": ("去除首尾空白", "strip surrounding whitespace"),
    "lower": ("转为小写", "lower-case"),
    "upper": ("转为大写", "upper-case"),
    "remove_regex": ("删除与正则表达式匹配的部分", "remove what the regular expression matches"),
    "split": ("按分隔符拆分为列表", "split into a list at the separators"),
    "parse_list": ("解析 JSON 列表（或 Python 列表文本）", "parse a JSON list (or the text of a Python list)"),
    "to_list": ("单个取值转为列表", "wrap a single value in a list"),
    "first": ("取列表第一项", "take the first item of a list"),
    "crosswalk": ("按本来源的代码对照表映射为标准代码",
                  "map through this source's crosswalk to the standard's codes"),
    "match_code": ("取值已是标准代码或其中文名称", "the value already is a standard code or its Chinese label"),
    "parse_date": ("按所列格式解析日期（epoch_ms 为毫秒时间戳）",
                   "parse a date in one of the formats (epoch_ms: a millisecond timestamp)"),
    "parse_amount": ("按交付单位换算为元", "convert the delivery's unit to yuan"),
    "email": ("校验并规范化电子邮箱", "check and normalise an e-mail address"),
    "phone": ("提取规范化电话号码", "extract a normalised phone number"),
    "constant": ("固定取值", "a constant value"),
}
_STATUS = {"approved": "已批准 approved", "proposed": "待审 proposed", "rejected": "已拒绝 rejected",
           "unmapped": "未映射 unmapped"}


def _label(zh: str, en: str) -> str:
    return f"{zh} {en}" if zh != en else zh


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else repr(float(x))


def _value_list(values: list[str]) -> str:
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


def step_words(step: Step) -> str:
    """One step as written in the dictionary, e.g. ``crosswalk(domain)``, ``parse_amount(万元 → 元)``."""
    arg = step.arg
    if arg is None:
        return step.op
    if step.op == "parse_amount":
        return f"parse_amount({arg} → 元)"
    if step.op == "split":
        return f"split({_value_list(list(arg))})"
    if step.op == "parse_date":
        return f"parse_date({' | '.join(arg)})"
    if step.op in ("constant", "remove_regex"):
        return f"{step.op}({json.dumps(arg, ensure_ascii=False)})"
    return f"{step.op}({arg})"


def steps_words(steps: list[Step]) -> str:
    return " → ".join(step_words(s) for s in steps) if steps else "—"


def field_rules(ent: Entity, f: FieldDef) -> list[str]:
    """The rules of one field in words (zh + en), one per line."""
    out: list[str] = []
    if f.name == ent.key:
        out.append("主键 key: identifies one record")
    if f.derived == "identity_hash":
        out.append("派生：来源标识 + 来源标识列的哈希 derived: source id + hash of the mapping's identity columns")
    elif f.derived == "mapping_constant":
        out.append("派生：取自映射声明的省级代码 derived: the province code declared by the mapping")
    if f.validator:
        zh, en = _VALIDATORS.get(f.validator, (f.validator, f.validator))
        if f.division_level:
            lz, le = _LEVELS.get(f.division_level, (f.division_level, f.division_level))
            zh, en = f"{zh}（{lz}）", f"{en} ({le})"
        out.append(f"校验 {zh} — validated: {en}; a value it rejects quarantines the row")
    if f.format == "email":
        out.append("规范化电子邮箱 normalised e-mail address (lower case)")
    elif f.format == "phone":
        out.append("规范化电话号码 normalised phone number")
    if f.min is not None or f.max is not None:
        lo = _num(f.min) if f.min is not None else "−∞"
        hi = _num(f.max) if f.max is not None else "+∞"
        out.append(f"取值范围 range {lo} ≤ x ≤ {hi}; outside → out_of_range")
    if f.not_future:
        out.append("不得晚于运行日期 not after the run date; later → date_in_future")
    if f.not_before is not None:
        d = f.not_before.isoformat()
        out.append(f"不得早于 {d} not before {d}; earlier → date_too_early")
    if f.type == "decimal(20,2)":
        out.append("精确到分 exact to the fen (0.01 yuan); more decimal places → too_precise, never rounded")
    if f.validator or f.pii == "id_number":
        out.append("全角数字和字母按半角读取 full-width digits and letters are read as half-width (NFKC)")
    if f.unique:
        out.append("全区域唯一 unique across the region; a later duplicate → duplicate_value")
    if f.code_list and not f.derived:
        if f.on_unmapped == "unknown":
            out.append("未映射取值记为 unknown — an unmapped value becomes 'unknown'")
        else:
            out.append("未映射取值退回数据提供方 — an unmapped value quarantines the row (unmapped_code)")
    if not f.derived and (f.type in ("date", "bigint", "double", "decimal(20,2)") or f.format):
        if f.on_invalid == "null":
            out.append("无效取值置空 — an invalid value is published as null")
        else:
            out.append("无效取值退回数据提供方 — an invalid value quarantines the row")
    if f.gate == "warning":
        out.append("质量门禁仅告警 quality gate: warning only (does not block publication)")
    if f.pii:
        zh, en = _PII.get(f.pii, (f.pii, f.pii))
        out.append(f"个人信息（{zh}）personal data ({en}): published as {f.name}_pseudonym / {f.name}_masked")
    return out


def rule_words(rule: Any) -> tuple[str, str]:
    if isinstance(rule, MinAgeAt):
        return (f"按 {rule.id_field} 的出生日期，{rule.date_field} 时至少年满 {rule.years} 周岁",
                f"the person identified by {rule.id_field} was at least {rule.years} years old "
                f"on {rule.date_field}")
    if isinstance(rule, UsccRegionAgrees):
        return (f"{rule.uscc_field} 第3-8位与 {rule.division_field} 一致（相同或为其上级区划）",
                f"characters 3-8 of {rule.uscc_field} agree with {rule.division_field} "
                "(equal, or the prefecture/province it lies in)")
    data = rule.model_dump() if hasattr(rule, "model_dump") else {}
    text = ", ".join(f"{k}={v}" for k, v in sorted(data.items()) if k not in ("rule", "description"))
    return text, text


# ---- pages ----------------------------------------------------------------------------------

def _ent_page(name: str) -> str:
    return f"entities/{name}.html"


def _cl_page(name: str) -> str:
    return f"code_lists/{name}.html"


def _src_page(source_id: str) -> str:
    return f"sources/{source_id}.html"


class _Builder:
    def __init__(self, std: Standards, coverage: list[FieldCoverage] | None, generated_at: str | None):
        self.std = std
        self.coverage = coverage
        self.generated_at = generated_at
        self.entities = sorted(std.entities)
        self.code_lists = sorted(std.code_lists)
        self.mappings = sorted(std.mappings, key=lambda m: (m.source_id, m.entity))
        self.sources = sorted({m.source_id for m in std.mappings} | {s for s, _ in std.crosswalks})
        self.cov: dict[tuple[str, str], list[FieldCoverage]] = {}
        for c in sorted(coverage or [], key=lambda c: (c.source_id, c.entity, c.field, c.code_list, c.step)):
            self.cov.setdefault((c.source_id, c.entity), []).append(c)

    # -- links
    def ent_link(self, name: str, anchor: str = "", text: str | None = None) -> Inline:
        if name in self.std.entities:
            return Link(text or name, _ent_page(name), anchor, code=True)
        return Code(text or name)

    def cl_link(self, name: str | None) -> Rich:
        if not name:
            return ()
        if name in self.std.code_lists:
            return (Link(name, _cl_page(name), code=True),)
        return (Code(name), " (未定义 undefined)")

    def src_link(self, source_id: str, anchor: str = "") -> Inline:
        return Link(source_id, _src_page(source_id), anchor, code=True)

    def province(self, code: str) -> str:
        cl = self.std.code_lists.get("province")
        for c in cl.codes if cl else []:
            if c.code == code:
                return f"{c.zh} {c.en} ({code})"
        return code

    def source_provinces(self, source_id: str) -> str:
        codes = sorted({m.province_code for m in self.std.mappings if m.source_id == source_id})
        return ", ".join(self.province(c) for c in codes) or "—"

    def used_by(self, code_list: str) -> list[tuple[str, str]]:
        return [(e, f.name) for e in self.entities for f in self.std.entities[e].fields
                if f.code_list == code_list]

    # -- pages
    def index(self) -> Page:
        std = self.std
        p = Page("index.html", "长三角区域数据标准 Regional data standard")
        p.add(Heading(1, ("长三角区域数据标准 数据字典 — Yangtze River Delta regional data standard: data dictionary",)),
              Para(("本字典由 standards/ 生成：各省交付的数据经映射、代码对照与校验后，以统一的实体标准发布到交换目录。"
                    "This dictionary is generated from standards/: every province's delivery is mapped, "
                    "crosswalked and checked onto one regional standard before it is published to the "
                    "exchange.",)))
        facts: list[tuple[str, Rich]] = [
            ("实体 Entities", (str(len(std.entities)),)),
            ("代码表 Code lists", (str(len(std.code_lists)),)),
            ("数据来源 Sources", (str(len(self.sources)),)),
            ("映射 Mappings", (str(len(std.mappings)),)),
        ]
        if self.generated_at:
            facts.append(("生成时间 Generated at", (self.generated_at,)))
        p.add(Facts(facts))

        p.add(Heading(2, ("实体 Entities",), "entities"))
        rows = []
        for name in self.entities:
            e = std.entities[name]
            srcs = [(self.src_link(m.source_id, f"m-{name}"),) for m in std.mappings_for(name)]
            rows.append(((self.ent_link(name),), (e.label.zh,), (e.label.en,), (Code(e.version),),
                         _desc(e.description) or ("—",),
                         (str(len(e.fields)),), _join(srcs) or ("—",)))
        p.add(Table(("实体 Entity", "中文名", "English name", "版本 Version", "说明 Description",
                     "字段数 Fields", "来源 Sources"), rows))

        p.add(Heading(2, ("代码表 Code lists",), "code-lists"))
        rows = []
        for name in self.code_lists:
            cl = std.code_lists[name]
            users = [(self.ent_link(e, f"f-{fn}", f"{e}.{fn}"),) for e, fn in self.used_by(name)]
            rows.append((self.cl_link(name), (cl.label.zh,), (cl.label.en,), (Code(cl.version),),
                         (str(len(cl.codes)),), _join(users) or ("—",)))
        p.add(Table(("代码表 Code list", "中文名", "English name", "版本 Version", "代码数 Codes",
                     "使用字段 Used by"), rows))

        p.add(Heading(2, ("数据来源 Sources",), "sources"))
        rows = []
        for sid in self.sources:
            maps = std.mappings_for_source(sid)
            rows.append(((self.src_link(sid),), (self.source_provinces(sid),),
                         _lines(*[(m.label.zh, " ", m.label.en, " → ", self.ent_link(m.entity))
                                  for m in maps])
                         or ("—",)))
        p.add(Table(("来源 Source", "省份 Province", "映射 Mappings (label → entity)"), rows))

        p.add(Heading(2, ("个人信息 Personal data",), "personal-data"),
              Para(("标记为 pii 的字段只以 <字段>_pseudonym（带密钥的 HMAC 假名）和 <字段>_masked（脱敏显示）发布，"
                    "原值从不进入交换目录。Fields marked pii are published only as <field>_pseudonym "
                    "(a keyed HMAC pseudonym) and <field>_masked (a masked display form); their raw values "
                    "never reach the exchange.",), note=True))
        items = []
        for name in self.entities:
            e = std.entities[name]
            for f in e.fields:
                if f.pii:
                    items.append((self.ent_link(name, f"f-{f.name}", f"{name}.{f.name}"), " → ",
                                  Code(f"{f.name}_pseudonym"), " / ", Code(f"{f.name}_masked"),
                                  f" ({f.label.zh} {f.label.en})"))
        p.add(Items(items) if items else Para(("没有个人信息字段。No field is marked pii.",)))

        p.add(Heading(2, ("溯源列 Provenance columns",), "provenance"),
              Para(("每条统一后的记录都带有以下列，可追溯到交付文件的具体行。Every harmonized row carries these "
                    "columns, which trace it back to its delivery row: ",
                    *_join([(Code(c[0]),) for c in PROVENANCE_COLUMNS]), ".")))
        return p

    def entity(self, name: str) -> Page:
        std, e = self.std, self.std.entities[name]
        p = Page(_ent_page(name), f"{e.label.zh} {e.label.en}")
        p.add(Heading(1, (e.label.zh, " ", e.label.en, " (", Code(name), ")")))
        if e.description:
            p.add(Para((e.description.zh,)), Para((e.description.en,)))
        p.add(Facts([("实体 Entity", (Code(name),)), ("版本 Version", (Code(e.version),)),
                     ("主键 Key", (Link(e.key, p.path, f"f-{e.key}", code=True),)),
                     ("字段数 Fields", (str(len(e.fields)),)),
                     ("定义文件 Defined in", (Code(f"standards/entities/{name}.yaml"),))]))

        p.add(Heading(2, ("字段 Fields",), "fields"))
        rows, ids = [], []
        for f in e.fields:
            desc = _desc(f.description)
            rows.append(((Code(f.name),), (f.label.zh,), (f.label.en,), (Code(f.type),),
                         ("必填 required",) if f.required else ("可选 optional",),
                         self.cl_link(f.code_list) or ("—",),
                         _lines(*field_rules(e, f)) or ("—",), desc or ("—",)))
            ids.append(f"f-{f.name}")
        p.add(Table(("字段 Field", "中文名", "English name", "类型 Type", "必填 Required", "代码表 Code list",
                     "规则 Rules", "说明 Description"), rows, ids))
        p.add(Para(("嵌套的 JSON 对象不是任何字段的取值：该字段留空，记录以 ", Code("nested_object"),
                    " 退回（on_invalid: null 的字段置空发布；parse_list 只读 JSON 列表）。A nested JSON object is no "
                    "field's value: the field is left empty and the row goes back with ", Code("nested_object"),
                    " (a field with on_invalid: null is published empty; parse_list reads JSON lists only)."),
                   note=True))

        p.add(Heading(2, ("跨字段规则 Cross-field rules",), "rules"))
        if e.rules:
            rows = []
            for r in e.rules:
                zh, en = rule_words(r)
                desc = _desc(r.description)
                rows.append(((Code(r.rule),), _lines(zh, en), (Code(r.reason),), desc or ("—",)))
            p.add(Table(("规则 Rule", "含义 Meaning", "退回原因 Reason code", "说明 Description"), rows))
        else:
            p.add(Para(("本实体没有跨字段规则。This entity has no cross-field rules.",)))

        pii = [f for f in e.fields if f.pii]
        if pii:
            p.add(Heading(2, ("个人信息 Personal data",), "personal-data"),
                  Para(("以下字段在交换目录中只以假名和脱敏形式出现。In the exchange these fields appear only as "
                        "a pseudonym and a masked form:",), note=True),
                  Items([(Link(f.name, p.path, f"f-{f.name}", code=True), " → ", Code(f"{f.name}_pseudonym"),
                          " / ", Code(f"{f.name}_masked")) for f in pii]))

        p.add(Heading(2, ("溯源列 Provenance columns",), "provenance"),
              Para(("每条统一后的记录在标准字段之后带有以下列。Every harmonized row carries these columns "
                    "after the standard's fields.",)),
              Table(("列 Column", "类型 Type", "中文", "English"),
                    [((Code(c),), (Code(t),), (zh,), (en,)) for c, t, zh, en in PROVENANCE_COLUMNS]))

        p.add(Heading(2, ("数据来源 Sources",), "sources"))
        maps = std.mappings_for(name)
        if maps:
            p.add(Table(("来源 Source", "省份 Province", "映射 Mapping", "映射版本 Mapping version",
                         "标准版本 Standard version", "已映射字段 Fields mapped"),
                        [((self.src_link(m.source_id, f"m-{name}"),), (self.province(m.province_code),),
                          (m.label.zh, BR, m.label.en), (Code(m.version),), (Code(m.standard_version),),
                          (f"{len(m.fields)} / {sum(1 for f in e.fields if not f.derived)}",))
                         for m in maps]))
        else:
            p.add(Para(("尚无来源映射本实体。No source maps this entity yet.",)))
        return p

    def code_list(self, name: str) -> Page:
        std, cl = self.std, self.std.code_lists[name]
        p = Page(_cl_page(name), f"{cl.label.zh} {cl.label.en}")
        p.add(Heading(1, (cl.label.zh, " ", cl.label.en, " (", Code(name), ")")),
              Facts([("代码表 Code list", (Code(name),)), ("版本 Version", (Code(cl.version),)),
                     ("代码数 Codes", (str(len(cl.codes)),)),
                     ("定义文件 Defined in", (Code(f"standards/code_lists/{name}.yaml"),))]))
        p.add(Heading(2, ("代码 Codes",), "codes"),
              Table(("代码 Code", "中文", "English"), [((Code(c.code),), (c.zh,), (c.en,)) for c in cl.codes],
                    [f"c-{i}" for i in range(len(cl.codes))]))
        p.add(Heading(2, ("使用字段 Used by",), "used-by"))
        users = self.used_by(name)
        p.add(Items([(self.ent_link(e, f"f-{fn}", f"{e}.{fn}"),) for e, fn in users]) if users
              else Para(("没有字段使用本代码表。No field uses this code list.",)))
        p.add(Heading(2, ("来源对照表 Crosswalks",), "crosswalks"))
        cws = [std.crosswalks[k] for k in sorted(std.crosswalks) if k[1] == name]
        if cws:
            p.add(Table(("来源 Source", "对照条目 Entries", "文件 File"),
                        [((self.src_link(cw.source_id, f"cw-{name}"),), (str(len(cw.entries)),),
                          (Code(cw.path),))
                         for cw in cws]))
        else:
            p.add(Para(("没有来源对照表（取值直接匹配代码或中文名称，或由映射派生）。No source crosswalks "
                        "(values match codes or Chinese labels directly, or are derived).",)))
        return p

    def source(self, sid: str) -> Page:
        std = self.std
        p = Page(_src_page(sid), f"{sid} {self.source_provinces(sid)}")
        p.add(Heading(1, ("数据来源 Source ", Code(sid), " — ", self.source_provinces(sid))))
        maps = std.mappings_for_source(sid)
        if maps:
            p.add(Items([(Link(f"{m.label.zh} {m.label.en}", p.path, f"m-{m.entity}"), " → ",
                          self.ent_link(m.entity))
                         for m in maps]))
        ops_used: set[str] = set()
        for m in maps:
            ops_used.update(s.op for fm in m.fields.values() for s in fm.steps)
            self._mapping(p, m)
        self._crosswalks(p, sid)
        if ops_used:
            p.add(Heading(2, ("步骤说明 Steps",), "steps"),
                  Table(("步骤 Step", "中文", "English"),
                        [((Code(op),), *((w,) for w in _STEP_WORDS.get(op, (op, op))))
                         for op in sorted(ops_used)]))
        return p

    def _mapping(self, p: Page, m: Mapping) -> None:
        std = self.std
        e = std.entities.get(m.entity)
        p.add(Heading(2, (m.label.zh, " ", m.label.en, " → ", self.ent_link(m.entity)), f"m-{m.entity}"))
        d = m.delivery
        facts: list[tuple[str, Rich]] = [
            ("实体 Entity", (self.ent_link(m.entity),)),
            ("省份 Province", (self.province(m.province_code),)),
            ("映射版本 Mapping version", (Code(m.version),)),
            ("标准版本 Standard version", (Code(m.standard_version),)),
            ("交付文件 Delivery file", (Code(d.file),)),
            ("格式 Format", (Code(d.format),) if d.format else ("按文件扩展名识别 from the file extension",)),
        ]
        if d.sheet is not None:
            facts.append(("工作表 Sheet", (Code(str(d.sheet)),)))
        facts += [("标识列 Identity columns", _join([(Code(c),) for c in m.identity]) or ("—",)),
                  ("空值 Null values", (Code(_value_list(m.null_values)),)),
                  ("映射文件 Mapping file", (Code(std.mapping_path(m)),))]
        p.add(Facts(facts))

        mapped_to: dict[str, list[str]] = {}
        for fname, fm in m.fields.items():
            if fm.source is not None:
                mapped_to.setdefault(fm.source, []).append(fname)
        p.add(Heading(3, ("声明列 Declared columns",), f"m-{m.entity}-columns"),
              Table(("列 Column", "必需 Required", "标识列 Identity", "映射到 Mapped to"),
                    [((Code(c.name),), ("必需 required",) if c.required else ("可选 optional",),
                      ("是 yes",) if c.name in m.identity else ("—",),
                      _join([(self.ent_link(m.entity, f"f-{f}", f),) for f in mapped_to.get(c.name, [])])
                      or ("—",)) for c in d.columns]))

        p.add(Heading(3, ("字段映射 Field mapping",), f"m-{m.entity}-fields"))
        order = [f.name for f in e.fields] if e else []
        names = order + sorted(n for n in m.fields if n not in order)
        rows = []
        for fname in names:
            fdef = _field(e, fname)
            label = (fdef.label.zh, BR, fdef.label.en) if fdef else ("—",)
            fm = m.fields.get(fname)
            if fm is not None:
                src = (Code(fm.source),) if fm.source is not None else ("—",)
                how: Rich = (Code(steps_words(fm.steps)),)
                if fm.null_values is not None:
                    how = (*how, BR, "空值 null values: ", Code(_value_list(fm.null_values)))
            elif fdef is not None and fdef.derived == "identity_hash":
                src = _join([(Code(c),) for c in m.identity])
                how = ("派生 derived: ", Code(f"identity_hash({', '.join(m.identity)})"))
            elif fdef is not None and fdef.derived == "mapping_constant":
                src = ("—",)
                how = ("派生 derived: ", Code(f"province_code = {m.province_code}"))
            else:
                src = ("—",)
                unknown = fdef is not None and fdef.code_list in std.code_lists and \
                    "unknown" in std.code_lists[fdef.code_list].values
                how = ("未映射 not mapped → ", Code("unknown" if unknown else "null"))
            rows.append(((self.ent_link(m.entity, f"f-{fname}", fname),), label, src, how))
        p.add(Table(("标准字段 Standard field", "名称 Name", "← 来源列 Source column", "步骤 Steps"), rows))

        covs = self.cov.get((m.source_id, m.entity))
        if self.coverage is not None:
            p.add(Heading(3, ("对照覆盖 Crosswalk coverage",), f"m-{m.entity}-coverage"))
            if not covs:
                p.add(Para(("没有本映射的覆盖统计。No coverage counts for this mapping.",)))
            else:
                self._coverage(p, m, covs)

    def _coverage(self, p: Page, m: Mapping, covs: list[FieldCoverage]) -> None:
        deliveries = sorted({c.delivery for c in covs})
        p.add(Para(("统计自最新交付 Counted on the latest delivery: ", *_join([(Code(d),) for d in deliveries]))))
        rows = []
        for c in covs:
            share = f"{c.mapped_share:.1%}" if c.rows else "—"
            rows.append(((self.ent_link(m.entity, f"f-{c.field}", c.field),), self.cl_link(c.code_list),
                         (Code(c.step),), (str(c.rows),), (share,), (str(c.rows_with("approved")),),
                         (str(c.rows_with("proposed")),), (str(c.rows_with("rejected")),),
                         (str(c.rows_with("unmapped")),)))
        p.add(Table(("字段 Field", "代码表 Code list", "步骤 Step", "行数 Rows", "已映射 Mapped share",
                     "已批准 Approved rows", "待审暂扣 Held back (proposed)", "已拒绝 Rejected",
                     "未映射 Unmapped"), rows))
        for c in covs:
            work = sorted((v for v in c.values if v.status in ("unmapped", "proposed")),
                          key=lambda v: (-v.rows, v.value, v.status))
            if not work:
                continue
            shown, rest = work[:WORKLIST_LIMIT], work[WORKLIST_LIMIT:]
            p.add(Heading(4, ("待处理取值 Worklist: ", Code(c.field), " (", Code(c.code_list), ")"),
                          f"m-{m.entity}-worklist-{c.field}"),
                  Table(("来源取值 Source value", "行数 Rows", "状态 Status", "拟对照代码 Proposed code",
                         "对照表行 Crosswalk line"),
                        [(_value_cell(v), (str(v.rows),), (_STATUS.get(v.status, v.status),),
                          (Code(v.target_code),) if v.target_code else ("—",),
                          (Code(f"{c.crosswalk_path}:{v.line}" if c.crosswalk_path else str(v.line)),)
                          if v.line else ("—",)) for v in shown]))
            if rest:
                p.add(Para((f"另有 {len(rest)} 个取值（{sum(v.rows for v in rest)} 行）未列出。"
                            f"{len(rest)} more values ({sum(v.rows for v in rest)} rows) not listed.",)))

    def _crosswalks(self, p: Page, sid: str) -> None:
        std = self.std
        keys = sorted(k for k in std.crosswalks if k[0] == sid)
        if not keys:
            return
        p.add(Heading(2, ("代码对照表 Crosswalks",), "crosswalks"))
        for key in keys:
            cw = std.crosswalks[key]
            cl = std.code_lists.get(cw.code_list)
            labels = {c.code: c for c in cl.codes} if cl else {}
            has_status = any(getattr(e, "status", None) for e in cw.entries)
            version = getattr(cw, "version", None)
            p.add(Heading(3, ("对照表 Crosswalk ", *self.cl_link(cw.code_list)), f"cw-{cw.code_list}"),
                  Para(("文件 File: ", Code(cw.path), f"; {len(cw.entries)} 条 entries",
                        *((("; 版本 version: ", Code(str(version))) if version else ())))))
            headers = ["来源取值 Source value", "标准代码 Code", "中文", "English", "行 Line"]
            if has_status:
                headers.insert(4, "状态 Status")
            rows = []
            for e in cw.entries:
                code = labels.get(e.target_code)
                row: list[Rich] = [(Code(e.source_value),), (Code(e.target_code),),
                                   (code.zh,) if code else ("（不在代码表中 not in the code list）",),
                                   (code.en,) if code else ("—",), (str(e.line),)]
                if has_status:
                    status = str(getattr(e, "status", None) or "approved")
                    row.insert(4, (_STATUS.get(status, status),))
                rows.append(tuple(row))
            p.add(Table(tuple(headers), rows))


def _field(e: Entity | None, name: str) -> FieldDef | None:
    if e is None:
        return None
    try:
        return e.field(name)
    except KeyError:
        return None


def _value_cell(v: ValueCount) -> Rich:
    """A delivered value; quoted when blank or padded, so it can be seen."""
    text = v.value if v.value and v.value.strip() == v.value else json.dumps(v.value, ensure_ascii=False)
    return (Code(text),)


def build_dictionary(std: Standards, coverage: list[FieldCoverage] | None = None, *,
                     generated_at: str | None = None) -> dict[str, str]:
    """The data dictionary of ``std``: relative path -> file content (HTML pages and ``dictionary.md``).

    ``coverage`` (from the latest deliveries) adds the crosswalk coverage and worklists to the
    source pages; ``generated_at`` is shown on the index. The same inputs give the same files."""
    b = _Builder(std, coverage, generated_at)
    index = b.index()
    entities = [b.entity(n) for n in b.entities]
    code_lists = [b.code_list(n) for n in b.code_lists]
    sources = [b.source(s) for s in b.sources]
    pages = [index, *entities, *code_lists, *sources]
    files = {p.path: _render_html(p) for p in pages}

    md = _MdRenderer(pages)
    parts = [md.page(index, 0)]
    for title, ident, group in (("实体详情 Entity details", "entity-details", entities),
                                ("代码表详情 Code list details", "code-list-details", code_lists),
                                ("数据来源详情 Source details", "source-details", sources)):
        if group:
            parts.append(f'<a id="{ident}"></a>\n\n## {title}\n')
            parts.extend(md.page(pg, 2) for pg in group)
    files["dictionary.md"] = "\n".join(parts).rstrip("\n") + "\n"
    return dict(sorted(files.items()))


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
