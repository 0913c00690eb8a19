"""Intake's reader: JSON / JSON Lines / CSV / XLSX into raw text, with encoding detection, through
the staging API (``tests.delivery.read_delivery`` stages one file and hands back its rows)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from pathlib import Path

import duckdb
import openpyxl
import pytest

from tests.delivery import Delivery, read_delivery
from tongban.common.config import settings
from tongban.common.hashing import sha256_file
from tongban.steps.intake import encoding as encodings
from tongban.steps.intake.encoding import detect_encoding
from tongban.steps.intake.readers import DeliveryReadError

GBK_HEADER = ["XM", "XB", "CSRQ", "MQSFZH", "ZZ"]
GBK_ROWS = [
    ["张伟", "男", "19850312", "320586198503120011", "江苏省苏州市工业园区星湖街328号"],
    ["王秀英", "女", "19620101", "320586196201010022", "江苏省苏州市工业园区"],
    ["欧阳娜娜", "女", "20000801", "32058620000801002X", "上海市浦东新区张江镇"],
    ["李强", "男", "19791130", "", "浙江省杭州市西湖区"],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    text = "".join(delimiter.join(row) + "\n" for row in rows)
    path.write_bytes(text.encode(encoding))
    return path


def assert_raw_text_frame(delivery: Delivery) -> None:
    """Object dtype (not pandas str/Arrow), columns match, every value a str or None."""
    frame = delivery.frame
    assert list(frame.columns) == delivery.columns
    for column in frame.columns:
        assert frame[column].dtype == object, f"{column}: {frame[column].dtype}"
        for value in frame[column].tolist():
            assert value is None or type(value) is str, f"{column}: {value!r}"


def rows_of(delivery: Delivery) -> list[list[str | None]]:
    return delivery.frame.to_numpy().tolist()


# ------------------------------------------------------------------------------------------ JSON


def test_json_array_values(tmp_path: Path) -> None:
    records = [
        {
            "数据集名称": " 企业登记信息 ",
            "记录数": 19053,
            "比例": 0.25,
            "整数浮点": 1.0,
            "大整数": 320586198503120011,
            "开放": True,
            "停用": False,
            "备注": None,
            "数据格式": ["csv", "xlsx"],
            "联系人": {"姓名": "张伟", "电话": "0512-1234"},
        },
        {"数据集名称": "空格式", "数据格式": [], "记录数": -3},
    ]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")

    delivery = read_delivery(path)

    assert delivery.format == "json"
    assert delivery.encoding == "utf-8"
    assert delivery.columns == list(records[0])
    assert_raw_text_frame(delivery)
    first, second = delivery.frame.to_dict("records")
    assert first["数据集名称"] == " 企业登记信息 "  # no trimming
    assert first["记录数"] == "19053"
    assert first["比例"] == "0.25"
    assert first["整数浮点"] == "1"  # an integral number is its integer text (issue 14)
    assert first["大整数"] == "320586198503120011"
    assert first["开放"] == "true"
    assert first["停用"] == "false"
    assert first["备注"] is None
    assert first["数据格式"] == '["csv","xlsx"]'
    assert first["联系人"] == '{"姓名":"张伟","电话":"0512-1234"}'
    assert second["数据格式"] == "[]"
    assert second["记录数"] == "-3"
    assert second["比例"] is None  # missing key
    assert second["联系人"] is None


# identifiers and codes exported as numbers: the fraction part of zero is no part of the value;
# a float past 2^53 has lost digits, so it keeps its float text for the validators to refuse
ODD_NUMBERS = {"区划": 330106.0, "证号": 12345.0, "负零": -0.0, "半": 330106.5,
               "身份证": 320586198503120011.0, "整数": 320586198503120011}
ODD_NUMBERS_TEXT = ["330106", "12345", "0", "330106.5", "3.2058619850312e+17", "320586198503120011"]


def test_json_integral_floats_are_integer_text(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    path.write_text(json.dumps([ODD_NUMBERS]), encoding="utf-8")
    assert rows_of(read_delivery(path)) == [ODD_NUMBERS_TEXT]


def test_json_lines_integral_floats_are_integer_text_when_duckdb_reads_them(tmp_path: Path) -> None:
    from tongban.steps.intake.staging import stage_delivery

    path = tmp_path / "ids.jsonl"
    path.write_text(json.dumps(ODD_NUMBERS) + "\n", encoding="utf-8")
    staged = stage_delivery([path], format=None, sheet=None, declared=list(ODD_NUMBERS), work_dir=tmp_path / "w")
    assert [p.reader for p in staged.parts] == ["duckdb"]
    columns = ", ".join(f'"{c}"' for c in ODD_NUMBERS)
    with duckdb.connect() as con:
        rows = con.execute(f"select {columns} from {staged.relation()}").fetchall()
    assert rows == [tuple(ODD_NUMBERS_TEXT)]


def test_json_union_of_keys_in_first_seen_order(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps([{"甲": "1"}, {"乙": "2", "甲": "3"}, {"丙": "4"}], ensure_ascii=False), encoding="utf-8"
    )
    delivery = read_delivery(path)
    assert delivery.columns == ["甲", "乙", "丙"]
    assert rows_of(delivery) == [["1", None, None], ["3", "2", None], [None, None, "4"]]
    assert_raw_text_frame(delivery)


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".ndjson"])
def test_json_lines_detected_by_content(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"d{suffix}"
    lines = [
        {"姓名": "张伟", "年龄": 38, "证照": ["营业执照"]},
        {"姓名": "王秀英", "住址": "江苏省苏州市工业园区"},
    ]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n\n"
    path.write_text(text, encoding="utf-8")

    delivery = read_delivery(path)

    assert delivery.format == "jsonl"
    assert delivery.columns == ["姓名", "年龄", "证照", "住址"]
    assert rows_of(delivery) == [
        ["张伟", "38", '["营业执照"]', None],
        ["王秀英", None, None, "江苏省苏州市工业园区"],
    ]
    assert_raw_text_frame(delivery)


def test_json_array_in_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "gbk.json"
    path.write_bytes(json.dumps([{"姓名": "欧阳娜娜"}], ensure_ascii=False).encode("gb18030"))
    delivery = read_delivery(path)
    assert delivery.encoding == "gb18030"
    assert rows_of(delivery) == [["欧阳娜娜"]]


def test_json_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(json.dumps([{"姓名": "张伟"}], ensure_ascii=False).encode("utf-8-sig"))
    delivery = read_delivery(path)
    assert delivery.encoding == "utf-8-sig"
    assert delivery.columns == ["姓名"]


def test_json_non_object_record_names_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"a": "1"}, ["not", "an", "object"]]', encoding="utf-8")
    with pytest.raises(DeliveryReadError) as info:
        read_delivery(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "record 2" in message and "array" in message


def test_json_lines_non_object_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": "1"}\n\n"张伟"\n', encoding="utf-8")
    with pytest.raises(DeliveryReadError, match=r"line 3 .*string, not an object") as info:
        read_delivery(path)
    assert info.value.line == 3


def test_json_syntax_error_has_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n{"a": "1"},\n{"a": "2"\n]', encoding="utf-8")
    with pytest.raises(DeliveryReadError, match=r"not valid JSON.*line 4"):
        read_delivery(path)


def test_json_single_wrapped_object_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [{"a": 1}]}, indent=2), encoding="utf-8")
    with pytest.raises(DeliveryReadError, match=r"single JSON object \(1 key\(s\)\)"):
        read_delivery(path)


def test_json_empty_array(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("[]", encoding="utf-8")
    delivery = read_delivery(path)
    assert delivery.columns == []
    assert len(delivery.frame) == 0


# ------------------------------------------------------------------------------------------- CSV


def test_csv_utf8_keeps_empty_and_na_strings(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        [["姓名", "性别", "备注", "状态"], ["张伟", "男", "", "NA"], ["王秀英", "女", " 有空格 ", "None"]],
    )
    delivery = read_delivery(path)
    assert delivery.format == "csv"
    assert delivery.encoding == "utf-8"
    assert delivery.columns == ["姓名", "性别", "备注", "状态"]
    assert rows_of(delivery) == [["张伟", "男", "", "NA"], ["王秀英", "女", " 有空格 ", "None"]]
    assert_raw_text_frame(delivery)


def test_csv_utf8_bom_not_in_first_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bom.csv", [GBK_HEADER, *GBK_ROWS], encoding="utf-8-sig")
    delivery = read_delivery(path)
    assert delivery.encoding == "utf-8-sig"
    assert delivery.columns == GBK_HEADER
    assert delivery.columns[0] == "XM"
    assert rows_of(delivery) == GBK_ROWS


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_csv_gbk_round_trips(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "gbk.csv", [GBK_HEADER, *GBK_ROWS], encoding=encoding)
    with pytest.raises(UnicodeDecodeError, match="can.t decode"):
        path.read_bytes().decode("utf-8")  # the premise: really not UTF-8

    delivery = read_delivery(path)

    assert delivery.encoding == "gb18030"
    assert detect_encoding(path) == "gb18030"
    assert delivery.columns == GBK_HEADER
    assert rows_of(delivery) == GBK_ROWS
    assert_raw_text_frame(delivery)


def test_csv_gb18030_only_characters(tmp_path: Path) -> None:
    rows = [["XM", "XB", "ZZ"], ["王䶮", "男", "江苏省苏州市"], ["𠀀先生", "男", "上海市"]]
    for rare in ("䶮", "𠀀"):
        with pytest.raises(UnicodeEncodeError, match="can.t encode"):
            rare.encode("gbk")  # the premise: outside GBK
    path = write_csv(tmp_path / "gb18030.csv", rows, encoding="gb18030")
    delivery = read_delivery(path)
    assert delivery.encoding == "gb18030"
    assert rows_of(delivery) == rows[1:]


@pytest.mark.parametrize(
    "rows",
    [
        [["XM", "XB", "CSRQ", "MQSFZH"], ["张伟", "男", "19850312", "320586198503120011"]],  # cn says big5
        [["XM", "XB"], ["张伟", "男"]],  # charset-normalizer says utf_16_be
        [["XM"], ["张伟"]],  # charset-normalizer says utf_16_le
        [["姓名", "性别"], ["欧阳娜娜", "女"]],
        [["ZZ"], ["江苏省苏州市工业园区"]],
    ],
)
def test_csv_short_gbk_files(tmp_path: Path, rows: list[list[str]]) -> None:
    path = write_csv(tmp_path / "short.csv", rows, encoding="gbk")
    delivery = read_delivery(path)
    assert delivery.encoding == "gb18030"
    assert delivery.columns == rows[0]
    assert rows_of(delivery) == rows[1:]


@pytest.mark.parametrize("delimiter", ["\t", "|", ";"])
def test_csv_other_delimiters(tmp_path: Path, delimiter: str) -> None:
    rows = [["姓名", "住址", "备注"], ["张伟", "江苏省苏州市工业园区, 星湖街", ""]]
    path = write_csv(tmp_path / "d.txt", rows, delimiter=delimiter)
    delivery = read_delivery(path)
    assert delivery.columns == rows[0]
    assert rows_of(delivery) == rows[1:]


def test_csv_quoting_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(
        '姓名,住址\r\n"张,伟","江苏省苏州市\r\n工业园区"\r\n"王""秀英",上海\r\n\r\n'.encode("gbk")
    )
    delivery = read_delivery(path)
    assert delivery.encoding == "gb18030"
    assert delivery.columns == ["姓名", "住址"]
    assert rows_of(delivery) == [["张,伟", "江苏省苏州市\r\n工业园区"], ['王"秀英', "上海"]]


def test_csv_utf16_with_bom_tab_separated(tmp_path: Path) -> None:
    # Excel's "Unicode text" export: UTF-16 with BOM, tab-separated.
    path = write_csv(tmp_path / "excel.txt", [GBK_HEADER, *GBK_ROWS], encoding="utf-16", delimiter="\t")
    delivery = read_delivery(path)
    assert delivery.encoding == "utf-16"
    assert delivery.columns == GBK_HEADER
    assert rows_of(delivery) == GBK_ROWS


def test_csv_header_only(tmp_path: Path) -> None:
    delivery = read_delivery(write_csv(tmp_path / "h.csv", [["姓名", "性别"]]))
    assert delivery.columns == ["姓名", "性别"]
    assert len(delivery.frame) == 0
    assert_raw_text_frame(delivery)


def test_csv_ragged_row_names_line(tmp_path: Path) -> None:
    rows = [["XM", "XB", "CSRQ", "ZZ"], GBK_ROWS[0][:4], ["王秀英", "女", "19620101", "苏州市", "工业园区"]]
    path = write_csv(tmp_path / "ragged.csv", rows, encoding="gbk")
    with pytest.raises(DeliveryReadError) as info:
        read_delivery(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3 has 5 fields, header has 4 — ")
    assert "quote the field containing the comma delimiter" in message
    assert info.value.line == 3


def test_csv_short_row_and_trailing_delimiter(tmp_path: Path) -> None:
    short = write_csv(tmp_path / "short.csv", [["a", "b", "c"], ["1", "2", "3"], ["4", "5"]])
    with pytest.raises(DeliveryReadError, match=r"line 3 has 2 fields, header has 3 — fix the row"):
        read_delivery(short)
    trailing = write_csv(tmp_path / "trailing.csv", [["a", "b"], ["1", "2", ""]])
    with pytest.raises(DeliveryReadError, match=r"line 2 has 3 fields.*trailing comma"):
        read_delivery(trailing)


def test_csv_bad_quoting(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('a,b\n1,2\n"3"x,4\n', encoding="utf-8")
    with pytest.raises(DeliveryReadError, match=r"line 3 is malformed CSV"):
        read_delivery(path)


@pytest.mark.parametrize(
    ("header", "pattern"),
    [
        (["XM", "XB", "XM"], r"column 3 of the header \(line 1\) repeats the name of column 1"),
        (["XM", "", "CSRQ"], r"column 2 of the header \(line 1\) has an empty name"),
    ],
)
def test_csv_bad_header(tmp_path: Path, header: list[str], pattern: str) -> None:
    path = write_csv(tmp_path / "h.csv", [header, ["1", "2", "3"]])
    with pytest.raises(DeliveryReadError, match=pattern):
        read_delivery(path)


def test_csv_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"\n\n")
    with pytest.raises(DeliveryReadError, match="no header line"):
        read_delivery(path)


def test_csv_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(random.Random(7).randbytes(4096))
    with pytest.raises(DeliveryReadError) as info:
        read_delivery(path)
    assert str(info.value).startswith(str(path))
    assert "byte offset" in str(info.value)


def test_csv_undecodable_without_nul(tmp_path: Path) -> None:
    # Control characters and bytes that neither UTF-8 nor GB18030 accept, no NUL byte.
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"XM,XB\n\x01\x02\xff\xfe\x80\x03,\x81\x7f\x04\n" * 20)
    with pytest.raises(
        DeliveryReadError, match=r"cannot be decoded: not UTF-8 \(bad byte at offset 8, line 2\)"
    ):
        read_delivery(path)


def test_csv_utf8_with_a_corrupt_byte_is_refused(tmp_path: Path) -> None:
    good = "".join(",".join(r) + "\n" for r in [GBK_HEADER, *GBK_ROWS * 3]).encode("utf-8")
    corrupt = good.replace("王秀英".encode(), "王".encode() + b"\xff" + "英".encode(), 1)
    path = tmp_path / "corrupt.csv"
    path.write_bytes(corrupt)
    with pytest.raises(DeliveryReadError, match=r"is UTF-8 except for invalid bytes .* \(line 3\)"):
        read_delivery(path)


def test_csv_latin1_falls_back_to_charset_normalizer(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("Name;Stadt\nJürgen Groß;Köln\nRenée;Besançon\n".encode("cp1252"))
    delivery = read_delivery(path)
    assert delivery.encoding not in {"utf-8", "gb18030"}
    assert rows_of(delivery) == [["Jürgen Groß", "Köln"], ["Renée", "Besançon"]]


def test_large_file_sampling_skips_ascii_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encodings, "LARGE_FILE_BYTES", 2048)
    monkeypatch.setattr(encodings, "SAMPLE_BYTES", 256)
    rows = [["ID", "XM", "ZZ"]] + [[str(i), "ZHANG WEI", "SUZHOU"] for i in range(200)]
    rows += [[str(200 + i), r[0], r[4]] for i, r in enumerate(GBK_ROWS)]
    path = write_csv(tmp_path / "big.csv", rows, encoding="gbk")
    assert path.stat().st_size > 2048

    delivery = read_delivery(path)

    assert delivery.encoding == "gb18030"
    assert rows_of(delivery) == rows[1:]


def test_large_file_bad_bytes_late_name_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encodings, "LARGE_FILE_BYTES", 2048)
    monkeypatch.setattr(encodings, "SAMPLE_BYTES", 256)
    head = "".join(f"{i},张伟,江苏省苏州市工业园区\n" for i in range(100)).encode("utf-8")
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"ID,XM,ZZ\n" + head + "100,王秀英,上海市\n".encode("gbk"))

    assert detect_encoding(path) == "utf-8"
    with pytest.raises(DeliveryReadError) as info:
        read_delivery(path)
    assert info.value.line == 102
    assert "line 102" in str(info.value) and "not valid utf-8" in str(info.value)


# ------------------------------------------------------------------------------------------ XLSX


def test_xlsx_round_trip(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "企业登记"
    sheet.append(["姓名", "出生日期", "注册资本（万元）", "登记时间", "备注", "比例", "在册"])
    sheet.append(["张伟", dt.date(2024, 3, 5), 20240305.0, dt.datetime(2024, 3, 5, 10, 0), None, 12.5, True])
    sheet.append(
        ["  王秀英 ", dt.date(1962, 1, 1), 100, dt.datetime(2024, 3, 5, 10, 0, 30), "已核验", 0.1, False]
    )
    sheet.append([None] * 7)  # an empty row between records is kept
    sheet.append(["欧阳娜娜", None, None, None, None, None, None])
    sheet["A8"] = ""  # trailing rows with (empty) cells are dropped
    sheet["C9"].number_format = "0.00"
    workbook.create_sheet("说明").append(["字段", "含义"])
    path = tmp_path / "登记.xlsx"
    workbook.save(path)

    delivery = read_delivery(path)

    assert delivery.format == "xlsx"
    assert delivery.encoding is None
    assert delivery.columns == ["姓名", "出生日期", "注册资本（万元）", "登记时间", "备注", "比例", "在册"]
    assert rows_of(delivery) == [
        ["张伟", "2024-03-05", "20240305", "2024-03-05T10:00:00", None, "12.5", "true"],
        ["  王秀英 ", "1962-01-01", "100", "2024-03-05T10:00:30", "已核验", "0.1", "false"],
        [None] * 7,
        ["欧阳娜娜", None, None, None, None, None, None],
    ]
    assert_raw_text_frame(delivery)

    by_name = read_delivery(path, sheet="说明")
    by_index = read_delivery(path, sheet=1)
    assert by_name.columns == by_index.columns == ["字段", "含义"]
    assert len(by_name.frame) == 0
    with pytest.raises(
        DeliveryReadError, match=r"has no sheet '附表'; its sheets are \['企业登记', '说明'\]"
    ):
        read_delivery(path, sheet="附表")


def test_xlsx_number_cells_of_identifiers(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(list(ODD_NUMBERS)[:5])
    workbook.active.append(list(ODD_NUMBERS.values())[:5])
    path = tmp_path / "ids.xlsx"
    workbook.save(path)
    assert rows_of(read_delivery(path)) == [ODD_NUMBERS_TEXT[:5]]


def test_xlsx_empty_header_cell_names_excel_column(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["姓名", None, "性别"])
    workbook.active.append(["张伟", "x", "男"])
    path = tmp_path / "h.xlsx"
    workbook.save(path)
    with pytest.raises(DeliveryReadError, match=r"column 2 \(B\) of the header .* has an empty name"):
        read_delivery(path)


def test_xlsx_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("姓名,性别\n张伟,男\n", encoding="utf-8")
    with pytest.raises(DeliveryReadError, match="cannot be opened as an xlsx workbook"):
        read_delivery(path)


# ------------------------------------------------------------------------------- format and hash


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [GBK_HEADER, *GBK_ROWS], encoding="gbk")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path) == expected
    assert read_delivery(path).sha256 == expected


def test_format_from_suffix_and_override(tmp_path: Path) -> None:
    unknown = write_csv(tmp_path / "d.dat", [["a"], ["1"]])
    with pytest.raises(DeliveryReadError, match=r"cannot tell the format from the suffix '\.dat'"):
        read_delivery(unknown)
    assert read_delivery(unknown, "csv").columns == ["a"]
    with pytest.raises(DeliveryReadError, match="old Excel format"):
        read_delivery(write_csv(tmp_path / "d.xls", [["a"]]))
    with pytest.raises(DeliveryReadError, match="unknown format 'parquet'"):
        read_delivery(unknown, "parquet")
    with pytest.raises(DeliveryReadError, match="not xlsx"):
        read_delivery(unknown, "csv", sheet=0)
    with pytest.raises(DeliveryReadError, match="file not found"):
        read_delivery(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------ real data smoke


def _catalog(name: str) -> Path:
    path = settings().reference_dir / "opendata_catalogs" / name
    assert path.is_file(), (f"reference catalog not available: {path} — put ../shared/reference beside the "
                            "checkout or set TONGBAN_REFERENCE_DIR")
    return path


def test_real_shanghai_catalog() -> None:
    delivery = read_delivery(_catalog("nju-websoft_CNPDS_shanghai_shanghai.json"))
    assert delivery.format == "json"
    assert delivery.encoding == "utf-8"
    assert len(delivery.frame) == 4494
    assert {"数据集名称", "数据格式"} <= set(delivery.columns)
    assert_raw_text_frame(delivery)
    formats = delivery.frame["数据格式"]
    assert (formats == "[]").any()
    assert (formats == '["rdf","xml","xlsx","json","csv"]').any()
    assert formats.map(lambda v: isinstance(json.loads(v), list)).all()


def test_real_anhui_catalog_keeps_python_list_string() -> None:
    delivery = read_delivery(_catalog("cqsss_ChinaOpenDataPortal_anhui_anhui.json"))
    assert len(delivery.frame) == 700
    assert "数据格式" in delivery.columns
    assert delivery.frame["数据格式"].iloc[0] == "['api']"
    assert_raw_text_frame(delivery)


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_json_lines_present_columns_in_first_seen_order(tmp_path: Path, encoding: str) -> None:
    """DuckDB lands the declared keys; the part's own keys (feedback's columns) are all of them,
    in first-seen order, also one present only with nulls."""
    from tongban.steps.intake.staging import present_columns, stage_delivery

    path = tmp_path / "d.jsonl"
    path.write_bytes('{"乙": "1", "甲": null}\n{"丙": "2", "乙": "3"}\n'.encode(encoding))
    staged = stage_delivery([path], format=None, sheet=None, declared=["甲", "乙"], work_dir=tmp_path / "w")
    (part,) = staged.parts
    assert part.reader == "duckdb" and part.columns == ["乙"]  # the declared keys holding a value
    assert present_columns(part) == ["乙", "甲", "丙"]


def test_xlsx_reading_logs_nothing_about_column_kinds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    workbook = openpyxl.Workbook()
    for row in (["a", "b"], [None, None], ["x", None]):
        workbook.active.append(row)
    path = tmp_path / "kinds.xlsx"
    workbook.save(path)
    with caplog.at_level("DEBUG"):
        assert rows_of(read_delivery(path)) == [[None, None], ["x", None]]
    assert not [r for r in caplog.records if "dtype" in r.getMessage()]
