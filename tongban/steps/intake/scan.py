"""One streaming pass over a delivery's bytes before DuckDB reads it: the sha256; for text DuckDB
will read, the UTF-8 text it reads (the file itself, or its transcoding into the run's work
directory, streaming); and the constructs DuckDB reads more leniently than intake's rules allow
(a trailing delimiter, spaces around quotes, a lone carriage return as a line end, trailing
commas, ``null`` records or NaN in JSON): a part holding one is read by the Python pass instead,
which gives its precise error or the very same values."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from tongban.common.hashing import file_digest

_CHUNK = 4 * 1024 * 1024
_CSV_AROUND_QUOTES = {d: re.compile(rb"(?:^|\n|" + re.escape(d.encode()) + rb")[ \t]+\"|\"[ \t]+(?:"
                                    + re.escape(d.encode()) + rb"|\r|\n|\Z)") for d in (",", "\t", "|", ";")}
_JSON_TRAILING_COMMA = re.compile(rb",[ \t]*[}\]]")
_JSON_NULL_RECORD = re.compile(rb"\n[ \t]*null")
_JSON_FIRST_NULL = re.compile(rb"[ \t]*null")
_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?=\n)")


def _non_blank_lines(block: bytes) -> int:
    """Lines of ``block`` with more than spaces, tabs and carriage returns (the last one may be
    unterminated: the end of the file)."""
    lines = block.count(b"\n")
    blank = len(_BLANK_LINE.findall(b"\n" + block))
    if block and not block.endswith(b"\n"):
        lines += 1
        blank += not block[block.rfind(b"\n") + 1:].strip(b" \t\r")
    return lines - blank


def _lone_cr(block: bytes) -> bool:
    cr = block.count(b"\r")
    return bool(cr) and cr != block.count(b"\r\n")


def _csv_suspect(block: bytes, delimiter: str) -> str | None:
    if b"\x00" in block:
        return "a NUL byte"
    if _lone_cr(block):
        return "a carriage return that does not end a line"
    if b'"' in block and (b' "' in block or b'\t"' in block or b'" ' in block or b'"\t' in block) \
            and _CSV_AROUND_QUOTES[delimiter].search(b"\n" + block):
        return "spaces around a quoted field"
    return None


def _non_finite(block: bytes) -> bool:
    """A NaN or Infinity (any case) where a value starts: DuckDB reads ``nan``, ``inf``, ...,
    where Python reads ``NaN`` and ``Infinity`` only, also under keys nobody declared. The words
    are found by substring search (text holds them rarely), their context checked by hand."""
    lower = block.lower()
    for word in (b"nan", b"inf"):
        i = lower.find(word)
        while i >= 0:
            j = i - 1
            if j >= 0 and lower[j] == 45:  # '-'
                j -= 1
            while j >= 0 and lower[j] in (32, 9):  # spaces, tabs
                j -= 1
            if j < 0 or lower[j] in (58, 44, 91):  # ':' ',' '['
                return True
            i = lower.find(word, i + 3)
    return False


def _jsonl_suspect(block: bytes) -> str | None:
    """Each test is one pass over the block: a substring search, or a literal-prefix regex where
    several substrings would be slower."""
    if b"\x00" in block:
        return "a NUL byte"
    if _lone_cr(block):
        return "a carriage return that does not end a line"
    if _JSON_TRAILING_COMMA.search(block):
        return "a trailing comma"
    if _JSON_NULL_RECORD.search(block) or _JSON_FIRST_NULL.match(block):
        return "a null record"
    if _non_finite(block):
        return "NaN or Infinity"
    return None


class _Check:
    """The suspect test for whole-line blocks of a part DuckDB may read (JSON Lines also count
    the records DuckDB must find: the lines that are not blank)."""

    def __init__(self, part):
        self.part = part
        if part.format == "jsonl":
            part.records = 0

    def __call__(self, block: bytes) -> str | None:
        if self.part.format == "csv":
            return _csv_suspect(block, self.part.delimiter or ",")
        self.part.records += _non_blank_lines(block)
        return _jsonl_suspect(block)


def scan(part, work_dir: Path, index: int) -> None:
    """Hash ``part`` (a :class:`~tongban.steps.intake.staging.Part`); when DuckDB may read it,
    point ``part.utf8_path`` at the UTF-8 text DuckDB reads, or set ``part.slow`` to why the
    Python pass reads it."""
    h = file_digest()
    check = _Check(part) if part.slow is None and part.format in ("csv", "jsonl") else None
    transcode = check is not None and part.encoding not in ("utf-8", "utf-8-sig")
    decoder = codecs.getincrementaldecoder(part.encoding or "utf-8")("strict") if transcode else None
    out = None
    if transcode:
        part.utf8_path = work_dir / f"part-{index}.utf8"
        out = part.utf8_path.open("wb")
    elif check is not None:
        part.utf8_path = part.path
    carry = b""
    try:
        with part.path.open("rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                h.update(chunk)
                if check is None:
                    if not chunk:
                        break
                    continue
                if decoder is not None:
                    try:
                        text = decoder.decode(chunk, final=not chunk).encode("utf-8")
                    except (UnicodeDecodeError, UnicodeEncodeError):
                        part.slow, check = f"not valid {part.encoding}", None  # the pass says where
                        continue
                    out.write(text)
                else:
                    text = chunk
                data = carry + text
                cut = len(data) if not chunk else data.rfind(b"\n") + 1  # whole lines only
                block, carry = data[:cut], data[cut:]
                if block and (why := check(block)):
                    part.slow, check = why, None
                if not chunk:
                    break
    finally:
        if out is not None:
            out.close()
    part.sha256 = h.hexdigest()
    if part.slow is not None and transcode and part.utf8_path is not None:
        part.utf8_path.unlink(missing_ok=True)
        part.utf8_path = None
