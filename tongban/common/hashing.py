"""The one sha256 of tongban: of a file, and of a file made of parts.

A delivery's sha256 identifies it (idempotence: the same bytes are not processed twice), and a
published part's sha256 in its snapshot manifest is what the exchange is checked against before
a part is trusted again. Both use these two functions, so the two can never drift apart.

The digest of several parts is the sha256 of the lines ``<name>\\t<sha256>\\n`` of the parts in
order, so re-delivering the same parts gives the same digest and changing, adding or renaming a
part changes it; one part's digest is the file's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

_CHUNK = 1 << 20


def file_digest():
    """The digest :func:`sha256_file` computes, for a reader that hashes a file while it reads it
    for another purpose (intake's scan: one pass over the bytes)."""
    return hashlib.sha256()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file's bytes, read in 1 MiB chunks."""
    h = file_digest()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def combined_sha256(parts: Sequence[tuple[str, str]]) -> str:
    """(name, sha256) per part, in order -> the digest of the whole."""
    if len(parts) == 1:
        return parts[0][1]
    h = hashlib.sha256()
    for name, digest in parts:
        h.update(f"{name}\t{digest}\n".encode())
    return h.hexdigest()


def files_sha256(paths: Sequence[Path]) -> str:
    """The digest of the files as parts of one whole, named by their file names."""
    return combined_sha256([(Path(p).name, sha256_file(p)) for p in paths])
