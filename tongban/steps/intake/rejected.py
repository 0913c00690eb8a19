"""What intake records of a delivery it could not read: its size, its sha256 and, where its
lines can be told apart, how many it had — never 0 rows delivered."""

from __future__ import annotations

import csv
from pathlib import Path

from tongban.common.hashing import combined_sha256, sha256_file
from tongban.steps.intake.csvpass import sniff_delimiter
from tongban.steps.intake.readers import DeliveryReadError
from tongban.steps.intake.shape import header_looks_like_data


def file_facts(paths: list[Path]) -> tuple[int, str]:
    """(total size, sha256 as intake records a delivery's) of files that could not be read."""

    existing = [p for p in paths if p.is_file()]
    return sum(p.stat().st_size for p in existing), combined_sha256([(p.name, sha256_file(p)) for p in existing])


def count_lines(paths: list[Path], format: str | None, declared: set[str]) -> tuple[int | None, bool]:
    """(data lines, whether the first line is a record) of a delivery that could not be read: its
    non-blank lines, less a CSV header that is one — for text in UTF-8 or GB18030 only; for anything
    else (a workbook, a JSON array, bytes that are not text) the count is unknown (None)."""

    total, headerless = 0, False
    for path in paths:
        suffix = path.suffix.lower().lstrip(".")
        kind = format or {"csv": "csv", "txt": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix)
        if kind not in ("csv", "jsonl") or not path.is_file():
            return None, False
        data = path.read_bytes()
        if b"\x00" in data:
            return None, False
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            return None, False
        lines = [line for line in text.splitlines() if line.strip()]
        if kind == "csv" and lines:
            first = next(csv.reader([lines[0]], delimiter=sniff_delimiter(lines[0])), [])
            if header_looks_like_data(first, declared):
                headerless = True
            else:
                lines = lines[1:]
        total += len(lines)
    return total, headerless


def record_unreadable(result, exc: DeliveryReadError, paths: list[Path], format: str | None,
                      declared: set[str], who: str) -> None:
    """``result`` (an :class:`~tongban.steps.intake.land.IntakeResult`) for a delivery rejected
    whole: what came is recorded by its size and sha256 and, where its lines can be told apart,
    their count; never as 0 rows delivered."""
    result.status = "rejected"
    result.size_bytes, result.delivery_sha256 = file_facts(paths)
    result.rows_delivered, headerless = count_lines(paths, format, declared)
    problem = (f"{exc.path.name}: the first line looks like data, not a header — the province must "
               f"re-deliver with the column names in the first line") if headerless else str(exc)
    result.message = (f"{who}: {problem} (rejected whole, {result.size_bytes} bytes, "
                      f"sha256 {result.delivery_sha256[:12]}…)")
