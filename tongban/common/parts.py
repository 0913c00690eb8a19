"""A delivery is one file or several: ``delivery.file`` in a mapping may be a glob
(``ah/births*.xlsx``), because a large delivery arrives in parts (an XLSX sheet holds at most
1,048,575 data rows). The parts are read in natural order (``births-2`` before ``births-10``)
as one delivery; its rows are numbered across the parts in that order.

The delivery's sha256 is :func:`tongban.common.hashing.combined_sha256` of its parts.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from tongban.common.hashing import files_sha256

_GLOB_CHARS = re.compile(r"[*?\[]")


def is_pattern(file: str) -> bool:
    return bool(_GLOB_CHARS.search(file))


def natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def find_parts(inbox_dirs, file: str) -> list[Path]:
    """The delivery's files in the first inbox directory that has any (natural order); [] if none."""
    return locate_parts(inbox_dirs, file)[1]


def locate_parts(inbox_dirs, file: str) -> tuple[Path | None, list[Path]]:
    """(the inbox directory the parts were found in, the parts) — (None, []) when none has any."""
    for d in (Path(x) for x in inbox_dirs):
        if is_pattern(file):
            hits = [Path(p) for p in glob.glob(str(d / file)) if Path(p).is_file()]
            if hits:
                return d, sorted(hits, key=natural_key)
        elif (d / file).is_file():
            return d, [d / file]
    return None, []


def delivery_location(inbox_dir: Path, file: str, parts: list[Path]) -> Path:
    """What a delivery is called in results and messages: the file itself for one part, the
    pattern resolved in its inbox directory (``<inbox>/ah/births*.xlsx``) for several."""
    return parts[0] if len(parts) == 1 else Path(inbox_dir) / file


def part_offsets(parts: list[dict]) -> list[tuple[str, int, int]]:
    """(part name, first row, last row) of each part, rows numbered 1.. across the delivery, from
    the ``parts`` of an intake result (``{"file", "rows", ...}`` in order)."""
    out, start = [], 1
    for p in parts:
        rows = int(p.get("rows") or 0)
        out.append((Path(p["file"]).name, start, start + rows - 1))
        start += rows
    return out


def delivery_sha256(paths: list[Path]) -> str:
    return files_sha256(paths)
