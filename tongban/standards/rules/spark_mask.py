"""The Spark twin of the DuckDB macro ``tongban_mask`` (macros/pii.sql): the masked display form of
a personal-data value, exactly :func:`tongban.common.pii.mask`'s, as one inline Spark SQL
expression (Spark has no SQL macros).

Like the DuckDB macro it approximates Unicode NFKC by what matters for the values masked here:
full-width ASCII and the Unicode spaces are mapped as NFKC maps them, and every character
Python's ``str.strip()`` removes is trimmed. Lengths count code points, as Python's ``len()`` and
Spark's ``length`` do. The masking kind is known when the SQL is generated (a field's ``pii``), so
the expression is specialised for it; the value is bound once through a one-element
``transform`` (Spark's way to name an expression inside another).
"""

from __future__ import annotations

from tongban.common.pii import COMPOUND_SURNAMES
from tongban.standards.rules.spark import full_match, spark_literal

#: full-width ASCII (U+FF01..U+FF5E) and the Unicode spaces NFKC makes a plain space
_NFKC_FROM = "".join(chr(0xFF01 + i) for i in range(94)) + "".join(
    chr(c) for c in (160, *range(8192, 8203), 8239, 8287, 12288))
_NFKC_TO = "".join(chr(0x21 + i) for i in range(94)) + " " * 15
#: the characters Python's str.strip() removes (str.isspace)
STRIP_SET = "".join(chr(c) for c in (*range(9, 14), *range(28, 33), 133, 160, 5760, *range(8192, 8203),
                                     8232, 8233, 8239, 8287, 12288))
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _name(s: str) -> str:
    compound = ", ".join(spark_literal(c) for c in COMPOUND_SURNAMES)
    return (f"case when length({s}) = 1 then '*' "
            f"when length({s}) >= 3 and left({s}, 2) in ({compound}) "
            f"then left({s}, 2) || repeat('*', length({s}) - 2) "
            f"else left({s}, 1) || repeat('*', length({s}) - 1) end")


def _phone(s: str) -> str:
    d = "mask_d"
    return (f"transform(array(regexp_replace({s}, '[^0-9]', '')), {d} -> case "
            f"when {full_match(d, '(0086|86)?1[0-9]{10}')} then left(right({d}, 11), 3) || '****' || right({d}, 4) "
            f"when {full_match(d, '0[12][0-9]{8,9}')} then left({d}, 3) || '-' || repeat('*', length({d}) - 7) || right({d}, 4) "
            f"when {full_match(d, '0[3-9][0-9]{9,10}')} then left({d}, 4) || '-' || repeat('*', length({d}) - 8) || right({d}, 4) "
            f"when length({d}) > 4 then repeat('*', length({d}) - 4) || right({d}, 4) "
            f"when length({d}) > 0 then repeat('*', length({d})) "
            f"else repeat('*', length({s})) end)[0]")


def _identifier(t: str) -> str:
    return (f"case when length({t}) >= 8 then left({t}, 3) || repeat('*', length({t}) - 7) || right({t}, 4) "
            f"when length({t}) >= 4 then left({t}, 1) || repeat('*', length({t}) - 1) "
            f"else repeat('*', length({t})) end")


def spark_mask(kind: str, expr: str) -> str:
    """``tongban.common.pii.mask(kind, expr)`` in Spark SQL (null for null or blank)."""
    if not isinstance(kind, str):
        raise TypeError(f"the masking kind is a str known when the SQL is written, not {kind!r}")
    s = "mask_s"
    cleaned = (f"nullif(trim(BOTH {spark_literal(STRIP_SET)} FROM translate(cast({expr} as string), "
               f"{spark_literal(_NFKC_FROM)}, {spark_literal(_NFKC_TO)})), '')")
    if kind == "name":
        shown = _name(s)
    elif kind == "phone":
        shown = _phone(s)
    elif kind == "id_number":
        shown = _identifier(f"translate({s}, '{_LOWER}', '{_LOWER.upper()}')")
    else:
        shown = _identifier(s)
    return f"transform(array({cleaned}), {s} -> case when {s} is null then null else {shown} end)[0]"
