"""The text encoding of a delivery, and its lines decoded strictly with their numbers.

Detection does not trust a statistical detector on its own: Chinese files in GBK are routinely
misread as Big5, CP949, EUC-JP, UTF-16 or Latin-1 by detectors when the sample is short. The
order is: byte-order mark, strict UTF-8, strict GB18030 (a superset of GBK), and only then
charset-normalizer's best guess. See :func:`detect_encoding`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

from tongban.steps.intake.readers import DeliveryReadError

# Files up to this size are decoded completely while detecting the encoding; larger files are
# sampled from the head (cut at a line boundary) and decoded strictly while they are parsed.
LARGE_FILE_BYTES = 8 * 1024 * 1024
# Size of one detection sample for large files.
SAMPLE_BYTES = 1024 * 1024

# Byte-order marks, longest first (the UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0 control characters that never occur in a text delivery (tab, newlines and form feed excluded).
_BINARY_CHARS = re.compile("[\x00-\x08\x0e-\x1f]")
_ASCII_BYTES = bytes(range(128))


def detect_encoding(path: Path) -> str:
    """Detect the text encoding of a delivery.

    Order: byte-order mark (``utf-8-sig``, ``utf-16``, ``utf-32``); NUL bytes mean BOM-less UTF-16
    or a binary file; strict UTF-8 (``utf-8``); strict GB18030 (``gb18030``, covers GBK/GB2312);
    charset-normalizer's best guess, accepted only when it decodes without control characters.
    Files up to ``LARGE_FILE_BYTES`` are checked completely; larger files are sampled from the head
    in ``SAMPLE_BYTES`` pieces cut at line boundaries (pure-ASCII pieces are skipped, since they
    cannot tell UTF-8 from GBK) and the parser then decodes the whole file strictly.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                sample = f.read(LARGE_FILE_BYTES if size <= LARGE_FILE_BYTES else SAMPLE_BYTES)
                _check_decodes(path, sample, encoding, final=size <= LARGE_FILE_BYTES)
                return encoding
        if size <= LARGE_FILE_BYTES:
            return _detect_bytes(path, f.read(), final=True)
        offset = 0
        line = 1
        carry = b""
        while True:
            chunk = f.read(SAMPLE_BYTES)
            data = carry + chunk
            if not chunk:  # end of file: the remainder is complete
                if data and (b"\x00" in data or not data.isascii()):
                    return _detect_bytes(path, data, final=True, base_offset=offset, base_line=line)
                return "utf-8"
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < 4 * SAMPLE_BYTES:
                carry = data  # no line boundary yet: read on
                continue
            if cut == 0:
                cut = len(data)  # a very long line: decode incrementally, tolerating a cut character
            sample, carry = data[:cut], data[cut:]
            if b"\x00" in sample or not sample.isascii():
                return _detect_bytes(path, sample, final=False, base_offset=offset, base_line=line)
            offset += len(sample)
            line += sample.count(b"\n")


# --------------------------------------------------------------------------------------------
# encoding detection


def _decode(data: bytes, encoding: str, *, final: bool) -> str:
    return codecs.getincrementaldecoder(encoding)("strict").decode(data, final=final)


def _check_decodes(path: Path, data: bytes, encoding: str, *, final: bool) -> None:
    try:
        _decode(data, encoding, final=final)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DeliveryReadError(
            path,
            f"starts with a {encoding} byte-order mark but byte offset {exc.start} (line {line}) is not valid "
            f"{encoding} — the file is corrupted or mixes encodings; re-export it in one encoding (UTF-8)",
            line=line,
            offset=exc.start,
        ) from None


def _detect_bytes(path: Path, data: bytes, *, final: bool, base_offset: int = 0, base_line: int = 1) -> str:
    def where(pos: int) -> tuple[int, int]:
        return base_offset + pos, base_line + data.count(b"\n", 0, pos)

    nul = data.find(b"\x00")
    if nul >= 0:
        encoding = _guess_bomless_utf16(data, final=final)
        if encoding:
            return encoding
        offset, line = where(nul)
        raise DeliveryReadError(
            path,
            f"byte offset {offset} (line {line}) is a NUL byte and the file is not UTF-16 — this is not a "
            "text file; check it is the right file and re-export it as UTF-8 text",
            line=line,
            offset=offset,
        )
    if data.isascii():
        return "utf-8"
    try:
        _decode(data, "utf-8", final=final)
        return "utf-8"
    except UnicodeDecodeError as exc:
        utf8_bad = exc.start
    if _mostly_utf8(data):
        # Valid UTF-8 except for a few bytes: reading it as GB18030 or a code page would silently
        # turn every Chinese character into mojibake, so refuse instead.
        offset, line = where(utf8_bad)
        raise DeliveryReadError(
            path,
            f"is UTF-8 except for invalid bytes starting at byte offset {offset} (line {line}) — the file is "
            "corrupted or mixes encodings; re-export it as a whole in UTF-8",
            line=line,
            offset=offset,
        )
    try:
        _decode(data, "gb18030", final=final)
        return "gb18030"
    except UnicodeDecodeError as exc:
        gb_bad = exc.start
    guess = _charset_normalizer_guess(data, final=final)
    if guess:
        return guess
    offset, line = where(utf8_bad)
    gb_offset, gb_line = where(gb_bad)
    raise DeliveryReadError(
        path,
        f"cannot be decoded: not UTF-8 (bad byte at offset {offset}, line {line}), not GB18030/GBK (bad byte "
        f"at offset {gb_offset}, line {gb_line}), and no other encoding fits — check the file is text and "
        "not truncated, then re-export it as UTF-8",
        line=line,
        offset=offset,
    )


def _mostly_utf8(data: bytes) -> bool:
    """True when the non-ASCII text is overwhelmingly valid UTF-8 (a few stray bytes at most)."""
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    ascii_count = len(data) - len(data.translate(None, _ASCII_BYTES))
    good = len(text) - ascii_count - bad
    return bad > 0 and good >= 20 and good >= 10 * bad


def _guess_bomless_utf16(data: bytes, *, final: bool) -> str | None:
    half = max(len(data) // 2, 1)
    even_nuls = data[0::2].count(0)
    odd_nuls = data[1::2].count(0)
    if odd_nuls > 0.2 * half and even_nuls < 0.05 * half:
        candidate = "utf-16-le"
    elif even_nuls > 0.2 * half and odd_nuls < 0.05 * half:
        candidate = "utf-16-be"
    else:
        return None
    try:
        text = _decode(data, candidate, final=final)
    except UnicodeDecodeError:
        return None
    return None if _BINARY_CHARS.search(text) else candidate


def _charset_normalizer_guess(data: bytes, *, final: bool) -> str | None:
    import charset_normalizer  # heavy, and needed only for files neither UTF-8 nor GB18030

    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        return None
    try:
        encoding = codecs.lookup(best.encoding).name
        text = _decode(data, encoding, final=final)
    except (LookupError, UnicodeDecodeError):
        return None
    if _BINARY_CHARS.search(text):
        return None
    return encoding


def ascii_compatible(encoding: str) -> bool:
    """Whether line feeds are the single byte 0x0A, so the file can be split into lines as bytes."""
    try:
        return "\n".encode(encoding) == b"\n" and ",".encode(encoding) == b","
    except (LookupError, UnicodeEncodeError):
        return False


class Lines:
    """Decoded lines of a text file, decoded strictly, keeping the physical line number."""

    def __init__(self, path: Path, encoding: str):
        self.path = path
        self.encoding = encoding
        self.line = 0  # number of physical lines handed out so far

    def __iter__(self) -> Iterator[str]:
        if ascii_compatible(self.encoding):
            yield from self._by_bytes()
        else:
            yield from self._by_text()

    def _fail(self, offset: int | None) -> DeliveryReadError:
        where = f"line {self.line}" + (f" (byte offset {offset})" if offset is not None else "")
        return DeliveryReadError(
            self.path,
            f"{where} is not valid {self.encoding} although the start of the file is — the file mixes "
            "encodings or is corrupted; re-export it as a whole in one encoding (UTF-8)",
            line=self.line,
            offset=offset,
        )

    def _by_bytes(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        offset = 0
        with self.path.open("rb") as f:
            for raw in f:
                self.line += 1
                try:
                    text = decoder.decode(raw)
                except UnicodeDecodeError as exc:
                    raise self._fail(offset + max(exc.start, 0)) from None
                offset += len(raw)
                yield text
            try:
                tail = decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise self._fail(offset) from None
        if tail:
            yield tail

    def _by_text(self) -> Iterator[str]:
        with self.path.open("r", encoding=self.encoding, errors="strict", newline="") as f:
            while True:
                try:
                    text = f.readline()
                except UnicodeDecodeError:
                    self.line += 1
                    raise self._fail(None) from None
                if not text:
                    return
                self.line += 1
                yield text


def first_significant_char(path: Path, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    with path.open("rb") as f:
        while chunk := f.read(64 * 1024):
            text = decoder.decode(chunk).lstrip("\ufeff \t\r\n")
            if text:
                return text[0]
    return ""
