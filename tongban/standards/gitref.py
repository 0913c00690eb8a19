"""The ``standards/`` tree as it was at a git ref, for comparing versions of the standard.

``standards_at("origin/main", repo_root)`` yields a temporary copy of ``standards/`` at that
commit (extracted from ``git archive``; nothing in the working tree is touched), so
``load_standards`` can read it like the working tree.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STANDARDS_DIR = "standards"


class GitRefError(ValueError):
    """The ref, the repository or the standards at that ref cannot be read."""


def _git(repo_root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo_root), *args], capture_output=True, check=False)
    except FileNotFoundError as exc:  # no git executable
        raise GitRefError("git is not installed (needed to read the standards at a git ref)") from exc


def _err(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8", "replace").strip()


def _check_repo(repo_root: Path) -> None:
    if not Path(repo_root).is_dir():
        raise GitRefError(f"not a git repository: {repo_root} (no such directory)")
    proc = _git(repo_root, "rev-parse", "--is-inside-work-tree")
    if proc.returncode != 0:
        raise GitRefError(f"not a git repository: {repo_root}")


def resolve(ref: str, repo_root: Path) -> str:
    """The full commit sha ``ref`` names in the repository at ``repo_root``."""
    _check_repo(repo_root)
    if not ref or ref.startswith("-") or any(ord(ch) < 32 for ch in ref):
        raise GitRefError(f"unknown git ref {ref!r}")
    proc = _git(repo_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    sha = proc.stdout.decode().strip()
    if proc.returncode != 0 or not sha:
        raise GitRefError(f"unknown git ref {ref!r} in {repo_root} (not a branch, tag or commit there)")
    return sha


@contextmanager
def standards_at(ref: str, repo_root: Path, subdir: str = STANDARDS_DIR) -> Iterator[Path]:
    """Yield a temporary ``standards`` directory holding ``subdir`` of ``repo_root`` as it was at
    ``ref``; removed on exit. ``subdir`` is relative to ``repo_root`` (which may itself be a
    folder inside the git work tree)."""
    sha = resolve(ref, repo_root)
    top = Path(_git(repo_root, "rev-parse", "--show-toplevel").stdout.decode().strip() or repo_root)
    prefix = _git(repo_root, "rev-parse", "--show-prefix").stdout.decode().strip()
    path_in_repo = f"{prefix}{subdir.strip('/')}"
    tree = f"{sha}:{path_in_repo}"
    kind = _git(top, "cat-file", "-t", tree)
    if kind.returncode != 0 or kind.stdout.decode().strip() != "tree":
        raise GitRefError(f"no {path_in_repo}/ directory at git ref {ref!r} ({sha[:12]})")
    # run from the top level: in a subdirectory git archive would keep only that part of the tree
    proc = _git(top, "archive", "--format=tar", f"--prefix={STANDARDS_DIR}/", tree)
    if proc.returncode != 0:
        raise GitRefError(f"git archive of {path_in_repo}/ at {ref!r} failed: {_err(proc)}")
    with tempfile.TemporaryDirectory(prefix="tongban-standards-") as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:") as tar:
                tar.extractall(tmp, filter="data")  # no absolute paths, no links out of tmp
        except tarfile.TarError as exc:
            raise GitRefError(f"cannot unpack {path_in_repo}/ at {ref!r}: {exc}") from exc
        out = Path(tmp) / STANDARDS_DIR
        out.mkdir(exist_ok=True)  # an empty tree archives to nothing
        yield out
