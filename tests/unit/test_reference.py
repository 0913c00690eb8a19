"""The reference loaders against the counts documented in the reference SOURCES.md (§1, §2, §4b).

The reference data is always present on CI, so nothing here skips when it is missing.
"""

from __future__ import annotations

import csv
from collections import Counter

import duckdb
import pytest

from tongban.common import reference
from tongban.common.config import settings
from tongban.common.reference import (
    Division,
    HistoryEntry,
    ReferenceDataError,
    division_history,
    division_in_use,
    divisions_current,
    industry_classes,
    load_reference,
    nbs_statistical_codes,
    real_usccs,
)

YRD = ("31", "32", "33", "34")


def test_divisions_current_counts():
    divisions = divisions_current()
    assert len(divisions) == 3213
    assert Counter(d.level for d in divisions.values()) == {"province": 34, "prefecture": 333, "county": 2846}
    yrd = [d for d in divisions.values() if d.code[:2] in YRD]
    assert len(yrd) == 349
    by_province = Counter((d.code[:2], d.level) for d in yrd)
    assert by_province == {
        ("31", "province"): 1, ("31", "county"): 16,
        ("32", "province"): 1, ("32", "prefecture"): 13, ("32", "county"): 95,
        ("33", "province"): 1, ("33", "prefecture"): 11, ("33", "county"): 90,
        ("34", "province"): 1, ("34", "prefecture"): 16, ("34", "county"): 104,
    }
    assert divisions["310101"] == Division("310101", "黄浦区", "county", "310000")
    assert divisions["340100"] == Division("340100", "合肥市", "prefecture", "340000")
    assert divisions["310000"].parent_code is None
    assert "310103" not in divisions  # 卢湾区, abolished 2011


def test_divisions_current_matches_yrd_file():
    path = settings().reference_dir / "gbt2260" / "gbt2260_mca_2024_yrd_31_34.csv"
    with path.open(encoding="utf-8") as fh:
        yrd_file = {r["code"]: (r["name"], r["level"], r["parent_code"] or None) for r in csv.DictReader(fh)}
    divisions = divisions_current()
    assert yrd_file == {
        code: (d.name, d.level, d.parent_code) for code, d in divisions.items() if code[:2] in YRD
    }


def test_division_history_counts():
    history = division_history()
    entries = [e for es in history.values() for e in es]
    assert len(entries) == 6823
    # the BOM is not part of the first column name: the first row is found under its code
    assert history["110000"][0].name == "北京市"
    yrd = Counter(e.status for e in entries if e.code[:2] in YRD)
    assert yrd == {"在用": 349, "弃用": 438, "变更": 34}
    in_use = {e.code for e in entries if e.status == "在用"}
    assert in_use == set(divisions_current())
    assert all(e.end_year is None for e in entries if e.status == "在用")
    assert all(e.end_year is not None and e.end_year >= e.start_year for e in entries if e.status != "在用")
    assert min(e.start_year for e in entries) == 1981


def test_division_history_reuse_340111():
    entries = division_history()["340111"]
    assert [(e.name, e.status, e.start_year, e.end_year) for e in entries] == [
        ("郊区", "变更", 1983, 2002),
        ("包河区", "在用", 2002, None),
    ]
    assert entries[0] == HistoryEntry("340111", "郊区", "县级", "变更", 1983, 2002,
                                      ("340102", "340103", "340104", "340111"))


@pytest.mark.parametrize(
    ("code", "year", "expected"),
    [
        ("340111", 1982, False),  # first used 1983
        ("340111", 1983, True),
        ("340111", 1990, True),  # 郊区
        ("340111", 2002, True),
        ("340111", 2010, True),  # 包河区
        ("310103", 1950, True),  # before 1981 counts as 1981
        ("310103", 2011, True),  # abolished 2011: both ends inclusive
        ("310103", 2012, False),
        ("110111", 1980, False),  # 房山区 only since 1986
        ("110111", 1986, True),
        ("120110", 1980, True),  # 天津 东郊区 1981-1992
        ("120110", 1993, True),  # renamed 东丽区 in 1992, same code
        ("320576", 2000, False),  # NBS statistical code
        ("999999", 2000, False),
    ],
)
def test_division_in_use(code, year, expected):
    assert division_in_use(code, year) is expected


def test_nbs_statistical_codes():
    codes = nbs_statistical_codes()
    assert len(codes) == 133
    assert sum(1 for c in codes if c[4] == "7") == 124
    yrd = {c for c in codes if c[:2] in YRD}
    assert len(yrd) == 24 and all(c[4] == "7" for c in yrd)
    assert codes["320576"] == "苏州工业园区"
    assert codes["340176"] == "合肥高新技术产业开发区"
    assert codes["321171"] == "镇江新区"
    assert {"232761", "460321", "620201"} <= set(codes)
    assert not set(codes) & set(divisions_current())
    assert not set(codes) & set(division_history())


def test_industry_classes_counts():
    classes = industry_classes()
    assert len(classes) == 1381
    assert len({c.section_code for c in classes.values()}) == 20
    assert len({c.division_code for c in classes.values()}) == 97
    assert len({c.group_code for c in classes.values()}) == 473
    for c in classes.values():
        assert len(c.code) == 4 and c.code.isdigit()
        assert c.code.startswith(c.group_code) and c.group_code.startswith(c.division_code)
        assert len(c.section_code) == 1 and c.section_code.isalpha()
    rice = classes["0111"]
    assert (rice.name, rice.group_code, rice.group_name, rice.division_code, rice.division_name,
            rice.section_code, rice.section_name) == (
        "稻谷种植", "011", "谷物种植", "01", "农业", "A", "农、林、牧、渔业")


def test_real_usccs():
    usccs = real_usccs()
    assert len(usccs) == 383
    assert all(u.region_code == u.uscc[2:8] and u.authority == u.uscc[0] and u.entity_type == u.uscc[1]
               for u in usccs)
    assert all(u.is_yrd == (u.region_code[:2] in YRD) for u in usccs)
    assert Counter(u.region_code[:2] for u in usccs if u.is_yrd) == {"34": 300, "31": 11, "32": 2, "33": 1}


def test_missing_file_error(tmp_path, monkeypatch):
    with pytest.raises(ReferenceDataError, match="reference file gbt2260/gbt2260_mca_2024_all.csv not found") as err:
        divisions_current(tmp_path)
    assert isinstance(err.value, FileNotFoundError)
    message = str(err.value)
    assert "gbt2260/gbt2260_mca_2024_all.csv" in message
    assert "TONGBAN_REFERENCE_DIR" in message
    monkeypatch.setenv("TONGBAN_REFERENCE_DIR", str(tmp_path))
    for loader in (divisions_current, division_history, nbs_statistical_codes, industry_classes, real_usccs):
        with pytest.raises(ReferenceDataError, match="TONGBAN_REFERENCE_DIR"):
            loader()
    with pytest.raises(ReferenceDataError, match="identifiers/uscc_real_numbers_python-stdnum.csv"):
        real_usccs()
    with pytest.raises(ReferenceDataError, match="not found at .*; set TONGBAN_REFERENCE_DIR"):
        load_reference(duckdb.connect())


def test_cached_per_directory():
    ref = settings().reference_dir
    assert divisions_current() is divisions_current(ref) is divisions_current(str(ref / "." / "gbt2260" / ".."))
    assert reference._divisions_current.cache_info().currsize >= 1


def test_load_reference():
    con = duckdb.connect()
    load_reference(con)
    load_reference(con)  # create or replace: loading twice is fine

    def one(sql):
        return con.execute(sql).fetchall()

    assert one("select count(*), count(distinct code) from reference.gbt2260_current") == [(3213, 3213)]
    assert one("select count(*) from reference.gbt2260_current where province_code in ('31','32','33','34')") \
        == [(349,)]
    assert one("select name, level, parent_code, province_code from reference.gbt2260_current "
               "where code = '340111'") == [("包河区", "county", "340100", "34")]
    assert one("select parent_code from reference.gbt2260_current where code = '310000'") == [(None,)]
    assert one("select count(*) from reference.gbt2260_history") == [(6823,)]
    assert one("select name, level, status, start_year, end_year from reference.gbt2260_history "
               "where code = '340111' order by start_year") == [
        ("郊区", "县级", "变更", 1983, 2002), ("包河区", "县级", "在用", 2002, None)]
    assert one("select count(*) from reference.nbs_statistical_codes") == [(133,)]
    assert one("select name from reference.nbs_statistical_codes where code = '320576'") == [("苏州工业园区",)]
    assert one("select count(*), count(distinct section_code), count(distinct division_code), "
               "count(distinct group_code) from reference.gbt4754_classes") == [(1381, 20, 97, 473)]
    columns = {
        table: [name for name, *_ in con.execute(f"describe reference.{table}").fetchall()]
        for table in ("gbt2260_current", "gbt2260_history", "nbs_statistical_codes", "gbt4754_classes")
    }
    assert columns == {
        "gbt2260_current": ["code", "name", "level", "parent_code", "province_code"],
        "gbt2260_history": ["code", "name", "level", "status", "start_year", "end_year"],
        "nbs_statistical_codes": ["code", "name"],
        "gbt4754_classes": ["code", "name", "group_code", "group_name", "division_code", "division_name",
                            "section_code", "section_name"],
    }
