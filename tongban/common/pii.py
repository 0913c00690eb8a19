"""Personal information (PIPL): keyed pseudonyms, masked display forms and a leak scanner.

Names, ID numbers and phone numbers of the births and business-licence entities stay raw in the restricted
warehouse only. Everything consumer-facing (exchange Parquet, catalog views, GX Data Docs, logs, the run
record) carries at most

* a **pseudonym** — lowercase hex ``HMAC-SHA256(key, kind + "\\x1f" + normalised value)``. The key comes from
  ``$TONGBAN_PSEUDONYM_KEY`` (production) or a local key file; the same key gives the same pseudonym on
  every run, so consumers can still join (a mother's ID number gets the same pseudonym in every table and
  field). The ``kind`` prefix keeps names, ID numbers and phones apart by construction; and
* a **masked** display form: ``310***********123X``, ``张*``, ``138****1234``, ``0571-****7800``.

The SQL macro ``tongban_mask`` in ``macros/pii.sql`` (:func:`sql_ddl`) gives the same masked form as
:func:`mask` inside dbt models (it skips Unicode NFKC except for full-width ASCII and the Unicode spaces,
which it maps like NFKC does). :func:`register_udfs` exposes :func:`pseudonym` and :func:`mask` as DuckDB
scalar functions for :func:`tongban.exchange.publish_snapshot`. :func:`find_leaks` checks a set of
consumer-facing files for raw values.

Never log or print a key or a raw value; :class:`Leak` shows its needle masked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import unicodedata
import urllib.parse
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tongban.common.sqlquote import quote_literal
from tongban.common.config import PROJECT_ROOT

log = logging.getLogger(__name__)

PII_KINDS = ("name", "id_number", "phone")
KEY_ENV = "TONGBAN_PSEUDONYM_KEY"
KEY_FILE_ENV = "TONGBAN_PSEUDONYM_KEY_FILE"
KEY_MIN_LENGTH = 32
KEY_HOWTO = 'python -c "import secrets; print(secrets.token_hex(32))"'

#: Chinese compound surnames (复姓) kept whole by the name mask (``欧阳娜娜`` -> ``欧阳**``); the same list is
#: in ``macros/pii.sql``.
COMPOUND_SURNAMES: tuple[str, ...] = tuple(
    (
        "万俟 司马 上官 欧阳 夏侯 诸葛 闻人 东方 赫连 皇甫 尉迟 公羊 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 "
        "公孙 仲孙 轩辕 令狐 钟离 宇文 长孙 慕容 鲜于 闾丘 司徒 司空 亓官 司寇 子车 颛孙 端木 巫马 公西 漆雕 "
        "乐正 壤驷 公良 拓跋 夹谷 宰父 谷梁 段干 百里 东郭 南门 呼延 羊舌 微生 梁丘 左丘 东门 西门 南宫 第五 "
        "独孤 完颜 司馬 歐陽 諸葛 尉遲 公孫 軒轅 鍾離 長孫 鮮於 閭丘 東方 東郭 澹臺 濮陽 南宮 獨孤 顓孫 樂正"
    ).split()
)

_COMPOUND_SURNAMES = frozenset(COMPOUND_SURNAMES)
#: Separator between kind and value in the HMAC message (ASCII unit separator).
_SEP = "\x1f"
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NON_DIGITS = re.compile(r"[^0-9]")
_MOBILE = re.compile(r"(?:0086|86)?1[0-9]{10}")
_FIXED_3 = re.compile(r"0[12][0-9]{8,9}")  # 010 / 02x area code + 7-8 digit local number
_FIXED_4 = re.compile(r"0[3-9][0-9]{9,10}")  # 0xxx area code + 7-8 digit local number


class PiiKeyError(RuntimeError):
    """The pseudonym key is missing, too short or unreadable."""


class PiiKeyWarning(UserWarning):
    """A local pseudonym key file is in use (fine for development, not for production)."""


class LeakScanError(RuntimeError):
    """A file could not be scanned, so it cannot be declared free of raw values."""


# --------------------------------------------------------------------------------------------- key

_warned_key_files: set[str] = set()
_warn_lock = threading.Lock()


def _key_problem(source: str) -> str:
    return (
        f"the pseudonym key from {source} is shorter than {KEY_MIN_LENGTH} characters; "
        f"make one with: {KEY_HOWTO}"
    )


def _warn_once(path: Path, message: str) -> None:
    with _warn_lock:
        if str(path) in _warned_key_files:
            return
        _warned_key_files.add(str(path))
    warnings.warn(message, PiiKeyWarning, stacklevel=3)


def _create_key_file(path: Path) -> bool:
    """Create ``path`` holding a fresh key, mode 0600, atomically. False if it already existed."""
    parent = path.parent
    if not parent.is_dir():
        parent.mkdir(parents=True, exist_ok=True)
        os.chmod(parent, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic and never overwrites: a concurrent creator's key wins
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def key_file_path(build_dir: Path) -> Path:
    """``$TONGBAN_PSEUDONYM_KEY_FILE`` or ``<build_dir>/secrets/pseudonym.key``."""
    value = os.environ.get(KEY_FILE_ENV)
    if value:
        return Path(value).expanduser()
    return Path(build_dir) / "secrets" / "pseudonym.key"


def key_id(key: bytes) -> str:
    """A name for the key that does not reveal it (HMAC of a fixed label): tells whether two
    snapshots were pseudonymised with the same key."""
    return _hmac_sha256_hex(key, b"tongban key id")[:16]


def pseudonym_key(build_dir: Path) -> bytes:
    """The HMAC key: ``$TONGBAN_PSEUDONYM_KEY`` (UTF-8), else the local key file (created on first use).

    Leading/trailing whitespace of either is ignored, so the content of a key file can be moved into the
    environment variable unchanged and gives the same pseudonyms. A value shorter than 32 characters is
    refused with :class:`PiiKeyError`, also when the variable is set but empty (falling back to a local key
    would silently change every pseudonym). Using a local key file warns once per process and file.
    """
    value = os.environ.get(KEY_ENV)
    if value is not None:
        value = value.strip()
        if len(value) < KEY_MIN_LENGTH:
            raise PiiKeyError(_key_problem(f"${KEY_ENV}"))
        return value.encode("utf-8")

    path = key_file_path(build_dir)
    created = False
    if not path.exists():
        try:
            created = _create_key_file(path)
        except OSError as exc:
            raise PiiKeyError(
                f"cannot create the local pseudonym key file {path}: {exc.strerror or exc}; "
                f"set ${KEY_ENV} (make a key with: {KEY_HOWTO})"
            ) from None
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise PiiKeyError(f"cannot read the pseudonym key file {path}: {type(exc).__name__}") from None
    if len(text) < KEY_MIN_LENGTH:
        raise PiiKeyError(_key_problem(f"the key file {path}"))
    if created:
        message = (
            f"generated a local pseudonym key at {path}. Production must set ${KEY_ENV}: pseudonyms are "
            "stable only as long as the key is, so keep that key safe and never change it"
        )
    else:
        message = (
            f"using the local pseudonym key file {path}; production must set ${KEY_ENV} "
            "(a stable key gives stable pseudonyms)"
        )
    if mode & 0o077:
        message += f"; the key file is readable by others, run: chmod 600 {path}"
    _warn_once(path, message)
    return text.encode("utf-8")


# --------------------------------------------------------------------------------------------- values


def _check_kind(kind: object) -> str:
    if kind not in PII_KINDS:
        raise ValueError(f"unknown PII kind {kind!r}: expected one of {', '.join(PII_KINDS)}")
    return kind  # type: ignore[return-value]


def _clean(value: str | None) -> str | None:
    """NFKC and surrounding whitespace (incl. U+3000) removed; None for None or blank."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    return text or None


def normalise(kind: str, value: str | None) -> str | None:
    """The form that is pseudonymised: NFKC, stripped; ID numbers with ASCII letters upper-cased; phones
    reduced to their digits (a leading area code is kept, '-', spaces and parentheses dropped).

    None, blank or (for phones) digit-less values give None.
    """
    _check_kind(kind)
    text = _clean(value)
    if text is None:
        return None
    if kind == "id_number":
        return text.translate(_ASCII_UPPER)
    if kind == "phone":
        return _NON_DIGITS.sub("", text) or None
    return text


@functools.lru_cache(maxsize=4)
def _hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states after the inner and outer HMAC key blocks (RFC 2104), to be copied per message.

    Same result as ``hmac.digest(key, msg, "sha256")`` at less than half the cost per value, which is what
    a row-at-a-time UDF over hundreds of thousands of rows needs.
    """
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


def _hmac_sha256_hex(key: bytes, message: bytes) -> str:
    inner_pad, outer_pad = _hmac_pads(key)
    inner = inner_pad.copy()
    inner.update(message)
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def pseudonym(kind: str, value: str | None, key: bytes) -> str | None:
    """Lowercase hex HMAC-SHA256(key, f"{kind}\\x1f{normalise(kind, value)}"); None when that is None."""
    text = normalise(kind, value)
    if text is None:
        return None
    if not isinstance(key, bytes) or not key:
        raise PiiKeyError("pseudonym key must be non-empty bytes")
    return _hmac_sha256_hex(key, f"{kind}{_SEP}{text}".encode())


def _mask_identifier(text: str) -> str:
    n = len(text)
    if n >= 8:
        return text[:3] + "*" * (n - 7) + text[-4:]
    if n >= 4:
        return text[:1] + "*" * (n - 1)
    return "*" * n


def _mask_phone(text: str) -> str:
    digits = _NON_DIGITS.sub("", text)
    n = len(digits)
    if _MOBILE.fullmatch(digits):
        return digits[-11:-8] + "****" + digits[-4:]
    if _FIXED_3.fullmatch(digits):
        return digits[:3] + "-" + "*" * (n - 7) + digits[-4:]
    if _FIXED_4.fullmatch(digits):
        return digits[:4] + "-" + "*" * (n - 8) + digits[-4:]
    if n > 4:
        return "*" * (n - 4) + digits[-4:]
    return "*" * (n or len(text))


def mask(kind: str, value: str | None) -> str | None:
    """The display form of a PII value; None for None or blank.

    * ``name``: the surname, then one '*' per further character: ``张*``, ``张**``; a compound surname
      (:data:`COMPOUND_SURNAMES`) is kept whole when the name has 3+ characters (``欧阳**``); else just
      the first character (``John`` -> ``J***``); one character: ``*``.
    * ``phone`` (on the digits): mobile ``138****1234`` (a leading 86/0086 is dropped); fixed line
      ``0571-****7800`` / ``021-****5678`` (area code kept, local part masked but its last 4 digits);
      anything else keeps only its last 4 digits (nothing when it has 4 digits or fewer).
    * ``id_number`` (ASCII-upper-cased) and any other kind: 8+ characters ``310***********123X``
      (3 + stars + 4); 4-7 characters first one + stars; shorter all stars.
    """
    text = _clean(value)
    if text is None:
        return None
    if kind == "name":
        keep = 2 if len(text) >= 3 and text[:2] in _COMPOUND_SURNAMES else 1
        return "*" if len(text) == 1 else text[:keep] + "*" * (len(text) - keep)
    if kind == "phone":
        return _mask_phone(text)
    if kind == "id_number":
        text = text.translate(_ASCII_UPPER)
    return _mask_identifier(text)


# --------------------------------------------------------------------------------------------- SQL


_MACRO_START = "{% macro tongban_pii_ddl() %}"
_MACRO_END = "{% endmacro %}"


def sql_ddl() -> str:
    """The DuckDB DDL of ``macros/pii.sql`` (the body of the dbt macro ``tongban_pii_ddl``)."""

    text = (PROJECT_ROOT / "macros" / "pii.sql").read_text(encoding="utf-8")
    start = text.index(_MACRO_START) + len(_MACRO_START)
    end = text.index(_MACRO_END, start)
    return text[start:end].strip() + "\n"


UDF_NAMES = ("tongban_pseudonym", "tongban_mask")


#: Values made only of printable ASCII and CJK unified ideographs: NFKC leaves them as they are and
#: Python's strip() removes only spaces from them, so SQL can normalise them exactly like
#: :func:`normalise`. Anything else goes through the Python UDF.
SQL_SIMPLE_TEXT = r"[\x20-\x7E\x{4E00}-\x{9FFF}]*"
#: the columns of the temporary table :func:`hmac_pads_table` creates
PADS_COLUMNS = ("ipad", "opad")


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer HMAC-SHA256 key blocks (RFC 2104) for ``key``."""
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def create_pads_table(con: duckdb.DuckDBPyConnection, name: str, key: bytes) -> None:
    """A one-row TEMP table ``name(ipad, opad)`` of the key blocks, bound as parameters (the key
    never appears in SQL text, logs or the database file); drop it after use."""
    if not isinstance(key, bytes) or len(key) < KEY_MIN_LENGTH:
        raise PiiKeyError(f"pseudonym key must be at least {KEY_MIN_LENGTH} bytes")
    ipad, opad = hmac_pads(key)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT ?::BLOB AS ipad, ?::BLOB AS opad", [ipad, opad])


def pseudonym_sql(kind: str, value_sql: str, pads: str, udf: str) -> str:
    """SQL computing :func:`pseudonym` of ``value_sql``: in DuckDB (vectorised sha256 over the key
    blocks of table alias ``pads``) for values :data:`SQL_SIMPLE_TEXT` covers, otherwise through the
    Python UDF named ``udf``. Same result as the Python function for every value (tested)."""
    _check_kind(kind)
    trimmed = f"trim({value_sql})"
    normalised = {"name": f"nullif({trimmed}, '')",
                  "id_number": f"nullif(upper({trimmed}), '')",
                  "phone": f"nullif(regexp_replace({trimmed}, '[^0-9]', '', 'g'), '')"}[kind]
    message = f"encode('{kind}' || chr(31) || {normalised})"
    hmac_sql = f"sha256({pads}.opad || unhex(sha256({pads}.ipad || {message})))"
    return (f"CASE WHEN {value_sql} IS NULL THEN NULL "
            f"WHEN regexp_full_match({value_sql}, '{SQL_SIMPLE_TEXT}') THEN "
            f"CASE WHEN {normalised} IS NULL THEN NULL ELSE {hmac_sql} END "
            f"ELSE {udf}('{kind}', {value_sql}) END")


def mask_sql(kind: str, value_sql: str, udf: str) -> str:
    """SQL computing :func:`mask` of ``value_sql``: vectorised string functions for values
    :data:`SQL_SIMPLE_TEXT` covers (plain ASCII and CJK, where NFKC changes nothing and only spaces
    are trimmed), otherwise the Python UDF named ``udf``. Same result as the Python function for
    every value (tested); about an order of magnitude cheaper than the UDF per value."""
    _check_kind(kind)
    s = f"trim({value_sql})"
    if kind == "name":
        compound = ", ".join("'" + c + "'" for c in COMPOUND_SURNAMES)
        shown = (f"CASE WHEN length({s}) = 1 THEN '*' "
                 f"WHEN length({s}) >= 3 AND left({s}, 2) IN ({compound}) THEN left({s}, 2) || repeat('*', length({s}) - 2) "
                 f"ELSE left({s}, 1) || repeat('*', length({s}) - 1) END")
    elif kind == "phone":
        d = f"regexp_replace({s}, '[^0-9]', '', 'g')"
        shown = (f"CASE WHEN regexp_full_match({d}, '(0086|86)?1[0-9]{{10}}') THEN left(right({d}, 11), 3) || '****' || right({d}, 4) "
                 f"WHEN regexp_full_match({d}, '0[12][0-9]{{8,9}}') THEN left({d}, 3) || '-' || repeat('*', length({d}) - 7) || right({d}, 4) "
                 f"WHEN regexp_full_match({d}, '0[3-9][0-9]{{9,10}}') THEN left({d}, 4) || '-' || repeat('*', length({d}) - 8) || right({d}, 4) "
                 f"WHEN length({d}) > 4 THEN repeat('*', length({d}) - 4) || right({d}, 4) "
                 f"WHEN length({d}) > 0 THEN repeat('*', length({d})) "
                 f"ELSE repeat('*', length({s})) END")
    else:
        t = f"upper({s})" if kind == "id_number" else s
        shown = (f"CASE WHEN length({t}) >= 8 THEN left({t}, 3) || repeat('*', length({t}) - 7) || right({t}, 4) "
                 f"WHEN length({t}) >= 4 THEN left({t}, 1) || repeat('*', length({t}) - 1) "
                 f"ELSE repeat('*', length({t})) END")
    return (f"CASE WHEN {value_sql} IS NULL THEN NULL "
            f"WHEN regexp_full_match({value_sql}, '{SQL_SIMPLE_TEXT}') THEN "
            f"CASE WHEN {s} = '' THEN NULL ELSE {shown} END "
            f"ELSE {udf}('{kind}', {value_sql}) END")


def register_udfs(
    con: duckdb.DuckDBPyConnection,
    key: bytes,
    *,
    names: tuple[str, str] = UDF_NAMES,
) -> None:
    """Register ``tongban_pseudonym(kind, value)`` and ``tongban_mask(kind, value)`` (VARCHAR -> VARCHAR).

    NULL in gives NULL out (so does a blank value). Both are native (row-at-a-time) Python UDFs; the
    pseudonym one fails on an unknown kind (the message names the kind, never the value). ``names``
    renames them, e.g. where the SQL macro ``tongban_mask`` already exists in the database (a Python UDF
    cannot take a macro's name). Remove them with :func:`unregister_udfs`.
    """
    if not isinstance(key, bytes) or len(key) < KEY_MIN_LENGTH:
        raise PiiKeyError(f"pseudonym key must be at least {KEY_MIN_LENGTH} bytes")
    from duckdb import sqltypes

    # No lru_cache: identity values are mostly distinct, and a cache miss costs more than the HMAC.
    def _pseudonym(kind: str | None, value: str | None) -> str | None:
        return None if value is None else pseudonym(kind, value, key)  # type: ignore[arg-type]

    def _mask(kind: str | None, value: str | None) -> str | None:
        return None if value is None else mask(kind, value)  # type: ignore[arg-type]

    varchar = sqltypes.VARCHAR
    for name, fn in zip(names, (_pseudonym, _mask), strict=True):
        con.create_function(name, fn, [varchar, varchar], varchar, null_handling="special")


def unregister_udfs(con: duckdb.DuckDBPyConnection, *, names: tuple[str, str] = UDF_NAMES) -> None:
    """Remove the functions of :func:`register_udfs` (missing ones are ignored).

    DuckDB 2.0 refuses this while the connection has an unfinished result (fetch it to the end first).
    """
    for name in names:
        with contextlib.suppress(duckdb.InvalidInputException):  # "No function by the name of ..."
            con.remove_function(name)


# --------------------------------------------------------------------------------------------- leaks


@dataclass(frozen=True)
class Leak:
    """A raw value (``needle``) found in ``path`` at ``where``. Its repr shows the needle masked."""

    path: Path
    where: str
    needle: str = field(repr=False)

    @property
    def masked_needle(self) -> str:
        return _mask_identifier(self.needle)

    def __repr__(self) -> str:
        return f"Leak(path={str(self.path)!r}, where={self.where!r}, needle={self.masked_needle!r})"

    __str__ = __repr__


_CLASS_SPECIAL = frozenset("\\]^-[")


def _char_class(chars: Iterable[str]) -> str:
    """A regex character class of ``chars``, valid for both RE2 (DuckDB) and Python ``re``."""
    return "[" + "".join("\\" + c if c in _CLASS_SPECIAL else c for c in sorted(set(chars))) + "]"


class _NeedleGroup:
    """Needles that share a character class (ASCII ones, e.g. ID numbers and phones; the others, e.g.
    names). A needle can only occur inside a run of at least ``min_len`` characters of its class, so the
    search first extracts such runs — in DuckDB (vectorised RE2) or with one Python regex — and then
    checks each run position whose first two characters start some needle, for the lengths of those
    needles. Work is proportional to the length of the runs, not to the number of needles.
    """

    def __init__(self, needles: list[str]) -> None:
        self.needles = frozenset(needles)
        self.min_len = min(len(n) for n in needles)
        self.run_regex = _char_class("".join(needles)) + "{" + str(self.min_len) + ",}"
        self.run_pattern = re.compile(self.run_regex)
        anchors: dict[str, set[int]] = {}
        for needle in needles:
            anchors.setdefault(needle[:2], set()).add(len(needle))
        self.anchors = {a: sorted(lengths, reverse=True) for a, lengths in anchors.items()}

    def in_run(self, run: str, found: set[str]) -> None:
        anchors, needles = self.anchors, self.needles
        for i in range(len(run) - self.min_len + 1):
            lengths = anchors.get(run[i : i + 2])
            if lengths:
                for length in lengths:
                    candidate = run[i : i + length]
                    if len(candidate) == length and candidate in needles:
                        found.add(candidate)


class _Matcher:
    """Finds needles (exact, case-sensitive substrings) in texts and in the columns of relations."""

    def __init__(self, needles: Iterable[str], *, min_length: int) -> None:
        if min_length < 2:
            raise ValueError("min_length must be at least 2 (one character would match masked forms)")
        cleaned: set[str] = set()
        for raw in needles:
            if raw is None:
                continue
            for text in {str(raw).strip(), unicodedata.normalize("NFKC", str(raw)).strip()}:
                if len(text) >= min_length and "\x00" not in text:
                    cleaned.add(text)
        self.needles = sorted(cleaned)
        ascii_needles = [n for n in self.needles if n.isascii()]
        other_needles = [n for n in self.needles if not n.isascii()]
        self.groups = [_NeedleGroup(g) for g in (ascii_needles, other_needles) if g]

    def in_text(self, text: str) -> list[str]:
        found: set[str] = set()
        if not text:
            return []
        for group in self.groups:
            for match in group.run_pattern.finditer(text):
                group.in_run(match.group(), found)
        return sorted(found)

    def in_relation(self, con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
        """``(column, needle)`` for every column of ``relation`` (cast to VARCHAR) containing a needle."""
        if not self.needles:
            return []
        columns = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        found: set[tuple[str, str]] = set()
        for position, (name, dtype, *_rest) in enumerate(columns, start=1):
            if str(dtype).upper() == "BLOB":
                values = con.execute(
                    f"SELECT DISTINCT #{position} FROM {relation} WHERE #{position} IS NOT NULL"
                ).fetchall()
                text = "\n".join(t for (v,) in values for _, t in _decodings(bytes(v), binary=False))
                found.update((name, n) for n in self.in_text(text))
                continue
            value = f"CAST(#{position} AS VARCHAR)"
            hits: set[str] = set()
            for group in self.groups:
                runs = con.execute(
                    f"SELECT DISTINCT unnest(regexp_extract_all({value}, {quote_literal(group.run_regex)})) "
                    f"FROM {relation}"
                ).fetchall()
                for (run,) in runs:
                    group.in_run(run, hits)
            found.update((name, n) for n in hits)
        return sorted(found)


def _quote_scanned_ident(name: str) -> str:
    """Quote a schema/table name read from a scanned file (never used for anything but a SELECT)."""
    return '"' + name.replace('"', '""') + '"'


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape_json(text: str) -> str:
    """``\\uXXXX`` escapes (as ``json.dumps`` writes non-ASCII by default) decoded, surrogate pairs too."""
    decoded = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", errors="ignore")


def _decodings(data: bytes, *, binary: bool) -> Iterator[tuple[str, str]]:
    """``(label, text)`` views of ``data`` to search. Text also gets JSON ``\\u`` escapes, HTML entities
    and URL percent-encoding undone, each as a view of its own."""
    texts: list[tuple[str, str]] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        texts.append(("text (utf-16)", data.decode("utf-16", errors="ignore")))
    elif binary:
        # UTF-8 only: GB18030 turns random byte pairs into CJK characters, i.e. false hits
        return iter([("bytes (utf-8)", data.decode("utf-8", errors="ignore"))])
    else:
        try:
            texts.append(("text (utf-8)", data.decode("utf-8")))
        except UnicodeDecodeError:
            texts.append(("text (utf-8)", data.decode("utf-8", errors="ignore")))
            texts.append(("text (gb18030)", data.decode("gb18030", errors="ignore")))
    views = list(texts)
    for label, text in texts:
        if "\\u" in text:
            views.append((f"{label[:-1]}, \\u-unescaped)", _unescape_json(text)))
        if "&" in text:
            views.append((f"{label[:-1]}, HTML-unescaped)", html.unescape(text)))
        if "%" in text:
            views.append((f"{label[:-1]}, URL-decoded)", urllib.parse.unquote(text, errors="ignore")))
    return iter(views)


def _scan_bytes(path: Path, matcher: _Matcher, *, binary: bool) -> Iterator[Leak]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LeakScanError(f"cannot read {path}: {exc.strerror or exc}") from None
    seen: set[str] = set()
    for where, text in _decodings(data, binary=binary):
        for needle in matcher.in_text(text):
            if needle not in seen:
                seen.add(needle)
                yield Leak(path, where, needle)


def _scan_parquet(path: Path, matcher: _Matcher) -> Iterator[Leak]:
    con = duckdb.connect(":memory:")
    try:
        relation = f"read_parquet({quote_literal(str(path))}, hive_partitioning = false)"
        try:
            hits = matcher.in_relation(con, relation)
            kv = con.execute("SELECT key, value FROM parquet_kv_metadata(?)", [str(path)]).fetchall()
        except duckdb.Error as exc:
            raise LeakScanError(f"cannot scan Parquet file {path}: {type(exc).__name__}") from None
    finally:
        con.close()
    for column, needle in hits:
        yield Leak(path, f"column {column}", needle)
    meta = "\n".join(
        t for pair in kv for blob in pair for _, t in _decodings(bytes(blob or b""), binary=False)
    )
    for needle in matcher.in_text(meta):
        yield Leak(path, "key-value metadata", needle)
    yield from _scan_bytes(path, matcher, binary=True)


@contextlib.contextmanager
def _attached(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory connection with ``path`` attached read-only as ``scanned`` (a copy if locked)."""
    con = duckdb.connect(":memory:")
    tmp_dir: str | None = None
    try:
        try:
            con.execute(f"ATTACH {quote_literal(str(path.resolve()))} AS scanned (READ_ONLY)")
        except duckdb.Error:
            tmp_dir = tempfile.mkdtemp(prefix="tongban-leakscan-")
            copy = Path(tmp_dir) / path.name
            shutil.copyfile(path, copy)
            wal = path.with_name(path.name + ".wal")
            if wal.is_file():
                shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            try:
                con.execute(f"ATTACH {quote_literal(str(copy))} AS scanned (READ_ONLY)")
            except duckdb.Error as exc:
                raise LeakScanError(f"cannot open DuckDB file {path}: {type(exc).__name__}") from None
        con.execute("USE scanned")
        yield con
    finally:
        con.close()
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


def _scan_duckdb(path: Path, matcher: _Matcher) -> Iterator[Leak]:
    leaks: list[Leak] = []
    with _attached(path) as con:
        objects = con.execute(
            "SELECT 'table', schema_name, table_name, comment FROM duckdb_tables() "
            "WHERE database_name = 'scanned' "
            "UNION ALL SELECT 'view', schema_name, view_name, coalesce(comment, '') || chr(10) || sql FROM duckdb_views() "
            "WHERE database_name = 'scanned' AND NOT internal ORDER BY 2, 3"
        ).fetchall()
        for kind, schema, name, text in objects:
            qualified = f"scanned.{_quote_scanned_ident(schema)}.{_quote_scanned_ident(name)}"
            label = f"{kind} {schema}.{name}"
            try:
                hits = matcher.in_relation(con, qualified)
            except duckdb.Error as exc:
                raise LeakScanError(f"cannot scan {label} in {path}: {type(exc).__name__}") from None
            leaks.extend(Leak(path, f"{label} column {column}", needle) for column, needle in hits)
            leaks.extend(Leak(path, f"{label} definition", n) for n in matcher.in_text(text or ""))
        extra = con.execute(
            "SELECT string_agg(coalesce(comment, ''), chr(10)) FROM duckdb_columns() "
            "WHERE database_name = 'scanned'"
        ).fetchone()[0]
        macros = con.execute(
            "SELECT string_agg(coalesce(CAST(macro_definition AS VARCHAR), ''), chr(10)) "
            "FROM duckdb_functions() WHERE database_name = 'scanned' AND NOT internal"
        ).fetchone()[0]
        leaks.extend(Leak(path, "column comments", n) for n in matcher.in_text(extra or ""))
        leaks.extend(Leak(path, "macro definitions", n) for n in matcher.in_text(macros or ""))
    yield from leaks
    yield from _scan_bytes(path, matcher, binary=True)


#: Scanned as bytes decoded as UTF-8 only: GB18030 would turn their random byte pairs into CJK text.
_BINARY_SUFFIXES = frozenset(
    ".wal .gz .zip .zst .png .jpg .jpeg .gif .ico .woff .woff2 .ttf .pdf .xlsx".split()
)


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    child = Path(dirpath) / name
                    if child.is_file():
                        yield child
        elif path.is_file():
            yield path
        elif not path.exists():
            raise LeakScanError(f"nothing to scan at {path}")


def find_leaks(
    paths: Iterable[Path], needles: Iterable[str], *, limit: int = 100, min_length: int = 2
) -> list[Leak]:
    """Raw values (``needles``) found in ``paths`` (files, or directories walked recursively); at most
    ``limit`` leaks, one per (file, place, needle).

    * ``.parquet``: every column cast to VARCHAR (BLOBs decoded), the key-value metadata and the file's
      bytes as UTF-8 (compressed pages cannot be grepped, hence the column scan).
    * ``.duckdb``: attached read-only (a temporary copy if it is locked); every table and view of every
      schema (views over Parquet included), view definitions, comments and macros, plus the bytes.
    * anything else: the bytes decoded as UTF-8 (errors ignored) and, when they are not valid UTF-8, as
      GB18030 (UTF-16 when there is a BOM).

    Needles are stripped (and also searched in NFKC form); needles shorter than ``min_length`` (at least
    2) characters are skipped (a single character would match masked forms such as ``张*``); no needle
    left raises ValueError. Containment is exact and case-sensitive. A path that does not exist or a file
    that cannot be read raises :class:`LeakScanError` rather than pass as clean.
    """
    matcher = _Matcher(needles, min_length=min_length)
    if not matcher.needles:
        raise ValueError(f"no needles of at least {min_length} characters to search for")
    leaks: list[Leak] = []
    for path in _files(paths):
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            found = _scan_parquet(path, matcher)
        elif suffix == ".duckdb":
            found = _scan_duckdb(path, matcher)
        else:
            found = _scan_bytes(path, matcher, binary=suffix in _BINARY_SUFFIXES)
        for leak in found:
            leaks.append(leak)
            if len(leaks) >= limit:
                return leaks
    return leaks
