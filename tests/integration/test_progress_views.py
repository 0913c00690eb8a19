"""The two views of a run's progress, fed by the real event file the pipeline's steps append to:
plain lines for a log, the rich live view for a terminal; whole lines only, and a file started
anew (a new run) is read from its top."""

from __future__ import annotations

import io
import json

import pytest

from tongban import pipeline
from tongban.cli.progress import Follower, watching


@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setenv("TONGBAN_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


def _events() -> None:
    pipeline.progress_event("step", step="start", state="started")
    pipeline.progress_event("step", step="start", state="done", seconds=0.4, run_id="20261204T000000Z-abcdef")
    pipeline.progress_event("delivery", entity="birth_registration", source_id="sh", province_code="31",
                            status="landed", rows=1234)
    pipeline.progress_event("delivery", entity="birth_registration", source_id="ah", province_code="34",
                            status="rejected", rows=None)
    pipeline.progress_event("step", step="transform", state="failed", error="TransformError", seconds=2.5)


def test_plain_lines(build):
    out = io.StringIO()
    with watching(pipeline.progress_path(), stream=out, rich=False):
        _events()
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == ["step start started", "step start done in 0.4 s (run 20261204T000000Z-abcdef)",
                     "delivery sh/birth_registration (province 31): landed, 1234 rows read",
                     "delivery ah/birth_registration (province 34): rejected, rows unreadable",
                     "step transform FAILED (TransformError) after 2.5 s"]
    assert all(line.startswith("[") and " s] " in line for line in out.getvalue().splitlines())


def test_rich_view_shows_the_step_and_each_delivery(build):
    out = io.StringIO()
    with watching(pipeline.progress_path(), stream=out, rich=True):
        _events()
    text = out.getvalue()
    assert "tongban run" in text and "transform failed" in text
    assert "sh/birth_registration" in text and "1234" in text and "ah/birth_registration" in text
    assert "done: start 0.4 s" in text


def test_the_follower_reads_whole_lines_and_a_file_started_anew(build):
    path = pipeline.progress_path()
    path.parent.mkdir(parents=True)
    seen: list[dict] = []
    follower = Follower(path, seen.append)
    follower.read()  # no file yet: nothing
    path.write_text(json.dumps({"event": "step", "step": "a"}) + "\n" + '{"event": "st', encoding="utf-8")
    follower.read()
    assert seen == [{"event": "step", "step": "a"}]  # the torn line waits
    with path.open("a", encoding="utf-8") as f:
        f.write('ep", "step": "b"}\n')
    follower.read()
    assert [e["step"] for e in seen] == ["a", "b"]
    path.write_text(json.dumps({"event": "step", "step": "c"}) + "\n", encoding="utf-8")  # a new run
    follower.read()
    assert [e["step"] for e in seen] == ["a", "b", "c"]
