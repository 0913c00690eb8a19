"""An absent blocking field is a decision, not a default (issue 18): a required field with no source
column — or whose values all crosswalk to ``unknown`` — fails the lint unless the mapping records
``absent: {field: {reason: ...}}`` approved through the review workflow; then its rows get
``unknown`` and the run counts them as absent by decision."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.standards.conftest import STANDARDS, edit as _edit
from tongban.standards.lint import check
from tongban.standards.targets.dbt import staging_sql
from tongban.standards.targets.dictionary import build_dictionary
from tongban.steps.harmonize import source_counts

AH = "mappings/ah/data_resource.yaml"
OPEN = "  open_condition_code: {from: 开放属性, steps: [trim, {crosswalk: open_condition}]}\n"
APPROVED = ('absent:\n  open_condition_code:\n    reason: "安徽的目录不公布开放条件 / the catalogue does not publish it"\n'
            "    status: approved\n    author: li.wei\n    reviewer: zhang.min\n    reviewed_on: 2026-12-01\n")



def _ah_errors(scratch: Path) -> list:
    return [f for f in check(scratch).errors if f.file == f"standards/{AH}"]


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.startswith(text))


def test_a_blocking_coded_field_without_a_column_fails_the_lint(scratch: Path):
    """open_condition_code's code list has 'unknown': before issue 18 the lint let it go unmapped
    and every row published 'unknown' without a word."""
    _edit(scratch / AH, OPEN, "")
    (f,) = _ah_errors(scratch)
    assert "required field 'open_condition_code' is not mapped and no decision says why" in f.message
    assert "absent:" in f.hint and f.line == _line(scratch / AH, "fields:")


def test_an_approved_decision_lets_it_pass_and_rows_get_unknown(scratch: Path):
    _edit(scratch / AH, OPEN, "")
    (scratch / AH).write_text((scratch / AH).read_text(encoding="utf-8") + APPROVED, encoding="utf-8")
    std = check(scratch)
    assert std.errors == []
    m = std.mapping("ah", "data_resource")
    assert m.absent_by_decision() == ["open_condition_code"]
    assert "('unknown')::varchar as \"open_condition_code\"" in staging_sql(std, m)
    page = build_dictionary(std)["sources/ah.html"]  # the source's page states the decision
    assert "absent by decision" in page and "the catalogue does not publish it (approved)" in page


@pytest.mark.parametrize("edit, expected", [
    (("status: approved\n    author: li.wei\n    reviewer: zhang.min\n    reviewed_on: 2026-12-01\n",
      "status: proposed\n    author: li.wei\n"), "the absent decision is proposed, not approved"),
    (("reviewer: zhang.min", "reviewer: li.wei"), "reviewed by its own author"),
    (("    reviewed_on: 2026-12-01\n", ""), "without reviewer and reviewed_on"),
    (("status: approved", "status: rejected"), "no decision says why"),
    (('reason: "安徽的目录不公布开放条件 / the catalogue does not publish it"', 'reason: ""'), "at least 1 character"),
])
def test_the_decision_goes_through_review(scratch: Path, edit: tuple[str, str], expected: str):
    _edit(scratch / AH, OPEN, "")
    (scratch / AH).write_text((scratch / AH).read_text(encoding="utf-8") + APPROVED, encoding="utf-8")
    _edit(scratch / AH, *edit)
    errors = _ah_errors(scratch)
    assert any(expected in f.message for f in errors), [str(f) for f in errors]
    assert all(f.line >= _line(scratch / AH, "absent:") for f in errors)


def test_a_field_without_unknown_cannot_be_absent(scratch: Path):
    _edit(scratch / AH, "  title: {from: 标题, steps: [trim]}\n", "")
    (scratch / AH).write_text((scratch / AH).read_text(encoding="utf-8")
                              + APPROVED.replace("open_condition_code", "title"), encoding="utf-8")
    messages = [f.message for f in _ah_errors(scratch)]
    assert any("required field 'title' cannot be absent" in m for m in messages), messages


def test_a_mapped_field_is_not_also_absent(scratch: Path):
    (scratch / AH).write_text((scratch / AH).read_text(encoding="utf-8") + APPROVED, encoding="utf-8")
    assert any("mapped and absent at once" in f.message for f in _ah_errors(scratch))


def test_values_that_all_crosswalk_to_unknown_are_an_absent_field(scratch: Path):
    cw = scratch / "mappings/ah/crosswalks/open_condition.csv"
    _edit(cw, "无条件开放,unconditional,approved", "无条件开放,unknown,approved")
    _edit(cw, "有条件开放,conditional,approved", "有条件开放,unknown,approved")
    (f,) = _ah_errors(scratch)
    assert "every value crosswalks to 'unknown'" in f.message and f.line == _line(scratch / AH, "  open_condition_code")
    # recorded as a decision (the mapping may keep reading the column), it passes
    (scratch / AH).write_text((scratch / AH).read_text(encoding="utf-8") + APPROVED, encoding="utf-8")
    assert _ah_errors(scratch) == []


def test_the_repository_mappings_need_no_decision():
    assert [str(f) for f in check(STANDARDS).errors] == []


def test_rows_absent_by_decision_are_counted(tmp_path: Path):
    """source_counts over a real DuckDB table shaped like int_<entity>__unioned: the rows that pass
    carry 'unknown' for the absent field, and the count says how many."""
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    issue = "struct(reason varchar, field varchar, value varchar)[]"
    con.execute(f"create schema intermediate; create table intermediate.int_data_resource__unioned "
                f"(source_id varchar, reasons {issue}, note_issues {issue}, crosswalk_version varchar)")
    con.execute("insert into intermediate.int_data_resource__unioned values "
                "('ah', [], [], 'v'), ('ah', [], [], 'v'), "
                "('ah', [{'reason': 'missing_required', 'field': 'title', 'value': null}], [], 'v'), "
                "('sh', [], [], 'v')")
    con.close()
    counts = source_counts(warehouse, "data_resource", absent={"ah": ["open_condition_code"], "sh": []})
    assert counts["ah"]["absent"] == [{"reason": "absent_by_decision", "field": "open_condition_code", "rows": 2,
                                       "severity": "absent"}]
    assert counts["ah"]["notes"] == counts["ah"]["absent"] and counts["sh"]["absent"] == []
