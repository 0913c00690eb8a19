"""Data resource 1.1.0 (issue 18): record_count and publisher_division_code, parse_date's epoch forms
in a time zone, the parse_integer step, ethnicity 97/98 as valid codes (compiled SQL on real DuckDB)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.unit.test_mapping_steps import STD, run_field
from tongban.sample.births import UNKNOWN_ETHNICITY_CODES, UNKNOWN_ETHNICITY_NAMES
from tongban.standards.models import Step

# 2023-11-14 16:30 UTC is 2023-11-15 00:30 in China: the date depends on the zone
EPOCH_S, EPOCH_MS = "1699979400", "1699979400000"


def test_epoch_values_are_dated_in_china_time_by_default():
    rows = run_field("published_date", ["trim", {"parse_date": ["epoch_s"]}], [EPOCH_S, "abc", None])
    assert rows == [(date(2023, 11, 15), []), (None, ["invalid_date"]), (None, [])]
    rows = run_field("published_date", ["trim", {"parse_date": ["epoch_ms"]}], [EPOCH_MS])
    assert rows == [(date(2023, 11, 15), [])]


def test_epoch_values_take_a_time_zone():
    arg = {"formats": ["epoch_s", "epoch_ms"], "tz": "UTC"}  # the first form that reads a value wins
    rows = run_field("published_date", ["trim", {"parse_date": arg}], [EPOCH_MS, EPOCH_S])
    assert rows == [(date(2023, 11, 14), []), (date(2023, 11, 14), [])]
    arg = {"formats": ["%Y-%m-%d", "epoch_s"], "tz": "Asia/Shanghai"}
    rows = run_field("published_date", ["trim", {"parse_date": arg}], ["2024-03-05", EPOCH_S])
    assert rows == [(date(2024, 3, 5), []), (date(2023, 11, 15), [])]


@pytest.mark.parametrize("arg", [{"formats": ["epoch_s"], "tz": "Mars/Olympus"}, {"formats": []},
                                 {"formats": ["epoch_s"], "zone": "UTC"}, {"tz": "UTC"}])
def test_parse_date_refuses_a_bad_argument(arg):
    with pytest.raises(ValueError):
        Step.model_validate({"parse_date": arg})


def test_record_count_is_a_non_negative_integer():
    fdef = STD.entities["data_resource"].field("record_count")
    assert (fdef.type, fdef.min) == ("bigint", 0)
    rows = run_field("record_count", ["trim", "parse_integer"], ["1000", "1,234", "12.5", "约100", None])
    assert rows == [(1000, []), (1234, []), (None, ["invalid_number"]), (None, ["invalid_number"]), (None, [])]


def test_publisher_division_code_is_a_gbt2260_code_at_any_level():
    ent = STD.entities["data_resource"]
    assert ent.version == "1.1.0"
    fdef = ent.field("publisher_division_code")
    assert (fdef.validator, fdef.division_level) == ("gbt2260", None)
    rows = run_field("publisher_division_code", [{"constant": "330100"}], ["x"])
    assert rows == [("330100", [])]


def test_every_mapping_sets_publisher_division_code_at_its_province():
    maps = [m for m in STD.mappings if m.entity == "data_resource"]
    assert len(maps) == 4 + 22
    for m in maps:
        steps = m.fields["publisher_division_code"].steps
        assert steps[0].op == "constant" and steps[0].arg.startswith(m.province_code), m.source_id


def test_ethnicity_97_and_98_are_valid_codes_marked_as_an_extension():
    codes = {c.code: c for c in STD.code_lists["ethnicity"].codes}
    assert len(codes) == 58
    assert codes["97"].extension and codes["98"].extension and not codes["01"].extension
    rows = run_field("mother_ethnicity_code", ["trim", {"match_code": "ethnicity"}],
                     ["97", "98", "其他", "外国血统中国籍人士", "99"], entity="birth_registration")
    assert [r[0] for r in rows[:4]] == ["97", "98", "97", "98"] and all(r[1] == [] for r in rows[:4])
    assert rows[4][1] == ["unmapped_code"]


def test_the_sample_no_longer_makes_97_or_98_a_defect():
    cl = STD.code_lists["ethnicity"]
    known = set(cl.values) | {c.zh for c in cl.codes}
    assert not known & set(UNKNOWN_ETHNICITY_CODES + UNKNOWN_ETHNICITY_NAMES)
