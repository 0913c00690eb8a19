"""Mappings are data, not code: every argument a committee member writes reaches SQL only as a
quoted literal or a validated, quoted identifier, and paths stay inside the inbox. Each attempt
below is either refused with a clear file:line error or comes out as inert text."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tongban.config import PROJECT_ROOT
from tongban.standards.check import check
from tongban.standards.dbtgen import compile_field
from tongban.standards.models import Mapping

STD = check(PROJECT_ROOT / "standards")
PAYLOADS = ["x'); drop table t; --", "'||(select 42)||'", "\\'; select 1; --", "$$ copy t to '/tmp/x' $$",
            "{{ run_query('drop table t') }}", "ユニ'\"`;"]


def _run(steps: list, values: list[str | None], columns: tuple[str, ...] = ("列",)) -> list:
    m = Mapping.model_validate({
        "source_id": "t1", "entity": "data_resource", "province_code": "31", "version": "1.0.0",
        "standard_version": "1.0.0", "label": {"zh": "测试", "en": "test"},
        "delivery": {"file": "x.json", "columns": [{"name": c} for c in columns]}, "identity": [columns[0]],
        "fields": {"summary": {"from": columns[0], "steps": steps}}})
    c = compile_field(STD, m, STD.entities["data_resource"].field("summary"))
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
    # a regex that is a payload matches itself literally where it is plain text, and never executes
    assert _run([{"remove_regex": "drop"}], [payload]) == [payload.replace("drop", "").strip() or None]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_values_and_null_markers_stay_text(payload: str):
    assert _run(["trim"], [payload]) == [payload.strip()]
    assert _run([{"concat": ["列2"]}], ["a"], columns=("列", "列2")) == ["a a"]


def test_concat_appends_other_columns():
    assert _run(["trim", {"concat": ["区县", "街道"]}], ["杭州市", None], columns=("列", "区县", "街道")) == \
        ["杭州市 杭州市 杭州市", None]


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
    ("source_id: js", "source_id: js; drop table x", "source_id"),
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
