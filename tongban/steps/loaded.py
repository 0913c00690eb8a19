"""The checked standards, loaded once per process while ``standards/`` is unchanged.

Loading and checking them takes about a second, and every step of an in-process run (and every
task of an Airflow run in one process) asks for them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tongban.common.config import Settings
from tongban.standards.generate import load_checked
from tongban.standards.load import Standards

_lock = threading.Lock()
_memo: dict[tuple, Standards] = {}


def _tree_stamp(root: Path) -> tuple:
    """Every file under ``root`` with its size and mtime: a changed standard changes the stamp."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            out.append((dirpath, name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def standards(s: Settings) -> Standards:
    key = (str(s.standards_dir), _tree_stamp(s.standards_dir))
    with _lock:
        std = _memo.get(key)
        if std is None:
            std = load_checked(s.standards_dir)
            _memo.clear()
            _memo[key] = std
        return std
