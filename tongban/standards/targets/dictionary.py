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

from typing import Any

from tongban.standards.gate import override_reason, rule_limits_for, threshold_for
from tongban.standards.load import Standards
from tongban.standards.models import Entity, FieldCoverage, FieldDef
from tongban.standards.rules import FIELD_RULES
from tongban.standards.targets.dictionary_sources import (
    WORKLIST_LIMIT,
    SourcePages,
    _cl_page,
    _ent_page,
    _src_page,
    step_words,  # noqa: F401  (where it was)
    steps_words,  # noqa: F401
)
from tongban.standards.targets.doctree import (
    BR,
    Code,
    Facts,
    Heading,
    Inline,
    Items,
    Link,
    Page,
    Para,
    Rich,
    Table,
    _desc,
    _join,
    _lines,
    _MdRenderer,
    _render_html,
    write_dictionary,
)

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


def field_rules(ent: Entity, f: FieldDef) -> list[str]:
    """The rules of one field in words (zh + en), one per line: what the field is (key, derived),
    then each rule of the catalogue that applies."""
    out: list[str] = []
    if f.name == ent.key:
        out.append("主键 key: identifies one record")
    if f.derived == "identity_hash":
        out.append("派生：来源标识 + 来源标识列的哈希 derived: source id + hash of the mapping's identity columns")
    elif f.derived == "mapping_constant":
        out.append("派生：取自映射声明的省级代码 derived: the province code declared by the mapping")
    for rule in FIELD_RULES:
        out += rule.words(ent, f)
    return out


def rule_words(rule: Any) -> tuple[str, str]:
    if hasattr(rule, "words"):
        return rule.words()
    data = rule.model_dump() if hasattr(rule, "model_dump") else {}
    text = ", ".join(f"{k}={v}" for k, v in sorted(data.items()) if k not in ("rule", "description"))
    return text, text


# ---- pages ----------------------------------------------------------------------------------

class _Builder(SourcePages):
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
        items = self._pii_items()
        p.add(Items(items) if items else Para(("没有个人信息字段。No field is marked pii.",)))

        p.add(Heading(2, ("溯源列 Provenance columns",), "provenance"),
              Para(("每条统一后的记录都带有以下列，可追溯到交付文件的具体行。Every harmonized row carries these "
                    "columns, which trace it back to its delivery row: ",
                    *_join([(Code(c[0]),) for c in PROVENANCE_COLUMNS]), ".")))
        return p

    def _pii_items(self) -> list[Rich]:
        return [(self.ent_link(name, f"f-{f.name}", f"{name}.{f.name}"), " → ",
                 Code(f"{f.name}_pseudonym"), " / ", Code(f"{f.name}_masked"), f" ({f.label.zh} {f.label.en})")
                for name in self.entities for f in self.std.entities[name].fields if f.pii]

    @staticmethod
    def _rules(p: Page, e: Entity) -> None:
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

    def _gate(self, p: Page, e: Entity) -> None:
        """Each source's limits: a delivery over one is held (not published, its previous kept)."""
        p.add(Heading(2, ("发布门槛 Gate thresholds",), "gate"),
              Para(("一次交付的退回比例超过门槛即暂不发布，保留该来源上一次的发布。A delivery whose quarantined "
                    "share is over a limit is held: not published, the source's previous publication kept.",),
                   note=True))
        rows = []
        for m in self.std.mappings_for(e.entity):
            share, origin = threshold_for(self.std, e.entity, m.source_id)
            rules = rule_limits_for(self.std, e.entity, m.source_id)
            rows.append(((self.src_link(m.source_id, f"m-{e.entity}"),), (f"{share:.1%}",), (origin,),
                         _lines(*(f"{r} ≤ {x:.1%} ({o})" for r, (x, o) in rules.items())) or ("—",),
                         (override_reason(self.std, e.entity, m.source_id) or "—",)))
        p.add(Table(("来源 Source", "最大退回比例 Max quarantine share", "出处 Origin", "按原因 By reason",
                     "理由 Reason"), rows))

    def entity(self, name: str) -> Page:
        std, e = self.std, self.std.entities[name]
        p = Page(_ent_page(name), f"{e.label.zh} {e.label.en}")
        p.add(Heading(1, (e.label.zh, " ", e.label.en, " (", Code(name), ")")))
        if e.description:
            p.add(Para((e.description.zh,)), Para((e.description.en,)))
        p.add(Facts([("实体 Entity", (Code(name),)), ("版本 Version", (Code(e.version),)),
                     ("主键 Key", (Link(e.key, p.path, f"f-{e.key}", code=True),)),
                     ("字段数 Fields", (str(len(e.fields)),)),
                     ("共享类别 Sharing", (_sharing(e.sharing),)),
                     ("定义文件 Defined in", (Code(f"standards/entities/{name}.yaml"),))]))

        p.add(Heading(2, ("字段 Fields",), "fields"))
        rows, ids = [], []
        for f in e.fields:
            desc = _desc(f.description)
            rows.append(((Code(f.name),), (f.label.zh,), (f.label.en,), (Code(f.type),),
                         ("必填 required",) if f.required else ("可选 optional",),
                         (_sharing(e.sharing_of(f.name)),),
                         self.cl_link(f.code_list) or ("—",),
                         _lines(*field_rules(e, f)) or ("—",), desc or ("—",)))
            ids.append(f"f-{f.name}")
        p.add(Table(("字段 Field", "中文名", "English name", "类型 Type", "必填 Required", "共享 Sharing", "代码表 Code list",
                     "规则 Rules", "说明 Description"), rows, ids))
        p.add(Para(("嵌套的 JSON 对象不是任何字段的取值：该字段留空，记录以 ", Code("nested_object"),
                    " 退回（on_invalid: null 的字段置空发布；parse_list 只读 JSON 列表）。A nested JSON object is no "
                    "field's value: the field is left empty and the row goes back with ", Code("nested_object"),
                    " (a field with on_invalid: null is published empty; parse_list reads JSON lists only)."),
                   note=True))

        self._rules(p, e)

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

        self._gate(p, e)

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


#: the served exchange's sharing classes (issue 16), as the dictionary names them
SHARING_WORDS = {"unconditional": "无条件共享 unconditional", "conditional": "有条件共享 conditional (with a grant)",
                 "none": "不予共享 none (not row by row)", None: "— (no class: the lint says so)"}


def _sharing(value: str | None) -> str:
    return SHARING_WORDS[value]
