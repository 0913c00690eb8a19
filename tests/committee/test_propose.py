"""`tongban standards propose`: profiling, one-to-one assignment, the files it writes (never over
existing ones without --force), the lint's refusal of proposed blocking entries, the report, and
that no delivered value reaches a log or a message."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import pytest

from tongban.cli import main
from tongban.committee.propose.profile import parse_date_value, profile_delivery
from tongban.committee.propose.score import Candidate, _greedy, assign
from tongban.common.config import PROJECT_ROOT
from tongban.standards.lint import check

# GB 32100 check character, written here from the standard's rule (weights 3^i mod 31), not tongban's
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc(first17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return first17 + _USCC_ALPHABET[(31 - total % 31) % 31]


PLANTED = "保密标题甲乙丙"  # a delivered value that may appear in the report only


def _delivery(tmp_path: Path, rows: int = 12) -> Path:
    """A small catalogue as a GB18030 CSV (intake's reader decodes it)."""
    header = ["资源名称", "数源单位", "开放条件", "更新周期", "发布日期", "上线时间", "联系邮箱", "联系电话",
              "详情页网址", "标签", "数据格式", "法人证件", "身份证号"]
    lines = [",".join(header)]
    for i in range(rows):
        title = PLANTED if i == 0 else f"数据集{i}"
        lines.append(",".join([
            title, "市统计局", "按需开放" if i % 3 == 0 else "无条件开放" if i % 2 else "有条件开放", "每年",
            f"2023年{i % 9 + 1}月{i + 1}日", str(1624651200000 + i), f"u{i}@example.cn",
            "0571-88217800" if i % 3 else "暂无", f"https://data.example.cn/d/{i}",
            '"统计、人口、年鉴"', "\"['xls', 'csv']\"", _uscc("91350100M000100Y4"), "11010519491231002X"]))
    path = tmp_path / "catalogue.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))
    return path


def test_date_forms_and_epochs_in_china_time():
    assert parse_date_value("2023-06-02") == ("YYYY-MM-DD", dt.date(2023, 6, 2))
    assert parse_date_value("2023年6月2日") == ("YYYY年M月D日", dt.date(2023, 6, 2))
    assert parse_date_value("20230602") == ("YYYYMMDD", dt.date(2023, 6, 2))
    # 1624651200 is 2021-06-25 20:00:00 UTC (`date -u -d @1624651200`): 04:00 on the 26th in China
    assert parse_date_value("1624651200000") == ("epoch_ms", dt.date(2021, 6, 26))
    assert parse_date_value("1624651200") == ("epoch_s", dt.date(2021, 6, 26))
    assert parse_date_value("20231345") is None and parse_date_value("12345") is None


def test_profile_finds_the_patterns(tmp_path: Path):
    profiles = {p.name: p for p in profile_delivery([_delivery(tmp_path)])}
    assert profiles["发布日期"].date_form == "YYYY年M月D日" and profiles["发布日期"].share("date") == 1.0
    assert profiles["上线时间"].date_form == "epoch_ms"
    assert profiles["联系邮箱"].share("email") == 1.0
    phone = profiles["联系电话"]
    assert phone.share("phone") == 1.0 and phone.null_markers == ["暂无"] and phone.filled == 8
    assert profiles["详情页网址"].share("url") == 1.0 and profiles["详情页网址"].distinct_share == 1.0
    assert profiles["标签"].separator == "、"
    assert profiles["数据格式"].share("json_list") == 1.0
    assert profiles["法人证件"].share("uscc") == 1.0 and profiles["身份证号"].share("id_number") == 1.0
    assert profiles["资源名称"].fill_rate == 1.0 and PLANTED in profiles["资源名称"].samples


def test_assignment_is_one_to_one_and_maximises_the_total():
    def c(col, s):
        return Candidate(col, s, s, 1.0, "")
    # greedy by score would take a<-x (0.9) and leave b with y (0.35): 1.25; the best total is 1.65
    scores = {"a": [c("x", 0.9), c("y", 0.8)], "b": [c("x", 0.85), c("y", 0.35)]}
    choices = assign(scores)
    assert (choices["a"].column, choices["b"].column) == ("y", "x")
    # without scipy: greedy by score, still one to one
    table = {(f, cand.column): cand for f, cs in scores.items() for cand in cs}
    assert _greedy(list(scores), table) == {"a": "x", "b": "y"}
    # below the threshold a field stays unmapped rather than take a poor column
    choices = assign({"a": [c("x", 0.9)], "b": [c("x", 0.8), c("y", 0.1)]})
    assert choices["a"].column == "x" and choices["b"].column is None


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["standards", "propose", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_writes_a_mapping_and_never_overwrites_without_force(tmp_path: Path, capsys):
    out = tmp_path / "mappings" / "tc"
    args = [str(_delivery(tmp_path)), "--source", "tc", "--province", "33", "--out", str(out), "--format", "json"]
    code, stdout, _ = _run(args, capsys)
    assert code == 0
    mapping = out / "data_resource.yaml"
    text = mapping.read_text(encoding="utf-8")
    report = json.loads(stdout)
    chosen = {f["field"]: f["column"] for f in report["fields"]}
    assert chosen["title"] == "资源名称" and chosen["contact_email"] == "联系邮箱" and chosen["detail_url"] == "详情页网址"
    used = [c for c in chosen.values() if c]
    assert len(used) == len(set(used))  # one column, one field
    assert '{parse_date: ["%Y年%m月%d日"]}' in text and "status: proposed" in text and "# title ← 资源名称" in text
    cw = (out / "crosswalks" / "open_condition.csv").read_text(encoding="utf-8").splitlines()
    assert "无条件开放,unconditional,proposed,tongban-propose,," in cw
    mapping.write_text("# edited by the committee\n" + text, encoding="utf-8")
    code, _, err = _run(args, capsys)
    assert code == 2 and "--force" in err and mapping.read_text(encoding="utf-8").startswith("# edited")
    code, _, _ = _run([*args, "--force"], capsys)
    assert code == 0 and mapping.read_text(encoding="utf-8") == text


def test_an_existing_crosswalk_keeps_its_reviewed_rows(tmp_path: Path, capsys):
    out = tmp_path / "mappings" / "tc"
    existing = ("source_value,target_code,status,author,reviewer,reviewed_on\n"
                "无条件开放,unconditional,approved,wang,li,2026-11-27\n")
    (out / "crosswalks").mkdir(parents=True)
    (out / "crosswalks" / "open_condition.csv").write_text(existing, encoding="utf-8")
    code, _, _ = _run([str(_delivery(tmp_path)), "--source", "tc", "--province", "33", "--out", str(out)], capsys)
    text = (out / "crosswalks" / "open_condition.csv").read_text(encoding="utf-8")
    assert code == 0 and text.startswith(existing)
    assert text[len(existing):] == "有条件开放,conditional,proposed,tongban-propose,,\n"


def test_report_json_shape(tmp_path: Path, capsys):
    code, stdout, _ = _run([str(_delivery(tmp_path)), "--source", "tc", "--province", "33",
                            "--out", str(tmp_path / "out"), "--format", "json"], capsys)
    report = json.loads(stdout)
    assert code == 0
    assert set(report) == {"source_id", "entity", "mapping", "fields", "unmapped_columns", "crosswalks",
                           "values_without_proposal", "columns"}
    assert report["entity"] == "data_resource"  # the entity the columns fit best
    for f in report["fields"]:
        assert set(f) == {"field", "column", "confidence", "reason", "runners_up"}
        assert 0 <= f["confidence"] <= 1 and f["reason"]
    assert {"法人证件", "身份证号"} <= set(report["unmapped_columns"])
    # 按需开放 is in no code list and no crosswalk: rows 0, 3, 6 and 9
    assert report["values_without_proposal"] == {"open_condition_code": [{"value": "按需开放", "rows": 4}]}
    assert set(report["columns"][0]) == {"name", "fill_rate", "distinct_share", "patterns", "date_form", "separator",
                                         "null_markers", "samples"}


@pytest.fixture
def scratch_standards(tmp_path: Path) -> Path:
    root = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", root)
    return root


def test_proposed_blocking_entries_fail_the_lint_until_reviewed(tmp_path: Path, scratch_standards: Path, capsys):
    out = scratch_standards / "mappings" / "tc"
    code, _, _ = _run([str(_delivery(tmp_path)), "--source", "tc", "--province", "33", "--out", str(out)], capsys)
    assert code == 0
    errors = [f for f in check(scratch_standards).findings if f.severity == "error"]
    assert {f.message for f in errors} >= {"field 'title' is a proposed mapping of a blocking field",
                                           "field 'open_condition_code' is a proposed mapping of a blocking field"}
    assert all(f.file == "standards/mappings/tc/data_resource.yaml" for f in errors)
    mapping = out / "data_resource.yaml"
    proposed = mapping.read_text(encoding="utf-8")
    approved = proposed.replace('status: proposed, author: "tongban-propose"}',
                                'status: approved, author: "tongban-propose", reviewer: "li", reviewed_on: "2026-12-04"}')
    mapping.write_text(approved, encoding="utf-8")
    assert [str(f) for f in check(scratch_standards).findings if f.severity == "error"] == []
    # four eyes: the author cannot approve their own proposal
    mapping.write_text(approved.replace('reviewer: "li"', 'reviewer: "tongban-propose"'), encoding="utf-8")
    assert any("reviewed by its own author" in f.message for f in check(scratch_standards).findings)


def test_no_delivered_value_in_a_log_or_a_message(tmp_path: Path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    path = _delivery(tmp_path)
    out = tmp_path / "out"
    code, stdout, err = _run([str(path), "--source", "tc", "--province", "33", "--out", str(out)], capsys)
    assert code == 0 and PLANTED in stdout  # positive control: the report shows samples
    code2, _, err2 = _run([str(path), "--source", "tc", "--province", "33", "--out", str(out)], capsys)
    assert code2 == 2 and err2  # the refusal is a message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (err, err2, logged, (out / "data_resource.yaml").read_text(encoding="utf-8")):
        assert PLANTED not in text and "11010519491231002X" not in text
