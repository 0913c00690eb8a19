"""What the tests of the committee's files share: a scratch copy of ``standards/`` to edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tongban.common.config import PROJECT_ROOT

STANDARDS = PROJECT_ROOT / "standards"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the repository's standards the test may edit (modules may define their own)."""
    dst = tmp_path / "standards"
    shutil.copytree(STANDARDS, dst)
    return dst


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in ``path`` by ``new`` (``old`` must be there)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
