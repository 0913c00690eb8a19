"""The field rules that follow from a field's type or name how its values are handled: exact
amounts, half-width identifiers, uniqueness, code list membership, invalid values, the gate's
severity and personal data (continuing tongban.standards.rules.fields, in catalogue order)."""

from __future__ import annotations

from typing import Any

from tongban.standards.rules.base import show
from tongban.standards.rules.fields import FIELD_RULES, GX_CODE_LIST, NUMBER_TYPES, FieldRule, expectation
from tongban.standards.rules.sqlparts import yaml_str


@FIELD_RULES.register
class TooPrecise(FieldRule):
    """An amount is exact to the fen: parse_amount refuses more places (too_precise) instead of
    rounding. It follows from the type, so it owns no attribute."""

    name = "too_precise"

    def words(self, ent: Any, f: Any) -> list[str]:
        if f.type != "decimal(20,2)":
            return []
        return ["精确到分 exact to the fen (0.01 yuan); more decimal places → too_precise, never rounded"]


@FIELD_RULES.register
class HalfWidth(FieldRule):
    """Identifiers are read half-width (the staging model's first step); it follows from the
    validator or the kind of personal data, so it owns no attribute."""

    name = "half_width"

    def words(self, ent: Any, f: Any) -> list[str]:
        if f.validator or f.pii == "id_number":
            return ["全角数字和字母按半角读取 full-width digits and letters are read as half-width (NFKC)"]
        return []


@FIELD_RULES.register
class Unique(FieldRule):
    """A value seen earlier in the region: a rule across rows (``int_<entity>__duplicates``)."""

    name = "unique"
    attrs = ("unique",)
    docs = {"unique": "A value seen earlier in the region quarantines the row (duplicate_value)."}

    def words(self, ent: Any, f: Any) -> list[str]:
        return ["全区域唯一 unique across the region; a later duplicate → duplicate_value"] if f.unique else []

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return bool(new)


@FIELD_RULES.register
class CodeListMember(FieldRule):
    """``code_list``: the value is one of the list's codes (crosswalked by the mapping);
    ``on_unmapped`` says what a value no crosswalk maps does."""

    name = "code_list"
    attrs = ("code_list", "on_unmapped")
    docs = {"code_list": "Name of a code list in standards/code_lists/: the value must be one of its codes.",
            "on_unmapped": "A value no crosswalk maps: quarantine the row, or publish 'unknown' (the code list "
                           "needs an 'unknown' code) and report the value."}

    def gx(self, std: Any, ent: Any, f: Any) -> list[tuple[int, dict[str, Any]]]:
        if not (f.code_list and f.type == "varchar" and f.code_list in std.code_lists):
            return []
        return [(GX_CODE_LIST, expectation("expect_column_values_to_be_in_set", f.gate == "blocking",
                                           f"{f.name} uses code list {f.code_list}", column=f.name,
                                           value_set=std.code_lists[f.code_list].values))]

    def dbt_yml(self, std: Any, f: Any) -> tuple[list[str], list[str]]:
        if not (f.code_list and f.type == "varchar" and f.code_list in std.code_lists):
            return [], []
        values = ", ".join(yaml_str(v) for v in std.code_lists[f.code_list].values)
        return [], [f"{{accepted_values: {{arguments: {{values: [{values}]}}}}}}"]

    def words(self, ent: Any, f: Any) -> list[str]:
        if not f.code_list or f.derived:
            return []
        if f.on_unmapped == "unknown":
            return ["未映射取值记为 unknown — an unmapped value becomes 'unknown'"]
        return ["未映射取值退回数据提供方 — an unmapped value quarantines the row (unmapped_code)"]

    def change(self, name: str, attr: str, old: Any, new: Any) -> tuple[str, str]:
        if attr == "code_list":
            return "major", f"field {name!r} code list changed from {show(old)} to {show(new)}"
        return super().change(name, attr, old, new)

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return new == "quarantine"


@FIELD_RULES.register
class OnInvalid(FieldRule):
    name = "on_invalid"
    attrs = ("on_invalid",)
    docs = {"on_invalid": "A value the last step cannot parse (date, amount, e-mail, phone): quarantine the row, "
                          "or publish null."}

    def words(self, ent: Any, f: Any) -> list[str]:
        if f.derived or not (f.type in ("date", *NUMBER_TYPES) or f.format):
            return []
        if f.on_invalid == "null":
            return ["无效取值置空 — an invalid value is published as null"]
        return ["无效取值退回数据提供方 — an invalid value quarantines the row"]

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return new == "quarantine"


@FIELD_RULES.register
class Gate(FieldRule):
    name = "gate"
    attrs = ("gate",)
    docs = {"gate": "Whether the field's gate expectations block the publication (blocking) or only warn."}

    def words(self, ent: Any, f: Any) -> list[str]:
        return ["质量门禁仅告警 quality gate: warning only (does not block publication)"] if f.gate == "warning" else []

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return new == "blocking"


_PII = {"name": ("姓名", "name"), "id_number": ("证件号码", "ID number"), "phone": ("电话", "phone")}


@FIELD_RULES.register
class PersonalData(FieldRule):
    name = "pii"
    attrs = ("pii",)
    docs = {"pii": "Personal information: published only as <name>_pseudonym (keyed HMAC) and <name>_masked."}

    def words(self, ent: Any, f: Any) -> list[str]:
        if not f.pii:
            return []
        zh, en = _PII.get(f.pii, (f.pii, f.pii))
        return [f"个人信息（{zh}）personal data ({en}): published as {f.name}_pseudonym / {f.name}_masked"]

    def change(self, name: str, attr: str, old: Any, new: Any) -> tuple[str, str]:
        if old is None:
            return "major", (f"field {name!r} became personal information (pii: {new}): consumers lose "
                             f"the raw column, they get {name}_pseudonym and {name}_masked")
        if new is None:
            return "major", (f"field {name!r} is no longer personal information: consumers lose "
                             f"{name}_pseudonym and {name}_masked")
        return "minor", f"field {name!r} pii changed from {old} to {new} (masking form)"
