"""One rule catalogue (tongban.standards.rules): a rule kind registered in it — here throwaway
kinds defined in this test, registered for one test only — is read from the YAML, compiled into
the dbt SQL, checked by the GX suite, shown by the JSON Schema and the dictionary and classified
by versioning, without any other module knowing it (issue 15, "One rule catalogue")."""

from __future__ import annotations

import dataclasses
import shutil
from typing import Annotated, Any, ClassVar, Literal

import duckdb
import pytest
from jsonschema import Draft202012Validator
from pydantic import Field, ValidationError

from tests.standards.test_standards import _edit
from tongban.common import pii, validators
from tongban.common.config import PROJECT_ROOT
from tongban.common.reference import load_reference
from tongban.common.sqlquote import quote_ident
from tongban.standards import versioning
from tongban.standards.lint import check
from tongban.standards.models import PARAM_STEPS, SIMPLE_STEPS, Entity, FieldDef, Mapping
from tongban.standards.rules import (
    FIELD_RULES,
    FORMATS,
    ROW_RULES,
    STEPS,
    VALIDATORS,
    Check,
    RowRule,
    StepKind,
    Validator,
    expectation,
    owner,
)
from tongban.standards.rules.base import IDENT, Label
from tongban.standards.targets import jsonschema
from tongban.standards.targets.dbt import compile_field, generated_files
from tongban.standards.targets.dbt_rows import row_rules_sql
from tongban.standards.targets.dictionary import build_dictionary
from tongban.standards.targets.gx import suite_for

STANDARDS = PROJECT_ROOT / "standards"
BIRTHS = "standards/entities/birth_registration.yaml"


class HukouElsewhere(RowRule):
    """The household is registered in another division than the birth (a throwaway rule kind)."""

    rule: Literal["hukou_elsewhere"]
    birth_field: str
    hukou_field: str
    reason: Annotated[str, Field(pattern=IDENT)]
    description: Label | None = None

    field_refs: ClassVar[tuple[str, ...]] = ("birth_field", "hukou_field")

    def checks_duckdb(self, ent: Any) -> list[Check]:
        b, h = quote_ident(self.birth_field), quote_ident(self.hukou_field)
        return [Check(f"{b} = {h}", self.reason, self.hukou_field, h)]

    def gx(self, std: Any, ent: Any) -> list[dict[str, Any]]:
        return [expectation("expect_column_pair_values_a_to_be_greater_than_b", True, "throwaway",
                            column_A=self.birth_field, column_B=self.hukou_field, or_equal=False)]

    def words(self) -> tuple[str, str]:
        return f"户籍不在 {self.birth_field}", f"hukou outside {self.birth_field}"


class Even(Validator):
    """A throwaway validator: the value is an even number of digits."""

    name = "even_digits"
    shape = r"^([0-9]{2})+$"
    words = ("偶数位数字", "an even number of digits")

    def sql_duckdb(self, value: str, f: Any) -> str:
        return f"case when length({value}) % 2 = 1 then 'odd_digits' end"


class Reverse(StepKind):
    name = "reverse"
    doc = "reverse the text (a throwaway step)"
    words = ("倒序", "reversed")

    def sql_duckdb(self, c: Any, expr: str, arg: Any) -> str:
        return c.each(expr, lambda e: f"reverse({e})")


def _staged(con, ent: Entity, rows: list[dict[str, Any]]) -> str:
    cols = ", ".join(f"?::{f.type} as {quote_ident(f.name)}" for f in ent.fields)
    con.execute(f"create or replace temp table staged as select {cols}, "
                "[]::struct(reason varchar, field varchar, value varchar)[] as blocking_issues",
                [rows[0].get(f.name) for f in ent.fields])
    return "staged"


def test_a_throwaway_row_rule_reaches_every_target(tmp_path):
    old = check(STANDARDS)
    scratch = tmp_path / "standards"
    shutil.copytree(STANDARDS, scratch)
    _edit(scratch / "entities/birth_registration.yaml", "rules:\n",
          "rules:\n  - rule: hukou_elsewhere\n    birth_field: birth_division_code\n"
          "    hukou_field: hukou_division_code\n    reason: hukou_here\n")
    assert "hukou_elsewhere" not in ROW_RULES
    assert any("hukou_elsewhere" in f.message for f in check(scratch).errors)  # unknown before it registers
    with ROW_RULES.registered(HukouElsewhere):
        std = check(scratch)
        assert std.errors == []
        ent = std.entities["birth_registration"]
        rule = next(r for r in ent.rules if r.rule == "hukou_elsewhere")
        # dbt: the checked models' macro holds its condition and reason
        sql = generated_files(std)["macros/generated/row_rules.sql"]
        assert '"birth_division_code" = "hukou_division_code"' in sql and "'hukou_here'" in sql
        # ... and real DuckDB gives the row its reason
        con = duckdb.connect()
        load_reference(con)
        con.execute(validators.sql_ddl())
        con.execute(pii.sql_ddl())
        _staged(con, ent, [{"birth_division_code": "310101", "hukou_division_code": "310101"}])
        reasons = con.execute(f"select list_transform(row_reasons, lambda r: r.reason) "
                              f"from ({row_rules_sql(std, ent, 'staged')})").fetchone()[0]
        assert "hukou_here" in reasons
        # GX: its expectation is in the gate's suite
        assert any(e["type"] == "expect_column_pair_values_a_to_be_greater_than_b"
                   for e in suite_for(std, ent)["expectations"])
        # JSON Schema: editors know the rule and its keys
        schema = jsonschema.schemas()["entity.schema.json"]
        assert schema["$defs"]["HukouElsewhere"]["description"].startswith("The household is registered")
        Draft202012Validator(schema).validate({**_yaml_entity(std), "rules": [rule.model_dump(exclude_none=True)]})
        # dictionary: its words, in Chinese and English
        page = build_dictionary(std)["entities/birth_registration.html"]
        assert "户籍不在 birth_division_code" in page and "hukou outside birth_division_code" in page
        # versioning: adding it can reject rows that passed before
        changes = versioning.classify(old, std)
        assert [(c.level, c.what) for c in changes if "hukou" in c.what] == [
            ("major", "rule hukou_elsewhere (reason hukou_here) added (can reject rows that passed before)")]
    assert "hukou_elsewhere" not in ROW_RULES
    assert "HukouElsewhere" not in jsonschema.schemas()["entity.schema.json"]["$defs"]
    with pytest.raises(ValidationError):
        Entity.model_validate({**_yaml_entity(old), "rules": [rule.model_dump()]})


def _yaml_entity(std) -> dict[str, Any]:
    return std.entities["birth_registration"].model_dump(mode="json", exclude_none=True, exclude={"rules"})


def test_a_throwaway_validator_reaches_every_target():
    base = check(STANDARDS)
    ent = base.entities["birth_registration"]
    with VALIDATORS.registered(Even):
        hukou = ent.field("hukou_division_code").model_dump(exclude_none=True, exclude={"division_level"})
        field = FieldDef.model_validate({**hukou, "validator": "even_digits"})
        changed = ent.model_copy(update={"fields": [field if f.name == field.name else f for f in ent.fields]})
        std = dataclasses.replace(base, entities={**base.entities, ent.entity: changed})
        assert "length(\"hukou_division_code\") % 2 = 1" in row_rules_sql(std, changed, "staged")
        regexes = [e["kwargs"].get("regex") for e in suite_for(std, changed)["expectations"]]
        assert r"^([0-9]{2})+$" in regexes
        validator_schema = jsonschema.schemas()["entity.schema.json"]["$defs"]["FieldDef"]["properties"]["validator"]
        assert "even_digits" in validator_schema["anyOf"][0]["enum"]
        assert "偶数位数字" in build_dictionary(std)["entities/birth_registration.html"]
        levels = {c.what: c.level for c in versioning.classify(base, std)}
        assert levels["field 'hukou_division_code' validator changed from 'gbt2260' to 'even_digits' "
                      "(can reject rows that passed before)"] == "major"
    with pytest.raises(ValidationError, match="validator"):
        FieldDef.model_validate({**field.model_dump(exclude_none=True)})


def test_a_throwaway_step_reaches_every_target():
    std = check(STANDARDS)
    raw = {"source_id": "t1", "entity": "data_resource", "province_code": "31", "version": "1.0.0",
           "standard_version": "1.0.0", "label": {"zh": "测试", "en": "test"},
           "delivery": {"file": "x.json", "columns": [{"name": "列"}]}, "identity": ["列"],
           "fields": {"title": {"from": "列", "steps": ["trim", "reverse"]}}}
    with pytest.raises(ValidationError, match="unknown step 'reverse'"):
        Mapping.model_validate(raw)
    with STEPS.registered(Reverse):
        m = Mapping.model_validate(raw)
        c = compile_field(std, m, std.entities["data_resource"].field("title"))
        got = duckdb.connect().execute(f"select {c.value} from (select ' 甲乙 ' as \"列\") as src").fetchone()[0]
        assert got == "乙甲"
        step = jsonschema.step_schema()["oneOf"][0]
        assert "reverse" in step["enum"] and "reverse: reverse the text" in step["description"]
        from tongban.standards import models  # the closed vocabulary follows the catalogue
        assert models.SIMPLE_STEPS[-1] == "reverse"
    from tongban.standards import models
    assert "reverse" not in models.SIMPLE_STEPS


def test_the_catalogue_owns_every_rule_attribute_of_a_field():
    """Every attribute of a field that switches a rule on belongs to one rule kind (which says how
    its change classifies); what a field *is* (name, type, derived, labels) belongs to none."""
    # sharing (issue 16) says who may read the field, not which rows pass: no rule kind's
    # aliases (issue 18) are other names of its column, for `standards propose`: no rule kind's either
    structural = {"name", "type", "derived", "label", "description", "sharing", "aliases"}
    owned = [a for rule in FIELD_RULES for a in rule.attrs]
    assert len(owned) == len(set(owned)), "an attribute owned by two rule kinds"
    assert set(owned) | structural == set(FieldDef.model_fields)
    assert not set(owned) & structural
    assert all(owner(a) is not None for a in owned)


def test_the_vocabularies_are_the_catalogues():
    assert SIMPLE_STEPS == ("trim", "lower", "upper", "parse_list", "to_list", "first", "email", "phone")
    assert PARAM_STEPS == ("split", "crosswalk", "match_code", "parse_date", "parse_amount", "remove_regex",
                           "constant", "concat")
    assert VALIDATORS.names() == ("gb11643", "gb32100", "gbt2260", "gbt36904", "gbt4754")
    assert FORMATS.names() == ("email", "phone")
    assert ROW_RULES.names() == ("min_age_at", "uscc_region_agrees", "compare", "required_if", "at_least_one_of",
                                 "not_in_future", "not_before")
    for kind in STEPS:
        assert kind.doc and len(kind.words) == 2 and all(kind.words)
        assert hasattr(kind, "terminal_duckdb" if kind.terminal else "sql_duckdb"), kind.name


def test_a_kind_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        VALIDATORS.register(type(VALIDATORS["gb11643"]))
