"""Issue 18's "done when": `tongban standards propose` on a city catalogue writes a mapping that
passes the lint after review. 淮南's catalogue (read from ../shared/reference, never copied) is
proposed as a new source against the repository's standards without 淮南's own mapping, refused by
the lint while proposed, reviewed as docs/committee.md's "Add a new source" says — every field, the
proposed absent decision and each crosswalk row approved by another member — and then clean. The
review's choices agree with the mapping the committee committed for 淮南."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tongban.cli import main
from tongban.common.config import PROJECT_ROOT, settings
from tongban.standards.lint import check

CATALOGUE = "opendata_catalogs/cqsss_ChinaOpenDataPortal_anhui_huainan.json"
REVIEW = 'reviewer: "li.wei", reviewed_on: "2026-12-04"'


def _errors(root: Path) -> list[str]:
    return [str(f) for f in check(root).findings if f.severity == "error"]


@pytest.fixture
def proposed(tmp_path: Path, monkeypatch, capsys) -> tuple[Path, str]:
    reference = settings().reference_dir
    if not (reference / CATALOGUE).is_file():
        pytest.fail(f"no reference catalogue {CATALOGUE} under {reference}: set TONGBAN_REFERENCE_DIR to "
                    "../shared/reference (the proposal is made on it; this test is never skipped)")
    scratch = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", scratch)
    shutil.rmtree(scratch / "mappings" / "ah_huainan")  # a new source: nothing of 淮南 is known
    monkeypatch.setenv("TONGBAN_STANDARDS_DIR", str(scratch))
    code = main(["standards", "propose", str(reference / CATALOGUE), "--source", "ah_huainan", "--province", "34"])
    assert code == 0
    return scratch, capsys.readouterr().out


def _review(scratch: Path) -> None:
    """What the reviewer writes: status approved with their name on every proposed field, absent
    decision and crosswalk row (the proposal's author is tongban-propose)."""
    mapping = scratch / "mappings" / "ah_huainan" / "data_resource.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert "status: proposed" in text
    mapping.write_text(re.sub(r'status: proposed, author: "tongban-propose"\}',
                              f'status: approved, author: "tongban-propose", {REVIEW}}}', text), encoding="utf-8")
    for cw in (scratch / "mappings" / "ah_huainan" / "crosswalks").glob("*.csv"):
        cw.write_text(cw.read_text(encoding="utf-8").replace(",proposed,tongban-propose,,",
                                                             ",approved,tongban-propose,li.wei,2026-12-04"),
                      encoding="utf-8")


def test_the_proposal_says_why_and_what_else_was_considered(proposed: tuple[Path, str]):
    """Above each field its confidence, reason and runners-up; the terminal report names each
    field's column and what is left: the columns no field took, the values no crosswalk proposes."""
    scratch, report = proposed
    text = (scratch / "mappings" / "ah_huainan" / "data_resource.yaml").read_text(encoding="utf-8")
    assert "  # title ← 标题 (confidence " in text and "  #   runner-up " in text
    assert "  # update_frequency_code: no column proposed — " in text
    assert "open_condition_code" in report and "开放属性" in report and "unmapped columns:" in report
    assert "open_condition_code: 2 value(s) with no crosswalk proposal" in report  # 无条件开发, 有条件开发


def test_a_proposed_city_mapping_passes_the_lint_once_reviewed(proposed: tuple[Path, str]):
    proposed, _ = proposed
    errors = _errors(proposed)
    mine = [e for e in errors if "mappings/ah_huainan/" in e]
    assert mine == errors and errors  # the proposal is refused until reviewed, and nothing else is
    assert any("is a proposed mapping of a blocking field" in e for e in errors)
    assert any("'update_frequency_code'" in e and "absent decision is proposed" in e for e in errors)
    _review(proposed)
    assert _errors(proposed) == []
    std = check(proposed)
    m, committed = std.mapping("ah_huainan", "data_resource"), check(PROJECT_ROOT / "standards").mapping(
        "ah_huainan", "data_resource")
    assert m.absent_by_decision() == ["update_frequency_code"] == committed.absent_by_decision()
    # the proposal's columns are the committee's (publisher_division_code, a constant, is the review's own)
    assert {f: fm.source for f, fm in m.fields.items()} == \
        {f: fm.source for f, fm in committed.fields.items() if fm.source is not None}


def test_the_review_is_four_eyes(proposed: tuple[Path, str]):
    proposed, _ = proposed
    _review(proposed)
    mapping = proposed / "mappings" / "ah_huainan" / "data_resource.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace('reviewer: "li.wei"', 'reviewer: "tongban-propose"'),
                       encoding="utf-8")
    assert any("reviewed by its own author" in e for e in _errors(proposed))
