"""tongban.sample: synthetic deliveries are deterministic, in each province's shape, clean rows
pass every validator, and every answer-key row carries exactly the defect it names."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
import zipfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from tongban.sample import births, licenses, write_samples
from tongban.sample.common import PROVINCES, RefView, defect_count
from tongban.common.validators import (
    gb11643_birth_date,
    gb11643_problem,
    gb32100_problem,
    gbt2260_problem,
    gbt4754_problem,
    gbt36904_problem,
    make_ecert_identifier,
    uscc_region_agrees,
)

ROWS = 400
SEED = 7
BEIJING = dt.timezone(dt.timedelta(hours=8))
FILES = [f"{p}/{e}.{ext}" for e in ("births", "licenses")
         for p, ext in (("sh", "csv"), ("js", "csv"), ("zj", "jsonl"), ("ah", "xlsx"))]
FILES += [f"{p.key}/{e}.answer_key.csv" for e in ("births", "licenses") for p in PROVINCES]


@pytest.fixture(scope="module")
def ref() -> RefView:
    return RefView()


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("samples")
    for entity in ("births", "licenses"):
        written = write_samples(entity, ROWS, SEED, d)
        assert len(written) == 8
    return d


# --------------------------------------------------------------------------------------------
# reading the deliveries back into standard terms


def _none(v):
    return None if v in ("", None) else v


def _raw_rows(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        enc = "gbk" if path.parent.name == "js" else "utf-8"
        return [{k: _none(v) for k, v in r.items()}
                for r in csv.DictReader(io.StringIO(path.read_bytes().decode(enc), newline=""))]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["Sheet1"]
    rows = list(wb["Sheet1"].iter_rows(values_only=True))
    wb.close()
    header = rows[0]
    return [{k: _none(v) for k, v in zip(header, r, strict=True)} for r in rows[1:]]


def _zh_date(v: str | None) -> dt.date | None:
    if v is None:
        return None
    m = re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", v)
    assert m, v
    return dt.date(int(m[1]), int(m[2]), int(m[3]))


def _epoch_date(ms) -> dt.date | None:
    if ms is None:
        return None
    assert isinstance(ms, int)
    t = dt.datetime.fromtimestamp(ms / 1000, BEIJING)
    assert (t.hour, t.minute, t.second) == (0, 0, 0), ms
    return t.date()


def _key(path: Path) -> list[dict]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("row_number,defect,field,expected_reason\n")
    return list(csv.DictReader(io.StringIO(text)))


def _births_std(province: str, path: Path, ethnic: dict[str, str]) -> list[dict]:
    names = {v: k for k, v in ethnic.items()}
    zh = {v: k for k, v in births.SERVICE_ZH.items()}
    js = {v: k for k, v in births.SERVICE_JS.items()}
    cols = births.COLUMNS[province]
    out = []
    for raw in _raw_rows(path):
        assert list(raw) == list(cols)
        v = [raw[c] for c in cols]
        r = dict(zip(births.STANDARD_FIELDS, v, strict=True))
        eth = r["mother_ethnicity_code"]
        if province in ("sh", "ah"):
            r["mother_ethnicity_code"] = names.get(eth, eth)
        if province == "sh":
            r["child_sex_code"] = {"男": "1", "女": "2"}[r["child_sex_code"]]
            r["birth_date"] = dt.date.fromisoformat(r["birth_date"]) if r["birth_date"] else None
            r["services_requested"] = [zh[s] for s in r["services_requested"].split(";")]
        elif province == "js":
            r["birth_date"] = dt.datetime.strptime(r["birth_date"], "%Y%m%d").date() if r["birth_date"] else None
            r["services_requested"] = [js[s] for s in r["services_requested"].split(",")]
        elif province == "zj":
            r["child_sex_code"] = {"M": "1", "F": "2"}[r["child_sex_code"]]
            r["birth_date"] = _epoch_date(r["birth_date"])
            assert isinstance(r["services_requested"], list)
        else:
            r["child_sex_code"] = {"男": "1", "女": "2"}[r["child_sex_code"]]
            r["birth_date"] = _zh_date(r["birth_date"])
            r["services_requested"] = [zh[s] for s in r["services_requested"].split("、")]
        out.append(r)
    return out


def _licenses_std(province: str, path: Path, ref: RefView) -> list[dict]:
    zh_type = {v: k for k, v in licenses.ENTITY_TYPE_ZH.items()}
    js_type = {v: k for k, v in licenses.ENTITY_TYPE_JS.items()}
    zh_status = {v: k for k, v in licenses.STATUS_ZH.items()}
    js_status = {v: k for k, v in licenses.STATUS_JS.items()}
    fields = ("uscc", "enterprise_name", "legal_representative", "entity_type_code", "registered_capital_yuan",
              "established_date", "registration_division_code", "industry_code", "status_code", "ecert_identifier")
    cols = licenses.COLUMNS[province]
    out = []
    for raw in _raw_rows(path):
        assert list(raw) == list(cols)
        r = dict(zip(fields, [raw[c] for c in cols], strict=True))
        cap = r["registered_capital_yuan"]
        if province == "sh":
            assert re.fullmatch(r"\d+\.\d\d", cap), cap
            r["entity_type_code"] = zh_type[r["entity_type_code"]]
            r["registered_capital_yuan"] = Decimal(cap)
            r["established_date"] = dt.date.fromisoformat(r["established_date"]) if r["established_date"] else None
            section, code = r["industry_code"][0], r["industry_code"][1:]
            assert ref.industries[code].section_code == section
            r["industry_code"] = code
            r["status_code"] = zh_status[r["status_code"]]
        elif province == "js":
            assert re.fullmatch(r"\d+(\.\d\d)?", cap), cap
            r["entity_type_code"] = js_type[r["entity_type_code"]]
            r["registered_capital_yuan"] = Decimal(cap)
            r["established_date"] = (dt.datetime.strptime(r["established_date"], "%Y%m%d").date()
                                     if r["established_date"] else None)
            r["status_code"] = js_status[r["status_code"]]
        elif province == "zj":
            assert isinstance(cap, (int, float)) and not isinstance(cap, bool)
            r["entity_type_code"] = r["entity_type_code"].lower()
            r["registered_capital_yuan"] = Decimal(repr(cap)) if isinstance(cap, float) else Decimal(cap)
            r["established_date"] = _epoch_date(r["established_date"])
            r["status_code"] = r["status_code"].lower()
        else:
            assert isinstance(cap, (int, float)), cap
            r["entity_type_code"] = zh_type[r["entity_type_code"]]
            r["registered_capital_yuan"] = Decimal(repr(cap)) * 10_000
            r["established_date"] = _zh_date(r["established_date"])
            r["status_code"] = zh_status[r["status_code"]]
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------
# what the pipeline should find (the tests' own statement of each rule)


def _birth_problems(r: dict, seen_certs: set, ethnic: dict[str, str]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for f in ("child_name", "birth_date", "mother_id_number", "birth_certificate_number"):
        if r[f] is None:
            found.add((f, "missing_required"))
    cert = r["birth_certificate_number"]
    if cert is not None:
        assert re.fullmatch(r"[A-Z]\d{9}", cert), cert
        if cert in seen_certs:
            found.add(("birth_certificate_number", "duplicate_value"))
        seen_certs.add(cert)
    for f in ("mother_id_number", "father_id_number"):
        p = gb11643_problem(r[f])
        if p:
            found.add((f, p))
    mother_born = gb11643_birth_date(r["mother_id_number"])
    if mother_born and r["birth_date"]:
        age = r["birth_date"].year - mother_born.year - (
            (r["birth_date"].month, r["birth_date"].day) < (mother_born.month, mother_born.day))
        if age < 14:
            found.add(("mother_id_number", "mother_too_young"))
        else:
            assert 18 <= age <= 45, (r, age)
    if r["mother_id_number"] and len(r["mother_id_number"]) == 18:
        assert int(r["mother_id_number"][14:17]) % 2 == 0  # women: even sequence code
    if r["father_id_number"]:
        assert int(r["father_id_number"][14:17]) % 2 == 1
    for f in ("birth_division_code", "hukou_division_code"):
        p = gbt2260_problem(r[f], level="county")
        if p:
            found.add((f, p))
    if r["mother_ethnicity_code"] not in ethnic:
        found.add(("mother_ethnicity_code", "unmapped_code"))
    if r["birth_date"] is not None:
        if r["birth_date"] > dt.date(2030, 12, 31):
            found.add(("birth_date", "date_in_future"))
        else:
            assert births.FIRST_BIRTH <= r["birth_date"] <= births.LAST_BIRTH
    assert r["child_sex_code"] in ("1", "2")
    assert r["services_requested"] and set(r["services_requested"]) <= set(births.SERVICES)
    assert r["contact_phone"] is None or re.fullmatch(r"1[3-9]\d{9}", r["contact_phone"])
    return found


def _license_problems(r: dict, seen: set, ref: RefView) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for f in ("uscc", "enterprise_name", "established_date"):
        if r[f] is None:
            found.add((f, "missing_required"))
    uscc, division = r["uscc"], r["registration_division_code"]
    if uscc is not None:
        p = gb32100_problem(uscc)
        if p:
            found.add(("uscc", p))
        if uscc in seen:
            found.add(("uscc", "duplicate_value"))
        seen.add(uscc)
    p = gbt2260_problem(division)
    if p:
        found.add(("registration_division_code", p))
    else:
        assert ref.current[division].level in ("county", "prefecture")
    if uscc is not None and uscc_region_agrees(uscc, division) is False:
        found.add(("registration_division_code", "uscc_region_mismatch"))
    if not Decimal(100) <= r["registered_capital_yuan"] <= Decimal(10) ** 11:
        found.add(("registered_capital_yuan", "out_of_range"))
    d = r["established_date"]
    if d is not None:
        if d > dt.date(2030, 12, 31):
            found.add(("established_date", "date_in_future"))
        else:
            assert licenses.FIRST_ESTABLISHED <= d <= licenses.LAST_ESTABLISHED
    p = gbt36904_problem(r["ecert_identifier"])
    if p:
        found.add(("ecert_identifier", p))
    p = gbt4754_problem(r["industry_code"])
    if p:
        found.add(("industry_code", p))
    if uscc is not None:
        expected = {"92": {"individual_business"}, "93": {"farmer_cooperative"}, "N": {"farmer_cooperative"},
                    "91": set(licenses.ENTERPRISE_TYPES)}
        kind = uscc[0] if uscc[0] == "N" else uscc[:2]
        assert r["entity_type_code"] in expected[kind], (uscc, r["entity_type_code"])
    assert r["status_code"] in licenses.STATUSES
    return found


# --------------------------------------------------------------------------------------------
# tests


def test_same_seed_gives_identical_bytes_and_another_seed_differs(out, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    for entity in ("births", "licenses"):
        write_samples(entity, ROWS, SEED, again)
        write_samples(entity, ROWS, SEED + 1, other)
    assert len(FILES) == 16
    for f in FILES:
        assert (out / f).read_bytes() == (again / f).read_bytes(), f
    for f in FILES:
        if "answer_key" not in f:
            assert (out / f).read_bytes() != (other / f).read_bytes(), f


def test_xlsx_zip_entries_have_fixed_timestamps(out):
    for entity in ("births", "licenses"):
        with zipfile.ZipFile(out / "ah" / f"{entity}.xlsx") as zf:
            assert {i.date_time for i in zf.infolist()} == {(2025, 1, 1, 0, 0, 0)}
            core = zf.read("docProps/core.xml").decode()
            assert "2025-01-01T00:00:00Z" in core


def test_text_shapes(out):
    for entity in ("births", "licenses"):
        js = (out / "js" / f"{entity}.csv").read_bytes()
        with pytest.raises(UnicodeDecodeError, match="'utf-8' codec can't decode byte"):
            js.decode("utf-8")
        assert re.search("[\u4e00-\u9fff]", js.decode("gbk"))
        sh = (out / "sh" / f"{entity}.csv").read_bytes().decode("utf-8")
        assert re.search("[\u4e00-\u9fff]", sh)
        lines = (out / "zj" / f"{entity}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == ROWS
        first = json.loads(lines[0])
        cols = (births if entity == "births" else licenses).COLUMNS["zj"]
        assert list(first) == list(cols)
        date_key = "birthDate" if entity == "births" else "establishedDate"
        assert all(isinstance(json.loads(line)[date_key], (int, type(None))) for line in lines)
    first = json.loads((out / "zj" / "births.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert isinstance(first["servicesRequested"], list) and first["childSex"] in ("M", "F")
    assert _epoch_date(first["birthDate"]).year in (2023, 2024, 2025)
    assert (out / "sh" / "births.csv").read_text(encoding="utf-8").startswith("record_id,certificate_no,")
    assert (out / "js" / "births.csv").read_bytes().startswith(b"LSH,CSYXZMBH,XM,XB,CSRQ,")


def test_xlsx_shape_with_calamine_and_openpyxl(out):
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(out / "ah" / "births.xlsx"))
    assert wb.sheet_names == ["Sheet1"]
    rows = wb.get_sheet_by_name("Sheet1").to_python()
    assert tuple(rows[0]) == births.COLUMNS["ah"]
    assert len(rows) == ROWS + 1
    dates = [r[4] for r in rows[1:] if r[4]]
    assert all(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", d) for d in dates)
    assert all(isinstance(r[8], str) for r in rows[1:] if r[8])  # the ID number is a text cell

    wb = CalamineWorkbook.from_path(str(out / "ah" / "licenses.xlsx"))
    rows = wb.get_sheet_by_name("Sheet1").to_python()
    assert tuple(rows[0]) == licenses.COLUMNS["ah"]
    assert "注册资本（万元）" in rows[0]
    assert all(isinstance(r[4], (int, float)) for r in rows[1:])
    assert all(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", r[5]) for r in rows[1:] if r[5])

    book = openpyxl.load_workbook(out / "ah" / "licenses.xlsx", read_only=True)
    values = list(book["Sheet1"].iter_rows(min_row=2, max_row=3, values_only=True))
    book.close()
    assert isinstance(values[0][4], (int, float)) and isinstance(values[0][0], str)


def test_project_reader_reads_every_delivery(out):
    from tests.delivery import read_delivery

    for f in FILES:
        if "answer_key" in f:
            continue
        d = read_delivery(out / f)
        assert len(d.frame) == ROWS, f
        province, name = f.split("/")
        module = births if name.startswith("births") else licenses
        assert list(d.columns) == list(module.COLUMNS[province]), f
        if f.startswith("js/"):
            assert d.encoding in ("gbk", "gb18030"), d.encoding


@pytest.mark.parametrize("province", PROVINCES, ids=lambda p: p.key)
def test_births_answer_key_and_clean_rows(out, ref, province):
    ethnic = births.ethnic_groups()
    rows = _births_std(province.key, out / province.key / births.FILE_NAMES[province.key], ethnic)
    key = _key(out / province.key / "births.answer_key.csv")
    by_row = {int(k["row_number"]): k for k in key}
    assert len(by_row) == len(key), "one defect per row"
    assert [int(k["row_number"]) for k in key] == sorted(by_row)
    classes = births.defect_classes(province, ref)
    counts = Counter(k["defect"] for k in key)
    assert counts == {c.name: defect_count(c.rate, ROWS) for c in classes}
    assert all(counts[c.name] >= 1 for c in classes)
    if province.key in ("sh", "zj"):  # NBS publishes no development-zone codes there
        assert not ref.nbs_codes(province.code) and "nbs_division_code" not in counts
    else:
        assert "nbs_division_code" in counts
    seen: set[str] = set()
    clean_certs: list[str] = []
    for i, r in enumerate(rows, start=1):
        found = _birth_problems(r, seen, ethnic)
        k = by_row.get(i)
        if k is None:
            assert found == set(), (i, r, found)
            assert r["birth_division_code"].startswith(province.code)
            clean_certs.append(r["birth_certificate_number"])
            continue
        assert found == {(k["field"], k["expected_reason"])}, (i, k, r, found)
        if k["defect"] == "duplicate_certificate":
            assert r["birth_certificate_number"] in clean_certs  # an earlier clean row's number
        if k["defect"] == "birthplace_not_in_use":
            assert r["mother_id_number"][:6] in ref.history  # a real code, just not then
        if k["defect"] == "unknown_ethnicity":
            expected = births.UNKNOWN_ETHNICITY_CODES if province.key in ("js", "zj") else \
                births.UNKNOWN_ETHNICITY_NAMES
            assert r["mother_ethnicity_code"] in expected
        if k["defect"] == "nbs_division_code":
            assert r["birth_division_code"].startswith(province.code)
    assert len(clean_certs) == len(set(clean_certs))
    # optional fields are sometimes absent, and the mix of ID address codes is realistic
    assert any(r["father_id_number"] is None for r in rows)
    assert any(r["contact_phone"] is None for r in rows)
    clean_mothers = [r["mother_id_number"] for i, r in enumerate(rows, 1) if i not in by_row]
    assert any(m[:6] not in ref.current for m in clean_mothers)  # abolished but valid then
    assert sum(m.startswith(province.code) for m in clean_mothers) > 0.6 * len(clean_mothers)
    han = sum(r["mother_ethnicity_code"] == "01" for r in rows)
    assert 0.8 * ROWS < han < 0.97 * ROWS


@pytest.mark.parametrize("province", PROVINCES, ids=lambda p: p.key)
def test_licenses_answer_key_and_clean_rows(out, ref, province):
    path = out / province.key / licenses.FILE_NAMES[province.key]
    rows = _licenses_std(province.key, path, ref)
    key = _key(out / province.key / "licenses.answer_key.csv")
    by_row = {int(k["row_number"]): k for k in key}
    assert len(by_row) == len(key)
    classes = licenses.defect_classes(province, ref)
    counts = Counter(k["defect"] for k in key)
    assert counts == {c.name: defect_count(c.rate, ROWS) for c in classes}
    if province.key in ("sh", "zj"):
        assert not ref.nbs_codes(province.code) and "nbs_division_code" not in counts
    else:
        assert "nbs_division_code" in counts
    seen: set[str] = set()
    clean = []
    for i, r in enumerate(rows, start=1):
        found = _license_problems(r, seen, ref)
        k = by_row.get(i)
        if k is None:
            assert found == set(), (i, r, found)
            assert r["registration_division_code"].startswith(province.code)
            clean.append(r)
            continue
        assert found == {(k["field"], k["expected_reason"])}, (i, k, r, found)
        if k["defect"] == "uscc_region_mismatch":
            assert not r["uscc"][2:4] == province.code
        if k["defect"] == "capital_wrong_unit":
            if province.key == "ah":
                assert r["registered_capital_yuan"] >= Decimal(2) * 10**11
            else:
                assert r["registered_capital_yuan"] < 100
    usccs = [r["uscc"] for r in clean]
    assert len(usccs) == len(set(usccs))
    letters = [u for u in usccs if u[0] in "NY"]
    assert len(letters) >= 0.01 * len(clean)
    kinds = Counter(u[:2] for u in usccs)
    assert kinds["91"] > 0 and kinds["92"] > kinds["91"] and kinds["93"] > 0
    # the e-licence identifiers are what make_ecert_identifier gives for their parts
    for r in clean:
        parts = r["ecert_identifier"].split(".")
        assert r["ecert_identifier"] == make_ecert_identifier(parts[5], parts[6], parts[7], parts[8])
        assert parts[5] == licenses.ECERT_CERT_TYPE
        assert gb32100_problem(parts[5][:18]) is None  # a well-formed (synthetic) owner USCC
    # ah: 万元 values are exact with at most 4 decimals
    if province.key == "ah":
        assert all((r["registered_capital_yuan"] % 1) == 0 for r in clean)
    assert any(r["registered_capital_yuan"] % 10_000 != 0 for r in clean)


def test_small_row_counts(tmp_path):
    for entity in ("births", "licenses"):
        paths = write_samples(entity, 5, 3, tmp_path)
        assert len(paths) == 8
        for p in paths:
            if p.name.endswith("answer_key.csv"):
                assert p.read_text(encoding="utf-8") == "row_number,defect,field,expected_reason\n"


def test_cli_writes_the_eight_files(tmp_path):
    exe = Path(sys.executable).parent / "tongban"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tongban.cli"]
    result = subprocess.run([*cmd, "sample", "births", "--rows", "200", "--seed", "1", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(["ah/births.answer_key.csv", "ah/births.xlsx", "js/births.answer_key.csv",
                              "js/births.csv", "sh/births.answer_key.csv", "sh/births.csv",
                              "zj/births.answer_key.csv", "zj/births.jsonl"])
    assert "births" in result.stdout


# --------------------------------------------------------------------------------------------
# XLSX deliveries in parts (a sheet holds at most 1,048,575 data rows)


def _xlsx_rows(paths: list[Path]) -> tuple[list, list]:
    from python_calamine import CalamineWorkbook

    header, rows = None, []
    for p in paths:
        with CalamineWorkbook.from_path(str(p)) as wb:
            assert wb.sheet_names == ["Sheet1"]
            values = wb.get_sheet_by_name("Sheet1").to_python()
        assert header is None or list(values[0]) == header, p  # every part starts with the header
        header = list(values[0])
        rows += [list(r) for r in values[1:]]
    return header, rows


def test_xlsx_delivery_in_parts_keeps_rows_and_answer_key(tmp_path):
    from tongban.common.parts import find_parts

    whole, split = tmp_path / "whole", tmp_path / "split"
    for entity in ("births", "licenses"):
        write_samples(entity, 1_050, SEED, whole, provinces=["ah", "js"])
        paths = write_samples(entity, 1_050, SEED, split, xlsx_max_rows=100, provinces=["ah", "js"])
        names = [str(p.relative_to(split)) for p in paths]
        expected = [f"ah/{entity}-{k}.xlsx" for k in range(1, 12)]
        assert names == [f"js/{entity}.csv", f"js/{entity}.answer_key.csv", *expected, f"ah/{entity}.answer_key.csv"]
        assert not (split / "ah" / f"{entity}.xlsx").exists()
        # the intake's glob finds them in row order (natural order: -10 and -11 after -9)
        parts = find_parts([split], f"ah/{entity}*.xlsx")
        assert [str(p.relative_to(split)) for p in parts] == expected
        header, rows = _xlsx_rows(parts)
        assert (header, rows) == _xlsx_rows([whole / "ah" / f"{entity}.xlsx"])
        assert len(rows) == 1_050
        for part in parts[:-1]:
            assert len(_xlsx_rows([part])[1]) == 100
        # row numbers of the answer key count across the parts: the same key as the single file
        for prov in ("ah", "js"):
            key = f"{prov}/{entity}.answer_key.csv"
            assert (split / key).read_bytes() == (whole / key).read_bytes(), key
        assert (split / "js" / f"{entity}.csv").read_bytes() == (whole / "js" / f"{entity}.csv").read_bytes()
        assert not [p for p in split.rglob("*.tmp")]


def test_xlsx_parts_are_replaced_by_a_smaller_delivery(tmp_path, monkeypatch):
    monkeypatch.setenv("TONGBAN_SAMPLE_XLSX_MAX_ROWS", "150")
    write_samples("births", 400, SEED, tmp_path, provinces=["ah"])
    assert sorted(p.name for p in (tmp_path / "ah").glob("births*.xlsx")) == [
        "births-1.xlsx", "births-2.xlsx", "births-3.xlsx"]
    monkeypatch.delenv("TONGBAN_SAMPLE_XLSX_MAX_ROWS")
    write_samples("births", 400, SEED, tmp_path, provinces=["ah"])  # one sheet again: stale parts go
    assert sorted(p.name for p in (tmp_path / "ah").glob("births*.xlsx")) == ["births.xlsx"]
    for bad in (0, 1_048_576):
        with pytest.raises(ValueError, match="xlsx_max_rows"):
            write_samples("births", 10, SEED, tmp_path, xlsx_max_rows=bad)
    with pytest.raises(ValueError, match="unknown province"):
        write_samples("births", 10, SEED, tmp_path, provinces=["xx"])


# --------------------------------------------------------------------------------------------
# the check characters by the tests' own arithmetic: tongban.common.validators computes the expected
# problems above and also writes the answer keys, so a shared bug there would hide; these do not


def _iso7064_mod11_2(first17: str) -> str:
    """GB 11643's check character, written out from the standard (ISO 7064 MOD 11-2)."""
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(first17))
    return "10X98765432"[total % 11]


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, Z, S, V


def _gb32100_check(first17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * (3 ** i % 31) for i, c in enumerate(first17))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def _gb11714_check(first8: str) -> str:
    total = sum(int(c, 36) * w for c, w in zip(first8, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    return "0123456789X0"[11 - total % 11]


def test_the_independent_check_characters_know_the_published_examples():
    assert _iso7064_mod11_2("11010519491231002") == "X"  # GB 11643-1999's own example
    assert _iso7064_mod11_2("44052418800101001") == "4"
    assert _gb32100_check("91350100M000100Y4") == "3"  # GB 32100-2015's example 91350100M000100Y43
    assert _gb11714_check("M000100Y") == "4"


@pytest.mark.parametrize("province", PROVINCES, ids=lambda p: p.key)
def test_check_character_defects_are_what_the_arithmetic_says(out, ref, province):
    births_rows = _births_std(province.key, out / province.key / births.FILE_NAMES[province.key],
                              births.ethnic_groups())
    key = {int(k["row_number"]): k for k in _key(out / province.key / "births.answer_key.csv")}
    checked = 0
    for i, r in enumerate(births_rows, start=1):
        for field in ("mother_id_number", "father_id_number"):
            number = r[field]
            if number is None or not re.fullmatch(r"\d{17}[\dXx]", number):
                continue  # a missing or malformed number has no check character to test
            k = key.get(i, {})
            wrong = (k.get("field"), k.get("expected_reason")) == (field, "id_bad_check_character")
            assert (_iso7064_mod11_2(number[:17]) != number[17].upper()) == wrong, (i, field, k)
            checked += wrong
    assert checked >= 1
    license_rows = _licenses_std(province.key, out / province.key / licenses.FILE_NAMES[province.key], ref)
    key = {int(k["row_number"]): k for k in _key(out / province.key / "licenses.answer_key.csv")}
    bad = {"uscc_bad_check_character", "uscc_bad_org_code_check"}
    checked = 0
    for i, r in enumerate(license_rows, start=1):
        uscc = r["uscc"]
        if uscc is None or not re.fullmatch(f"[{_USCC_ALPHABET}]{{18}}", uscc):
            continue
        arithmetic = _gb32100_check(uscc[:17]) != uscc[17] or _gb11714_check(uscc[8:16]) != uscc[16]
        assert arithmetic == (key.get(i, {}).get("expected_reason") in bad), (i, key.get(i))
        checked += arithmetic
    assert checked >= 1
