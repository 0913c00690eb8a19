"""The standard's row rules (macros/generated/row_rules.sql) run by real DuckDB with the
validator and masking macros, over rows shaped like a delivery's staged rows."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from tongban.common import pii
from tongban.common import validators
from tongban.common.config import PROJECT_ROOT
from tongban.common.reference import load_reference
from tongban.standards.lint import check
from tongban.standards.targets.dbt import row_rules_sql

STD = check(PROJECT_ROOT / "standards")
BIRTHS = STD.entities["birth_registration"]
MOTHER_BORN_1990 = "11010519900307002" + validators.gb11643_check_char("11010519900307002")


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    load_reference(connection)
    connection.execute(validators.sql_ddl())
    connection.execute(pii.sql_ddl())
    yield connection
    connection.close()


def birth_reasons(con, birth_dates: list[dt.date]) -> list[list[str]]:
    """The row reasons of one clean birth per date (the mother born on 1990-03-07)."""
    types = {f.name: f.type for f in BIRTHS.fields}
    clean = {"birth_id": "t-1", "birth_certificate_number": "O310123456", "child_name": "张三",
             "child_sex_code": "1", "birth_division_code": "310101", "mother_name": "李四",
             "mother_id_number": MOTHER_BORN_1990, "mother_ethnicity_code": "01",
             "hukou_division_code": "310101", "province_code": "31"}
    cols = ", ".join(f"?::{types[f.name]} as {f.name}" if f.name in clean else f"null::{types[f.name]} as {f.name}"
                     for f in BIRTHS.fields if f.name != "birth_date")
    con.execute("create or replace temp table births (birth_date date)")
    con.executemany("insert into births values (?)", [[d] for d in birth_dates])
    con.execute(f"create or replace temp table staged as select *, {cols}, "
                f"[]::struct(reason varchar, field varchar, value varchar)[] as blocking_issues from births",
                [clean[f.name] for f in BIRTHS.fields if f.name in clean])
    rows = con.execute(f"select birth_date, list_transform(row_reasons, lambda r: r.reason) "
                       f"from ({row_rules_sql(STD, BIRTHS, 'staged')}) order by birth_date").fetchall()
    return [reasons for _, reasons in rows]


def test_a_placeholder_birth_date_gets_its_own_reason(con):
    """1800-01-01 is no birth: date_too_early, and no mother's age computed from it."""
    got = birth_reasons(con, [dt.date(1800, 1, 1), dt.date(1899, 12, 31), dt.date(1900, 1, 1),
                              dt.date(2000, 5, 1), dt.date(2024, 3, 5)])
    assert got == [["date_too_early"], ["date_too_early"], ["mother_too_young"], ["mother_too_young"], []]
