"""The committee's impact preview on the real catalogues: change a crosswalk entry and a mapping,
read what the change would do before it runs — and nothing is published."""

from __future__ import annotations


import pytest

from tongban.config import settings


@pytest.fixture(scope="module")
def preview(tmp_path_factory) -> dict:
    """Against HEAD: 浙江's proposed entry 开放网站 is approved, and its frequency step loses the
    rule that strips the "(更新说明:...)" note."""
    import shutil

    from tongban.cli import main
    from tongban.standards.gitref import standards_at

    s = settings()
    scratch = tmp_path_factory.mktemp("impact") / "standards"
    with standards_at("HEAD", s.project_root) as head:
        shutil.copytree(head, scratch)
    cw = scratch / "mappings" / "zj" / "crosswalks" / "open_condition.csv"
    text = cw.read_text(encoding="utf-8")
    entry = "\n开放网站,unconditional,proposed,tongban-dev,,\n"  # whole line: 依托于开放网站 stays proposed
    assert entry in text
    cw.write_text(text.replace(entry, "\n开放网站,unconditional,approved,tongban-dev,张委员,2026-11-27\n"),
                  encoding="utf-8")
    mapping = scratch / "mappings" / "zj" / "data_resource.yaml"
    text = mapping.read_text(encoding="utf-8")
    old = "steps: [trim, {remove_regex: '\\(更新说明:[^)]*\\)$'}, {crosswalk: update_frequency}]"
    assert old in text
    mapping.write_text(text.replace(old, "steps: [trim, {crosswalk: update_frequency}]"), encoding="utf-8")
    md = tmp_path_factory.mktemp("impact-md") / "impact.md"
    exchange_before = sorted(p.name for p in s.exchange_dir.rglob("*")) if s.exchange_dir.exists() else []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGBAN_STANDARDS_DIR", str(scratch))
        code = main(["standards", "impact", "--against", "HEAD", "--markdown", str(md)])
    assert code == 0
    exchange_after = sorted(p.name for p in s.exchange_dir.rglob("*")) if s.exchange_dir.exists() else []
    return {"markdown": md.read_text(encoding="utf-8"), "exchange": (exchange_before, exchange_after)}


def test_only_the_changed_source_is_rebuilt_and_rows_leave_quarantine(preview):
    md = preview["markdown"]
    assert "| data_resource | zj | 1309 |" in md
    assert "| data_resource | sh |" not in md and "| data_resource | js |" not in md
    row = next(line for line in md.splitlines() if line.startswith("| data_resource | zj |"))
    before, after = (int(x) for x in row.split("|")[4:6])
    assert after - before == 724
    assert "| out of | `mapping_not_approved:open_condition_code` | 724 |" in md


def test_value_changes_are_counted_per_field(preview):
    md = preview["markdown"]
    line = next(x for x in md.splitlines() if x.startswith("| update_frequency_code |"))
    # without the rule, a frequency carrying its note no longer maps
    assert "→ `unknown`" in line and int(line.split("|")[2]) > 100
    line = next(x for x in md.splitlines() if x.startswith("| open_condition_code |"))
    assert "∅ → `unconditional` ×724" in line


def test_the_preview_publishes_nothing(preview):
    before, after = preview["exchange"]
    assert before == after
