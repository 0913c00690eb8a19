"""Generated files are generated, not rewritten at run time (issue 15): `tongban run` builds from a
dbt project generated under build/, so a run after a mapping edit leaves every tracked file as it
was (`git status` shows the edit and nothing else) while it runs with the edited mapping;
`tongban generate` is what refreshes the tracked models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tongban.common.config import PROJECT_ROOT, settings
from tongban.sample import write_samples

MAPPING = "standards/mappings/js/birth_registration.yaml"
MODEL = "models/staging/js/stg_js__birth_registration.sql"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _copy_project(dest: Path) -> Path:
    """The checkout's files (tracked and new, as they are in the working tree) in a repository of their own."""
    files = _git(PROJECT_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for rel in filter(None, files):
        src = PROJECT_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy")
    return dest


def _tongban(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tongban.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """A copy of the project whose 江苏 births mapping is edited (version 1.1.0 → 1.1.9), run once."""
    root = tmp_path_factory.mktemp("generated")
    project = _copy_project(root / "project")
    inbox = root / "inbox"
    write_samples("births", 300, 20261204, inbox, provinces=["js"])
    path = project / MAPPING
    text = path.read_text(encoding="utf-8")
    assert "\nversion: 1.1.0\n" in text
    path.write_text(text.replace("\nversion: 1.1.0\n", "\nversion: 1.1.9\n"), encoding="utf-8")
    before = _git(project, "status", "--porcelain")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}
    env.update(PYTHONPATH=str(project), TONGBAN_INBOX_DIR=str(inbox),
               TONGBAN_REFERENCE_DIR=str(settings().reference_dir),
               TONGBAN_PSEUDONYM_KEY="tongban-test-pseudonym-key-0123456789abcdef")
    where = subprocess.run([sys.executable, "-c", "import tongban; print(tongban.__file__)"], cwd=project, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(project.resolve()), where  # the copy's code, whose root is the copy
    result = _tongban(project, env, "run", "--without-airflow", "--entity", "birth_registration")
    return {"project": project, "env": env, "before": before, "result": result,
            "after": _git(project, "status", "--porcelain")}


def test_a_run_after_a_mapping_edit_leaves_every_tracked_file_alone(edited):
    assert edited["result"].returncode in (0, 3), edited["result"].stderr[-3000:]
    assert edited["before"].split() == ["M", MAPPING]
    assert edited["after"] == edited["before"]  # nothing tracked changed, nothing new outside the ignored dirs


def test_the_run_used_the_edited_mapping(edited):
    project = edited["project"]
    report = json.loads((project / "build" / "runs" / "latest.json").read_text(encoding="utf-8"))
    js = [d for d in report["deliveries"] if d["source_id"] == "js"]
    assert [(d["status"], d["mapping_version"]) for d in js] == [("published", "1.1.9")]
    version = report["snapshots"]["birth_registration"]["version"]
    parts = str(project / "exchange" / "birth_registration" / f"v{version}" / "*.parquet")
    with duckdb.connect() as con:
        versions = con.execute("select distinct mapping_version from read_parquet(?) where source_id = 'js'",
                               [parts]).fetchall()
    assert versions == [("1.1.9",)]
    built = project / "build" / "dbt" / "project" / MODEL
    assert "'1.1.9' as mapping_version" in built.read_text(encoding="utf-8")
    assert "'1.1.0' as mapping_version" in (project / MODEL).read_text(encoding="utf-8")


def test_generate_refreshes_the_tracked_models_and_check_says_when_they_are_stale(edited):
    project, env = edited["project"], edited["env"]
    stale = _tongban(project, env, "standards", "check", "--no-coverage")
    assert stale.returncode == 1 and MODEL in stale.stdout and "tongban generate" in stale.stdout
    generated = _tongban(project, env, "generate")
    assert generated.returncode == 0, generated.stderr[-2000:]
    assert f"wrote {MODEL}" in generated.stdout
    assert sorted(line.split()[-1] for line in _git(project, "status", "--porcelain").splitlines()) == \
        sorted([MAPPING, MODEL])
    assert _tongban(project, env, "standards", "check", "--no-coverage").returncode == 0
