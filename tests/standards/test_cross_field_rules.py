"""Cross-field rules the committee writes (issue 18): a closed vocabulary parsed into a fixed grammar,
compiled through the rule catalogue (SQL, GX, dictionary, versioning), ``warn`` publishing the row
with a warning and ``quarantine`` holding it back with the rule's reason."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.standards.conftest import STANDARDS, edit as _edit
from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check
from tongban.standards.load import load_standards
from tongban.standards.models import Entity
from tongban.standards.rules.cross_field import Comparison
from tongban.standards.targets.dictionary import build_dictionary
from tongban.standards.targets.gx import suite_for
from tongban.standards.versioning import classify

ENTITY = "entities/data_resource.yaml"
WARN_RULE = "  - rule: compare\n    expr: updated_date >= published_date\n    severity: warn\n"



def _rule(body: str) -> str:
    return body + "    message: {zh: 测试, en: test}\n"


# ---- the grammar ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, parsed", [
    ("updated_date >= published_date", ("updated_date", ">=", "published_date", True)),
    ("  a<b ", ("a", "<", "b", True)),
    ("record_count != 0", ("record_count", "!=", "0", False)),
    ("amount > -1.5", ("amount", ">", "-1.5", False)),
    ("published_date >= '2000-01-01'", ("published_date", ">=", "2000-01-01", False)),
    ("status = 'open'", ("status", "=", "open", False)),
])
def test_the_grammar_is_field_op_field_or_literal(text: str, parsed: tuple):
    c = Comparison.parse(text)
    assert (c.left, c.op, c.right, c.right_is_field) == parsed


@pytest.mark.parametrize("text", [
    "updated_date >= published_date; drop table t", "a >= b or 1=1", "a => b", "a >= ", ">= b",
    "a >= 'it''s'", "a >= b c", "A >= b", "a >= 'x' || 'y'", "a >= \"b\"", "lower(a) = 'x'",
])
def test_anything_else_is_refused(text: str):
    with pytest.raises(ValueError):
        Comparison.parse(text)


@pytest.mark.parametrize("rule, expected", [
    ("  - rule: compare\n    expr: updated_date >= publish_date\n    severity: warn\n",
     "refers to unknown field 'publish_date'"),
    ("  - rule: compare\n    expr: updated_date >= 'yesterday'\n    severity: warn\n", "compare it with 'YYYY-MM-DD'"),
    ("  - rule: compare\n    expr: updated_date >= published_date\n    severity: block\n", "severity"),
    ("  - rule: not_in_future\n    field: title\n    severity: warn\n", "applies to a date field"),
    ("  - rule: at_least_one_of\n    fields: [contact_email]\n    severity: warn\n", "fields"),
    ("  - rule: required_if\n    field: summary\n    when: domain_code = 1; drop\n    severity: warn\n",
     "neither a field nor a literal"),
])
def test_the_lint_refuses_bad_rules_with_file_and_line(scratch: Path, rule: str, expected: str):
    text = (scratch / ENTITY).read_text(encoding="utf-8")
    line = text.splitlines().index("rules:") + 2
    _edit(scratch / ENTITY, "rules:\n", "rules:\n" + _rule(rule) + "    reason: bad_rule\n")
    errors = [f for f in check(scratch).errors if f.file == f"standards/{ENTITY}"]
    assert any(expected in f.message for f in errors), [str(f) for f in errors]
    assert {f.line for f in errors if expected in f.message} <= {line, line + 1, line + 2}  # the rule's lines


def test_two_rules_may_not_share_a_reason(scratch: Path):
    _edit(scratch / ENTITY, "rules:\n", "rules:\n" + _rule("  - rule: not_in_future\n    field: updated_date\n"
                                                               "    severity: warn\n") +
          "    reason: updated_before_published\n")
    assert any("is used by two rules" in f.message for f in check(scratch).errors)


# ---- SQL: each kind over a table whose expected verdicts are written by hand ----------------------

ROWS = [  # id, published, updated, email, phone, domain, summary
    (1, "2020-01-01", "2020-01-02", "a@b.cn", None, "transport", "s"),
    (2, "2020-01-03", "2020-01-02", None, None, "transport", None),
    (3, None, "2020-01-02", None, "010-12345678", "unknown", None),
    (4, "1999-12-31", "2999-01-01", "x@y.cn", None, "health", "s"),
]


def _violations(entity_yaml_rules: str) -> dict[str, list[int]]:
    """reason -> ids of the rows that break the rule, from the rule's own SQL run over ROWS."""
    raw = json.loads(json.dumps(load_standards(STANDARDS).entities["data_resource"].model_dump(mode="json")))
    import yaml

    raw["rules"] = yaml.safe_load(entity_yaml_rules)
    ent = Entity.model_validate(raw)
    con = duckdb.connect()
    con.execute("create table t (id int, published_date date, updated_date date, contact_email varchar, "
                "contact_phone varchar, domain_code varchar, summary varchar)")
    con.executemany("insert into t values (?, ?, ?, ?, ?, ?, ?)", ROWS)
    out = {}
    for r in ent.rules:
        (c,) = r.checks_duckdb(ent)
        out[r.reason] = [i for (i,) in con.execute(f"select id from t where {c.condition} order by id").fetchall()]
    return out


ALL_KINDS = """
- {rule: compare, expr: updated_date >= published_date, severity: warn, reason: r_cmp, message: {zh: z, en: e}}
- {rule: compare, expr: "published_date >= '2000-01-01'", severity: quarantine, reason: r_lit, message: {zh: z, en: e}}
- {rule: compare, expr: "domain_code != 'unknown'", severity: warn, reason: r_ne, message: {zh: z, en: e}}
- {rule: required_if, field: summary, when: "domain_code = 'transport'", severity: quarantine, reason: r_req,
   message: {zh: z, en: e}}
- {rule: at_least_one_of, fields: [contact_email, contact_phone], severity: warn, reason: r_one, message: {zh: z, en: e}}
- {rule: not_in_future, field: updated_date, severity: quarantine, reason: r_fut, message: {zh: z, en: e}}
- {rule: not_before, field: published_date, bound: 2000-01-01, severity: warn, reason: r_bef, message: {zh: z, en: e}}
"""
EXPECTED = {"r_cmp": [2], "r_lit": [4], "r_ne": [3], "r_req": [2], "r_one": [2], "r_fut": [4], "r_bef": [4]}


def test_each_kind_in_sql():
    assert _violations(ALL_KINDS) == EXPECTED


def test_the_pandas_twin_agrees():
    """The benchmark's pandas path (bench/pandas_rules.py) flags the same rows; a warn rule is a note
    there too, never a row reason (chk__)."""
    import pandas as pd
    import yaml

    from bench import pandas_rules as twin

    raw = load_standards(STANDARDS).entities["data_resource"].model_dump(mode="json")
    raw["rules"] = yaml.safe_load(ALL_KINDS)
    ent = Entity.model_validate(raw)
    frame = pd.DataFrame(ROWS, columns=["id", "published_date", "updated_date", "contact_email", "contact_phone",
                                        "domain_code", "summary"], dtype=object)
    for c in ("published_date", "updated_date"):
        frame[c] = pd.to_datetime(frame[c])
    for r in ent.rules:
        twin.ROW_RULES[r.rule](frame, ent, r)
    got = {c.split("__")[1]: frame.loc[frame[c], "id"].tolist() for c in frame.columns if "__" in c}
    assert got == EXPECTED
    warn = {r.reason for r in ent.rules if r.severity == "warn"}
    assert {c.split("__")[1] for c in frame.columns if c.startswith("chk__")} == set(EXPECTED) - warn


def test_a_literal_reaches_sql_only_quoted():
    rules = ("- {rule: compare, expr: \"domain_code = 'x'';drop table t;--'\", severity: warn, reason: r, "
             "message: {zh: z, en: e}}")
    with pytest.raises(ValueError):
        _violations(rules)
    ok = "- {rule: compare, expr: \"summary != 'a;drop table t;--'\", severity: warn, reason: r, message: {zh: z, en: e}}"
    assert _violations(ok) == {"r": []}  # the text is a value compared with, nothing ran


def test_warn_rules_note_and_quarantine_rules_hold_back_in_the_generated_models():
    from tongban.standards.targets.dbt_rows import row_rules_sql

    std = check(STANDARDS)
    sql = row_rules_sql(std, std.entities["data_resource"], "staged")
    notes = sql[sql.index("as row_reasons"):]
    assert "'updated_before_published'" in notes and "as note_issues" in notes
    assert "'updated_before_published'" not in sql[:sql.index("as row_reasons")]


# ---- GX ------------------------------------------------------------------------------------------

def test_the_suite_warns_for_warn_and_blocks_for_quarantine(scratch: Path):
    std = check(STANDARDS)
    (exp,) = [e for e in suite_for(std, std.entities["data_resource"])["expectations"]
              if e["meta"].get("reason") == "updated_before_published"]
    assert exp["type"] == "expect_column_pair_values_a_to_be_greater_than_b"
    assert exp["kwargs"] == {"column_A": "updated_date", "column_B": "published_date", "or_equal": True,
                             "ignore_row_if": "either_value_is_missing"}
    assert exp["meta"]["blocking"] is False and exp["meta"]["severity"] == "warn"
    _edit(scratch / ENTITY, "    severity: warn\n    reason: updated_before_published",
          "    severity: quarantine\n    reason: updated_before_published")
    std = check(scratch)
    (exp,) = [e for e in suite_for(std, std.entities["data_resource"])["expectations"]
              if e["meta"].get("reason") == "updated_before_published"]
    assert exp["meta"]["blocking"] is True


def test_the_gate_reports_a_warn_rule_without_failing(tmp_path: Path):
    """The real gate (GX on DuckDB) over a table with one row that breaks the warn rule."""
    from tongban.steps.gx_gate import run_gate

    std = check(STANDARDS)
    exps = [e for e in suite_for(std, std.entities["data_resource"])["expectations"]
            if e["meta"].get("reason") == "updated_before_published"]
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema harmonized; create table harmonized.t as select * from (values "
                "(date '2020-01-02', date '2020-01-01'), (date '2020-01-01', date '2020-01-03'), "
                "(null, date '2020-01-01')) v(updated_date, published_date)")
    con.close()
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "t", "expectations": exps}), encoding="utf-8")
    result = run_gate(warehouse_path=warehouse, schema="harmonized", table="t", suite_path=suite,
                      gx_dir=tmp_path / "gx", run_id="cross-field")
    assert result.success and result.evaluated == 1
    assert result.warnings == ["expect_column_pair_values_a_to_be_greater_than_b(updated_date, published_date): "
                               "1 unexpected"]


# ---- dictionary and versioning -------------------------------------------------------------------

def test_the_dictionary_states_the_rule_its_severity_and_message():
    page = build_dictionary(check(STANDARDS))["entities/data_resource.html"]
    assert "updated_date &gt;= published_date" in page or "updated_date >= published_date" in page
    assert "更新日期早于发布日期，请核对两个日期。" in page and "check both dates" in page
    assert "warning updated_before_published" in page and "updated_before_published" in page


def _without_rules(scratch: Path) -> None:
    text = (scratch / ENTITY).read_text(encoding="utf-8")
    (scratch / ENTITY).write_text(text[:text.index("rules:\n")], encoding="utf-8")


def test_adding_a_rule_is_minor_and_making_it_quarantine_is_major(scratch: Path, tmp_path: Path):
    old = tmp_path / "old"
    shutil.copytree(scratch, old)
    _without_rules(old)
    changes = classify(load_standards(old), load_standards(scratch))
    assert [(c.level, c.what) for c in changes] == [
        ("minor", "rule compare (reason updated_before_published) added")]
    _edit(scratch / ENTITY, "    severity: warn\n    reason: updated_before_published",
          "    severity: quarantine\n    reason: updated_before_published")
    _edit(scratch / ENTITY, "check both dates.", "check the two dates.")
    changes = classify(load_standards(STANDARDS), load_standards(scratch))
    assert sorted((c.level, c.what) for c in changes) == [
        ("major", "rule compare (reason updated_before_published) severity changed from warn to quarantine "
                  "(can reject rows that passed before)"),
        ("patch", "message of rule compare (reason updated_before_published) changed")]


# ---- a real dbt build over 浙江's catalogue ---------------------------------------------------------

ZJ_FILE = "opendata_catalogs/nju-websoft_CNPDS_zhejiang_zhejiang.json"
QUARANTINE_RULE = """  - rule: compare
    expr: "published_date >= '2020-01-01'"
    severity: quarantine
    reason: published_too_early
    message: {zh: 发布日期早于2020年, en: Published before 2020}
"""


def _zj_dates() -> list[tuple[date | None, date | None]]:
    """(published, updated) of each 浙江 row, read from the catalogue here (not by tongban)."""
    from tongban.common.config import settings

    rows = json.loads(settings().find_delivery(ZJ_FILE).read_text(encoding="utf-8"))

    def day(v: object) -> date | None:
        try:
            return date.fromisoformat(str(v).strip())
        except ValueError:
            return None
    return [(day(r.get("发布日期")), day(r.get("更新日期"))) for r in rows]


@pytest.fixture(scope="module")
def zj_built(tmp_path_factory) -> dict:
    """浙江's data_resource mapping alone (the other catalogues removed), with a quarantine rule
    beside the standard's warn rule, built by the real dbt up to the union of its rows."""
    from tongban.common.config import settings
    from tongban.pipeline import _load_reference
    from tongban.standards.generate import scratch_project
    from tongban.steps.feedback import write_feedback
    from tongban.steps.harmonize import run_dbt, source_counts
    from tongban.steps.intake.land import land

    root = tmp_path_factory.mktemp("cross_field")
    scratch = root / "standards"
    shutil.copytree(STANDARDS, scratch)
    for p in ("sh", "js", "ah"):
        (scratch / "mappings" / p / "data_resource.yaml").unlink()
    _edit(scratch / ENTITY, "rules:\n", "rules:\n" + QUARANTINE_RULE)
    std = check(scratch)
    assert std.errors == []
    project = scratch_project(std, PROJECT_ROOT, root / "project")
    build = root / "build"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGBAN_BUILD_DIR", str(build))
        mp.setenv("TONGBAN_STANDARDS_DIR", str(scratch))
        mp.setenv("TONGBAN_FEEDBACK_DIR", str(root / "feedback"))
        s = settings()
        build.mkdir()
        _load_reference(s)
        landed = land(std.mapping("zj", "data_resource"), inbox_dirs=list(s.inbox_dirs), raw_dir=s.raw_dir,
                      run_id="cross-field", entity=std.entities["data_resource"])
        assert landed.status == "landed", landed.message
        outcome = run_dbt(project, warehouse=s.warehouse_path, raw_dir=s.raw_dir, build_dir=build,
                          args=["build", "--select", "+data_resource__rejections"])
        assert outcome.success, outcome.failures
        feedback = write_feedback(s, "cross-field", [dataclasses.asdict(landed)])
        counts = source_counts(s.warehouse_path, "data_resource", ["updated_before_published"])
        con = duckdb.connect(str(s.warehouse_path), read_only=True)
        rows = con.execute(
            "select source_row_number, len(reasons) = 0, "
            "list_contains(list_transform(reasons, lambda r: r.reason), 'published_too_early'), "
            "list_contains(list_transform(note_issues, lambda r: r.reason), 'updated_before_published') "
            "from intermediate.int_data_resource__unioned order by 1").fetchall()
        con.close()
    return {"counts": counts["zj"], "rows": rows, "feedback": feedback}


def test_zj_warn_rule_notes_its_135_rows_and_publishes_them(zj_built):
    dates = _zj_dates()
    before = [i + 1 for i, (pub, upd) in enumerate(dates) if pub and upd and upd < pub]
    assert len(before) == 135  # the count, read from the catalogue itself
    rows = zj_built["rows"]
    assert len(rows) == len(dates) == 1309
    assert [n for n, _passed, _q, warned in rows if warned] == before
    # a warning holds nothing back: the rows that pass with it are the ones the run counts
    warned_and_passed = [n for n, passed, _q, warned in rows if warned and passed]
    assert warned_and_passed and zj_built["counts"]["rows_warned"] == len(warned_and_passed)
    assert zj_built["counts"]["warnings"] == [{"reason": "updated_before_published", "field": "updated_date",
                                               "rows": 135, "severity": "warn"}]


def test_a_quarantine_rule_holds_its_rows_back(zj_built):
    early = {i + 1 for i, (pub, _upd) in enumerate(_zj_dates()) if pub and pub < date(2020, 1, 1)}
    assert early  # the rule has rows to hold back
    rows = zj_built["rows"]
    assert {n for n, _p, quarantined, _w in rows if quarantined} == early
    assert not [n for n, passed, _q, _w in rows if n in early and passed]
    top = {r["reason"]: r["rows"] for r in zj_built["counts"]["top_reasons"]}
    assert top["published_too_early"] == len(early)


def test_the_province_is_told_of_its_rows_published_with_warnings(zj_built):
    """feedback/zj/<run>__data_resource__warnings.csv: the published rows that broke the warn rule,
    in 浙江's own columns, each with the rule's message and the columns it read."""
    import csv

    (warned,) = [f for f in zj_built["feedback"] if f.endswith("__data_resource__warnings.csv")]
    with open(warned, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = [n for n, passed, _q, w in zj_built["rows"] if w and passed]
    assert [int(r["tongban_row_number"]) for r in rows] == expected
    assert {"标题", "更新日期", "发布日期", "tongban_warnings", "tongban_details"} <= set(rows[0])
    assert {r["tongban_warnings"] for r in rows} == {"updated_before_published"}
    assert {r["tongban_details"] for r in rows} == {
        "updated_before_published: 更新日期早于发布日期，请核对两个日期。 / The updated date is before the published "
        "date; check both dates. [更新日期, 发布日期]"}
    for r in rows:  # the province's own values, as delivered
        assert date.fromisoformat(r["更新日期"].strip()) < date.fromisoformat(r["发布日期"].strip())
    # the rejections file is separate and holds none of these rows
    (rejected,) = [f for f in zj_built["feedback"] if f.endswith("__data_resource.csv")]
    with open(rejected, encoding="utf-8", newline="") as fh:
        assert not {int(r["tongban_row_number"]) for r in csv.DictReader(fh)} & set(expected)
