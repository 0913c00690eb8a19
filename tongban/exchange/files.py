"""Durable file operations of the exchange: what is renamed into place must already be on disk, and
the rename itself must be, before anything names it (a crash never leaves half a file published)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames inside it are durable (best effort where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: Path, data: dict) -> None:
    """``data`` as indented UTF-8 JSON at ``path``, flushed to disk before this returns."""
    with path.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def remove_duckdb_file(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def link_or_copy(src: Path, dst: Path) -> None:
    """A part of an earlier snapshot into a new one: hard-linked (snapshots are immutable, so
    sharing is safe), copied where the file system cannot link."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def replaced_atomically(target: Path, tmp: Path, remove: Callable[[Path], None]) -> Iterator[Path]:
    """The block writes ``tmp`` (and closes it); then ``tmp`` is made durable and renamed onto ``target``
    in one step, so a reader finds the old file or the new one, never half of one. If anything fails,
    ``remove(tmp)`` and the error goes on."""
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        remove(tmp)
        raise
