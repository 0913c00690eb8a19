"""A delivery in several files (``delivery.file`` a glob): the parts are landed as one delivery,
rows numbered across them in natural order, every part with the same header; the result lists
the parts; pandera's shape check decides on a bounded sample exactly as on the whole delivery."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pytest

from tongban.common.config import PROJECT_ROOT
from tongban.steps.intake.land import SAMPLE_ROWS, land
from tongban.common.hashing import combined_sha256, sha256_file
from tongban.common.parts import find_parts, natural_key, part_offsets
from tests.delivery import read_delivery
from tongban.sample import write_samples
from tongban.standards.generate import load_checked

STD = load_checked(PROJECT_ROOT / "standards")


def _mapping(source_id: str, entity: str, file: str):
    m = STD.mapping(source_id, entity)
    return m.model_copy(update={"delivery": m.delivery.model_copy(update={"file": file})})


def _land(m, inbox: Path, tmp_path: Path):
    return land(m, inbox_dirs=[inbox], raw_dir=tmp_path / "raw", run_id="t", entity=STD.entities[m.entity])


def _landed(res) -> list[tuple]:
    from tongban.standards.targets.dbt import quote_source_column

    m = STD.mapping(res.source_id, res.entity)
    cols = ", ".join(quote_source_column(c.name) for c in m.delivery.columns)
    with duckdb.connect() as con:
        return con.execute(f"select {cols}, source_row_number from read_parquet('{res.raw_path}')").fetchall()


def _reference(paths: list[Path], m) -> list[tuple]:
    rows: list[tuple] = []
    for p in paths:
        frame = read_delivery(p).frame
        for r in frame.itertuples(index=False):
            values = dict(zip(frame.columns, r, strict=True))
            rows.append((*(values.get(c.name) for c in m.delivery.columns), len(rows) + 1))
    return rows


def _split_csv(path: Path, sizes: list[int], names: list[str], encoding: str, newline: str) -> list[Path]:
    with path.open(encoding=encoding, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    out, start = [], 0
    for size, name in zip(sizes, names, strict=True):
        buf = io.StringIO()
        csv.writer(buf, lineterminator=newline).writerows([header, *rows[start:start + size]])
        (path.parent / name).write_bytes(buf.getvalue().encode(encoding))
        out.append(path.parent / name)
        start += size
    assert start == len(rows)
    path.unlink()
    return out


@pytest.fixture(scope="module")
def xlsx_inbox(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xlsx-parts")
    written = write_samples("births", 250, 7, out, provinces=["ah"], xlsx_max_rows=100)
    assert [p.name for p in written if p.suffix == ".xlsx"] == ["births-1.xlsx", "births-2.xlsx", "births-3.xlsx"]
    return out


def test_xlsx_parts_land_as_one_delivery_numbered_across_parts(xlsx_inbox: Path, tmp_path: Path):
    m = STD.mapping("ah", "birth_registration")
    assert m.delivery.file == "ah/births*.xlsx"
    res = _land(m, xlsx_inbox, tmp_path)
    assert res.status == "landed", res.message
    parts = [xlsx_inbox / "ah" / f"births-{k}.xlsx" for k in (1, 2, 3)]
    assert res.rows_delivered == 250
    assert res.parts == [{"file": str(p), "rows": n, "sha256": sha256_file(p)} for p, n in zip(parts, (100, 100, 50), strict=True)]
    assert res.delivery_file == str(xlsx_inbox / "ah" / "births*.xlsx")
    assert res.delivery_sha256 == combined_sha256([(p.name, sha256_file(p)) for p in parts])
    assert res.delivery_sha256 not in {sha256_file(p) for p in parts}
    landed = _landed(res)
    assert [r[-1] for r in landed] == list(range(1, 251))
    assert landed == _reference(parts, m)


def test_parts_are_taken_in_natural_order(tmp_path: Path):
    for name in ("b-10.csv", "b-2.csv", "b-1.csv", "other.csv"):
        (tmp_path / name).write_text("x\n1\n", encoding="utf-8")
    assert [p.name for p in find_parts([tmp_path], "b-*.csv")] == ["b-1.csv", "b-2.csv", "b-10.csv"]
    assert sorted(["b-10", "b-9"], key=lambda n: natural_key(Path(n))) == ["b-9", "b-10"]
    assert part_offsets([{"file": "/x/b-1.csv", "rows": 3}, {"file": "/x/b-2.csv", "rows": 2}]) == [
        ("b-1.csv", 1, 3), ("b-2.csv", 4, 5)]


def test_a_single_file_matching_the_pattern_is_the_delivery_itself(tmp_path: Path):
    write_samples("births", 30, 7, tmp_path, provinces=["ah"])
    res = _land(STD.mapping("ah", "birth_registration"), tmp_path, tmp_path)
    assert res.status == "landed"
    assert res.delivery_file == str(tmp_path / "ah" / "births.xlsx")
    assert res.delivery_sha256 == sha256_file(tmp_path / "ah" / "births.xlsx")


def test_no_part_is_a_missing_delivery_naming_the_pattern(tmp_path: Path):
    res = _land(STD.mapping("ah", "birth_registration"), tmp_path, tmp_path)
    assert res.status == "missing" and "ah/births*.xlsx" in res.message and res.parts == []


@pytest.mark.parametrize(("source_id", "encoding", "newline"), [("sh", "utf-8", "\n"), ("js", "gbk", "\r\n")])
def test_csv_parts_land_as_one_delivery(tmp_path: Path, source_id: str, encoding: str, newline: str):
    write_samples("births", 120, 5, tmp_path, provinces=[source_id])
    parts = _split_csv(tmp_path / source_id / "births.csv", [50, 60, 10],
                       ["births-part1.csv", "births-part2.csv", "births-part10.csv"], encoding, newline)
    m = _mapping(source_id, "birth_registration", f"{source_id}/births-part*.csv")
    res = _land(m, tmp_path, tmp_path)
    assert res.status == "landed", res.message
    assert [(Path(p["file"]).name, p["rows"]) for p in res.parts] == [
        ("births-part1.csv", 50), ("births-part2.csv", 60), ("births-part10.csv", 10)]
    assert res.encoding == ("utf-8" if encoding == "utf-8" else "gb18030")
    assert _landed(res) == _reference(parts, m)


def test_a_part_with_another_header_rejects_the_delivery(xlsx_inbox: Path, tmp_path: Path):
    inbox = tmp_path / "inbox"
    (inbox / "ah").mkdir(parents=True)
    for k in (1, 2):
        (inbox / "ah" / f"births-{k}.xlsx").write_bytes((xlsx_inbox / "ah" / f"births-{k}.xlsx").read_bytes())
    frame = read_delivery(xlsx_inbox / "ah" / "births-3.xlsx").frame.drop(columns=["母亲民族"])
    _write_xlsx(inbox / "ah" / "births-3.xlsx", frame)

    res = _land(STD.mapping("ah", "birth_registration"), inbox, tmp_path)
    assert res.status == "rejected"
    assert res.message.startswith("ah (安徽省出生一件事) birth_registration: ")
    assert "births-3.xlsx" in res.message and "'母亲民族'" in res.message and "births-1.xlsx" in res.message
    assert _landed(res) == []


def test_a_csv_part_with_an_extra_column_rejects_the_delivery_before_reading_rows(tmp_path: Path):
    write_samples("births", 40, 5, tmp_path, provinces=["sh"])
    first, second = _split_csv(tmp_path / "sh" / "births.csv", [20, 20], ["b-1.csv", "b-2.csv"], "utf-8", "\n")
    text = second.read_text(encoding="utf-8").splitlines()
    second.write_text("\n".join([text[0] + ",备注", *(line + "," for line in text[1:])]) + "\n", encoding="utf-8")
    res = _land(_mapping("sh", "birth_registration", "sh/b-*.csv"), tmp_path, tmp_path)
    assert res.status == "rejected"
    assert "sh (" in res.message and "b-2.csv" in res.message and "1 undeclared column(s)" in res.message
    assert "备注" not in res.message  # a name the mapping does not declare comes from the file: counted only


def test_a_json_lines_part_without_a_required_key_is_named(tmp_path: Path):
    write_samples("births", 40, 5, tmp_path, provinces=["zj"])
    lines = (tmp_path / "zj" / "births.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "zj" / "births.jsonl").unlink()
    (tmp_path / "zj" / "births-1.jsonl").write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    second = [line.replace('"motherName":', '"mother":') for line in lines[20:]]
    (tmp_path / "zj" / "births-2.jsonl").write_text("\n".join(second) + "\n", encoding="utf-8")
    res = _land(_mapping("zj", "birth_registration", "zj/births-*.jsonl"), tmp_path, tmp_path)
    assert res.status == "rejected" and res.missing_columns == ["motherName"]
    assert "delivery births-2.jsonl is rejected whole" in res.message and "and 1 other column(s)" in res.message
    assert "'mother'" not in res.message  # the undeclared key is counted, not quoted


def test_the_shape_check_reads_past_the_sample_rows(tmp_path: Path):
    """The ID column is empty in the first SAMPLE_ROWS rows and then holds names: the shape check
    reads its first 2,000 non-empty values wherever they are, as it would over the whole file."""
    write_samples("births", 30, 5, tmp_path, provinces=["sh"])
    path = tmp_path / "sh" / "births.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    i = header.index("mother_id_no")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for k in range(SAMPLE_ROWS + 3000):
        r = list(rows[k % len(rows)])
        r[i] = "" if k < SAMPLE_ROWS else "张三"
        w.writerow(r)
    path.write_text(buf.getvalue(), encoding="utf-8")
    res = _land(STD.mapping("sh", "birth_registration"), tmp_path, tmp_path)
    assert res.status == "rejected" and "'mother_id_no'" in res.message and "GB 11643" in res.message


def test_find_delivery_takes_a_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tongban.common.config import settings

    (tmp_path / "ah").mkdir()
    for k in (2, 1):
        (tmp_path / "ah" / f"births-{k}.xlsx").write_bytes(b"x")
    monkeypatch.setenv("TONGBAN_INBOX_DIR", str(tmp_path))
    assert settings().find_delivery("ah/births*.xlsx") == tmp_path / "ah" / "births-1.xlsx"
    assert settings().find_delivery("ah/none*.xlsx") == tmp_path / "ah" / "none*.xlsx"


def _write_xlsx(path: Path, frame) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(list(frame.columns))
    for r in frame.itertuples(index=False):
        ws.append(list(r))
    wb.save(path)


def test_a_rejected_delivery_in_parts_goes_back_whole_naming_part_and_row(xlsx_inbox: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    from tongban.common.config import settings
    from tongban.steps.feedback import write_feedback

    inbox = tmp_path / "inbox"
    (inbox / "ah").mkdir(parents=True)
    for k in (1, 2, 3):  # every part lacks the required column 母亲民族
        frame = read_delivery(xlsx_inbox / "ah" / f"births-{k}.xlsx").frame.drop(columns=["母亲民族"])
        _write_xlsx(inbox / "ah" / f"births-{k}.xlsx", frame)
    res = _land(STD.mapping("ah", "birth_registration"), inbox, tmp_path)
    assert res.status == "rejected" and res.missing_columns == ["母亲民族"] and res.rows_delivered == 250
    assert "delivery births-1.xlsx is rejected whole" in res.message

    monkeypatch.setenv("TONGBAN_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("TONGBAN_FEEDBACK_DIR", str(tmp_path / "feedback"))
    s = settings()
    s.warehouse_path.parent.mkdir(parents=True)
    duckdb.connect(str(s.warehouse_path)).close()
    assert res.held_path and Path(res.held_path).is_file()  # intake kept the rows for the feedback
    expected = read_delivery(inbox / "ah" / "births-3.xlsx").frame["登记编号"].tolist()
    for k in (1, 2, 3):  # the feedback reads what intake kept, never the delivery again
        (inbox / "ah" / f"births-{k}.xlsx").rename(tmp_path / f"gone-{k}.xlsx")
    (out,) = write_feedback(s, "run-1", [res.to_dict()])
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["tongban_row_number", "tongban_file", "tongban_file_row"]
    assert "母亲民族" not in rows[0] and "登记编号" in rows[0]
    assert [int(r["tongban_row_number"]) for r in rows] == list(range(1, 251))
    assert [(r["tongban_file"], int(r["tongban_file_row"])) for r in rows[99:102]] == [
        ("births-1.xlsx", 100), ("births-2.xlsx", 1), ("births-2.xlsx", 2)]
    assert {r["tongban_details"] for r in rows} == {"delivery_rejected:missing_column=母亲民族"}
    assert [r["登记编号"] for r in rows[200:]] == expected
    again = _land(STD.mapping("ah", "birth_registration"), xlsx_inbox, tmp_path)  # a good re-delivery
    assert again.status == "landed" and not Path(res.held_path).exists() and "held_path" not in again.to_dict()


def test_a_header_only_delivery_is_empty_unless_the_mapping_says_it_is_valid(tmp_path: Path):
    """A header and no rows: `empty` (0 rows delivered, held back, the previous publication kept),
    or, where the mapping declares `delivery.empty_is_valid: true`, landed with 0 rows."""
    write_samples("births", 10, 5, tmp_path, provinces=["sh"])
    path = tmp_path / "sh" / "births.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    m = _mapping("sh", "birth_registration", "sh/births.csv")
    res = _land(m, tmp_path, tmp_path)
    assert res.status == "empty" and res.rows_delivered == 0
    assert "has a header but no rows" in res.message and "empty_is_valid" in res.message
    valid = m.model_copy(update={"delivery": m.delivery.model_copy(update={"empty_is_valid": True})})
    res = _land(valid, tmp_path, tmp_path)
    assert res.status == "landed" and res.rows_delivered == 0 and _landed(res) == []
