"""The standards as the committee edits them: valid, referentially whole, and in sync with
everything generated from them; mistakes come back as file:line findings with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.standards.conftest import STANDARDS, edit as _edit
from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check
from tongban.standards.generate import out_of_date





def test_repository_standards_are_clean():
    std = check(STANDARDS)
    assert [str(f) for f in std.findings] == []
    assert set(std.entities) >= {"data_resource"}
    assert {m.source_id for m in std.mappings_for("data_resource")} == {"sh", "js", "zj", "ah"}


def test_generated_files_are_in_sync():
    std = check(STANDARDS)
    assert out_of_date(std, PROJECT_ROOT) == [], "run `tongban generate` and commit the result"


def test_misspelt_field_names_file_line_and_suggestion(scratch: Path):
    path = scratch / "mappings" / "js" / "data_resource.yaml"
    _edit(path, "  summary: {from: 资源描述", "  sumary: {from: 资源描述")
    lines = path.read_text(encoding="utf-8").splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if line.startswith("  sumary:"))
    findings = check(scratch).errors
    assert len(findings) == 1
    f = findings[0]
    assert (f.file, f.line) == ("standards/mappings/js/data_resource.yaml", line_no)
    assert "unknown field 'sumary'" in f.message and "did you mean 'summary'" in f.hint


def test_unknown_source_column_is_named(scratch: Path):
    _edit(scratch / "mappings" / "ah" / "data_resource.yaml", "{from: 提供单位,", "{from: 提供部门,")
    (f,) = check(scratch).errors
    assert "提供部门" in f.message and "提供单位" in f.hint


def test_crosswalk_target_outside_code_list(scratch: Path):
    path = scratch / "mappings" / "sh" / "crosswalks" / "open_condition.csv"
    path.write_text("source_value,target_code,status,author,reviewer,reviewed_on\n无条件开放,unconditional,approved,tongban-dev,initial-import,2026-11-27\n有条件开放,conditionel,approved,tongban-dev,initial-import,2026-11-27\n", encoding="utf-8")
    (f,) = check(scratch).errors
    assert (f.file, f.line) == ("standards/mappings/sh/crosswalks/open_condition.csv", 3)
    assert "did you mean 'conditional'" in f.hint


def test_value_mapped_twice_to_different_codes(scratch: Path):
    path = scratch / "mappings" / "ah" / "crosswalks" / "open_condition.csv"
    path.write_text("source_value,target_code,status,author,reviewer,reviewed_on\n无条件开放,unconditional,approved,tongban-dev,initial-import,2026-11-27\n有条件开放,conditional,approved,tongban-dev,initial-import,2026-11-27\n"
                    "无条件开放,conditional,approved,tongban-dev,initial-import,2026-11-27\n", encoding="utf-8")
    (f,) = check(scratch).errors
    assert f.line == 4 and "is mapped to 'unconditional' (line 2)" in f.message


def test_unknown_step_is_refused_not_executed(scratch: Path):
    _edit(scratch / "mappings" / "sh" / "data_resource.yaml", "steps: [trim]}\n  summary",
          "steps: [{sql: \"1); drop table x; --\"}]}\n  summary")
    (f,) = check(scratch).errors
    assert "unknown step 'sql'" in f.message


@pytest.mark.parametrize("bad", ["../../../etc/passwd", "/etc/passwd", "opendata_catalogs/../../x.json"])
def test_delivery_path_cannot_leave_the_inbox(scratch: Path, bad: str):
    _edit(scratch / "mappings" / "zj" / "data_resource.yaml",
          "file: opendata_catalogs/nju-websoft_CNPDS_zhejiang_zhejiang.json", f"file: {bad}")
    (f,) = check(scratch).errors
    assert f.file == "standards/mappings/zj/data_resource.yaml" and "without '..'" in f.message


def test_column_name_with_quote_is_refused(scratch: Path):
    _edit(scratch / "mappings" / "ah" / "data_resource.yaml", "- {name: 摘要信息}", "- {name: '摘要\"信息'}")
    assert any("quotes" in f.message for f in check(scratch).errors)


def test_required_field_left_unmapped(scratch: Path):
    _edit(scratch / "mappings" / "ah" / "data_resource.yaml", "  title: {from: 标题, steps: [trim]}\n", "")
    (f,) = check(scratch).errors
    assert "required field 'title' is not mapped" in f.message


def test_list_step_on_scalar_field(scratch: Path):
    _edit(scratch / "mappings" / "sh" / "data_resource.yaml", "title: {from: 数据集名称, steps: [trim]}",
          "title: {from: 数据集名称, steps: [{split: [',']}]}")
    (f,) = check(scratch).errors
    assert "field 'title' is varchar but its steps give a list" in f.message


def test_broken_yaml_reports_line(scratch: Path):
    path = scratch / "code_lists" / "domain.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "  - {code: x, zh: [unclosed\n", encoding="utf-8")
    f = check(scratch).errors[0]
    assert f.file == "standards/code_lists/domain.yaml" and "not valid YAML" in f.message and f.line > 1


def test_all_three_entities_are_mapped_by_every_province():
    std = check(STANDARDS)
    for entity in ("data_resource", "birth_registration", "business_license"):
        assert {m.source_id for m in std.mappings_for(entity)} == {"sh", "js", "zj", "ah"}
    assert std.entities["birth_registration"].pii == {
        "birth_certificate_number": "id_number", "child_name": "name", "mother_name": "name",
        "mother_id_number": "id_number", "father_id_number": "id_number", "contact_phone": "phone"}
    assert len(std.code_lists["ethnicity"].codes) == 56  # GB 3304: 97/98 are local extensions, not codes


@pytest.mark.parametrize("old,new,expected", [
    # personal data may never be listed as code values
    ("    pii: name\n    label: {zh: 新生儿姓名", "    pii: name\n    code_list: sex\n    label: {zh: 新生儿姓名",
     "a pii field must be varchar without a code list"),
    ("    id_field: mother_id_number", "    id_field: mother_id", "unknown field 'mother_id'"),
    ("    validator: gbt2260\n    division_level: county\n    label: {zh: 出生地",
     "    division_level: county\n    label: {zh: 出生地", "division_level applies only with validator: gbt2260"),
    ("    validator: gb11643\n    pii: id_number\n    label: {zh: 母亲",
     "    validator: gb11643x\n    pii: id_number\n    label: {zh: 母亲", "validator: Input should be"),
])
def test_entity_mistakes_are_refused(scratch: Path, old: str, new: str, expected: str):
    _edit(scratch / "entities" / "birth_registration.yaml", old, new)
    findings = check(scratch).errors
    assert findings and any(expected in f.message for f in findings), [str(f) for f in findings]


@pytest.mark.parametrize("old,new,expected", [
    ("{parse_amount: 万元}", "{parse_amount: 千元}", "needs the delivery's unit"),
    ("{match_code: entity_type}", "{match_code: license_status}", "uses code list 'entity_type'"),
    ("{parse_amount: 万元}", "trim", "is a number (decimal(20,2)): end its steps with"),
])
def test_mapping_step_mistakes_are_refused(scratch: Path, old: str, new: str, expected: str):
    _edit(scratch / "mappings" / "ah" / "business_license.yaml", old, new)
    findings = check(scratch).errors
    assert findings and any(expected in f.message for f in findings), [str(f) for f in findings]


@pytest.mark.parametrize("old,new,expected", [
    ("无条件开放,unconditional,approved,tongban-dev,initial-import,2026-11-27",
     "无条件开放,unconditional,approved,tongban-dev,,", "is approved without reviewer and reviewed_on"),
    ("无条件开放,unconditional,approved,tongban-dev,initial-import,2026-11-27",
     "无条件开放,unconditional,approved,tongban-dev,tongban-dev,2026-11-27", "reviewed by its own author"),
    ("无条件开放,unconditional,approved,tongban-dev,initial-import,2026-11-27",
     "无条件开放,unconditional,aproved,tongban-dev,initial-import,2026-11-27", "is not a review status"),
    ("无条件开放,unconditional,approved,tongban-dev,initial-import,2026-11-27",
     "无条件开放,unconditional,approved,tongban-dev,initial-import,27.11.2026", "is not a date"),
    ("开放网站,unconditional,proposed,tongban-dev,,", "开放网站,unconditional,proposed,,,", "has no author"),
    ("开放网站,unconditional,proposed,tongban-dev,,", "开放网站,not_open,proposed,tongban-dev,,", "is mapped to"),
    ("source_value,target_code,status,author,reviewer,reviewed_on", "source_value,target_code",
     "has no review columns"),
])
def test_crosswalk_review_mistakes_name_the_line(scratch: Path, old: str, new: str, expected: str):
    path = scratch / "mappings" / "zj" / "crosswalks" / "open_condition.csv"
    if expected == "is mapped to":  # a second entry for the same value with another code
        text = path.read_text(encoding="utf-8")
        path.write_text(text + new + "\n", encoding="utf-8")
        expected = "'开放网站' is mapped to 'unconditional'"
    else:
        _edit(path, old, new)
    lines = path.read_text(encoding="utf-8").splitlines()
    findings = check(scratch).errors
    hit = [f for f in findings if expected in f.message]
    assert hit, [str(f) for f in findings]
    f = hit[0]
    assert f.file == "standards/mappings/zj/crosswalks/open_condition.csv" and f.hint
    if "review columns" not in expected:
        assert new.split(",")[0] in lines[f.line - 1]


def test_a_rejected_entry_may_stand_beside_its_replacement(scratch: Path):
    path = scratch / "mappings" / "zj" / "crosswalks" / "open_condition.csv"
    path.write_text(path.read_text(encoding="utf-8") + "开放网站,not_open,rejected,李委员,王委员,2026-11-20\n",
                    encoding="utf-8")
    assert check(scratch).errors == []
