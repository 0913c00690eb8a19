"""tongban.standards.targets.dictionary: the bilingual data dictionary generated from the real standards."""

from __future__ import annotations

import posixpath
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tongban.common.config import PROJECT_ROOT
from tongban.standards.targets.dictionary import PROVENANCE_COLUMNS, WORKLIST_LIMIT, build_dictionary, write_dictionary
from tongban.standards.lint import check
from tongban.committee.coverage import FieldCoverage, ValueCount
from tongban.standards.generate import load_checked
from tongban.standards.load import Standards

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class PageChecker(HTMLParser):
    """Balanced tags, plus the ids, links and text of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.refs: list[str] = []  # href= and src= values
        self.tags: set[str] = set()
        self.chunks: list[str] = []
        self.html_lang: str | None = None
        self.charset: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        a = dict(attrs)
        if "id" in a:
            if a["id"] in self.ids:
                self.problems.append(f"duplicate id {a['id']!r}")
            self.ids.add(a["id"] or "")
        for key in ("href", "src"):
            if key in a:
                self.refs.append(a[key] or "")
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "meta" and "charset" in a:
            self.charset = a["charset"]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void element <{tag}>")
        elif not self.stack:
            self.problems.append(f"</{tag}> without an open tag")
        elif self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1]}>")
            self.stack.pop()
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.chunks))


def _resolve(page: str, ref: str) -> tuple[str, str]:
    """(target page, fragment) of a relative link on ``page``."""
    path, _, fragment = ref.partition("#")
    target = page if not path else posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
    return target, fragment


def parse(content: str) -> PageChecker:
    p = PageChecker()
    p.feed(content)
    p.close()
    if p.stack:
        p.problems.append(f"unclosed: {p.stack}")
    return p


@pytest.fixture(scope="module")
def std() -> Standards:
    return load_checked(PROJECT_ROOT / "standards")


@pytest.fixture(scope="module")
def files(std: Standards) -> dict[str, str]:
    return build_dictionary(std)


@pytest.fixture(scope="module")
def pages(files: dict[str, str]) -> dict[str, PageChecker]:
    return {rel: parse(c) for rel, c in files.items() if rel.endswith(".html")}


def _sources(std: Standards) -> list[str]:
    return sorted({m.source_id for m in std.mappings})


def test_the_page_set(std: Standards, files: dict[str, str]) -> None:
    expected = {"index.html", "dictionary.md"}
    expected |= {f"entities/{e}.html" for e in std.entities}
    expected |= {f"code_lists/{c}.html" for c in std.code_lists}
    expected |= {f"sources/{s}.html" for s in _sources(std)}
    assert set(files) == expected
    assert list(files) == sorted(files)
    assert all(isinstance(c, str) and c for c in files.values())


def test_every_page_is_well_formed_html(pages: dict[str, PageChecker], files: dict[str, str]) -> None:
    for rel, p in pages.items():
        assert p.problems == [], (rel, p.problems)
        assert files[rel].startswith("<!DOCTYPE html>\n"), rel
        assert p.html_lang == "zh-CN", rel
        assert p.charset == "utf-8", rel
        assert {"head", "title", "style", "body", "nav", "main"} <= p.tags, rel
        # the navigation bar: index, entities, code lists, sources
        nav = parse(files[rel].split("<nav", 1)[1].split("</nav>", 1)[0].split(">", 1)[1])
        targets = [_resolve(rel, ref) for ref in nav.refs]
        assert targets == [("index.html", ""), ("index.html", "entities"), ("index.html", "code-lists"),
                           ("index.html", "sources")], rel


def test_the_checker_catches_unbalanced_tags() -> None:
    assert parse("<p><b>x</p>").problems
    assert parse("<div><table><tr><td>x</td></tr></table>").problems
    assert parse("<p>a<br>b</p><meta charset='utf-8'>").problems == []


def test_every_entity_field_code_and_source_appears(std: Standards, pages: dict[str, PageChecker]) -> None:
    index = pages["index.html"].text
    for name, ent in std.entities.items():
        page = pages[f"entities/{name}.html"].text
        for text in (name, ent.label.zh, ent.label.en, ent.version):
            assert text in index and text in page, (name, text)
        if ent.description:
            assert ent.description.zh in page and ent.description.en in page
        for f in ent.fields:
            for text in (f.name, f.label.zh, f.label.en, f.type):
                assert text in page, (name, f.name, text)
            if f.description:
                assert f.description.zh in page and f.description.en in page
            if f.pii:
                assert f"{f.name}_pseudonym" in page and f"{f.name}_masked" in page
                assert f"{f.name}_pseudonym" in index
        for r in ent.rules:
            assert r.rule in page and r.reason in page
            if r.description:
                assert r.description.en in page and r.description.zh in page
        for col, *_ in PROVENANCE_COLUMNS:
            assert col in page
    for name, cl in std.code_lists.items():
        page = pages[f"code_lists/{name}.html"].text
        assert name in index and cl.label.zh in index and cl.label.en in index
        assert cl.version in page
        for c in cl.codes:
            assert c.code in page and c.zh in page and c.en in page, (name, c.code)
    for sid in _sources(std):
        assert sid in index
        page = pages[f"sources/{sid}.html"].text
        for m in std.mappings_for_source(sid):
            assert m.label.zh in index and m.label.en in page
            assert m.delivery.file in page
            for c in m.delivery.columns:
                assert c.name in page
            for fname, fm in m.fields.items():
                assert fname in page
                if fm.source:
                    assert fm.source in page
        for (src, _code_list), cw in std.crosswalks.items():
            if src == sid:
                for e in cw.entries:
                    assert e.source_value.strip() in page and e.target_code in page


def test_bilingual_headings_and_notes(pages: dict[str, PageChecker]) -> None:
    index = pages["index.html"].text
    for heading in ("实体 Entities", "代码表 Code lists", "数据来源 Sources", "个人信息 Personal data"):
        assert heading in index
    assert "_pseudonym" in index and "_masked" in index
    entity = pages["entities/birth_registration.html"].text
    for heading in ("字段 Fields", "跨字段规则 Cross-field rules", "溯源列 Provenance columns"):
        assert heading in entity
    assert "GB 11643 citizen ID (check character, birthplace code in use in the birth year)" in entity
    assert "published as mother_id_number_pseudonym / mother_id_number_masked" in entity
    assert "not after the run date" in entity
    assert "county level" in entity
    licence = pages["entities/business_license.html"].text
    assert "range 100 ≤ x ≤ 100,000,000,000" in licence


def test_steps_in_words(pages: dict[str, PageChecker]) -> None:
    js = pages["sources/js.html"].text
    assert "trim → crosswalk(open_condition)" in js
    assert "trim → parse_date(%Y%m%d)" in js
    assert "identity_hash(详情页网址)" in js
    assert "parse_amount(万元 → 元)" in pages["sources/ah.html"].text
    zj = pages["sources/zj.html"].text
    assert 'split(",") → first → crosswalk(domain)' in zj
    assert "parse_date(epoch_ms)" in zj


def test_no_script_and_nothing_from_the_internet(files: dict[str, str],
                                                  pages: dict[str, PageChecker]) -> None:
    for rel, content in files.items():
        assert "<script" not in content.lower(), rel
        assert "@import" not in content and "url(" not in content, rel
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", content, re.I), rel
    for rel, p in pages.items():
        for ref in p.refs:
            assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref, re.I), (rel, ref)
        assert "link" not in p.tags and "script" not in p.tags and "img" not in p.tags


def test_relative_links_resolve(files: dict[str, str], pages: dict[str, PageChecker]) -> None:
    checked = 0
    for rel, p in pages.items():
        for ref in p.refs:
            target, fragment = _resolve(rel, ref)
            assert target in files, (rel, ref)
            if fragment:
                assert fragment in pages[target].ids, (rel, ref)
            checked += 1
    assert checked > 100


def test_markdown_has_a_heading_per_entity_and_a_row_per_field(std: Standards, files: dict[str, str]) -> None:
    md = files["dictionary.md"]
    lines = md.splitlines()
    headings = [ln for ln in lines if ln.startswith("#")]
    for name, ent in std.entities.items():
        assert any(f"(`{name}`)" in h and ent.label.zh in h and ent.label.en in h for h in headings), name
        for f in ent.fields:
            assert any(ln.startswith(f"| `{f.name}` | ") for ln in lines), (name, f.name)
    for name in std.code_lists:
        assert any(f"(`{name}`)" in h for h in headings), name
    for sid in _sources(std):
        assert any(f"`{sid}`" in h for h in headings), sid
    # every table row has as many cells as its header (no stray '|')
    width = None
    for ln in lines:
        if not ln.startswith("|"):
            width = None
            continue
        cells = len(re.findall(r"(?<!\\)\|", ln)) - 1
        if width is None:
            width = cells
        assert cells == width, ln
    # internal links point at anchors the document defines
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', md))
    for target in re.findall(r"\]\(#([^)]+)\)", md):
        assert target in anchors, target
    assert "<script" not in md.lower()


def test_deterministic_and_generation_time(std: Standards, files: dict[str, str]) -> None:
    assert build_dictionary(std) == files
    stamped = build_dictionary(std, generated_at="2025-06-01T08:00:00+08:00")
    assert "2025-06-01T08:00:00+08:00" in stamped["index.html"]
    assert "2025-06-01T08:00:00+08:00" in stamped["dictionary.md"]
    assert "生成时间" not in files["index.html"]
    assert {k: v for k, v in stamped.items() if k not in ("index.html", "dictionary.md")} == \
        {k: v for k, v in files.items() if k not in ("index.html", "dictionary.md")}


def test_committee_text_is_escaped(tmp_path: Path) -> None:
    root = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", root)
    path = root / "entities" / "data_resource.yaml"
    text = path.read_text(encoding="utf-8")
    old = "label: {zh: 政务数据资源目录条目, en: Government data resource catalogue entry}"
    assert old in text
    path.write_text(text.replace(old, 'label: {zh: "目录<script>alert(1)</script>", en: "A | B & <i>C</i>"}'),
                    encoding="utf-8")
    std = check(root)
    assert not std.errors
    # and a code label through the models
    cl = std.code_lists["sex"]
    codes = [cl.codes[0].model_copy(update={"zh": '男"><img src=x onerror=alert(1)>'}), *cl.codes[1:]]
    std.code_lists["sex"] = cl.model_copy(update={"codes": codes})

    files = build_dictionary(std)
    for rel, content in files.items():
        assert "<script" not in content.lower(), rel
        assert "<img" not in content and "<i>" not in content, rel
    for rel in ("index.html", "entities/data_resource.html"):
        assert "目录&lt;script&gt;alert(1)&lt;/script&gt;" in files[rel]
        assert "A | B &amp; &lt;i&gt;C&lt;/i&gt;" in files[rel]
        assert parse(files[rel]).problems == []
        assert "目录<script>alert(1)</script>" in parse(files[rel]).text
    sex = files["code_lists/sex.html"]
    assert "男&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in sex
    assert parse(sex).problems == []
    md = files["dictionary.md"]
    assert "目录&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert r"A \| B &amp; &lt;i&gt;C&lt;/i&gt;" in md


def _coverage() -> list[FieldCoverage]:
    values = [
        ValueCount("有条件开放", 600, "approved", "conditional", 3),
        ValueCount("依申请开放", 250, "unmapped"),
        ValueCount("部分开放", 100, "proposed", "conditional", 7),
        ValueCount("不开放", 20, "rejected", "not_open", 8),
        ValueCount("a|b<x>", 30, "unmapped"),
    ]
    values += [ValueCount(f"罕见取值{i:02d}", 1, "unmapped") for i in range(WORKLIST_LIMIT)]
    rows = sum(v.rows for v in values)
    return [
        FieldCoverage("sh", "data_resource", "open_condition_code", "open_condition", "crosswalk",
                      "standards/mappings/sh/crosswalks/open_condition.csv",
                      "opendata_catalogs/nju-websoft_CNPDS_shanghai_shanghai.json", rows=rows, values=values),
        FieldCoverage("sh", "data_resource", "domain_code", "domain", "crosswalk",
                      "standards/mappings/sh/crosswalks/domain.csv",
                      "opendata_catalogs/nju-websoft_CNPDS_shanghai_shanghai.json", rows=0, values=[]),
    ]


def test_coverage_shows_share_and_worklist(std: Standards) -> None:
    cov = _coverage()
    share = f"{cov[0].mapped_share:.1%}"  # 600 / 1020
    assert share == "58.8%"
    files = build_dictionary(std, cov)
    page = parse(files["sources/sh.html"])
    assert page.problems == []
    text = page.text
    assert "对照覆盖 Crosswalk coverage" in text
    assert share in text
    for needle in ("依申请开放", "250", "部分开放", "100", "a|b<x>", "open_condition_code",
                   "standards/mappings/sh/crosswalks/open_condition.csv:7"):
        assert needle in text, needle
    assert "a|b&lt;x&gt;" in files["sources/sh.html"]
    assert "有条件开放" in text  # the crosswalk listing, not the worklist
    worklist = files["sources/sh.html"].split('id="m-data_resource-worklist-open_condition_code"')[1]
    worklist = worklist.split("</table>")[0]
    assert "依申请开放" in worklist and "不开放" not in worklist and "有条件开放" not in worklist
    assert worklist.index("依申请开放") < worklist.index("部分开放") < worklist.index("a|b&lt;x&gt;")
    assert "more values" in text  # beyond WORKLIST_LIMIT
    md = files["dictionary.md"]
    assert share in md and "依申请开放" in md and r"a\|b&lt;x&gt;" in md
    assert "对照覆盖 Crosswalk coverage" in md
    # other sources say they have no counts; without coverage there is no coverage section at all
    assert "No coverage counts" in parse(files["sources/js.html"]).text
    assert "Crosswalk coverage" not in build_dictionary(std)["sources/sh.html"]


def test_write_dictionary_replaces_the_directory(tmp_path: Path, files: dict[str, str]) -> None:
    out = tmp_path / "exchange" / "dictionary"
    (out / "old_sub").mkdir(parents=True)
    (out / "stale.html").write_text("old", encoding="utf-8")
    (out / "old_sub" / "x.txt").write_text("old", encoding="utf-8")
    index = write_dictionary(out, files)
    assert index == out / "index.html" and index.is_file()
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == set(files)
    for rel, content in files.items():
        assert (out / rel).read_text(encoding="utf-8") == content
    assert [p.name for p in out.parent.iterdir()] == ["dictionary"]  # no temp or old dirs left

    write_dictionary(out, {"index.html": "<p>new</p>"})
    assert [p.relative_to(out).as_posix() for p in out.rglob("*")] == ["index.html"]
    assert [p.name for p in out.parent.iterdir()] == ["dictionary"]


def test_write_dictionary_keeps_the_old_set_when_it_fails(tmp_path: Path, files: dict[str, str]) -> None:
    out = tmp_path / "dictionary"
    write_dictionary(out, files)
    with pytest.raises(ValueError, match="not a relative path inside the dictionary: '../escape.html'"):
        write_dictionary(out, {"index.html": "x", "../escape.html": "x"})
    assert (out / "index.html").read_text(encoding="utf-8") == files["index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dictionary"]
    assert not (tmp_path / "escape.html").exists()


def test_write_dictionary_into_a_new_directory(tmp_path: Path) -> None:
    index = write_dictionary(tmp_path / "a" / "b", {"index.html": "x", "entities/e.html": "y"})
    assert index.read_text(encoding="utf-8") == "x"
    assert (tmp_path / "a" / "b" / "entities" / "e.html").read_text(encoding="utf-8") == "y"


def test_an_empty_standard_still_gives_a_readable_index(tmp_path: Path) -> None:
    files = build_dictionary(Standards(root=tmp_path))
    assert set(files) == {"index.html", "dictionary.md"}
    page = parse(files["index.html"])
    assert page.problems == []
    assert "No field is marked pii" in page.text
