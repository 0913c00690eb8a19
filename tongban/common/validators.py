"""Validators of Chinese identifiers and codes (rules in the reference SOURCES.md §3, §5b).

Each ``*_problem`` function returns None when the value is valid (or None) and otherwise the
first problem code found, from :data:`PROBLEMS`. ``macros/validators.sql`` defines DuckDB
macros with the same names, semantics and problem codes (``sql_ddl()`` returns their DDL);
``tests/unit/identifier_vectors.csv`` holds the vectors both are tested against.

Inputs are upper-cased before checking (a lower-case ``x`` check character is accepted), but
not stripped: surrounding spaces make a value malformed.

The ``*_check_char`` functions raise ValueError for characters outside their alphabet (their
SQL twins return NULL).
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from stdnum.cn import uscc as _stdnum_uscc

from tongban.common import config
from tongban.common.reference import (
    all_division_codes,
    divisions_current,
    division_in_use,
    industry_classes,
    nbs_statistical_codes,
)

#: Full-width ASCII (U+FF01-U+FF5E) and the ideographic space, and what NFKC makes of each:
#: identifiers typed with a Chinese input method (１３８００１３８０００, （０２１）, ９１３１...Ｘ) are
#: read as the half-width identifiers they are. The SQL twin is dbtgen's ``half_width_sql``.
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)) + " "
_HALF_WIDTH_TABLE = str.maketrans(FULL_WIDTH, HALF_WIDTH)


def half_width(value: str | None) -> str | None:
    """``value`` with full-width ASCII and the ideographic space made half-width (as NFKC does)."""
    return value.translate(_HALF_WIDTH_TABLE) if value is not None and not value.isascii() else value


#: problem code → what is wrong (English; for feedback to producers)
PROBLEMS: dict[str, str] = {
    # GB 11643-1999 citizen identity number
    "id_legacy_15_digit": "15-digit identity number (old format); deliver the 18-digit number",
    "id_malformed": "identity number is not 17 digits followed by a digit or X",
    "id_invalid_birth_date": "birth date in the identity number is not a real date between 1900-01-01 and today",
    "id_bad_check_character": "identity number check character (ISO 7064 MOD 11-2) is wrong",
    "id_birthplace_not_in_use": "address code of the identity number was not a division code in the birth year",
    # GB 32100-2015 unified social credit code
    "uscc_malformed": "USCC is not 18 characters of 0-9/A-Z without I O S V Z, with a valid authority "
                      "character and a 6-digit region",
    "uscc_bad_check_character": "USCC check character (position 18) is wrong",
    "uscc_bad_org_code_check": "check character of the embedded GB 11714 organisation code (position 17) is wrong",
    "uscc_unknown_region": "USCC positions 3-8 are not a GB/T 2260 division code (current or historical)",
    # GB/T 2260 division code
    "division_malformed": "division code is not 6 digits",
    "division_nbs_statistical_code": "NBS statistical code (e.g. a development zone), not a GB/T 2260 code",
    "division_not_in_use": "not a GB/T 2260 code in force (abolished or unknown)",
    "division_wrong_level": "division is not of the expected level",
    # GB/T 36904-2018 e-certificate identifier
    "ecert_malformed": "e-certificate identifier does not have the form "
                       "1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>",
    "ecert_bad_check_character": "e-certificate identifier check character (ISO/IEC 7064 MOD 37,36) is wrong",
    # GB/T 4754-2017 industry classification
    "industry_unknown": "not a GB/T 4754-2017 4-digit industry class",
}

# --------------------------------------------------------------------------------------------
# GB 11643-1999 citizen identity number

GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK = "10X98765432"  # indexed by S mod 11
_ID18 = re.compile(r"[0-9]{17}[0-9X]")
_ID15 = re.compile(r"[0-9]{15}")
_MIN_BIRTH = datetime.date(1900, 1, 1)


def gb11643_check_char(first17: str) -> str:
    """The check character of an identity number from its first 17 digits ('X' for 10)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    total = sum(int(c) * w for c, w in zip(first17, GB11643_WEIGHTS, strict=True))
    return _GB11643_CHECK[total % 11]


def gb11643_birth_date(value: str | None) -> datetime.date | None:
    """The birth date of a well-formed 18-character identity number, else None.

    Well-formed: 17 digits and a digit or X (any case), with a birth date that is a real
    calendar date from 1900-01-01 to today. The check character is not looked at.
    """
    if value is None:
        return None
    v = value.upper()
    if not _ID18.fullmatch(v):
        return None
    try:
        born = datetime.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return None
    if born < _MIN_BIRTH or born > datetime.date.today():
        return None
    return born


def gb11643_problem(value: str | None, ref_dir: Path | None = None) -> str | None:
    """First problem of a citizen identity number, or None when valid."""
    if value is None:
        return None
    v = value.upper()
    if _ID15.fullmatch(v):
        return "id_legacy_15_digit"
    if not _ID18.fullmatch(v):
        return "id_malformed"
    born = gb11643_birth_date(v)
    if born is None:
        return "id_invalid_birth_date"
    if gb11643_check_char(v[:17]) != v[17]:
        return "id_bad_check_character"
    if not division_in_use(v[:6], born.year, ref_dir):
        return "id_birthplace_not_in_use"
    return None


# --------------------------------------------------------------------------------------------
# GB 11714 organisation code and GB 32100-2015 unified social credit code

GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_GB11714_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # values 0-35


def gb11714_check_char(first8: str) -> str:
    """The check character (9th) of a GB 11714 organisation code from its first 8 characters."""
    up = first8.upper()
    if len(up) != 8 or any(c not in _GB11714_ALPHABET for c in up):
        raise ValueError(f"expected 8 characters 0-9/A-Z, got {first8!r}")
    total = sum(_GB11714_ALPHABET.index(c) * w for c, w in zip(up, GB11714_WEIGHTS, strict=True))
    c9 = 11 - total % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GB32100_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
USCC_AUTHORITIES = "123456789ANY"
CENTRAL_REGION = "100000"
_USCC = re.compile(rf"[{USCC_AUTHORITIES}][{USCC_ALPHABET}][0-9]{{6}}[{USCC_ALPHABET}]{{10}}")


def gb32100_check_char(first17: str) -> str:
    """The check character (18th) of a USCC from its first 17 characters."""
    up = first17.upper()
    if len(up) != 17 or any(c not in USCC_ALPHABET for c in up):
        raise ValueError(f"expected 17 characters of {USCC_ALPHABET}, got {first17!r}")
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(up, GB32100_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def gb32100_problem(value: str | None, ref_dir: Path | None = None) -> str | None:
    """First problem of a unified social credit code, or None when valid."""
    if value is None:
        return None
    v = value.upper()
    if not _USCC.fullmatch(v):
        return "uscc_malformed"
    if gb32100_check_char(v[:17]) != v[17]:
        return "uscc_bad_check_character"
    if gb11714_check_char(v[8:16]) != v[16]:
        return "uscc_bad_org_code_check"
    region = v[2:8]
    if region != CENTRAL_REGION and region not in all_division_codes(ref_dir):
        return "uscc_unknown_region"
    return None


def stdnum_uscc_valid(value: str) -> bool:
    """python-stdnum's USCC check (length, alphabet, check character), fixed for A/N/Y codes.

    stdnum 2.2 requires the first 8 characters to be digits, so it rejects real codes whose
    registration authority is A, N or Y; those are checked here with the same rule.
    Drop this wrapper when ``test_stdnum_uscc_rejects_letter_authorities`` starts failing.
    """
    number = _stdnum_uscc.compact(value)
    if number[:1] in ("A", "N", "Y"):
        return (
            len(number) == 18
            and number[1:8].isascii()
            and number[1:8].isdigit()
            and all(c in USCC_ALPHABET for c in number)
            and gb32100_check_char(number[:17]) == number[17]
        )
    return _stdnum_uscc.is_valid(number)


def uscc_region_agrees(uscc: str | None, division: str | None) -> bool | None:
    """Whether the USCC's registration region (positions 3-8) covers ``division``.

    None when either is None or the USCC is shorter than 8 characters. A prefecture region
    (``XXYY00``) covers its counties, a province region (``XX0000``) its whole province, and
    the central region 100000 covers everything.
    """
    if uscc is None or division is None or len(uscc) < 8:
        return None
    region = uscc[2:8]
    if region == division or region == CENTRAL_REGION:
        return True
    if region.endswith("0000"):
        return division.startswith(region[:2])
    if region.endswith("00"):
        return division.startswith(region[:4])
    return False


# --------------------------------------------------------------------------------------------
# GB/T 2260 administrative division code

_DIVISION = re.compile(r"[0-9]{6}")
DIVISION_LEVELS = ("province", "prefecture", "county")


def gbt2260_problem(value: str | None, level: str | None = None, ref_dir: Path | None = None) -> str | None:
    """First problem of a GB/T 2260 division code in force (MCA 2024), or None when valid.

    ``level`` ('province' | 'prefecture' | 'county'), when given, must be the division's level.
    """
    if value is None:
        return None
    if not _DIVISION.fullmatch(value):
        return "division_malformed"
    if value in nbs_statistical_codes(ref_dir):
        return "division_nbs_statistical_code"
    division = divisions_current(ref_dir).get(value)
    if division is None:
        return "division_not_in_use"
    if level is not None and division.level != level:
        return "division_wrong_level"
    return None


# --------------------------------------------------------------------------------------------
# ISO/IEC 7064 MOD 37,36 and GB/T 36904-2018 e-certificate identifiers

MOD37_36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def mod37_36_check_char(s: str) -> str:
    """ISO/IEC 7064 MOD 37,36 (hybrid system) check character over 0-9A-Z (any case)."""
    m = 36
    p = m
    for c in s.upper():
        v = MOD37_36_ALPHABET.find(c)
        if v < 0:
            raise ValueError(f"character {c!r} is not in 0-9/A-Z")
        p = ((p + v) % m or m) * 2 % (m + 1)
    return MOD37_36_ALPHABET[(m + 1 - p) % m]


ECERT_ROOT = "1.2.156.3005.2"
_U18 = f"[{USCC_ALPHABET}]{{18}}"
_ECERT = re.compile(
    re.escape(ECERT_ROOT)
    + rf"\.({_U18}[0-9]{{3}})\.({_U18}|[0-9]{{6}})\.([0-9A-Z]{{1,40}})\.([0-9]{{3}})\.([0-9A-Z])"
)


def gbt36904_problem(value: str | None) -> str | None:
    """First problem of an e-certificate identifier, or None when valid.

    Form: ``1.2.156.3005.2.<cert type: USCC + 3 digits>.<issuer: USCC or 6-digit area code>.
    <serial: 1-40 of 0-9A-Z>.<version: 3 digits>.<check>``; the check character is MOD 37,36
    over the four middle segments joined without dots (upper-cased).
    """
    if value is None:
        return None
    m = _ECERT.fullmatch(value.upper())
    if m is None:
        return "ecert_malformed"
    if mod37_36_check_char("".join(m.groups()[:4])) != m.group(5):
        return "ecert_bad_check_character"
    return None


def make_ecert_identifier(cert_type_code: str, issuer_code: str, serial: str, version: str = "001") -> str:
    """A valid e-certificate identifier from its parts (upper-cased); ValueError if a part is malformed."""
    parts = [p.upper() for p in (cert_type_code, issuer_code, serial, version)]
    check = mod37_36_check_char("".join(parts))
    identifier = ".".join([ECERT_ROOT, *parts, check])
    if gbt36904_problem(identifier) is not None:
        raise ValueError(f"malformed e-certificate identifier parts: {parts}")
    return identifier


# --------------------------------------------------------------------------------------------
# GB/T 4754-2017 industry classification


def gbt4754_problem(code: str | None, ref_dir: Path | None = None) -> str | None:
    """``industry_unknown`` unless ``code`` is a GB/T 4754-2017 4-digit class."""
    if code is None:
        return None
    if code not in industry_classes(ref_dir):
        return "industry_unknown"
    return None


# --------------------------------------------------------------------------------------------
# SQL twins

SQL_MACROS_FILE = "macros/validators.sql"
_DDL = re.compile(r"\{%-?\s*macro\s+tongban_validators_ddl\(\)\s*-?%\}(.*?)\{%-?\s*endmacro\s*-?%\}", re.S)


def sql_ddl() -> str:
    """The DuckDB DDL of the SQL validator macros (the body of ``tongban_validators_ddl``).

    The macros read the ``reference.*`` tables, so run ``reference.load_reference(con)`` first.
    """
    text = (config.PROJECT_ROOT / SQL_MACROS_FILE).read_text(encoding="utf-8")
    m = _DDL.search(text)
    if m is None:
        raise ValueError(f"{SQL_MACROS_FILE}: no tongban_validators_ddl macro")
    return m.group(1).strip()
