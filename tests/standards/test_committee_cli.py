"""The committee's versioning check as a member runs it: `tongban standards check --against HEAD`
after removing a field from the standard."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tongban.cli import main
from tongban.common.config import PROJECT_ROOT


@pytest.fixture
def without_summary(tmp_path: Path) -> Path:
    """HEAD's standards with the field `summary` removed from data_resource and its mappings."""
    from tongban.standards.gitref import standards_at

    scratch = tmp_path / "standards"
    with standards_at("HEAD", PROJECT_ROOT) as head:
        shutil.copytree(head, scratch)
    entity = scratch / "entities" / "data_resource.yaml"
    text = entity.read_text(encoding="utf-8")
    entity.write_text(re.sub(r"  - name: summary\n(    .*\n)+?(?=  - name: )", "", text), encoding="utf-8")
    for m in (scratch / "mappings").glob("*/data_resource.yaml"):
        m.write_text("".join(line for line in m.read_text(encoding="utf-8").splitlines(keepends=True)
                             if not line.startswith("  summary:")), encoding="utf-8")
    return scratch


def _check(scratch: Path, capsys, monkeypatch) -> tuple[int, dict]:
    monkeypatch.setenv("TONGBAN_STANDARDS_DIR", str(scratch))
    code = main(["standards", "check", "--against", "HEAD", "--no-coverage", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_removing_a_field_without_a_major_bump_fails(without_summary: Path, capsys, monkeypatch):
    code, out = _check(without_summary, capsys, monkeypatch)
    assert code == 1
    (f,) = [f for f in out["findings"] if "breaking change without a major version bump" in f["message"]]
    assert f["file"] == "standards/entities/data_resource.yaml" and "summary" in f["message"]
    lines = (without_summary / "entities" / "data_resource.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[f["line"] - 1].startswith("version:") and "2.0.0" in f["hint"]
    assert any(c["level"] == "major" and "summary" in c["what"] for c in out["changes"])


def test_with_a_major_bump_the_change_is_accepted(without_summary: Path, capsys, monkeypatch):
    entity = without_summary / "entities" / "data_resource.yaml"
    entity.write_text(re.sub(r"(?m)^version: .*$", "version: 2.0.0", entity.read_text(encoding="utf-8"), count=1),
                      encoding="utf-8")
    for m in (without_summary / "mappings").glob("*/data_resource.yaml"):
        text = m.read_text(encoding="utf-8").replace("standard_version: 1.0.0", "standard_version: 2.0.0")
        m.write_text(text.replace("\nversion: 1.0.0", "\nversion: 1.1.0"), encoding="utf-8")
    code, out = _check(without_summary, capsys, monkeypatch)
    assert not [f for f in out["findings"] if f["severity"] == "error"], out["findings"]
    # the generated models must follow (`tongban generate`): the check says so
    assert code == 1 and any("data_resource" in p for p in out["stale_generated_files"])


def test_refs_from_before_the_review_columns_still_compare(tmp_path: Path):
    """Crosswalks at an old ref have no review columns; they are read as the approved entries
    they were, so `--against` an old ref compares cleanly."""
    import csv
    import io
    import subprocess

    from tongban.standards.versioning import check_against

    repo = tmp_path / "repo"
    shutil.copytree(PROJECT_ROOT / "standards", repo / "standards")
    new_files = {p: p.read_text(encoding="utf-8") for p in (repo / "standards").glob("mappings/*/crosswalks/*.csv")}
    for p, text in new_files.items():  # the old, two-column shape
        rows = list(csv.reader(io.StringIO(text)))
        p.write_text("".join(f"{r[0]},{r[1]}\n" for r in rows), encoding="utf-8")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "old"], check=True)
    for p, text in new_files.items():
        p.write_text(text, encoding="utf-8")
    changes, findings = check_against("HEAD", repo / "standards", repo)
    assert not [f for f in findings if "do not load cleanly" in f.message], [str(f) for f in findings]
    assert not [f for f in findings if f.severity == "error"]
