"""Property-based fuzzing (hypothesis, a fixed seed, bounded examples) of every delivery reader and
of the mapping loader.

Readers, through intake's `land` (the real DuckDB staging, pandera, the Python readers): random
bytes, truncated files, BOMs, GBK, huge fields, deep JSON, wrong types, formula cells in XLSX.
Properties: nothing but a clear reject (never an exception); what lands is what was delivered
(landed rows = rows delivered); no delivered value appears in the message.

The mapping loader: a valid mapping with random YAML put in at random places. Property: the
lint answers with findings that name the file and a line, never with an exception."""

from __future__ import annotations

import csv
import io
import json
import string
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tongban.common.config import PROJECT_ROOT
from tongban.steps.intake.land import land
from tongban.standards.lint import check
from tongban.standards.models import Mapping

STD = check(PROJECT_ROOT / "standards")
COLUMNS = ["名称", "描述", "日期", "标签"]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# values that cannot be mistaken for anything a message says by itself: a marker and 6+ characters
value = st.text(alphabet=string.ascii_letters + string.digits + "张王李,\"'\n\t;|=+-@{}[]：，", min_size=6,
                max_size=40).map(lambda s: "VAL" + s)
# a value as it appears in the file without quoting (what could leak through a message)
token = st.text(alphabet=string.ascii_letters + string.digits + "张王李", min_size=6, max_size=20).map(
    lambda s: "VAL" + s)


def _mapping(fmt: str) -> Mapping:
    return Mapping.model_validate({
        "source_id": "fz", "entity": "data_resource", "province_code": "31", "version": "1.0.0",
        "standard_version": "1.0.0", "label": {"zh": "模糊", "en": "fuzz"},
        "delivery": {"file": f"fz/d.{fmt}", "format": fmt,
                     "columns": [{"name": c, "required": c == "名称"} for c in COLUMNS]},
        "identity": ["名称"], "fields": {"title": {"from": "名称", "steps": ["trim"]}}})


def _land(tmp: Path, fmt: str, data: bytes):
    inbox = tmp / "inbox"
    (inbox / "fz").mkdir(parents=True, exist_ok=True)
    (inbox / "fz" / f"d.{fmt}").write_bytes(data)
    return land(_mapping(fmt), inbox_dirs=[inbox], raw_dir=tmp / "raw", run_id="fuzz",
                entity=STD.entities["data_resource"])


def _holds(res, needles: set[str]) -> None:
    assert res.status in ("landed", "rejected", "empty"), res
    if res.status == "landed":
        with duckdb.connect() as con:
            landed = con.execute("select count(*) from read_parquet(?)", [res.raw_path]).fetchone()[0]
        assert landed == res.rows_delivered  # nothing lost between the file and the raw layer
    else:
        # a clear reason; the rows it had, or None (unknown: size and sha256 say what came)
        assert res.message and (res.rows_delivered is None or res.rows_delivered >= 0)
        assert res.delivery_sha256 and res.size_bytes is not None
    leaked = [n for n in needles if n in res.message]
    assert not leaked, (leaked, res.message)


@st.composite
def csv_files(draw) -> tuple[bytes, set[str]]:
    header = draw(st.lists(st.sampled_from(COLUMNS + ["VALextra列"]), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(st.one_of(value, token, st.just("")), min_size=len(header),
                                  max_size=len(header) + draw(st.integers(0, 1))), max_size=8))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=draw(st.sampled_from([",", "\t", "|", ";"])))
    writer.writerow(header)
    writer.writerows(rows)
    text = buf.getvalue()
    if draw(st.booleans()):  # no header at all: the first record is read as one
        text = "\n".join(text.splitlines()[1:]) + "\n"
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"])), errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # truncated in transit
    needles = {c for r in rows for c in r if len(c) >= 9} | ({"VALextra列"} if "VALextra列" in header else set())
    return data, needles


@seed(20261204)
@FUZZ
@given(csv_files())
def test_csv_deliveries_are_landed_or_rejected_clearly(tmp_path_factory, case):
    data, needles = case
    _holds(_land(tmp_path_factory.mktemp("csv"), "csv", data), needles)


def _json_value(depth: int = 3):
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                        st.floats(allow_nan=False, allow_infinity=False), value, token)
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(token, inner, max_size=3)),
                        max_leaves=8)


@st.composite
def json_files(draw) -> tuple[bytes, set[str], str]:
    records = draw(st.lists(st.dictionaries(st.sampled_from(COLUMNS + ["VALkey键"]), _json_value(), max_size=5),
                            max_size=6))
    if draw(st.booleans()):  # not even records: any JSON
        records = draw(_json_value())
    lines = draw(st.booleans())
    if lines and isinstance(records, list):
        text = "\n".join(json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records) + "\n"
    else:
        text = json.dumps(records, ensure_ascii=False)
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"])), errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    needles = set()

    def collect(v):
        if isinstance(v, str) and len(v) >= 9:
            needles.add(v)
        elif isinstance(v, list):
            for x in v:
                collect(x)
        elif isinstance(v, dict):
            for k, x in v.items():
                collect(k)
                collect(x)
    collect(records)
    return data, needles, "jsonl" if lines else "json"


@seed(20261204)
@FUZZ
@given(json_files())
def test_json_deliveries_are_landed_or_rejected_clearly(tmp_path_factory, case):
    data, needles, fmt = case
    _holds(_land(tmp_path_factory.mktemp("json"), fmt, data), needles)


@seed(20261204)
@FUZZ
@given(st.sampled_from(["csv", "json", "jsonl", "xlsx"]), st.binary(max_size=2000),
       st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"PK\x03\x04"]))
def test_random_bytes_are_rejected_clearly(tmp_path_factory, fmt, data, prefix):
    _holds(_land(tmp_path_factory.mktemp("bytes"), fmt, prefix + data), set())


@seed(20261204)
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.one_of(value, token, st.integers(-10**9, 10**9), st.floats(allow_nan=False),
                                   st.sampled_from(["=1+1", "=HYPERLINK(\"http://x\",\"y\")", "=SUM(A1:A2)"])),
                         min_size=4, max_size=4), max_size=6),
       st.booleans())
def test_xlsx_deliveries_with_formulas_and_numbers_land_as_text(tmp_path_factory, rows, header):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    if header:
        ws.append(COLUMNS)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    needles = {c for r in rows for c in r if isinstance(c, str) and c.startswith("VAL") and len(c) >= 9}
    res = _land(tmp_path_factory.mktemp("xlsx"), "xlsx", buf.getvalue())
    _holds(res, needles)
    if header and rows:
        assert res.status == "landed" and res.rows_delivered == len(rows)


# ---- the mapping loader ----------------------------------------------------------------------

yaml_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
yaml_value = st.recursive(yaml_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(st.text(max_size=12), inner,
                                                                               max_size=4)),
                          max_leaves=12)
MAPPING_KEYS = ["source_id", "entity", "province_code", "version", "standard_version", "label", "delivery",
                "identity", "null_values", "fields", "unknown_key"]


def _minimal_standards(root: Path) -> Path:
    """The data_resource entity with its code lists and the 上海 mapping (loads in a blink)."""
    import shutil

    src = PROJECT_ROOT / "standards"
    for rel in ["entities/data_resource.yaml", "mappings/sh/data_resource.yaml", "mappings/sh/crosswalks"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (src / rel).is_dir() else shutil.copy2)(src / rel, root / rel)
    shutil.copytree(src / "code_lists", root / "code_lists")
    return root


@seed(20261204)
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(MAPPING_KEYS), yaml_value, min_size=1, max_size=3),
       st.sampled_from(["merge", "replace", "raw"]), st.binary(max_size=200))
def test_the_mapping_loader_answers_with_findings_never_a_traceback(tmp_path_factory, patch, how, raw):
    import yaml

    root = _minimal_standards(tmp_path_factory.mktemp("std"))
    path = root / "mappings" / "sh" / "data_resource.yaml"
    if how == "raw":  # bytes that may not be YAML (or text) at all
        path.write_bytes(raw)
    else:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) if how == "merge" else {}
        doc.update(patch)
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    std = check(root)  # must not raise
    for f in std.findings:
        assert f.file.startswith("standards/") and isinstance(f.line, int) and f.line >= 1, f
    if how != "merge" or any(k not in ("null_values",) for k in patch):
        assert std.errors or std.mappings  # either refused with findings, or a valid mapping
