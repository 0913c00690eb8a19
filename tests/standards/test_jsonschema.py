"""JSON Schemas for the committee's editors: every standards YAML names its schema in a modeline
on line 1, validates against it, and the schemas refuse what the models refuse."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import ValidationError

from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check
from tongban.standards.generate import committed_files
from tongban.standards.targets.jsonschema import schema_files, schemas
from tongban.standards.models import AMOUNT_UNITS, PARAM_STEPS, SIMPLE_STEPS, Entity, Mapping, Step

STANDARDS = PROJECT_ROOT / "standards"
SCHEMAS = schemas()

EXPECTED_MODELINE = {
    "entities": "../schema/entity.schema.json",
    "code_lists": "../schema/code_list.schema.json",
    "mappings": "../../schema/mapping.schema.json",
}


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[name], format_checker=FormatChecker())


def _kind(path: Path) -> str:
    rel = path.relative_to(STANDARDS)
    if rel.parts[0] == "mappings" and len(rel.parts) == 3:
        return "mappings"
    if rel.parts[0] in ("entities", "code_lists") and len(rel.parts) == 2:
        return rel.parts[0]
    raise AssertionError(f"{path}: a YAML file outside entities/, code_lists/ and mappings/<source>/")


YAML_FILES = sorted([*STANDARDS.rglob("*.yaml"), *STANDARDS.rglob("*.yml")])
SCHEMA_OF = {"entities": "entity.schema.json", "code_lists": "code_list.schema.json",
             "mappings": "mapping.schema.json"}


def test_schemas_are_draft_2020_12_and_deterministic():
    files = schema_files()
    assert set(files) == {f"standards/schema/{n}" for n in
                          ("entity.schema.json", "code_list.schema.json", "mapping.schema.json",
                           "crosswalk.schema.json")}
    assert files == schema_files()
    for rel, text in files.items():
        schema = json.loads(text)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert "$id" not in schema and schema["title"] and schema["description"]
        assert text == json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n", rel
    assert set(files) <= set(committed_files(check(STANDARDS))), "tongban generate must write the schemas"


def test_there_are_standards_yaml_files():
    assert len(YAML_FILES) >= 20


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(STANDARDS)))
def test_every_yaml_file_has_its_modeline_on_line_one(path: Path):
    expected = EXPECTED_MODELINE[_kind(path)]
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# yaml-language-server: $schema={expected}", f"{path}: line 1 must be the modeline"
    assert (path.parent / expected).resolve().is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(STANDARDS)))
def test_every_yaml_file_validates_against_its_schema(path: Path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in _validator(SCHEMA_OF[_kind(path)]).iter_errors(data)]
    assert errors == []


def test_every_crosswalk_row_validates():
    v = _validator("crosswalk.schema.json")
    rows = 0
    for path in sorted(STANDARDS.glob("mappings/*/crosswalks/*.csv")):
        for line_no, row in enumerate(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()), 2):
            rows += 1
            errors = [e.message for e in v.iter_errors(row)]
            assert errors == [], f"{path}:{line_no}"
    assert rows > 0


@pytest.mark.parametrize("row,expected", [
    ({"status": "maybe"}, "is not one of"),
    ({"status": "proposed"}, "expected to be empty"),  # a proposed row has no reviewer yet
    ({"reviewed_on": "2024-13-01"}, "is not a 'date'"),
    ({"author": ""}, "should be non-empty"),
    ({"comment": "x"}, "Additional properties"),
])
def test_broken_crosswalk_rows_fail(row: dict, expected: str):
    good = {"source_value": "男", "target_code": "1", "status": "approved", "author": "a", "reviewer": "b",
            "reviewed_on": "2026-01-02"}
    v = _validator("crosswalk.schema.json")
    assert list(v.iter_errors(good)) == []
    messages = [e.message for e in v.iter_errors({**good, **row})]
    assert any(expected in m for m in messages), messages


def _load(rel: str) -> dict:
    return yaml.safe_load((STANDARDS / rel).read_text(encoding="utf-8"))


def _schema_errors(name: str, data: dict) -> list[str]:
    return [e.message for e in _validator(name).iter_errors(data)]


def _broken_entity_unknown_key(d):
    d["fields"][1]["requird"] = True


def _broken_entity_wrong_type(d):
    d["fields"][1]["label"] = "Birth certificate number"  # a string, not {zh, en}


def _broken_entity_unknown_type(d):
    d["fields"][1]["type"] = "text"


def _broken_entity_rule(d):
    d["rules"] = [{"rule": "min_age_at", "id_field": "mother_id_number", "date_field": "birth_date",
                   "years": 12, "reason": "too_young", "extra": 1}]


@pytest.mark.parametrize("breaker", [_broken_entity_unknown_key, _broken_entity_wrong_type,
                                     _broken_entity_unknown_type, _broken_entity_rule])
def test_broken_entities_fail_the_schema_and_the_model(breaker):
    data = _load("entities/birth_registration.yaml")
    assert _schema_errors("entity.schema.json", data) == []
    breaker(data)
    assert _schema_errors("entity.schema.json", data)
    with pytest.raises(ValidationError, match=r"validation errors? for Entity"):
        Entity.model_validate(data)


def _set_steps(steps):
    def breaker(d):
        d["fields"]["child_name"]["steps"] = steps
    breaker.__name__ = f"steps={steps!r}"
    return breaker


def _mapping_unknown_key(d):
    d["delivery"]["fiel"] = d["delivery"].pop("file")


def _mapping_wrong_type(d):
    d["identity"] = "LSH"


def _mapping_wrong_alias(d):
    d["fields"]["child_name"]["source"] = d["fields"]["child_name"].pop("from")


@pytest.mark.parametrize("breaker", [
    _mapping_unknown_key, _mapping_wrong_type, _mapping_wrong_alias,
    _set_steps([{"sql": "1); drop table x; --"}]),  # unknown step
    _set_steps(["strip"]),  # unknown bare step
    _set_steps([{"crosswalk": "sex", "trim": None}]),  # two keys
    _set_steps([{"split": ","}]),  # split takes a list
    _set_steps([{"parse_amount": "千元"}]),  # not a unit
    _set_steps([{"crosswalk": "Sex!"}]),  # not a code list name
    _set_steps([{"trim": "x"}]),  # a simple step takes no argument
    _set_steps([{"op": "trim"}]),  # the model's internal shape is not how YAML writes it
], ids=lambda b: b.__name__)
def test_broken_mappings_fail_the_schema_and_the_model(breaker):
    data = _load("mappings/js/birth_registration.yaml")
    assert _schema_errors("mapping.schema.json", data) == []
    breaker(data)
    assert _schema_errors("mapping.schema.json", data)
    if breaker.__name__ not in SCHEMA_ONLY:
        with pytest.raises(ValidationError, match=r"validation errors? for Mapping"):
            Mapping.model_validate(data)


#: stricter in the schema than in the model, on purpose: the schema shows editors the documented
#: form; the model also takes its Python spellings (populate_by_name, the internal step shape)
SCHEMA_ONLY = {"_mapping_wrong_alias", "steps=[{'op': 'trim'}]"}


def test_the_schema_is_stricter_than_the_model_about_scalars():
    """pydantic (lax) reads required: "yes" as true and min: "100" as 100; an editor flags both."""
    data = _load("entities/business_license.yaml")
    data["fields"][1]["required"] = "yes"
    data["fields"][5]["min"] = "100"
    Entity.model_validate(data)
    assert len(_schema_errors("entity.schema.json", data)) == 2


VALID_STEPS = [*SIMPLE_STEPS, {"split": [",", "、"]}, {"parse_date": ["%Y%m%d", "epoch_ms"]},
               {"crosswalk": "domain"}, {"match_code": "sex"}, {"remove_regex": r"\s+"}, {"constant": "31"},
               *({"parse_amount": u} for u in AMOUNT_UNITS)]


@pytest.mark.parametrize("step", VALID_STEPS, ids=str)
def test_every_valid_step_passes_the_schema_and_the_model(step):
    Step.model_validate(step)
    step_schema = {**SCHEMAS["mapping.schema.json"], "$ref": "#/$defs/Step"}
    for key in ("properties", "required", "additionalProperties", "type"):
        step_schema.pop(key, None)
    assert list(Draft202012Validator(step_schema).iter_errors(step)) == []


def test_the_step_schema_covers_the_whole_vocabulary():
    alternatives = SCHEMAS["mapping.schema.json"]["$defs"]["Step"]["oneOf"]
    bare = next(a for a in alternatives if a["type"] == "string")["enum"]
    keyed = [next(iter(a["required"])) for a in alternatives if a["type"] == "object"]
    assert bare == list(SIMPLE_STEPS) and keyed == list(PARAM_STEPS)
