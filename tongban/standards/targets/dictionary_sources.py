"""The dictionary's source pages: per mapping the delivery, its columns, each standard field
with its source column and steps in words (from the step catalogue), the crosswalks and, with
coverage, the committee's worklist (continuing tongban.standards.targets.dictionary)."""

from __future__ import annotations

import json

from tongban.standards.models import Entity, FieldCoverage, FieldDef, Mapping, Step, ValueCount
from tongban.standards.rules import STEPS
from tongban.standards.targets.doctree import BR, Code, Facts, Heading, Items, Link, Page, Para, Rich, Table, _join

#: How many worklist values (unmapped / proposed) a coverage table lists per field.
WORKLIST_LIMIT = 20

_STATUS = {"approved": "已批准 approved", "proposed": "待审 proposed", "rejected": "已拒绝 rejected",
           "unmapped": "未映射 unmapped"}


def _value_list(values: list[str]) -> str:
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


def step_words(step: Step) -> str:
    """One step as written in the dictionary, e.g. ``crosswalk(domain)``, ``parse_amount(万元 → 元)``."""
    return STEPS[step.op].words_arg(step.arg)


def steps_words(steps: list[Step]) -> str:
    return " → ".join(step_words(s) for s in steps) if steps else "—"


def _ent_page(name: str) -> str:
    return f"entities/{name}.html"


def _cl_page(name: str) -> str:
    return f"code_lists/{name}.html"


def _src_page(source_id: str) -> str:
    return f"sources/{source_id}.html"


class SourcePages:
    """The source pages of the dictionary's builder (which provides the links and ``std``)."""

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
                        [((Code(op),), *((w,) for w in STEPS[op].words))
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
        rows = [self._field_row(m, e, fname) for fname in names]
        p.add(Table(("标准字段 Standard field", "名称 Name", "← 来源列 Source column", "步骤 Steps"), rows))

        covs = self.cov.get((m.source_id, m.entity))
        if self.coverage is not None:
            p.add(Heading(3, ("对照覆盖 Crosswalk coverage",), f"m-{m.entity}-coverage"))
            if not covs:
                p.add(Para(("没有本映射的覆盖统计。No coverage counts for this mapping.",)))
            else:
                self._coverage(p, m, covs)

    def _field_row(self, m: Mapping, e: Entity | None, fname: str) -> tuple[Rich, ...]:
        """One standard field of a mapping: its name, label, source column and steps in words."""
        std = self.std
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
            if fname in m.absent:  # the committee's decision, with its reason and review status
                d = m.absent[fname]
                how = ("缺失（委员会决定）absent by decision → ", Code("unknown" if unknown else "null"), BR,
                       d.reason, f" ({d.status})")
        return (self.ent_link(m.entity, f"f-{fname}", fname),), label, src, how

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
