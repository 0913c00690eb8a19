"""A real run (Airflow dag.test in process, dbt, DuckDB, GX) of births delivered in parts: 安徽's
XLSX in three files (``births-1.xlsx`` ... through the repository mapping's ``ah/births*.xlsx``)
and 上海's CSV in two (a copy of the standards whose mapping reads ``sh/births-*.csv``). Rows are
numbered across the parts, every row is conserved, and the feedback names the part and the row
in it for a multi-part delivery while a one-file delivery keeps its columns."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tongban.common.config import settings

ROWS = 300
XLSX_PART_ROWS = 120  # 120 + 120 + 60
SH_PARTS = [("births-1.csv", 170), ("births-2.csv", 130)]
KEY = "tongban-test-pseudonym-key-0123456789abcdef"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    from tongban.airflow_env import configure, run_dag
    from tongban.sample import write_samples

    inbox = tmp_path_factory.mktemp("multipart-inbox")
    write_samples("births", ROWS, 11, inbox, xlsx_max_rows=XLSX_PART_ROWS)
    sh = inbox / "sh" / "births.csv"
    with sh.open(encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    start = 0
    for name, n in SH_PARTS:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows[start:start + n]])
        (inbox / "sh" / name).write_text(buf.getvalue(), encoding="utf-8")
        start += n
    sh.unlink()

    standards = tmp_path_factory.mktemp("multipart-standards") / "standards"
    shutil.copytree(settings().standards_dir, standards)
    mapping = standards / "mappings" / "sh" / "birth_registration.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert "  file: sh/births.csv\n" in text
    version = next(line for line in text.splitlines() if line.startswith("version: "))
    major, minor, _patch = version.removeprefix("version: ").split(".")
    text = text.replace("  file: sh/births.csv\n", "  file: sh/births-*.csv\n").replace(
        version, f"version: {major}.{int(minor) + 1}.0")
    mapping.write_text(text, encoding="utf-8")

    out = tmp_path_factory.mktemp("multipart-out")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"TONGBAN_INBOX_DIR": str(inbox), "TONGBAN_STANDARDS_DIR": str(standards),
                     "TONGBAN_EXCHANGE_DIR": str(out / "exchange"), "TONGBAN_FEEDBACK_DIR": str(out / "feedback"),
                     "TONGBAN_PSEUDONYM_KEY": KEY}.items():
            mp.setenv(k, v)
        configure()
        outcome = run_dag("tongban_regional", conf={"entities": ["birth_registration"]})
        s = settings()
    assert outcome["published"], f"publish did not run: {outcome['task_states']}"
    assert outcome["state"] == "success", outcome["task_states"]
    report = json.loads(Path(outcome["published"]["report"]).read_text(encoding="utf-8"))
    return {"report": report, "inbox": inbox, "feedback": out / "feedback", "raw": s.raw_dir,
            "exchange": out / "exchange"}


def _answer_key(inbox: Path, source_id: str) -> set[int]:
    with (inbox / source_id / "births.answer_key.csv").open(encoding="utf-8", newline="") as fh:
        return {int(r["row_number"]) for r in csv.DictReader(fh)}


def _feedback(run: dict, source_id: str) -> tuple[list[str], list[dict[str, str]]]:
    path = run["feedback"] / source_id / f"{run['report']['run_id']}__birth_registration.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_parts_are_conserved_and_published(run):
    deliveries = {d["source_id"]: d for d in run["report"]["deliveries"]}
    assert set(deliveries) == {"sh", "js", "zj", "ah"}
    # counted here, in the exchange's snapshot files and the feedback files, not read back from the
    # step that enforces conservation
    with duckdb.connect() as con:
        published = dict(con.execute("select source_id, count(*) from read_parquet(?) group by 1", [
            str(run["exchange"] / "birth_registration" / "v1" / "*.parquet")]).fetchall())
    for source_id, d in deliveries.items():
        assert d["status"] == "published", d
        assert d["rows_delivered"] == ROWS
        returned = len(_feedback(run, source_id)[1])
        assert published[source_id] + returned == ROWS, source_id
        assert (d["rows_published"], d["rows_quarantined"]) == (published[source_id], returned)
    assert deliveries["ah"]["delivery_file"] == "ah/births*.xlsx"
    assert deliveries["sh"]["delivery_file"] == "sh/births-*.csv"
    assert deliveries["js"]["delivery_file"] == "js/births.csv"


@pytest.mark.parametrize("source_id", ["ah", "sh"])
def test_rows_are_numbered_across_the_parts(run, source_id: str):
    with duckdb.connect() as con:
        numbers = [r for (r,) in con.execute(
            f"select source_row_number from read_parquet('{run['raw'] / source_id / 'birth_registration.parquet'}')"
        ).fetchall()]
    assert numbers == list(range(1, ROWS + 1))


def _parts(run: dict, source_id: str) -> list[tuple[str, int]]:
    if source_id == "sh":
        return SH_PARTS
    sizes = [XLSX_PART_ROWS, XLSX_PART_ROWS, ROWS - 2 * XLSX_PART_ROWS]
    return [(f"births-{k}.xlsx", n) for k, n in enumerate(sizes, 1)]


@pytest.mark.parametrize(("source_id", "id_column"), [("ah", "登记编号"), ("sh", "record_id")])
def test_feedback_names_the_part_and_the_row_in_it(run, source_id: str, id_column: str):
    from tests.delivery import read_delivery

    columns, rows = _feedback(run, source_id)
    assert columns[:3] == ["tongban_row_number", "tongban_file", "tongban_file_row"]
    assert {int(r["tongban_row_number"]) for r in rows} == _answer_key(run["inbox"], source_id)
    frames = {name: read_delivery(run["inbox"] / source_id / name).frame for name, _ in _parts(run, source_id)}
    spans, start = {}, 0
    for name, n in _parts(run, source_id):
        spans[name] = (start + 1, start + n)
        start += n
    files = set()
    for r in rows:
        number, name, in_part = int(r["tongban_row_number"]), r["tongban_file"], int(r["tongban_file_row"])
        first, last = spans[name]
        assert first <= number <= last and in_part == number - first + 1
        # the row the province finds in that file is the row that came back
        assert (frames[name][id_column].iloc[in_part - 1] or "") == r[id_column]
        files.add(name)
    assert len(files) == len(spans)  # every part has rejected rows in 300 with the sample's defect rate


def test_one_file_deliveries_keep_their_feedback_columns(run):
    columns, rows = _feedback(run, "js")
    assert columns[0] == "tongban_row_number" and "tongban_file" not in columns and "tongban_file_row" not in columns
    assert {int(r["tongban_row_number"]) for r in rows} == _answer_key(run["inbox"], "js")
