"""On arrival, a column that feeds a national identifier must mostly hold such identifiers
(pandera check with the Python validators): shifted or mislabelled columns reject the delivery
whole, with a message that names the province, file and column but quotes no personal value."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from tongban.common.config import PROJECT_ROOT
from tongban.steps.intake.land import land
from tongban.common.reference import load_reference
from tongban.sample import write_samples
from tongban.common.sqlquote import quote_ident
from tongban.standards.generate import load_checked
from tongban.common.validators import sql_ddl

STD = load_checked(PROJECT_ROOT / "standards")


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inbox")
    write_samples("births", 120, 3, out)
    write_samples("licenses", 120, 3, out)
    return out


def _land(inbox: Path, source_id: str, entity: str, tmp_path: Path):
    m = STD.mapping(source_id, entity)
    return land(m, inbox_dirs=[inbox], raw_dir=tmp_path / "raw", run_id="t", entity=STD.entities[entity])


@pytest.mark.parametrize("source_id", ["sh", "js", "zj", "ah"])
@pytest.mark.parametrize("entity", ["birth_registration", "business_license"])
def test_sample_deliveries_land(inbox: Path, tmp_path: Path, source_id: str, entity: str):
    res = _land(inbox, source_id, entity, tmp_path)
    assert res.status == "landed", res.message
    assert res.rows_delivered == 120


def test_swapped_id_and_name_columns_reject_the_delivery_without_quoting_values(inbox: Path, tmp_path: Path):
    p = inbox / "sh" / "births.csv"
    with p.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    i, j = rows[0].index("mother_id_no"), rows[0].index("mother_name")
    for r in rows[1:]:
        r[i], r[j] = r[j], r[i]
    bad = tmp_path / "inbox"
    (bad / "sh").mkdir(parents=True)
    with (bad / "sh" / "births.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    res = _land(bad, "sh", "birth_registration", tmp_path)
    assert res.status == "rejected"
    assert "sh" in res.message and "births.csv" in res.message and "'mother_id_no'" in res.message
    assert "GB 11643" in res.message and "shifted or mislabelled" in res.message
    values = {v for r in rows[1:] for v in (r[i], r[j]) if v}
    assert not [v for v in values if v in res.message]


def test_a_few_bad_identifiers_are_rows_to_quarantine_not_a_shape_problem(inbox: Path, tmp_path: Path):
    """The injected defects (bad check characters ...) stay below the threshold: the delivery
    lands whole, and the row rule the quarantine applies (the SQL validator dbt's models call)
    flags exactly the rows the sample's answer key says are bad, in the landed rows."""
    res = _land(inbox, "js", "business_license", tmp_path)
    assert res.status == "landed" and res.rows_delivered == 120
    with (inbox / "js" / "licenses.answer_key.csv").open(encoding="utf-8", newline="") as fh:
        bad = {int(r["row_number"]) for r in csv.DictReader(fh)
               if r["field"] == "uscc" and r["expected_reason"].startswith("uscc_")}
    assert bad  # the sample injected some
    column = STD.mapping("js", "business_license").fields["uscc"].source
    with duckdb.connect() as con:
        load_reference(con)
        con.execute(sql_ddl())
        landed, flagged = con.execute(
            f"select count(*), coalesce(list(source_row_number order by source_row_number) "
            f"filter (where gb32100_problem(upper(nullif(trim({quote_ident(column)}), ''))) is not null), []) "
            "from read_parquet(?)", [res.raw_path]).fetchone()
    assert landed == 120 and set(flagged) == bad


def test_identifiers_typed_full_width_are_identifiers(inbox: Path, tmp_path: Path):
    """A column of ID numbers typed with a Chinese input method (３１０...Ｘ) holds ID numbers: the
    shape check reads them half-width, as the models do, and the delivery lands."""
    to_full = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
    p = inbox / "sh" / "births.csv"
    with p.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    i = rows[0].index("mother_id_no")
    for r in rows[1:]:
        r[i] = r[i].translate(to_full)
    full = tmp_path / "inbox"
    (full / "sh").mkdir(parents=True)
    with (full / "sh" / "births.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    res = _land(full, "sh", "birth_registration", tmp_path)
    assert res.status == "landed", res.message
