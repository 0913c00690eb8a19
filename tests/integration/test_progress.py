"""`tongban run` says what it is doing, and every command that prints a table speaks JSON.

Real runs (the DAG under Airflow's dag.test, and the steps without Airflow) of `python -m
tongban.cli` with stdout and stderr piped, as a log or CI captures them: one plain progress line
per event on stderr, the summary (or, with --format json, one JSON document and nothing else) on
stdout. The table commands are run in process on the exchange those runs published."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tongban.cli import main
from tongban.common.config import settings
from tongban.sample import write_samples

from tests.workdirs import use_work, work_env

KEY = "tongban-test-pseudonym-key-0123456789abcdef"
ENTITY = "birth_registration"
ROWS = 40
PROVINCES = {"sh": "31", "js": "32", "zj": "33", "ah": "34"}
#: a progress line; found anywhere in a line: a library's progress bar (GX's) may leave its own
#: unfinished line on stderr just before
LINE = re.compile(r"\[\s*\d+\.\d s\] (.+)$")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("progress")
    inbox = base / "inbox"
    write_samples("births", ROWS, 7, inbox)
    return {"base": base, "inbox": inbox}


def _tongban(work: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith("AIRFLOW") or k == "AIRFLOW__LOGGING__LOGGING_LEVEL"}
    env.update(work_env(work["base"], work["inbox"], KEY))
    return subprocess.run([sys.executable, "-m", "tongban.cli", *args], env=env, capture_output=True, text=True,
                          timeout=900, cwd=settings().project_root)


def _progress(stderr: str) -> list[str]:
    return [m.group(1) for m in map(LINE.search, stderr.splitlines()) if m]


@pytest.fixture(scope="module")
def airflow_run(work) -> subprocess.CompletedProcess:
    return _tongban(work, "run", "--entity", ENTITY)


def test_a_piped_run_prints_one_plain_line_per_event(airflow_run, work):
    proc = airflow_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run_id = json.loads((work["base"] / "build" / "runs" / "latest.json").read_text(encoding="utf-8"))["run_id"]
    lines = _progress(proc.stderr)
    assert lines[0] == "Airflow: the DAG runs in this process (dag.test)"
    assert lines[1] == "step start started" and re.fullmatch(rf"step start done in \d+\.\d s \(run {run_id}\)",
                                                              lines[2])
    deliveries = sorted(lines[3:7])
    assert deliveries == sorted(f"delivery {sid}/{ENTITY} (province {code}): landed, {ROWS} rows read"
                                for sid, code in PROVINCES.items())
    steps = [re.sub(r" in \d+\.\d s$", "", line) for line in lines[7:]]
    assert steps == [f"step {s} {state}" for s in ("transform", "gate", "check_conservation", "publish", "feedback")
                     for state in ("started", "done")], proc.stderr[-4000:]
    # plain text for a log: no terminal control codes; the summary alone on stdout
    assert "\x1b" not in proc.stderr
    assert _progress(proc.stdout) == [] and f"tongban run {run_id}" in proc.stdout


def _json_run(work: dict, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = _tongban(work, "run", "--without-airflow", "--entity", ENTITY, "--format", "json", *args)
    return proc, json.loads(proc.stdout)  # the whole of stdout is one JSON document


def test_format_json_is_the_summary_alone_on_stdout(airflow_run, work):
    proc, summary = _json_run(work)
    assert proc.returncode == 0 == summary["exit_code"], proc.stderr[-3000:]
    report = json.loads((work["base"] / "build" / "runs" / "latest.json").read_text(encoding="utf-8"))
    assert summary["run_id"] == report["run_id"]
    assert summary["snapshots"] == {e: s["version"] for e, s in report["snapshots"].items()}
    assert summary["gate"]["success"] is True and summary["gate"]["entities"][ENTITY]["success"] is True
    assert summary["held_back"] == []
    by_source = {d["source_id"]: d for d in summary["deliveries"]}
    assert set(by_source) == set(PROVINCES)
    for sid, d in by_source.items():
        assert d["entity"] == ENTITY and d["province_code"] == PROVINCES[sid]
        assert d["rows_delivered"] == ROWS == d["rows_published"] + d["rows_quarantined"]
        assert "held_reason" not in d
    # progress went to stderr, without Airflow too
    lines = _progress(proc.stderr)
    assert lines[0] == "step start started" and "step intake started" in lines
    assert f"delivery sh/{ENTITY} (province 31): landed, {ROWS} rows read" in lines
    assert lines[-1].startswith("step feedback done")


def test_format_json_says_why_a_delivery_was_held(airflow_run, work):
    sh = work["inbox"] / "sh" / "births.csv"
    good = sh.read_bytes()
    header, rest = good.decode("utf-8-sig").split("\n", 1)
    columns = header.split(",")
    sh.write_text(",".join([columns[0] + "_old", *columns[1:]]) + "\n" + rest, encoding="utf-8")
    try:
        proc, summary = _json_run(work)
    finally:
        sh.write_bytes(good)
    assert proc.returncode == 3 == summary["exit_code"], proc.stderr[-3000:]
    held = next(d for d in summary["deliveries"] if d["source_id"] == "sh")
    assert held["status"] == "rejected" and held["rows_published"] == 0
    assert columns[0].strip('"') in held["held_reason"] and held["kept_snapshot_version"] >= 1
    assert summary["held_back"] == [f"sh/{ENTITY}"]
    assert f"delivery sh/{ENTITY} (province 31): rejected, {ROWS} rows read" in _progress(proc.stderr)


@pytest.fixture
def in_work(airflow_run, work, monkeypatch):
    use_work(monkeypatch, work["base"], work["inbox"], KEY)
    return work


def _json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_query_says_when_it_cut_rows(in_work, capsys):
    total = ROWS * len(PROVINCES)
    assert main(["query", f"select * from {ENTITY}", "--limit", "5"]) == 0
    out = capsys.readouterr().out
    assert f"showing 5 of {total} rows (--limit 5; raise it to see more)" in out
    cut = _json(capsys, "query", f"select source_id from {ENTITY}", "--limit", "5", "--format", "json")
    assert cut["columns"] == ["source_id"] and len(cut["rows"]) == 5
    assert cut["truncated"] is True and cut["total"] == total
    whole = _json(capsys, "query", f"select source_id, count(*) n from {ENTITY} group by 1 order by 1",
                  "--format", "json")
    assert whole["truncated"] is False and whole["total"] == 4
    assert whole["rows"] == [{"source_id": s, "n": ROWS} for s in sorted(PROVINCES)]
    assert main(["query", f"select * from {ENTITY}", "--limit", str(total)]) == 0
    assert "showing" not in capsys.readouterr().out


def test_exchange_list_and_verify_as_json(in_work, capsys):
    listed = _json(capsys, "exchange", "list", "--format", "json")
    assert listed["columns"][:3] == ["entity", "version", "rows"]
    current = [r for r in listed["rows"] if r["entity"] == ENTITY and r["current"] is True]
    assert len(current) == 1 and isinstance(current[0]["version"], int) and current[0]["rows"] == ROWS * 4
    verified = _json(capsys, "exchange", "verify", "--format", "json")
    assert verified == {"exchange": str(in_work["base"] / "exchange"), "ok": True, "problems": [],
                        "signatures_checked": False, "signature_problems": [], "accepted_unsigned": []}


def test_sample_as_json(tmp_path, capsys):
    out = _json(capsys, "sample", "births", "--rows", "6", "--out", str(tmp_path), "--format", "json")
    assert out["entity"] == "births" and {r["province"] for r in out["rows"]} == set(PROVINCES)
    assert all(r["rows"] == 6 and Path(r["answer key"]).is_file() for r in out["rows"])
    assert all(isinstance(r["delivery"], list) and Path(r["delivery"][0]).is_file() for r in out["rows"])


def test_consumer_list_and_audit_tail_as_json(in_work, capsys):
    assert main(["consumer", "add", "progress-test-reader", "--province", "32"]) == 0
    consumers = _json(capsys, "consumer", "list", "--format", "json")["consumers"]
    mine = [c for c in consumers if c["name"] == "progress-test-reader"]
    assert mine and mine[0]["province"] == "32" and mine[0]["approver"] is False and mine[0]["revoked_at"] is None
    entries = _json(capsys, "audit", "tail", "-n", "5", "--format", "json")["entries"]
    assert isinstance(entries, list)
    assert all({"seq", "at", "kind", "actor", "payload", "hash"} <= set(e) for e in entries)
