"""Odd values through the real walk (issue 14): delivery -> intake (DuckDB's JSON Lines reader,
the CSV reader) -> landed Parquet -> dbt's staging, checked and harmonized models. Each odd
value either parses to what it means or sends its row back with a reason of its own, and the
reason quotes nothing of a nested object."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tongban.sample import write_samples

from tests.workdirs import use_work

ROWS = 60
SEED = 3
ENTITIES = ("birth_registration", "business_license")
KEY = "tongban-test-pseudonym-key-0123456789abcdef"
FULL = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
OBJECT = {"given": "沐瑾", "family": "谢"}


def _clean_rows(inbox: Path, source_id: str, name: str, n: int) -> list[int]:
    """``n`` row numbers the answer key calls clean, spread over the delivery."""
    with (inbox / source_id / f"{name}.answer_key.csv").open(encoding="utf-8", newline="") as fh:
        defective = {int(r["row_number"]) for r in csv.DictReader(fh)}
    return [r for r in range(1, ROWS + 1) if r not in defective][:n]


def _edit_jsonl(path: Path, edits: dict[int, dict]) -> list[dict]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    originals = [dict(r) for r in records]
    for row, changes in edits.items():
        records[row - 1].update(changes)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return originals


def _edit_csv(path: Path, edits: dict[int, dict]) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    originals = [dict(r) for r in rows]
    for row, changes in edits.items():
        rows[row - 1].update(changes)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return originals


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    from tongban import pipeline

    work = tmp_path_factory.mktemp("odd-values")
    inbox = work / "inbox"
    for name in ("births", "licenses"):
        write_samples(name, ROWS, SEED, inbox)
    zj = _clean_rows(inbox, "zj", "births", 6)
    sh_births = _clean_rows(inbox, "sh", "births", 1)
    sh_licenses = _clean_rows(inbox, "sh", "licenses", 3)
    zj_original = _edit_jsonl(inbox / "zj" / "births.jsonl", {
        zj[0]: {"institutionName": OBJECT},
        zj[1]: {"motherName": OBJECT},
        zj[4]: {"contactPhone": "１３８００１３８０００"},
        zj[5]: {"birthDivisionCode": 330106.5},
    })
    # set from the delivered values: a float with a zero fraction, the mother's ID typed full-width
    division = _edit_jsonl(inbox / "zj" / "births.jsonl", {})[zj[2] - 1]["birthDivisionCode"]
    _edit_jsonl(inbox / "zj" / "births.jsonl", {zj[2]: {"birthDivisionCode": float(division)},
                                                zj[3]: {"motherIdNumber": zj_original[zj[3] - 1]["motherIdNumber"]
                                                        .translate(FULL)}})
    _edit_csv(inbox / "sh" / "births.csv", {sh_births[0]: {"birth_date": "1800-01-01"}})
    sh_original = _edit_csv(inbox / "sh" / "licenses.csv", {
        sh_licenses[0]: {"registered_capital": "150000.004"},
        sh_licenses[2]: {"registered_capital": "150000.0000"},
    })
    sh_original = _edit_csv(inbox / "sh" / "licenses.csv", {
        sh_licenses[1]: {"uscc": sh_original[sh_licenses[1] - 1]["uscc"].translate(FULL)}})
    with pytest.MonkeyPatch.context() as mp:
        use_work(mp, work, inbox, KEY)
        run = pipeline.start_run(list(ENTITIES))
        intakes = [pipeline.intake(run, src) for src in run["sources"]]
        transformed = pipeline.transform(run, intakes)
    return {"zj": zj, "sh_births": sh_births, "sh_licenses": sh_licenses, "zj_original": zj_original,
            "division": division, "sh_original": sh_original, "intakes": intakes,
            "warehouse": transformed["warehouse"]}


def _reasons(case: dict, entity: str, source_id: str) -> dict[int, set[str]]:
    with duckdb.connect(case["warehouse"], read_only=True) as con:
        rows = con.execute(f"select source_row_number, list_transform(reasons, lambda r: r.reason || ':' || r.field) "
                           f"from harmonized.{entity}__rejections where source_id = ?", [source_id]).fetchall()
    return {n: set(r) for n, r in rows}


def _published(case: dict, entity: str, source_id: str, column: str) -> dict[int, object]:
    with duckdb.connect(case["warehouse"], read_only=True) as con:
        return dict(con.execute(f"select source_row_number, {column} from harmonized.{entity} where source_id = ?",
                                [source_id]).fetchall())


def test_a_nested_object_goes_back_with_its_own_reason_and_quotes_nothing(case):
    zj = case["zj"]
    reasons = _reasons(case, "birth_registration", "zj")
    assert reasons[zj[0]] == {"nested_object:birth_institution_name"}
    assert reasons[zj[1]] == {"nested_object:mother_name"}
    with duckdb.connect(case["warehouse"], read_only=True) as con:
        quoted = con.execute("select list_transform(reasons, lambda r: r.value) from "
                             "harmonized.birth_registration__rejections where source_id = 'zj' "
                             "and source_row_number in (?, ?)", zj[:2]).fetchall()
    assert quoted == [([None],), ([None],)]


def test_a_float_with_a_zero_fraction_is_the_code_it_means(case):
    zj = case["zj"]
    assert _published(case, "birth_registration", "zj", "birth_division_code")[zj[2]] == case["division"]
    assert _reasons(case, "birth_registration", "zj")[zj[5]] == {"division_malformed:birth_division_code"}


def test_full_width_identifiers_and_phones_are_read_half_width(case):
    zj, sh = case["zj"], case["sh_licenses"]
    assert _published(case, "birth_registration", "zj", "mother_id_number")[zj[3]] == \
        case["zj_original"][zj[3] - 1]["motherIdNumber"]
    assert _published(case, "birth_registration", "zj", "contact_phone")[zj[4]] == "13800138000"
    assert _published(case, "business_license", "sh", "uscc")[sh[1]] == case["sh_original"][sh[1] - 1]["uscc"]


def test_an_amount_finer_than_a_fen_is_refused_not_rounded(case):
    sh = case["sh_licenses"]
    reasons = _reasons(case, "business_license", "sh")
    assert reasons[sh[0]] == {"too_precise:registered_capital_yuan"}
    assert sh[2] not in reasons  # trailing zeros state no precision
    assert _published(case, "business_license", "sh", "registered_capital_yuan")[sh[2]] == Decimal("150000.00")


def test_a_placeholder_birth_date_has_its_own_reason(case):
    row = case["sh_births"][0]
    assert _reasons(case, "birth_registration", "sh")[row] == {"date_too_early:birth_date"}
