"""The closed vocabulary of mapping steps, compiled by the generator and executed by real DuckDB."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check
from tongban.standards.targets.dbt import compile_field
from tongban.standards.models import Mapping

STD = check(PROJECT_ROOT / "standards")


def run_field(field: str, steps: list, values: list[str | None], crosswalk: dict[str, str] | None = None,
              null_values: list[str] | None = None, entity: str = "data_resource",
              pending: dict[str, str] | None = None):
    m = Mapping.model_validate({
        "source_id": "t1", "entity": entity, "province_code": "31", "version": "1.0.0",
        "standard_version": "1.0.0", "label": {"zh": "测试", "en": "test"},
        "delivery": {"file": "x.json", "columns": [{"name": "列"}]}, "identity": ["列"],
        "null_values": null_values if null_values is not None else ["", "None", "暂无"],
        "fields": {field: {"from": "列", "steps": steps}}})
    fdef = STD.entities[entity].field(field)
    c = compile_field(STD, m, fdef)
    cw = crosswalk or {}
    code_list = fdef.code_list or "none"
    if any((s if isinstance(s, str) else next(iter(s))) == "match_code" for s in steps):
        # match_code reads the standard's own code list: its codes and Chinese labels
        cl = STD.code_lists[code_list]
        cw = {**{c.code: c.code for c in cl.codes}, **{c.zh: c.code for c in cl.codes}}
    checks = ", ".join(f"case when {cond} then '{reason}' end" for cond, reason, _ in c.checks) or "null"
    sql = (f"with cw_{code_list} as (select map(?::varchar[], ?::varchar[]) as lookup, "
           f"map(?::varchar[], ?::varchar[]) as pending), "
           f"cl_{code_list} as (select lookup from cw_{code_list}), "
           f"src as (select unnest(?::varchar[]) as \"列\") "
           f"select ({c.value}) as v, list_filter([{checks}], lambda x: x is not null) as issues "
           f"from src cross join cw_{code_list} cross join cl_{code_list}")
    con = duckdb.connect()
    pend = pending or {}
    return con.execute(sql, [list(cw), list(cw.values()), list(pend), list(pend.values()), values]).fetchall()


def test_phone_numbers_are_normalised():
    rows = run_field("contact_phone", ["trim", "phone"], [
        "0571-88217800", " 13962999398", "日间:(0571)87709006夜间:(0571)87087342", "0571—88217800",
        "138****1234", "0513-85098765.0513-85098766", "暂无", "0571-888076905", "sjkf@shanghai.gov.cn"])
    assert [r[0] for r in rows] == [
        "0571-88217800", "13962999398", "0571-87709006", "0571-88217800", "138****1234", "0513-85098765",
        None, None, None]
    assert rows[7][1] == ["invalid_phone"]  # a 9-digit local number is reported, not kept
    assert rows[8][1] == []  # an e-mail in a shared contact column is not a bad phone


def test_email_is_validated_and_lowercased():
    rows = run_field("contact_email", ["trim", "email"], ["SJKF@Shanghai.gov.cn", "a@b", "0571-1234567"])
    assert rows == [("sjkf@shanghai.gov.cn", []), (None, ["invalid_email"]), (None, [])]


def test_parse_list_reads_json_and_python_list_text():
    rows = run_field("formats", ["parse_list", "lower", {"crosswalk": "format"}],
                     ['["rdf","XLSX"]', "['api']", "[]", "csv,json", None],
                     crosswalk={"rdf": "rdf", "xlsx": "xlsx", "api": "api"})
    assert rows[0] == (["rdf", "xlsx"], [])
    assert rows[1] == (["api"], [])
    assert rows[2] == ([], [])
    assert rows[3][0] is None and rows[3][1] == ["invalid_list"]
    assert rows[4] == (None, [])


def test_unmapped_list_element_becomes_unknown_and_is_reported():
    rows = run_field("formats", ["parse_list", {"crosswalk": "format"}], ['["csv","wp"]'], crosswalk={"csv": "csv"})
    assert rows == [(["csv", "unknown"], ["unmapped_code"])]


def test_split_with_several_separators_drops_empty_parts():
    rows = run_field("keywords", [{"split": ["、", ","]}], ["观测点、市场,调查、 ,信息", "SODA2022"])
    assert rows == [(["观测点", "市场", "调查", "信息"], []), (["SODA2022"], [])]


def test_dates_in_several_encodings():
    rows = run_field("published_date", ["trim", {"parse_date": ["%Y-%m-%d", "%Y%m%d", "epoch_ms"]}],
                     ["2023-06-02", "20240305", "1686700800000", "None", "", "2023-13-45"])
    assert [r[0] for r in rows] == [date(2023, 6, 2), date(2024, 3, 5), date(2023, 6, 14), None, None, None]
    assert rows[5][1] == ["invalid_date"] and rows[3][1] == [] and rows[4][1] == []


def test_scalar_crosswalk_unmapped_is_never_guessed():
    cw = {"无条件开放": "unconditional"}
    rows = run_field("open_condition_code", [{"crosswalk": "open_condition"}], ["无条件开放", "1级\t不脱敏", None],
                     crosswalk=cw, null_values=[""])
    # open_condition quarantines unmapped values: no code is invented for them
    assert rows[0] == ("unconditional", [])
    assert rows[1] == (None, ["unmapped_code"])
    assert rows[2] == ("unknown", [])


def test_unknown_policy_maps_to_unknown():
    rows = run_field("domain_code", ["trim", {"crosswalk": "domain"}], ["长三角高价值清单"], crosswalk={"生态环境": "ecology_environment"})
    assert rows == [("unknown", ["unmapped_code"])]


@pytest.mark.parametrize("value", ["x'); drop table t; --", "a\"b", "'; select 1; --"])
def test_values_from_mappings_stay_literals(value: str):
    rows = run_field("summary", [{"constant": value}], ["anything"])
    assert rows == [(value, [])]
    rows = run_field("update_frequency_code", [{"remove_regex": "x'; drop table t; --"}, {"crosswalk": "update_frequency"}],
                     ["每年"], crosswalk={"每年": "annual"})
    assert rows == [("annual", [])]


def test_parse_amount_converts_units_to_exact_yuan():
    from decimal import Decimal

    rows = run_field("registered_capital_yuan", ["trim", {"parse_amount": "万元"}],
                     ["500", "12.5", "0.0001", "1,200", "abc", None, "1e30"], entity="business_license")
    assert [r[0] for r in rows[:4]] == [Decimal("5000000"), Decimal("125000"), Decimal("1"), Decimal("12000000")]
    assert rows[4] == (None, ["invalid_number"])
    assert rows[5] == (None, [])
    assert rows[6][0] is None and rows[6][1]  # not a plain number, or too large: reported, never a crash
    rows = run_field("registered_capital_yuan", [{"parse_amount": "元"}], ["5000000.00", "99.5"],
                     entity="business_license")
    assert [r[0] for r in rows] == [Decimal("5000000.00"), Decimal("99.5")]


def test_match_code_accepts_codes_and_chinese_labels_only():
    rows = run_field("mother_ethnicity_code", ["trim", {"match_code": "ethnicity"}],
                     ["01", "汉族", " 回族 ", "99", "未知", "1", None, "97", "其他"], entity="birth_registration")
    # 97/98 are codes of the list since 1.1.0 (an extension beyond GB 3304), by code or by label
    assert [r[0] for r in rows] == ["01", "01", "03", None, None, None, None, "97", "97"]
    assert [r[1] for r in rows] == [[], [], [], ["unmapped_code"], ["unmapped_code"], ["unmapped_code"], [], [], []]


def test_match_code_on_lists():
    rows = run_field("services_requested", [{"split": [";"]}, {"match_code": "birth_service"}],
                     ["户口登记;医保参保", "hukou", "户口登记;办证"], entity="birth_registration")
    assert rows[0] == (["hukou", "medical_insurance"], [])
    assert rows[1] == (["hukou"], [])
    assert rows[2][1] == ["unmapped_code"]


def test_proposed_entries_hold_back_blocking_fields_and_only_note_others():
    """Only approved entries map a blocking field; a value only a proposed entry maps is held
    back (mapping_not_approved). A non-blocking field uses the proposed entry and notes it."""
    rows = run_field("open_condition_code", [{"crosswalk": "open_condition"}], ["无条件开放", "开放网站", "待定"],
                     crosswalk={"无条件开放": "unconditional"}, pending={"开放网站": "unconditional"})
    assert rows == [("unconditional", []), (None, ["mapping_not_approved"]), (None, ["unmapped_code"])]
    rows = run_field("domain_code", [{"crosswalk": "domain"}], ["经济", "交通", "天文"],
                     crosswalk={"经济": "economy"}, pending={"交通": "transport"})
    assert rows == [("economy", []), ("transport", ["mapping_not_approved"]), ("unknown", ["unmapped_code"])]
    rows = run_field("formats", [{"split": [","]}, {"crosswalk": "format"}], ["csv,xls", "csv,rdf"],
                     crosswalk={"csv": "csv"}, pending={"xls": "xls"})
    assert rows == [(["csv", "xls"], ["mapping_not_approved"]), (["csv", "unknown"], ["unmapped_code"])]


# ---- odd values (issue 14): each parses correctly or gets its own reason ----------------------


def test_full_width_phone_numbers_are_read_half_width():
    rows = run_field("contact_phone", ["trim", "phone"], [
        "１３８００１３８０００", "（０２１）６４３７８８８８", "０５７１－８８２１７８００", "ｓｊｋｆ＠ｓｈａｎｇｈａｉ.ｇｏｖ.ｃｎ",
        "１２３"], entity="birth_registration")
    assert rows == [("13800138000", []), ("021-64378888", []), ("0571-88217800", []), (None, []),
                    (None, ["invalid_phone"])]


@pytest.mark.parametrize(("field", "entity", "delivered", "read"), [
    ("mother_id_number", "birth_registration", "　３１０１０１１９９００１０１１２３ｘ", "31010119900101123X"),
    ("birth_certificate_number", "birth_registration", "Ｏ３１０１２３４５６７", "O3101234567"),
    ("birth_division_code", "birth_registration", "３３０１０６", "330106"),
    ("uscc", "business_license", "９１３１００００ＭＡ１ＦＬ４ＸＸ３Ｘ", "91310000MA1FL4XX3X"),
    ("ecert_identifier", "business_license", "１．２．１５６", "1.2.156"),
])
def test_full_width_identifiers_are_read_half_width(field: str, entity: str, delivered: str, read: str):
    assert run_field(field, ["trim", "upper"], [delivered, read], entity=entity) == [(read, []), (read, [])]


def test_names_keep_their_full_width_characters():
    """Only identifiers are read half-width: a name or title is published as delivered."""
    assert run_field("child_name", ["trim"], ["张（Ａ）"], entity="birth_registration") == [("张（Ａ）", [])]


def test_amounts_more_precise_than_a_fen_are_refused_not_rounded():
    from decimal import Decimal

    def amounts(unit: str, values: list[str]):
        return run_field("registered_capital_yuan", ["trim", {"parse_amount": unit}], values,
                         entity="business_license")

    assert amounts("元", ["150000.004", "150000.00", "150000.0040000", "12.50", "1.5e3", "1.5e-20", "-0.001"]) == [
        (None, ["too_precise"]), (Decimal("150000.00"), []), (None, ["too_precise"]), (Decimal("12.50"), []),
        (Decimal("1500"), []), (None, ["too_precise"]), (None, ["too_precise"])]
    # the scale is the fen in yuan: 万元 may have six places, 亿元 ten
    assert amounts("万元", ["0.000001", "0.0000001", "12.3456785"]) == [
        (Decimal("0.01"), []), (None, ["too_precise"]), (None, ["too_precise"])]
    assert amounts("亿元", ["1.23456789", "0.0000000001", "0.00000000001"]) == [
        (Decimal("123456789"), []), (Decimal("0.01"), []), (None, ["too_precise"])]


def test_nested_json_objects_get_their_own_reason_and_no_value():
    objects = ['{"given":"伟","family":"张"}', ' {"a": {"b": 1}} ', "{}"]
    rows = run_field("title", ["trim"], [*objects, '["a"]', "{not json}", "{{ title }}"])
    assert rows == [(None, ["nested_object"])] * 3 + [('["a"]', []), ("{not json}", []), ("{{ title }}", [])]
    # a terminal step adds no second reason: the object never reaches it
    rows = run_field("published_date", ["trim", {"parse_date": ["%Y-%m-%d"]}], [objects[0], "2023-06-02"])
    assert rows == [(None, ["nested_object"]), (date(2023, 6, 2), [])]
    rows = run_field("contact_phone", ["trim", "phone"], [objects[0]], entity="birth_registration")
    assert rows == [(None, ["nested_object"])]
    # only parse_list reads JSON, and only lists: an object there stays an invalid list
    rows = run_field("formats", ["parse_list", {"crosswalk": "format"}], [objects[0]], crosswalk={"csv": "csv"})
    assert rows == [(None, ["invalid_list"])]
