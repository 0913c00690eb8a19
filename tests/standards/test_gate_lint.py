"""The committee's gate thresholds (``gate:`` per entity, overridden per mapping with a reason): the
lint refuses a share outside [0, 1] and an override without its reason, each at file:line; what a
source's limit is, and where it comes from, is one function (tongban.standards.gate)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tongban.common.config import PROJECT_ROOT
from tongban.standards.gate import ENTITY_DEFAULT, NO_LIMIT, breaches, threshold_for
from tongban.standards.lint import check

ENTITY = "entities/business_license.yaml"
MAPPING = "mappings/sh/business_license.yaml"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    dst = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", dst)
    return dst


def _set_gate(path: Path, section: str, before: str) -> int:
    """Replace (or add, before the line starting with ``before``) the file's ``gate:`` section;
    the line number of its first line."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^gate:\n(?:  .*\n)*", "", text)
    at = re.search(rf"(?m)^{before}", text).start()
    path.write_text(text[:at] + section + text[at:], encoding="utf-8")
    return text[:at].count("\n") + 1


def test_entity_threshold_outside_zero_one_is_refused_at_its_line(scratch: Path):
    first = _set_gate(scratch / ENTITY, "gate:\n  max_quarantine_share: 20\n  max_share_by_rule: {unmapped_code: -0.1}\n",
                      "fields:")
    found = sorted((f.file, f.line, f.message) for f in check(scratch).errors)
    assert [(file, line) for file, line, _ in found] == [(f"standards/{ENTITY}", first + 1),
                                                         (f"standards/{ENTITY}", first + 2)]
    assert "max_quarantine_share is 20" in found[0][2] and "between 0 and 1" in found[0][2]
    assert "max_share_by_rule unmapped_code is -0.1" in found[1][2]


def test_override_without_reason_is_refused_at_its_line(scratch: Path):
    first = _set_gate(scratch / MAPPING, "gate:\n  max_quarantine_share: 0.5\n", "fields:")
    (f,) = check(scratch).errors
    assert (f.file, f.line) == (f"standards/{MAPPING}", first)
    assert "reason" in f.message and "reason:" in f.hint


def test_override_outside_zero_one_is_refused_even_with_a_reason(scratch: Path):
    first = _set_gate(scratch / MAPPING, "gate:\n  reason: too many\n  max_quarantine_share: 1.5\n", "fields:")
    (f,) = check(scratch).errors
    assert (f.file, f.line) == (f"standards/{MAPPING}", first + 2) and "1.5" in f.message


def test_a_misspelt_key_is_named(scratch: Path):
    first = _set_gate(scratch / ENTITY, "gate:\n  max_quarantine_shar: 0.2\n", "fields:")
    f = check(scratch).errors[0]  # (the entity does not load: its mappings are named after it)
    assert (f.file, f.line) == (f"standards/{ENTITY}", first + 1)
    assert "max_quarantine_shar" in f.message and "max_quarantine_share" in f.hint


def test_threshold_for_says_where_the_limit_comes_from(scratch: Path):
    _set_gate(scratch / ENTITY, "gate:\n  max_quarantine_share: 0.2\n  max_share_by_rule: {unmapped_code: 0.05}\n",
              "fields:")
    _set_gate(scratch / MAPPING, "gate:\n  reason: 上海 sends its old district codes until March\n"
                                 "  max_share_by_rule: {unmapped_code: 0.3}\n", "fields:")
    std = check(scratch)
    assert std.errors == []
    assert threshold_for(std, "business_license", "js") == (0.2, ENTITY_DEFAULT)
    assert threshold_for(std, "business_license", "sh") == (0.2, ENTITY_DEFAULT)  # the override names a rule only
    assert threshold_for(std, "business_license", "nowhere") == (0.2, ENTITY_DEFAULT)
    # over the entity's rule cap for js, not for sh (its override), both under the share
    assert [str(b) for b in breaches(std, "business_license", "js", 100, 10, {"unmapped_code": 10})] == [
        "share quarantined for unmapped_code 10.0% over the limit 5.0% (entity default) by 5.0 points"]
    assert breaches(std, "business_license", "sh", 100, 10, {"unmapped_code": 10}) == []
    _set_gate(scratch / MAPPING, "gate:\n  reason: r\n  max_quarantine_share: 0.95\n", "fields:")
    std = check(scratch)
    assert threshold_for(std, "business_license", "sh") == (0.95, "sh override")
    (b,) = breaches(std, "business_license", "js", 1000, 931, {})
    assert str(b) == "quarantine share 93.1% over the limit 20.0% (entity default) by 73.1 points"


def test_no_gate_section_means_no_limit(scratch: Path):
    _set_gate(scratch / ENTITY, "", "fields:")
    std = check(scratch)
    assert threshold_for(std, "business_license", "js") == (1.0, NO_LIMIT)
    assert breaches(std, "business_license", "js", 10, 10, {"x": 10}) == []


#: 浙江's catalogue as measured on 2026-12-04 (docs/committee.md): 1309 rows, 1218 quarantined
ZJ = dict(delivered=1309, quarantined=1218, by_reason={"mapping_not_approved": 754, "unmapped_code": 464})


def test_zhejiang_is_published_only_by_the_committee_override(scratch: Path):
    """The decision the committee wrote down: without 浙江's override its catalogue is held."""
    std = check(PROJECT_ROOT / "standards")
    assert threshold_for(std, "data_resource", "zj") == (0.95, "zj override")
    assert breaches(std, "data_resource", "zj", **ZJ) == []
    # anything beyond its two reasons holds it again
    assert [b.what for b in breaches(std, "data_resource", "zj", 1309, 1260,
                                     {**ZJ["by_reason"], "missing_required": 42})] == ["quarantine share"]
    _set_gate(scratch / "mappings" / "zj" / "data_resource.yaml", "", "fields:")
    (b,) = breaches(check(scratch), "data_resource", "zj", **ZJ)
    assert str(b) == "quarantine share 93.0% over the limit 20.0% (entity default) by 73.0 points"


def test_the_dictionary_shows_each_sources_limit_and_reason():
    from tongban.standards.targets.dictionary import build_dictionary

    files = build_dictionary(check(PROJECT_ROOT / "standards"))
    page = files["entities/data_resource.html"]
    section = page[page.index('id="gate"'):page.index('id="sources"')]
    assert "20.0%" in section and "entity default" in section
    assert "95.0%" in section and "zj override" in section and "mapping_not_approved ≤ 60.0% (zj override)" in section
    assert "portal export lists every dataset twice" in section  # 上海's reason, beside its limit
    assert "Gate thresholds" in files["dictionary.md"]
