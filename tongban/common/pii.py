"""Personal information (PIPL): keyed pseudonyms and masked display forms, in Python and in SQL.

Names, ID numbers and phone numbers of the births and business-licence entities stay raw in the restricted
warehouse only. Everything consumer-facing (exchange Parquet, catalog views, GX Data Docs, logs, the run
record) carries at most

* a **pseudonym** — lowercase hex ``HMAC-SHA256(key, kind + "\\x1f" + normalised value)``. The key comes from
  ``$TONGBAN_PSEUDONYM_KEY`` (production) or a local key file (:mod:`tongban.common.pii_key`); the same
  key gives the same pseudonym on every run, so consumers can still join (a mother's ID number gets the
  same pseudonym in every table and field). The ``kind`` prefix keeps names, ID numbers and phones apart
  by construction; and
* a **masked** display form: ``310***********123X``, ``张*``, ``138****1234``, ``0571-****7800``.

The SQL macro ``tongban_mask`` in ``macros/pii.sql`` (:func:`sql_ddl`) gives the same masked form as
:func:`mask` inside dbt models (it skips Unicode NFKC except for full-width ASCII and the Unicode spaces,
which it maps like NFKC does). :func:`register_udfs` exposes :func:`pseudonym` and :func:`mask` as DuckDB
scalar functions for :func:`tongban.exchange.publish_snapshot`. The tests' leak scanner
(``tests/leaks.py``) checks consumer-facing files for raw values.

Never log or print a key or a raw value.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import unicodedata

import duckdb

from tongban.common.config import PROJECT_ROOT
# the key's own module; its names stay importable from here, where callers have always found them
from tongban.common.pii_key import KEY_ENV as KEY_ENV
from tongban.common.pii_key import KEY_FILE_ENV as KEY_FILE_ENV
from tongban.common.pii_key import KEY_HOWTO as KEY_HOWTO
from tongban.common.pii_key import KEY_MIN_LENGTH as KEY_MIN_LENGTH
from tongban.common.pii_key import PiiKeyError as PiiKeyError
from tongban.common.pii_key import PiiKeyWarning as PiiKeyWarning
from tongban.common.pii_key import key_file_path as key_file_path
from tongban.common.pii_key import pseudonym_key as pseudonym_key

log = logging.getLogger(__name__)

PII_KINDS = ("name", "id_number", "phone")

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


def key_id(key: bytes) -> str:
    """A name for the key that does not reveal it (HMAC of a fixed label): tells whether two
    snapshots were pseudonymised with the same key."""
    return _hmac_sha256_hex(key, b"tongban key id")[:16]


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
    from duckdb import sqltypes  # the UDF type names; duckdb itself is imported at the top

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
