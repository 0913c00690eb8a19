"""Intake's one reader reads a delivery through DuckDB where it can and through the streaming Python
pass (csv/json module) where DuckDB cannot read it as it is; the two must agree, or a file with
one odd construct would land differently from its clean twin. For every sample delivery and every
real catalogue a mapping reads, the landed Parquet holds exactly the Python pass's values ('' and
None kept apart), in its order, numbered 1..N. Constructs DuckDB reads differently (more
leniently) must end in the Python pass's result or its very error message. XLSX has one path
(fastexcel into DuckDB): its cells are checked against their expected text."""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest

from tongban.common.config import PROJECT_ROOT, settings
from tongban.steps.intake.land import land
from tongban.common.hashing import combined_sha256, sha256_file
from tongban.common.parts import find_parts
from tests.delivery import read_delivery
from tongban.steps.intake.readers import DeliveryReadError
from tongban.steps.intake.staging import connect, inspect_part, stage_delivery, stage_part
from tongban.sample import write_samples
from tongban.standards.generate import load_checked

STD = load_checked(PROJECT_ROOT / "standards")
MAPPINGS = sorted((m.source_id, m.entity) for m in STD.mappings)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("equivalence-inbox")
    write_samples("births", 2000, 1, out)
    write_samples("licenses", 2000, 1, out)
    return out


def _pass_rows(path: Path, declared: list[str], format: str | None, offset: int, work: Path) -> list[tuple]:
    """One part read by the Python pass (as staging reads a part DuckDB cannot take)."""
    work.mkdir(parents=True)
    part = inspect_part(path, format, None, work, 0)
    part.slow = part.slow or "the test asks for the Python pass"
    con = connect(work)
    try:
        stage_part(con, part, declared=declared, required=set(), source_id="", sha256="", run_id="",
                   offset=offset, work_dir=work, index=0)
        assert part.reader == "python"
        return _parquet_rows(f"read_parquet('{part.pieces[0]}')", declared)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


def _reference_rows(paths: list[Path], declared: list[str], format: str | None = None,
                    sheet: str | int | None = None) -> list[tuple]:
    """The Python pass's rows of the parts (XLSX, which has no second path: intake's reader)."""
    rows: list[tuple] = []
    for p in paths:
        if p.suffix.lower() == ".xlsx" or format == "xlsx":
            frame = read_delivery(p, format, sheet=sheet).frame
            cols = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in declared]
            rows.extend((*(c[i] for c in cols), len(rows) + 1) for i in range(len(frame)))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                rows.extend(_pass_rows(p, declared, format, len(rows), Path(tmp) / "w"))
    return rows


def _parquet_rows(relation: str, declared: list[str]) -> list[tuple]:
    from tongban.standards.targets.dbt import quote_source_column

    cols = ", ".join(quote_source_column(c) for c in declared)
    with duckdb.connect() as con:  # file order, no sorting: the order is part of the contract
        return con.execute(f"select {cols}, source_row_number from {relation}").fetchall()


@pytest.mark.parametrize(("source_id", "entity"), MAPPINGS)
def test_landed_rows_are_the_python_passes(inbox: Path, tmp_path: Path, source_id: str, entity: str):
    m = STD.mapping(source_id, entity)
    declared = [c.name for c in m.delivery.columns]
    dirs = [inbox, settings().reference_dir]
    paths = find_parts(dirs, m.delivery.file)
    assert paths, f"{m.delivery.file} is neither a sample nor a reference file"

    res = land(m, inbox_dirs=dirs, raw_dir=tmp_path / "raw", run_id="run-1", entity=STD.entities[entity])
    assert res.status == "landed", res.message
    expected = _reference_rows(paths, declared, m.delivery.format, m.delivery.sheet)
    landed = _parquet_rows(f"read_parquet('{res.raw_path}')", declared)
    assert len(landed) == len(expected) == res.rows_delivered > 0
    for got, want in zip(landed, expected, strict=True):
        assert got == want
    digest = combined_sha256([(p.name, sha256_file(p)) for p in paths])
    assert res.delivery_sha256 == digest
    assert res.parts == [{"file": str(p), "rows": len(expected), "sha256": sha256_file(p)} for p in paths]
    with duckdb.connect() as con:
        prov = con.execute(f"select distinct source_id, delivery_sha256, run_id from read_parquet('{res.raw_path}')")
        assert prov.fetchall() == [(source_id, digest, "run-1")]


@pytest.mark.parametrize(("source_id", "entity"), [k for k in MAPPINGS if k[1] != "data_resource"])
def test_sample_deliveries_are_read_by_duckdb(inbox: Path, tmp_path: Path, source_id: str, entity: str):
    """The comparison above is about the DuckDB path: the samples (UTF-8 and GBK CSV, JSON Lines,
    XLSX) must not quietly take the Python pass."""
    m = STD.mapping(source_id, entity)
    staged = stage_delivery(find_parts([inbox], m.delivery.file), format=m.delivery.format, sheet=m.delivery.sheet,
                            declared=[c.name for c in m.delivery.columns], work_dir=tmp_path / "w")
    assert [(p.reader, p.slow) for p in staged.parts] == [("duckdb", None)]


def _catalogues() -> list[Path]:
    paths = []
    for p in sorted((settings().reference_dir / "opendata_catalogs").glob("*.json")):
        with p.open(encoding="utf-8") as fh:
            if fh.read(64).lstrip().startswith("["):
                paths.append(p)
    return paths


@pytest.mark.parametrize("catalogue", _catalogues(), ids=lambda p: p.stem)
def test_real_catalogue_records_as_json_lines(tmp_path: Path, catalogue: Path):
    """The catalogues are JSON arrays (which the Python pass reads whole); as JSON Lines
    their records — strings with every kind of escape, lists, numbers, nulls — go through
    DuckDB's JSON reader and must come out as the Python pass renders them."""
    records = json.loads(catalogue.read_text(encoding="utf-8"))
    path = tmp_path / f"{catalogue.stem}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    declared = list(dict.fromkeys(k for r in records for k in r))
    staged = stage_delivery([path], format=None, sheet=None, declared=declared, work_dir=tmp_path / "w")
    assert [p.reader for p in staged.parts] == ["duckdb"], staged.parts[0].slow
    assert _parquet_rows(staged.relation(), declared) == _reference_rows([path], declared)


# --------------------------------------------------------------------------------------------
# constructs DuckDB and the Python pass could disagree on


def _outcome(path: Path, declared: list[str], work: Path):
    """(values or the error message, who read it) through staging."""
    try:
        staged = stage_delivery([path], format=None, sheet=None, declared=declared, work_dir=work)
        return _parquet_rows(staged.relation(), declared), staged.parts[0].reader
    except DeliveryReadError as exc:
        return ("error", str(exc)), None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _reference(path: Path, declared: list[str]):
    """The Python pass's values or error message."""
    try:
        return _reference_rows([path], declared)
    except DeliveryReadError as exc:
        return ("error", str(exc))


CASES = {
    # CSV: DuckDB takes all of these as rows the Python pass rejects or reads otherwise
    "trailing_delimiter.csv": b"a,b\n1,2,\n3,4\n",
    "two_trailing_delimiters.csv": b"a,b\n1,2,,\n",
    "short_row.csv": b"a,b\n1\n3,4\n",
    "space_before_quote.csv": b'a,b\n "x",2\n',
    "space_after_quote.csv": b'a,b\n1,"x" \n',
    "lone_carriage_return.csv": b"a,b\r1,2\r3,4\r",
    "quoted_lone_carriage_return.csv": b'a,b\n"x\ry",2\n',
    "lone_carriage_return_in_rows.csv": b"a,b\n1,2\r3,4\n",
    "quote_after_quoted.csv": b'a,b\n"x"y,2\n',
    "unterminated_quote.csv": b'a,b\n"1,2\n',
    "nul_byte.csv": b"a,b\n1\x00,2\n",
    "blank_lines.csv": b"a,b\n\n1,2\n\n\n3,4\n\n",
    "whitespace_line.csv": b"a,b\n1,2\n  \n",
    "empty_and_quoted_empty.csv": b'a,b\n,""\n"",\nNA,NULL\n',
    "quoted_newlines_crlf.csv": b'a,b\r\n1,"x\r\ny"\r\n"q""q",2\r\n',
    "leading_blank_line.csv": b"\na,b\n1,2\n",
    "header_only.csv": b"a,b\n",
    "single_column_blank_line.csv": b"a\n1\n\n2\n",
    "bom.csv": b"\xef\xbb\xbfa,b\n1,2\n",
    "semicolons.csv": "a;b\n中;文\n".encode(),
    "gbk.csv": "a,b\r\n中文,繁體\r\n".encode("gb18030"),
    "gbk_bad_tail.csv": "a,b\r\n中文,x\r\n".encode("gb18030") + b"\xff\xff,1\r\n",
    # JSON Lines
    "trailing_comma.jsonl": b'{"a":"1",}\n',
    "nested_trailing_comma.jsonl": b'{"a":[1,2,]}\n',
    "null_record.jsonl": b'{"a":"1"}\nnull\n',
    "lowercase_nan.jsonl": b'{"a":"1","z":nan}\n',
    "python_nan.jsonl": b'{"a":NaN,"b":-Infinity}\n',
    "one_brace.jsonl": b"{",
    "truncated.jsonl": b'{"a":"1"}\n{"a":',
    "duplicate_keys.jsonl": b'{"a":"1","a":"2"}\n',
    "nested_duplicate_keys.jsonl": b'{"a":{"k":1,"k":2}}\n',
    "numbers.jsonl": b'{"a":1.0,"b":1e400,"c":-0}\n{"a":12345678901234567890123,"b":1.5e16,"c":0.1}\n',
    "escapes.jsonl": b'{"a":"x\\u0000y\\"","b":["a\\u001fb","\\/"],"c":["\\u4e2d",{"k":"\\n"}]}\n',
    "arrays.jsonl": b'{"a":[],"b":["x","y"],"c":[1,"x",null,true]}\n',
    "booleans_and_nulls.jsonl": b'{"a":true,"b":false,"c":null}\n{}\n',
    "case_of_keys.jsonl": b'{"A":"x","a":"y"}\n',
    "blank_and_crlf.jsonl": b'{"a":"1"}\r\n\r\n  \r\n{"a":"2"}\r\n',
    "bom_lines.jsonl": b'\xef\xbb\xbf{"a":"1"}\n',
    "not_an_object.jsonl": b'{"a":"1"}\n[1]\n',
    "control_character.jsonl": b'{"a":"x\ty"}\n',
    "empty.jsonl": b"",
    "blank.jsonl": b"  \n",
    "gb18030.jsonl": '{"a":"中文","b":"㐀"}\n'.encode("gb18030"),
    "combining_marks.jsonl": '{"a":"\u0301e\u0301","b":["\u0301x"],"c":"👍🏽"}\n'.encode(),
    "integers.jsonl": b'{"a":-0,"b":-12,"c":0}\n{"a":1E2,"b":-0.0,"c":10000000000000000000000000}\n',
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tricky_constructs_match_the_python_pass(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(CASES[name])
    declared = ["a", "b", "c"]
    got, _reader = _outcome(path, declared, tmp_path / "w")
    assert got == _reference(path, declared)


def test_constructs_duckdb_reads_differently_go_to_the_python_pass(tmp_path: Path):
    """Not only the same result: the lenient constructs are recognised, and clean files are not."""
    for name, reader in [("trailing_delimiter.csv", None), ("space_before_quote.csv", "python"),
                         ("lone_carriage_return.csv", None), ("null_record.jsonl", None),
                         ("blank_lines.csv", "duckdb"), ("gbk.csv", "duckdb"), ("numbers.jsonl", "duckdb"),
                         ("gb18030.jsonl", "duckdb"), ("python_nan.jsonl", "python"),
                         ("lowercase_nan.jsonl", None)]:
        path = tmp_path / name
        path.write_bytes(CASES[name])
        _got, who = _outcome(path, ["a", "b", "c"], tmp_path / "w")
        assert who == reader, name  # None: the Python pass's error


_FIELDS = ["a", "中文", "", " x ", "NA", "1,2", 'q"q', "l\nl", "l\r\nl", " ", "\t", "x\ry"]
_VALUES = ['"s"', '"中\\n"', '"a\\u001fb"', "1", "-0", "1.5", "1e400", "12345678901234567890123", "true",
           "null", "[]", '["x","y"]', '["x\\"y"]', "[1,2.0]", '{"k":"v"}', '{"k":1,"k":2}', "NaN", "nan", "[1,]",
           '"\\/"', "{}", "0.1", "-1.0e-7", "100000000000000000.0"]


def _random_csv(r: random.Random) -> bytes:
    d = r.choice([",", ",", "\t", ";", "|"])
    width = r.choice([1, 2, 3])
    lines = [d.join("abc"[:width])]
    for _ in range(r.randint(0, 6)):
        n = width if r.random() < 0.85 else r.choice([width - 1, width + 1, 0])
        fields = []
        for _ in range(max(n, 0)):
            v = r.choice(_FIELDS)
            if r.random() < 0.5 or any(ch in v for ch in (d, '"', "\n", "\r")) and r.random() < 0.9:
                v = '"' + v.replace('"', '""') + '"'
            elif r.random() < 0.05:
                v = r.choice([' "a"', '"a" ', '"a"b', 'a"b', '"a'])
            fields.append(v)
        lines.append(d.join(fields) + (d if r.random() < 0.05 else ""))
        if r.random() < 0.05:
            lines.append(r.choice(["", " ", "\r"]))
    nl = r.choice(["\n", "\r\n"])
    return (nl.join(lines) + r.choice(["", nl])).encode(r.choice(["utf-8", "utf-8-sig", "gb18030"]))


def _random_jsonl(r: random.Random) -> bytes:
    lines = []
    for _ in range(r.randint(1, 5)):
        if r.random() < 0.88:
            items = [f'"{r.choice("abcA")}":{r.choice(_VALUES)}' for _ in range(r.randint(0, 3))]
            lines.append("{" + ",".join(items) + r.choice(["", "", ",", " "]) + "}")
        else:
            lines.append(r.choice(["", "  ", "null", "[1]", '"x"', "{", "\ufeff{}", "{} {}"]))
    return (r.choice(["\n", "\r\n"]).join(lines) + r.choice(["", "\n"])).encode("utf-8")


def test_random_small_files_match_the_python_pass(tmp_path: Path):
    """A seeded differential run over small CSV and JSON Lines files built from the constructs
    above (quoting, delimiters, blank lines, ragged rows, number forms, escapes ...)."""
    r = random.Random(20261127)
    readers = {"duckdb": 0, "python": 0, None: 0}
    for k in range(160):
        suffix = "csv" if k % 2 else "jsonl"
        path = tmp_path / f"case{k}.{suffix}"
        path.write_bytes(_random_csv(r) if suffix == "csv" else _random_jsonl(r))
        got, reader = _outcome(path, ["a", "b", "c"], tmp_path / f"w{k}")
        assert got == _reference(path, ["a", "b", "c"]), path.read_bytes()
        readers[reader] += 1
    assert readers["duckdb"] >= 20 and readers["python"] >= 5  # both paths were exercised


def _xlsx(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def test_xlsx_cells_of_every_kind(tmp_path: Path):
    """Columns that mix kinds of cells are read as text by fastexcel (its text of a number or a
    date); quoting, line ends (XML keeps none but \\n), empty cells and empty rows are intake's."""
    import datetime as dt

    rows = [["a", "b", "c", None],
            ["x,y", 'say "hi"', "two\nlines", None],
            [" padded ", "cr\r\nlf", "lone\rcr", None],
            ["NULL", "NA", "", None],
            [1, 1.0, 1.5, None],
            [1e20, -0.0, 12345678901234567890, None],
            [True, False, dt.date(2024, 3, 5), None],
            [dt.datetime(2024, 3, 5, 6, 7, 8), dt.time(6, 7), "中文，全角", None],
            ["tab\there", '"quoted"', "\t", None],
            ['"', "a\\b", "x" * 5000, None],
            [None, None, None, None],
            [None, "after an empty row", None, None],
            [None, None, None, None]]
    path = _xlsx(tmp_path / "cells.xlsx", rows)
    got, reader = _outcome(path, ["a", "b", "c"], tmp_path / "w")
    assert reader == "duckdb"
    assert got == [(*r, n) for n, r in enumerate([
        ("x,y", 'say "hi"', "two\nlines"),
        (" padded ", "cr\nlf", "lone\ncr"),
        ("NULL", "NA", None),
        ("1", "1", "1.5"),
        ("100000000000000000000", "-0", "12345678901234569216"),
        ("true", "false", "2024-03-05 00:00:00"),
        ("2024-03-05 06:07:08", "1899-12-31 06:07:00", "中文，全角"),
        ("tab\there", '"quoted"', None),
        ('"', "a\\b", "x" * 5000),
        (None, None, None),
        (None, "after an empty row", None)], 1)]


def test_xlsx_columns_of_one_kind_follow_intakes_rule(tmp_path: Path):
    """A column of numbers, dates, times or booleans: the cell text rule exactly (an integral
    number is its integer text; past 2^53 Python's float text, which no validator accepts)."""
    import datetime as dt

    path = _xlsx(tmp_path / "typed.xlsx", [
        ["number", "date", "datetime", "time", "flag"],
        [330106.0, dt.date(2024, 3, 5), dt.datetime(2024, 3, 5, 10, 0), dt.time(6, 7), True],
        [320586198503120011.0, dt.date(1962, 1, 1), dt.datetime(2024, 3, 5, 10, 0, 30, 250000), dt.time(0, 0), False],
        [-0.0, None, None, None, None],
        [0.1, dt.date(1900, 1, 1), dt.datetime(1999, 12, 31, 23, 59, 59), dt.time(23, 59, 59), None]])
    declared = ["number", "date", "datetime", "time", "flag"]
    got, reader = _outcome(path, declared, tmp_path / "w")
    assert reader == "duckdb"
    assert got == [("330106", "2024-03-05", "2024-03-05T10:00:00", "06:07:00", "true", 1),
                   ("3.2058619850312e+17", "1962-01-01", "2024-03-05T10:00:30.250000", "00:00:00", "false", 2),
                   ("0", None, None, None, None, 3),
                   ("0.1", "1900-01-01", "1999-12-31T23:59:59", "23:59:59", None, 4)]


def test_xlsx_value_right_of_the_header_is_an_error_naming_the_column(tmp_path: Path):
    path = _xlsx(tmp_path / "right.xlsx", [["a", "b", None], ["1", "2", None], ["3", "4", "VALright"]])
    got, _reader = _outcome(path, ["a", "b"], tmp_path / "w")
    assert got[0] == "error" and "column 3 (C) of the header" in got[1] and "VALright" not in got[1]


def test_xlsx_repeated_header_name_is_named(tmp_path: Path):
    path = _xlsx(tmp_path / "dup.xlsx", [["a", "b", "a"], ["1", "2", "3"]])
    got, _reader = _outcome(path, ["a", "b"], tmp_path / "w")
    assert got[0] == "error" and "column 3 (C) of the header (first row of sheet 'Sheet') repeats the name of " \
                                 "column 1 (A)" in got[1]
    real = _xlsx(tmp_path / "real.xlsx", [["a", "b", "a_1"], ["1", "2", "3"]])  # fastexcel's own renaming
    assert _outcome(real, ["a", "a_1"], tmp_path / "w") == ([("1", "3", 1)], "duckdb")
