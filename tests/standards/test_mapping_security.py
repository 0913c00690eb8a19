"""Mappings are data, not code: every argument a committee member writes reaches SQL only as a
quoted literal or a validated, quoted identifier, and paths stay inside the inbox. Each attempt
below is either refused with a clear file:line error or comes out as inert text."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check
from tongban.common.sqlquote import JINJA_OPENERS
from tongban.standards.targets.dbt import compile_field, quote_source_column
from tongban.standards.models import Mapping

STD = check(PROJECT_ROOT / "standards")
# What SQL or Jinja would run if a value were pasted into the generated text: SQL breaking out of its
# literal, and Jinja (double-quoted arguments, as dbt would evaluate them) rendering or creating.
PAYLOADS = ["x'); drop table t; --", "'||(select 42)||'", "\\'; select 1; --", "$$ copy t to '/tmp/x' $$",
            '{{ env_var("TONGBAN_PSEUDONYM_KEY") }}', '{% do run_query("drop table t") %}', "{# hidden #}x",
            "ユニ'\"`;"]


def _mapping(steps: list, columns: tuple[str, ...] = ("列",), null_values: list[str] | None = None) -> Mapping:
    return Mapping.model_validate({
        "source_id": "t1", "entity": "data_resource", "province_code": "31", "version": "1.0.0",
        "standard_version": "1.0.0", "label": {"zh": "测试", "en": "test"},
        "delivery": {"file": "x.json", "columns": [{"name": c} for c in columns]}, "identity": [columns[0]],
        "null_values": null_values or [], "fields": {"summary": {"from": columns[0], "steps": steps}}})


def _run(steps: list, values: list[str | None], columns: tuple[str, ...] = ("列",),
         null_values: list[str] | None = None) -> list:
    """The compiled field over ``values`` in DuckDB. The mapping's arguments are in the SQL text; the
    delivery's values are bound parameters, as they are rows of a table in a real run."""
    c = compile_field(STD, _mapping(steps, columns, null_values), STD.entities["data_resource"].field("summary"))
    for opener in JINJA_OPENERS:
        assert opener not in c.value, f"Jinja would evaluate {c.value!r}"
    con = duckdb.connect()
    con.execute("create table t as select 1 as x")
    cols = ", ".join(f'unnest(?::varchar[]) as "{c}"' for c in columns)
    rows = con.execute(f"select ({c.value}) from (select {cols}) as src", [values] * len(columns)).fetchall()
    assert con.execute("select count(*) from t").fetchone()[0] == 1  # still there
    return [r[0] for r in rows]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_constant_and_regex_arguments_stay_text(payload: str):
    assert _run([{"constant": payload}], ["a"]) == [payload]
    assert _run(["trim", {"split": [payload]}, "first"], [f"a{payload}b"]) == ["a"]
    # the payload is the regex itself (escaped, so that it matches itself literally): it removes its
    # own text from the value and never runs
    assert _run([{"remove_regex": re.escape(payload)}], [f"a {payload} b"]) == ["a  b"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_values_and_null_markers_stay_text(payload: str):
    # a delivery value that is a payload comes out as that text
    assert _run(["trim"], [payload, "a"]) == [payload.strip(), "a"]
    # a payload as a null marker (in the SQL text) turns exactly that value into null, nothing else
    assert _run(["trim"], [payload, f" {payload} ", "a", None], null_values=[payload]) == [None, None, "a", None]
    assert _run([{"concat": ["列2"]}], ["a"], columns=("列", "列2")) == ["a a"]


def test_concat_appends_other_columns():
    assert _run(["trim", {"concat": ["区县", "街道"]}], ["杭州市", None], columns=("列", "区县", "街道")) == \
        ["杭州市 杭州市 杭州市", None]


@pytest.mark.parametrize("name", ['{{ env_var("K") }}', "{% do x %}", "a{#b"])
def test_a_column_name_jinja_would_evaluate_is_refused(name: str):
    with pytest.raises(ValueError, match="unsafe column name"):
        quote_source_column(name)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    dst = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", dst)
    return dst


@pytest.mark.parametrize("old,new,expected", [
    ("  file: opendata_catalogs/nju-websoft_CNPDS_jiangsu_jiangsu.json", "  file: ../../../etc/passwd",
     "relative to the inbox, without '..'"),
    ("  file: opendata_catalogs/nju-websoft_CNPDS_jiangsu_jiangsu.json", "  file: /etc/passwd",
     "relative to the inbox"),
    ("  summary: {from: 资源描述, steps: [trim]}", '  summary: {from: 资源描述, steps: [trim, {concat: [\'x"; drop table t; --\']}]}',
     "may not contain quotes"),
    ("  summary: {from: 资源描述, steps: [trim]}", "  summary: {from: 资源描述, steps: [{sql: 'select 1'}]}",
     "unknown step 'sql'"),
    ("  summary: {from: 资源描述, steps: [trim]}", "  summary: {from: 资源描述, steps: [trim, {concat: [不存在]}]}",
     "concat reads column '不存在'"),
    ("source_id: js", "source_id: js; drop table x", "source_id: String should match pattern '^[a-z]"),
])
def test_malicious_mappings_are_refused_with_file_and_line(scratch: Path, old: str, new: str, expected: str):
    path = scratch / "mappings" / "js" / "data_resource.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    errors = check(scratch).errors
    hit = [f for f in errors if expected in f.message or expected in f.hint]
    assert hit, [str(f) for f in errors]
    assert hit[0].file == "standards/mappings/js/data_resource.yaml" and hit[0].line > 1


# ---- through dbt: every place a committee-written value reaches a generated model or YAML ----

CANARY_ENV = "TONGBAN_JINJA_CANARY"
CANARY = "canary-7f3a9c51e2d84b06"  # what rendering {{ env_var(CANARY_ENV) }} would write
RENDER = '{{ env_var("TONGBAN_JINJA_CANARY") }}'


def _create(table: str) -> str:
    """A payload that, if Jinja ran it, would create ``main.<table>`` in the warehouse."""
    return '{% do run_query("create table main.' + table + ' as select 1 as x") %}'


def _plant(scratch: Path) -> None:
    """Payloads in the 上海 catalogue's mapping (constant, null_values, split, remove_regex,
    parse_date, label), its domain crosswalk (a source value), the data_resource entity (field
    labels) and the domain code list (a code and a code label)."""
    def edit(rel: str, old: str, new: str) -> None:
        path = scratch / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    sh = "mappings/sh/data_resource.yaml"
    edit(sh, "summary: {from: 摘要, steps: [trim]}", f"summary: {{from: 摘要, steps: [{{constant: '{RENDER}'}}]}}")
    edit(sh, 'null_values: ["", "None", "无", "暂无"]', f'null_values: ["", "None", "无", "暂无", \'{_create("pwned_null")}\']')
    edit(sh, 'keywords: {from: 数据标签, steps: [{split: [","]}]}',
         f'keywords: {{from: 数据标签, steps: [{{split: [",", \'{_create("pwned_split")}\']}}]}}')
    edit(sh, "title: {from: 数据集名称, steps: [trim]}",
         f"title: {{from: 数据集名称, steps: [trim, {{remove_regex: '{_create('pwned_regex')}'}}]}}")
    edit(sh, 'published_date: {from: 首次发布日期, steps: [trim, {parse_date: ["%Y-%m-%d"]}]}',
         f'published_date: {{from: 首次发布日期, steps: [trim, {{parse_date: ["%Y-%m-%d", \'%Y {RENDER}\']}}]}}')
    edit(sh, "label: {zh: 上海市公共数据开放平台, en: Shanghai open data portal}",
         f"label: {{zh: '{RENDER}', en: '{_create('pwned_label')}'}}")
    edit("mappings/sh/crosswalks/domain.csv", "城市建设,urban_housing,approved",
         f"\"{_create('pwned_crosswalk')}\",urban_housing,approved,tongban-dev,initial-import,2026-11-27\n"
         "城市建设,urban_housing,approved")
    edit("entities/data_resource.yaml", "label: {zh: 摘要, en: Summary}", f"label: {{zh: '{RENDER}', en: '{_create('pwned_entity')}'}}")
    edit("code_lists/domain.yaml", "  - {code: transport, zh: 交通运输, en: Transport}",
         f"  - {{code: transport, zh: '{RENDER}', en: '{_create('pwned_code_label')}'}}\n"
         f"  - {{code: '{RENDER}', zh: 代码, en: code}}")


@pytest.fixture(scope="module")
def built_with_payloads(tmp_path_factory) -> dict:
    """The planted standards generated past the lint (as if it were bypassed) and the 上海
    catalogue built through its checked table with the real dbt, the canary in the environment."""
    from tongban.common.config import settings
    from tongban.steps.intake.land import land
    from tongban.pipeline import _load_reference
    from tongban.standards.generate import scratch_project
    from tongban.steps.harmonize import run_dbt

    root = tmp_path_factory.mktemp("jinja")
    scratch = root / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", scratch)
    _plant(scratch)
    std = check(scratch)
    project = scratch_project(std, PROJECT_ROOT, root / "project")
    build = root / "build"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CANARY_ENV, CANARY)
        mp.setenv("TONGBAN_BUILD_DIR", str(build))
        s = settings()
        build.mkdir()
        _load_reference(s)
        m = std.mapping("sh", "data_resource")
        landed = land(m, inbox_dirs=list(s.inbox_dirs), raw_dir=s.raw_dir, run_id="jinja-test",
                      entity=std.entities["data_resource"])
        assert landed.status == "landed", landed.message
        outcome = run_dbt(project, warehouse=s.warehouse_path, raw_dir=s.raw_dir, build_dir=build,
                          args=["build", "--select", "+int_data_resource__checked_sh"])
        warehouse = s.warehouse_path
    return {"std": std, "project": project, "build": build, "warehouse": warehouse, "outcome": outcome,
            "rows": landed.rows_delivered}


def test_the_lint_refuses_template_markers_with_file_and_line(built_with_payloads):
    hits = {(f.file, f.line) for f in built_with_payloads["std"].errors if "template markers" in f.message}
    files = {f for f, _ in hits}
    assert files == {"standards/mappings/sh/data_resource.yaml", "standards/mappings/sh/crosswalks/domain.csv",
                     "standards/entities/data_resource.yaml", "standards/code_lists/domain.yaml"}
    assert ("standards/mappings/sh/crosswalks/domain.csv", 2) in hits
    assert all(line > 1 for _, line in hits)


def test_payloads_pass_through_dbt_as_text(built_with_payloads):
    b = built_with_payloads
    assert b["outcome"].success, b["outcome"].failures
    con = duckdb.connect(str(b["warehouse"]), read_only=True)
    try:
        tables = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        assert not [t for t in tables if t[1].startswith("pwned_")], tables  # no run_query ran
        checked = 'main_intermediate."int_data_resource__checked_sh"' if any(
            t == ("main_intermediate", "int_data_resource__checked_sh") for t in tables) else None
        rel = checked or next(f'"{s}"."{n}"' for s, n in tables if n == "int_data_resource__checked_sh")
        summaries = con.execute(f"select distinct summary from {rel}").fetchall()
        assert summaries == [(RENDER,)]  # the constant, as the committee wrote it, not rendered
        assert con.execute(f"select count(*) from {rel}").fetchone()[0] == b["rows"]
        for schema, name in tables:  # the canary is in no table of the warehouse
            dump = con.execute(f'select * from "{schema}"."{name}"').fetchall()
            assert CANARY not in repr(dump), f"{schema}.{name}"
    finally:
        con.close()


def test_no_generated_or_compiled_file_renders_a_payload(built_with_payloads):
    b = built_with_payloads
    seen = 0
    for root in (b["project"], b["build"] / "dbt"):
        for path in root.rglob("*"):
            if path.is_file() and path.suffix in (".sql", ".yml", ".json", ".csv", ".log", ".txt"):
                text = path.read_text(encoding="utf-8", errors="replace")
                assert CANARY not in text, path
                seen += 1
    assert seen > 20
    compiled = next((b["build"] / "dbt" / "target" / "compiled").rglob("stg_sh__data_resource.sql"))
    assert "env_var(" in compiled.read_text(encoding="utf-8")  # the payload is there, as text
