"""Semantic versions of the standard: a change since a git ref needs a version bump as large as
the change (major for breaking ones), named on the file:line of `version:`."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from tongban.common.config import PROJECT_ROOT
from tongban.standards.gitref import GitRefError, resolve, standards_at
from tongban.standards.load import Standards, load_standards
from tongban.standards.versioning import (
    Change,
    VersionDecrease,
    bump_of,
    bumped,
    check_against,
    classify,
    format_changes,
    version_findings,
)

STANDARDS = PROJECT_ROOT / "standards"
GIT = ["git", "-c", "user.email=committee@example.org", "-c", "user.name=Committee", "-c", "commit.gpgsign=false"]


def _version(path: Path) -> str:
    """The version an entity file has now (the tests ask for the bump from it)."""
    return re.search(r"^version: (\S+)$", path.read_text(encoding="utf-8"), re.M).group(1)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A throwaway git repo holding a copy of the standards, committed once."""
    root = tmp_path / "repo"
    shutil.copytree(STANDARDS, root / "standards", ignore=shutil.ignore_patterns("schema"))
    _git(root, "init", "-q")
    _git(root, "add", "standards")
    _git(root, "commit", "-q", "-m", "standards v1")
    return root


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def _set_version(path: Path, version: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^version: \S+$", f"version: {version}", text, count=1)
    assert n == 1
    path.write_text(new, encoding="utf-8")


def _line(path: Path, prefix: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.startswith(prefix))


def _remove_field(path: Path, name: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(rf"(?ms)^  - name: {name}\n.*?(?=^  - name: |^\S)", "", text, count=1)
    assert n == 1
    path.write_text(new, encoding="utf-8")


def _against(repo: Path) -> tuple[list[Change], list]:
    changes, findings = check_against("HEAD", repo / "standards", repo)
    return changes, findings


ENTITY = "standards/entities/data_resource.yaml"
NEW_OPTIONAL = "  - name: landing_page\n    type: varchar\n    label: {zh: 详情页, en: Landing page}\n"


# ---- against a git ref ---------------------------------------------------------------------------

def test_removed_field_without_major_bump_is_an_error_on_the_version_line(repo: Path):
    path = repo / ENTITY
    _remove_field(path, "summary")
    changes, findings = _against(repo)
    assert [(c.subject, c.level, c.what) for c in changes] == [
        ("entity data_resource", "major", "field 'summary' removed")]
    (f,) = findings
    assert (f.file, f.line, f.severity) == (ENTITY, _line(path, "version:"), "error")
    assert "breaking change without a major version bump" in f.message and "field 'summary' removed" in f.message
    assert f.hint == "set version: 2.0.0"


def test_removed_field_with_major_bump_is_fine(repo: Path):
    _remove_field(repo / ENTITY, "summary")
    _set_version(repo / ENTITY, "2.0.0")
    changes, findings = _against(repo)
    assert [c.level for c in changes] == ["major"]
    assert findings == []


def test_new_optional_field_needs_a_minor_bump(repo: Path):
    path = repo / ENTITY
    _edit(path, "  - name: keywords\n", NEW_OPTIONAL + "  - name: keywords\n")
    changes, findings = _against(repo)
    assert [(c.level, c.what, c.line) for c in changes] == [
        ("minor", "new optional field 'landing_page'", _line(path, "  - name: landing_page"))]
    (f,) = findings
    minor = bumped(_version(path), "minor")
    assert f.severity == "warning" and f.line == _line(path, "version:") and f.hint == f"set version: {minor}"
    assert "without a minor version bump" in f.message and "landing_page" in f.message

    _set_version(path, minor)
    assert _against(repo)[1] == []


def test_removing_a_code_is_major_for_the_code_list_and_the_entities_using_it(repo: Path):
    sex = repo / "standards" / "code_lists" / "sex.yaml"
    _edit(sex, '  - {code: "9", zh: 未说明的性别, en: Not stated}\n', "")
    changes, findings = _against(repo)
    levels = {(c.subject, c.level) for c in changes}
    assert levels == {("code list sex", "major"), ("entity birth_registration", "major")}
    entity_change = next(c for c in changes if c.subject == "entity birth_registration")
    assert "'9'" in entity_change.what and "child_sex_code" in entity_change.what
    assert entity_change.line == _line(repo / "standards/entities/birth_registration.yaml", "  - name: child_sex_code")
    by_file = {f.file: f for f in findings}
    assert set(by_file) == {"standards/code_lists/sex.yaml", "standards/entities/birth_registration.yaml"}
    assert all(f.severity == "error" for f in findings)
    assert by_file["standards/code_lists/sex.yaml"].hint == "set version: 2.0.0"  # from 1.0.0
    assert by_file["standards/entities/birth_registration.yaml"].hint == "set version: 3.0.0"  # from 2.0.0
    assert "code '9' removed" in by_file["standards/code_lists/sex.yaml"].message


def test_adding_a_code_is_minor_for_the_code_list_and_its_users(repo: Path):
    sex = repo / "standards" / "code_lists" / "sex.yaml"
    _edit(sex, '  - {code: "9",', '  - {code: "5", zh: 未确定, en: Undetermined}\n  - {code: "9",')
    _set_version(sex, "1.1.0")
    changes, findings = _against(repo)
    assert {(c.subject, c.level) for c in changes} == {("code list sex", "minor"), ("entity birth_registration", "minor")}
    (f,) = findings
    assert f.file == "standards/entities/birth_registration.yaml" and f.severity == "warning"


def test_a_version_going_down_is_an_error(repo: Path):
    sex = repo / "standards" / "code_lists" / "sex.yaml"
    _set_version(sex, "0.9.0")
    changes, findings = _against(repo)
    assert changes == []
    (f,) = findings
    assert (f.file, f.line, f.severity) == ("standards/code_lists/sex.yaml", _line(sex, "version:"), "error")
    assert "went down from 1.0.0 to 0.9.0" in f.message


def test_mapping_and_crosswalk_changes_are_minor_for_the_mapping(repo: Path):
    mapping = repo / "standards" / "mappings" / "js" / "birth_registration.yaml"
    _edit(mapping, "child_name: {from: XM, steps: [trim]}", "child_name: {from: XM, steps: [trim, upper]}")
    cw = repo / "standards" / "mappings" / "js" / "crosswalks" / "birth_service.csv"
    cw.write_text(cw.read_text(encoding="utf-8") + "XX,hukou,proposed,someone,,\n", encoding="utf-8")
    changes, findings = _against(repo)
    assert {(c.subject, c.level, c.file) for c in changes} == {
        ("mapping js/birth_registration", "minor", "standards/mappings/js/birth_registration.yaml"),
        ("mapping js/birth_registration", "minor", "standards/mappings/js/crosswalks/birth_service.csv")}
    (f,) = findings
    assert f.severity == "warning" and f.file == "standards/mappings/js/birth_registration.yaml"
    _set_version(mapping, "1.2.0")  # from 1.1.0
    assert _against(repo)[1] == []


def test_label_change_is_patch(repo: Path):
    _edit(repo / ENTITY, "label: {zh: 摘要, en: Summary}", "label: {zh: 摘要, en: Abstract}")
    changes, findings = _against(repo)
    assert [(c.level, c.what) for c in changes] == [("patch", "label of field 'summary' changed")]
    assert [f.hint for f in findings] == [f"set version: {bumped(_version(repo / ENTITY), 'patch')}"]


def test_old_standards_that_do_not_load_are_compared_as_far_as_they_go(repo: Path):
    sex = repo / "standards" / "code_lists" / "sex.yaml"
    _edit(sex, "codes:", "codez:")
    _git(repo, "commit", "-q", "-am", "broken")
    _edit(sex, "codez:", "codes:")
    changes, findings = _against(repo)
    assert ("code list sex", "minor") in {(c.subject, c.level) for c in changes}
    assert any("do not load cleanly" in f.message and f.severity == "warning" for f in findings)
    assert not [f for f in findings if f.severity == "error"]


# ---- git refs ----------------------------------------------------------------------------------

def test_unknown_ref_is_named(repo: Path):
    with pytest.raises(GitRefError, match="no-such-branch"):
        check_against("no-such-branch", repo / "standards", repo)


def test_not_a_git_repository(tmp_path: Path):
    with pytest.raises(GitRefError, match="not a git repository"):
        resolve("HEAD", tmp_path)


def test_ref_without_standards(repo: Path):
    (repo / "README").write_text("x\n", encoding="utf-8")
    _git(repo, "rm", "-rq", "--cached", "standards")
    _git(repo, "add", "README")
    _git(repo, "commit", "-q", "-m", "no standards")
    with pytest.raises(GitRefError, match="no standards/ directory"):
        with standards_at("HEAD", repo):
            pass


def test_standards_at_yields_a_loadable_copy_and_removes_it(repo: Path):
    sha = resolve("HEAD", repo)
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    _remove_field(repo / ENTITY, "summary")  # the working tree differs; the ref does not
    with standards_at(sha, repo) as path:
        assert path.name == "standards"
        std = load_standards(path)
        assert "summary" in [f.name for f in std.entities["data_resource"].fields]
        assert std.raw  # keys like the working tree's: standards/...
    assert not path.exists()


# ---- the rule table, without git ------------------------------------------------------------------

@pytest.fixture(scope="module")
def base() -> Standards:
    return load_standards(STANDARDS)


def _with_field(std: Standards, entity: str, field: str, **update) -> Standards:
    ent = std.entities[entity]
    fields = [f.model_copy(update=update) if f.name == field else f for f in ent.fields]
    return replace(std, entities={**std.entities, entity: ent.model_copy(update={"fields": fields})})


@pytest.mark.parametrize("entity,field,update,level", [
    ("data_resource", "summary", {"type": "date"}, "major"),
    ("data_resource", "summary", {"required": True}, "major"),
    ("data_resource", "title", {"required": False}, "minor"),
    ("data_resource", "summary", {"code_list": "domain"}, "major"),
    ("business_license", "industry_code", {"validator": None}, "minor"),
    ("data_resource", "summary", {"validator": "gb32100"}, "major"),
    ("business_license", "registered_capital_yuan", {"min": 1000.0}, "major"),
    ("business_license", "registered_capital_yuan", {"min": 1.0}, "minor"),
    ("business_license", "registered_capital_yuan", {"max": 1e9}, "major"),
    ("business_license", "registered_capital_yuan", {"max": None}, "minor"),
    ("business_license", "established_date", {"not_future": False}, "minor"),
    ("birth_registration", "birth_date", {"unique": True}, "major"),
    ("data_resource", "summary", {"pii": "name"}, "major"),
    ("business_license", "legal_representative", {"pii": None}, "major"),
    ("data_resource", "domain_code", {"on_unmapped": "quarantine"}, "major"),
    ("data_resource", "open_condition_code", {"on_unmapped": "unknown"}, "minor"),
    ("data_resource", "summary", {"on_invalid": "null"}, "minor"),
    ("data_resource", "summary", {"gate": "warning"}, "minor"),
])
def test_field_attribute_rules(base: Standards, entity: str, field: str, update: dict, level: str):
    changes = classify(base, _with_field(base, entity, field, **update))
    assert [(c.subject, c.level) for c in changes] == [(f"entity {entity}", level)], changes
    assert field in changes[0].what


def test_key_and_rule_changes(base: Standards):
    ent = base.entities["business_license"]
    no_rules = replace(base, entities={**base.entities, "business_license": ent.model_copy(
        update={"rules": [], "key": "uscc"})})
    assert {(c.level, c.what) for c in classify(base, no_rules)} == {
        ("major", "key changed from 'license_id' to 'uscc'"),
        ("minor", "rule uscc_region_agrees (reason uscc_region_mismatch) removed")}
    assert {(c.level, c.what.split(" (")[0]) for c in classify(no_rules, base)} == {
        ("major", "key changed from 'uscc' to 'license_id'"),
        ("major", "rule uscc_region_agrees")}


def test_entity_added_and_removed(base: Standards):
    fewer = replace(base, entities={k: v for k, v in base.entities.items() if k != "business_license"})
    assert [(c.level, c.what) for c in classify(base, fewer)] == [("major", "entity removed")]
    assert [(c.level, c.what) for c in classify(fewer, base)] == [("minor", "entity added")]
    assert version_findings(base, fewer, classify(base, fewer)) == []  # nothing left to version


@pytest.mark.parametrize("old,new,bump", [
    ("1.0.0", "1.0.0", None), ("1.0.0", "1.0.1", "patch"), ("1.0.9", "1.1.0", "minor"),
    ("1.9.9", "2.0.0", "major"), ("1.2.3", "3.0.0", "major"), ("1.2.3", "1.10.0", "minor"),
])
def test_bump_of(old: str, new: str, bump: str | None):
    assert bump_of(old, new) == bump


def test_bump_of_refuses_a_decrease():
    with pytest.raises(VersionDecrease, match="went down"):
        bump_of("1.10.0", "1.9.0")
    assert (bumped("1.4.2", "major"), bumped("1.4.2", "minor"), bumped("1.4.2", "patch")) == \
        ("2.0.0", "1.5.0", "1.4.3")


def test_format_changes():
    assert "no changes" in format_changes([])
    text = format_changes([Change("entity data_resource", "major", "field 'summary' removed", ENTITY, 12),
                           Change("code list sex", "minor", "code '5' added", "standards/code_lists/sex.yaml", 9)])
    lines = text.splitlines()
    assert lines[0].split() == ["subject", "level", "what", "where"]
    assert lines[2].startswith("entity data_resource  major  field 'summary' removed")
    assert lines[2].endswith(f"{ENTITY}:12") and lines[3].endswith("standards/code_lists/sex.yaml:9")
