"""A bad file never withdraws a province and never leaks its content: 上海 re-delivers its births
in every way a delivery is rejected whole (no header, a required column renamed, bytes that are
not text, a ragged row, a header with no rows). Each time the real `tongban run` keeps 上海's last
good publication, records the delivery with its true line count (or its size and sha256 when it
cannot be read), writes 上海's feedback saying why, exits 3 (held back) — and no value of the file
appears in the terminal, the run records, the exchange or dbt's logs."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tongban import exchange

from tests.workdirs import work_env

ROWS = 40
SEED = 11
RUN = ("run", "--without-airflow", "--entity", "birth_registration")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict:
    from tongban.sample import write_samples

    base = tmp_path_factory.mktemp("rejects")
    inbox = base / "inbox"
    write_samples("births", ROWS, SEED, inbox)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}, **work_env(base, inbox)}
    first = subprocess.run([sys.executable, "-m", "tongban.cli", *RUN], env=env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    good = (inbox / "sh" / "births.csv").read_bytes()
    published = _sh_rows(base / "exchange")
    assert published > 0
    return {"base": base, "inbox": inbox, "env": env, "good": good, "published": published}


def _sh_rows(root: Path) -> int:
    return exchange.query(root, "select count(*) from birth_registration where source_id = 'sh'")[1][0][0]


#: 上海's personal columns (the sample's shape, docs/samples.md): never published raw
PERSONAL = ("child_name", "mother_name", "mother_id_no", "father_id_no", "contact_phone")


def _needles(good: bytes) -> set[str]:
    """The personal values of 上海's delivery: names, ID numbers, phones."""
    rows = list(csv.DictReader(io.StringIO(good.decode("utf-8-sig"))))
    out = {row[c].strip() for row in rows for c in PERSONAL if len((row.get(c) or "").strip()) >= 2}
    assert len(out) > ROWS
    return out


def _bad_files(good: bytes) -> dict[str, tuple[bytes, int | None, str]]:
    """name -> (the bad file, its true data line count (None: cannot be read), expected status)."""
    text = good.decode("utf-8-sig")
    lines = text.splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    renamed = ",".join(h + "_旧" if i == 0 else h for i, h in enumerate(header)) + "\n"
    return {
        "no_header": ("".join(lines[1:]).encode(), ROWS, "rejected"),
        "required_column_renamed": ((renamed + "".join(lines[1:])).encode(), ROWS, "rejected"),
        "not_text": (good[: len(good) // 2] + b"\x00\x81\xfe" + good[len(good) // 2:], None, "rejected"),
        "ragged_row": (("".join(lines[:5]) + lines[5].rstrip("\r\n") + ",x,y\n" + "".join(lines[6:])).encode(),
                       ROWS, "rejected"),
        "header_only": (lines[0].encode(), 0, "empty"),
    }


def _scan(paths: list[Path], needles: set[str]) -> list:
    from tests.leaks import find_leaks

    return find_leaks([p for p in paths if p.exists()], needles)


@pytest.mark.parametrize("variant", ["no_header", "required_column_renamed", "not_text", "ragged_row",
                                     "header_only"])
def test_a_rejected_redelivery_keeps_the_province_and_leaks_nothing(work, variant):
    bad, lines, status = _bad_files(work["good"])[variant]
    path = work["inbox"] / "sh" / "births.csv"
    path.write_bytes(bad)
    try:
        proc = subprocess.run([sys.executable, "-m", "tongban.cli", *RUN], env=work["env"], capture_output=True,
                              text=True, timeout=600)
    finally:
        path.write_bytes(work["good"])
    base = work["base"]
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "held back" in proc.stdout and "Traceback" not in proc.stderr
    # the province keeps its last good publication
    assert _sh_rows(base / "exchange") == work["published"]
    report = json.loads((base / "build" / "runs" / "latest.json").read_text(encoding="utf-8"))
    sh = next(d for d in report["deliveries"] if d["source_id"] == "sh")
    assert sh["status"] == status and sh["rows_delivered"] == lines and sh["rows_published"] == 0
    assert sh["kept_snapshot_version"] is not None
    if lines is None:  # unreadable: what came is named by size and sha256
        assert f"{len(bad)} bytes" in sh["message"] and "sha256" in sh["message"]
    if variant == "no_header":
        assert "the first line looks like data, not a header" in sh["message"]
    # the province is told why, in its own feedback file of this run
    feedback = base / "feedback" / "sh" / f"{report['run_id']}__birth_registration.csv"
    assert feedback.is_file() and "delivery_" in feedback.read_text(encoding="utf-8")
    # no value of the file anywhere but the province's own feedback
    terminal = base / f"terminal-{variant}.txt"
    terminal.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    leaks = _scan([terminal, base / "exchange", base / "build" / "runs", base / "build" / "dbt" / "logs"],
                  _needles(work["good"]))
    assert not leaks, leaks[:5]


def test_feedback_cells_a_spreadsheet_would_run_are_written_as_text(work):
    """OWASP CSV injection: cells of 上海's rows that start with =, +, -, @, a tab or a CR come back
    with a ' in front (shown as text by Excel and LibreOffice); stripping it gives the value."""
    text = work["good"].decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    header[0] += "_旧"  # the delivery is rejected whole: every row goes back
    payloads = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "'quoted"]
    col = header.index("hospital_name")
    for row, payload in zip(rows[1:], payloads, strict=False):
        row[col] = payload
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path = work["inbox"] / "sh" / "births.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    try:
        proc = subprocess.run([sys.executable, "-m", "tongban.cli", *RUN], env=work["env"], capture_output=True,
                              text=True, timeout=600)
    finally:
        path.write_bytes(work["good"])
    assert proc.returncode == 3, proc.stderr[-2000:]
    report = json.loads((work["base"] / "build" / "runs" / "latest.json").read_text(encoding="utf-8"))
    feedback = work["base"] / "feedback" / "sh" / f"{report['run_id']}__birth_registration.csv"
    with feedback.open(encoding="utf-8", newline="") as fh:
        back = list(csv.DictReader(fh))
    cells = [r["hospital_name"] for r in back[: len(payloads)]]
    assert cells == ["'" + p for p in payloads]
    assert [c[1:] for c in cells] == payloads  # recoverable
    assert not any(v[:1] in ("=", "+", "@", "\t", "\r") for r in back for v in r.values() if v)
