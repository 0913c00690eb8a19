"""Synthetic business-licence deliveries (营业执照), one shape per province.

Standard fields are built first for every row; a defect, when the row has one, changes exactly
one of them; then the row is rendered in the province's shape. See docs/samples.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tongban.sample.license_vocab import (
    AUTHORITY_CUM, AUTHORITY_TYPES, BRAND_CHARS, COOP_WORDS, ENTERPRISE_CUM, ENTERPRISE_TYPES,
    ENTITY_TYPE_JS, ENTITY_TYPE_ZH, INDUSTRY_WORDS, SHOP_WORDS, SOLE_SUFFIXES, STATUS_CUM, STATUS_JS,
    STATUS_ZH, STATUSES,
)
from tongban.sample.common import (
    FUTURE_FIRST, FUTURE_LAST, GIVEN_ADULT, PROVINCES, DefectClass, KeyRow, Province, RefView,
    epoch_ms_beijing, fast_gb11714_check_char, fast_gb32100_check_char, mod37_36_check_from_state,
    mod37_36_state, person_name, pick, plan_defects, province_rng, rand_int, random_date, weighted_choice,
    wrong_check_char, zh_date,
)
from tongban.sample.writers import WrittenDelivery, select_provinces, write_delivery
from tongban.common.validators import (
    ECERT_ROOT,
    MOD37_36_ALPHABET,
    USCC_ALPHABET,
    gb11714_check_char,
    gb32100_check_char,
)

ENTITY = "licenses"

FIRST_ESTABLISHED = dt.date(1995, 1, 1)
LAST_ESTABLISHED = dt.date(2025, 12, 31)
#: organisation codes of the "MA" kind were issued with the USCC reform from October 2015
MA_CODES_FROM = dt.date(2015, 10, 1)

#: share of rows (chosen among clean ones) whose USCC has authority N (农业: 集体经济组织)
LETTER_AUTHORITY_SHARE = 0.015
#: registration authority + entity type characters of the other rows. The 383 real USCCs
#: (python-stdnum's test numbers) have 91 : 92 = 130 : 252; 93 (farmer cooperatives) is added.

#: a synthetic (not a real organisation's) but well-formed USCC as the e-licence type owner
ECERT_TYPE_OWNER_FIRST16 = "11100000TB2026EC"
_OWNER_17 = ECERT_TYPE_OWNER_FIRST16 + gb11714_check_char(ECERT_TYPE_OWNER_FIRST16[8:16])
ECERT_TYPE_OWNER = _OWNER_17 + gb32100_check_char(_OWNER_17)
ECERT_CERT_TYPE = ECERT_TYPE_OWNER + "001"
_ECERT_TYPE_STATE = mod37_36_state(ECERT_CERT_TYPE)

DEFAULT_RATE = 0.005
DEFECTS: tuple[DefectClass, ...] = (
    DefectClass("uscc_bad_check", "uscc", "uscc_bad_check_character", DEFAULT_RATE),
    DefectClass("uscc_region_mismatch", "registration_division_code", "uscc_region_mismatch", DEFAULT_RATE),
    DefectClass("nbs_division_code", "registration_division_code", "division_nbs_statistical_code",
                DEFAULT_RATE),
    DefectClass("capital_wrong_unit", "registered_capital_yuan", "out_of_range", DEFAULT_RATE),
    DefectClass("future_established", "established_date", "date_in_future", DEFAULT_RATE),
    DefectClass("bad_ecert_check", "ecert_identifier", "ecert_bad_check_character", DEFAULT_RATE),
    DefectClass("blank_required", "uscc", "missing_required", DEFAULT_RATE),
)
BLANK_FIELDS = ("uscc", "enterprise_name", "established_date")

COLUMNS: dict[str, tuple[str, ...]] = {
    "sh": ("uscc", "enterprise_name", "legal_representative", "entity_type", "registered_capital",
           "established_date", "registration_district_code", "industry_code", "status", "ecert_id"),
    "js": ("TYSHXYDM", "QYMC", "FDDBR", "QYLX", "ZCZB", "CLRQ", "DJJGDM", "HYDM", "JYZT", "DZZZBS"),
    "zj": ("uscc", "enterpriseName", "legalRepresentative", "entityType", "registeredCapital",
           "establishedDate", "registrationDivisionCode", "industryCode", "status", "ecertIdentifier"),
    "ah": ("统一社会信用代码", "企业名称", "法定代表人", "企业类型", "注册资本（万元）", "成立日期",
           "登记机关行政区划代码", "行业代码", "登记状态", "电子证照标识"),
}
FILE_NAMES = {"sh": "licenses.csv", "js": "licenses.csv", "zj": "licenses.jsonl", "ah": "licenses.xlsx"}



@dataclass
class LicenseRow:
    """One row in standard terms; ``None`` is an absent value. ``capital_delivered`` overrides
    the rendering of the capital (a value in the wrong unit)."""

    uscc: str | None
    enterprise_name: str | None
    legal_representative: str
    entity_type_code: str
    registered_capital_yuan: Decimal
    established_date: dt.date | None
    registration_division_code: str
    industry_code: str
    status_code: str
    ecert_identifier: str
    capital_delivered: Decimal | None = None


def defect_classes(province: Province, ref: RefView) -> tuple[DefectClass, ...]:
    """The classes injected in ``province``: nbs_division_code only where NBS has dev-zone codes."""
    return tuple(c for c in DEFECTS if c.name != "nbs_division_code" or ref.nbs_codes(province.code))


@functools.lru_cache(maxsize=4096)
def _short(name: str) -> str:
    """A place name without its 市/区/县/地区 suffix (kept when that leaves one character)."""
    for suffix in ("地区", "新区", "市", "区", "县"):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


class _Generator:
    def __init__(self, province: Province, rows: int, seed: int, ref: RefView):
        self.p = province
        self.rows = rows
        self.rng = province_rng(seed, ENTITY, province)
        self.ref = ref
        self.counties = ref.counties(province.code)
        self.prefectures = ref.prefectures(province.code)
        self.other_counties = sorted(c for q in PROVINCES if q.code != province.code for c in ref.counties(q.code))
        self.nbs = ref.nbs_codes(province.code)
        classes = sorted(ref.industries)
        self.classes_all = classes
        self.classes_by_section: dict[str, list[str]] = {}
        for code in classes:
            self.classes_by_section.setdefault(ref.industries[code].section_code, []).append(code)
        self.shop_classes = [c for s in ("F", "H", "O") for c in self.classes_by_section[s]]
        self.defect_classes = defect_classes(province, ref)
        self.plan = plan_defects(self.rng, rows, self.defect_classes)
        clean = [i for i in range(rows) if i not in self.plan]
        n_letter = max(1, math.ceil(LETTER_AUTHORITY_SHARE * rows)) if rows >= 100 else 0
        self.letter_rows = set(self.rng.sample(clean, min(n_letter, len(clean))))
        self.ecert_serial: dict[int, int] = {}
        self.counties_under: dict[str, list[str]] = {}
        self.usccs: set[str] = set()
        self.blank_count = 0

    # pieces -------------------------------------------------------------------------------
    def org_code(self, ma: bool) -> str:
        rng = self.rng
        if ma:  # like the real MA2PBMYM: "MA", a digit, five characters of the USCC alphabet
            n = int(rng.random() * 31**5)
            tail = ""
            for _ in range(5):
                n, r = divmod(n, 31)
                tail += USCC_ALPHABET[r]
            body = "MA" + "123456789"[int(rng.random() * 9)] + tail
        else:  # an older, all-digit organisation code
            body = f"{int(rng.random() * 10**8):08d}"
        return body + fast_gb11714_check_char(body)

    def uscc(self, prefix: str, region: str, ma: bool) -> str:
        while True:
            first17 = prefix + region + self.org_code(ma)
            code = first17 + fast_gb32100_check_char(first17)
            if code not in self.usccs:
                self.usccs.add(code)
                return code

    def region_and_division(self, authority_type: str) -> tuple[str, str]:
        """A USCC region of the province (county or prefecture) and the registration division."""
        rng = self.rng
        if authority_type != "92" and self.prefectures and rng.random() < 0.3:
            region = pick(rng, self.prefectures)
            under = self.counties_under.get(region)
            if under is None:
                under = self.counties_under[region] = [c for c in self.counties if c.startswith(region[:4])]
            division = pick(rng, under) if under and rng.random() < 0.5 else region
            return region, division
        county = pick(rng, self.counties)
        return county, county

    def capital(self, entity_type: str, allow_cents: bool) -> Decimal:
        rng = self.rng
        if entity_type == "individual_business":
            yuan = math.exp(rng.uniform(math.log(1_000), math.log(500_000)))
            value = round(yuan / 1000) * 1000 if rng.random() < 0.7 else round(yuan)
            return Decimal(min(max(value, 1_000), 500_000))
        top = 2_000 if entity_type == "farmer_cooperative" else 50_000
        wan = math.exp(rng.uniform(math.log(10), math.log(top)))
        r = rng.random()
        if r < 0.6:  # two significant figures of 万元: 12万, 350万, 4800万
            digits = 10 ** max(0, int(math.floor(math.log10(wan))) - 1)
            yuan = Decimal(round(wan / digits) * digits * 10_000)
        elif r < 0.9:
            yuan = Decimal(round(wan) * 10_000)
        else:
            yuan = Decimal(round(wan * 10_000))
            if allow_cents and rng.random() < 0.5:
                yuan += Decimal(rand_int(rng, 1, 99)) / 100
        return min(max(yuan, Decimal(100_000)), Decimal(500_000_000))

    def industry(self, entity_type: str, authority: str) -> str:
        rng = self.rng
        if entity_type == "individual_business" and rng.random() < 0.8:
            return pick(rng, self.shop_classes)
        if entity_type == "farmer_cooperative":
            if authority == "N" and rng.random() < 0.4:
                return pick(rng, self.classes_by_section["L"])
            return pick(rng, self.classes_by_section["A"])
        return pick(rng, self.classes_all)

    def name(self, entity_type: str, authority_type: str, division: str, industry: str) -> str:
        rng = self.rng
        ref = self.ref
        section = ref.industries[industry].section_code
        brand = "".join(pick(rng, BRAND_CHARS) for _ in range(2))
        county = ref.name(division) if ref.current[division].level == "county" else None
        city = _short(ref.city_name(division) if county else ref.name(division))
        if self.p.code == "31":
            city = "上海"
        place = _short(county) if county and rng.random() < 0.3 else city
        if authority_type.startswith("N"):
            where = county or ref.name(division)
            return where + brand + ("村股份经济合作社" if authority_type == "N2" else "镇经济联合社")
        if entity_type == "individual_business":
            where = county or ref.name(division)
            return where + brand + pick(rng, SHOP_WORDS.get(section, ("经营部", "工作室", "服务部")))
        if entity_type == "farmer_cooperative":
            return (county or ref.name(division)) + brand + pick(rng, COOP_WORDS) + "专业合作社"
        word = pick(rng, INDUSTRY_WORDS.get(section, ("实业",)))
        if entity_type == "llc":
            return place + brand + word + ("有限公司" if rng.random() < 0.9 else "有限责任公司")
        if entity_type == "joint_stock":
            return place + brand + word + "股份有限公司"
        if entity_type == "sole_proprietorship":
            return place + brand + word + pick(rng, SOLE_SUFFIXES)
        if entity_type == "partnership":
            return place + brand + word + pick(rng, ("合伙企业（有限合伙）", "合伙企业（普通合伙）"))
        branch_place = _short(county) if county else city
        return pick(rng, ("上海", "江苏", "浙江", "安徽", "北京", "深圳")) + brand + word + "有限公司" + branch_place + "分公司"

    def ecert(self, issuer: str, year: int) -> str:
        """What ``make_ecert_identifier(ECERT_CERT_TYPE, issuer, serial)`` gives, computed from the
        cached MOD 37,36 state after the constant type code (the tests compare the two)."""
        self.ecert_serial[year] = self.ecert_serial.get(year, rand_int(self.rng, 0, 5_000)) + rand_int(self.rng, 1, 3)
        serial = f"{year}{self.ecert_serial[year]:06d}"
        check = mod37_36_check_from_state(mod37_36_state(issuer + serial + "001", _ECERT_TYPE_STATE))
        return f"{ECERT_ROOT}.{ECERT_CERT_TYPE}.{issuer}.{serial}.001.{check}"

    # rows ---------------------------------------------------------------------------------
    def generate(self) -> tuple[list[LicenseRow], list[KeyRow]]:
        keys: list[KeyRow] = []
        rows = list(self.iter_rows(keys))
        return rows, keys

    def iter_rows(self, keys: list[KeyRow]) -> Iterator[LicenseRow]:
        """The rows one by one (streaming); each defective row's key is appended to ``keys``
        before the row is yielded."""
        rng = self.rng
        allow_cents = self.p.key != "ah"  # the 万元 file holds at most 4 decimals: whole 元
        for i in range(self.rows):
            defect = self.plan.get(i)
            name = defect.name if defect else None
            if i in self.letter_rows:
                authority_type = "N2" if rng.random() < 0.7 else "N3"
            elif name == "capital_wrong_unit":
                authority_type = "91"
            else:
                authority_type = weighted_choice(rng, AUTHORITY_TYPES, AUTHORITY_CUM)
            if authority_type == "91":
                entity_type = "llc" if name == "capital_wrong_unit" else weighted_choice(
                    rng, ENTERPRISE_TYPES, ENTERPRISE_CUM)
            elif authority_type == "92":
                entity_type = "individual_business"
            else:
                entity_type = "farmer_cooperative"
            established = random_date(rng, FIRST_ESTABLISHED, LAST_ESTABLISHED)
            ma = authority_type == "92" or established >= MA_CODES_FROM
            if name == "uscc_region_mismatch":
                region = pick(rng, self.other_counties)
                division = pick(rng, self.counties)
            elif name == "nbs_division_code":
                division = pick(rng, self.nbs)
                region = division[:4] + "00"
            else:
                region, division = self.region_and_division(authority_type)
            uscc = self.uscc(authority_type, region, ma)
            industry = self.industry(entity_type, authority_type[0])
            row = LicenseRow(
                uscc=uscc,
                enterprise_name=self.name(entity_type, authority_type,
                                          region if name == "nbs_division_code" else division, industry),
                legal_representative=person_name(rng, GIVEN_ADULT),
                entity_type_code=entity_type,
                registered_capital_yuan=self.capital(entity_type, allow_cents),
                established_date=established,
                registration_division_code=division,
                industry_code=industry,
                status_code=weighted_choice(rng, STATUSES, STATUS_CUM),
                ecert_identifier=self.ecert(region if name == "nbs_division_code" else division,
                                            established.year),
            )
            field = defect.field if defect else ""
            if name == "uscc_bad_check":
                row.uscc = uscc[:17] + wrong_check_char(rng, uscc[17], USCC_ALPHABET)
            elif name == "capital_wrong_unit":
                if self.p.key == "ah":  # real capital ≥ 2000万元, delivered in 元 in the 万元 column
                    wan = pick(rng, (2_000, 3_000, 5_000, 8_000, 10_000, 20_000, 50_000))
                    row.registered_capital_yuan = Decimal(wan * 10_000)
                    row.capital_delivered = Decimal(wan * 10_000)
                else:  # real capital 10–99万元, delivered in 万元 in a 元 column
                    wan = rand_int(rng, 10, 99)
                    row.registered_capital_yuan = Decimal(wan * 10_000)
                    row.capital_delivered = Decimal(wan)
            elif name == "future_established":
                row.established_date = random_date(rng, FUTURE_FIRST, FUTURE_LAST)
            elif name == "bad_ecert_check":
                e = row.ecert_identifier
                row.ecert_identifier = e[:-1] + wrong_check_char(rng, e[-1], MOD37_36_ALPHABET)
            elif name == "blank_required":
                field = BLANK_FIELDS[self.blank_count % len(BLANK_FIELDS)]
                self.blank_count += 1
                setattr(row, field, None)
            if defect is not None:
                keys.append(KeyRow(i + 1, defect.name, field, defect.expected_reason))
            yield row


# --------------------------------------------------------------------------------------------
# rendering


def _text(v: str | None) -> str:
    return "" if v is None else v


def _yuan_text(v: Decimal, fixed_2: bool) -> str:
    if fixed_2:
        return f"{v:.2f}"
    return str(int(v)) if v == v.to_integral_value() else f"{v:.2f}"


def _json_number(v: Decimal) -> int | float:
    return int(v) if v == v.to_integral_value() else float(v)


def render(province: str, rows: Iterable[LicenseRow], industries: dict) -> list:
    """Rows in the province's shape: lists of cells (csv/xlsx) or dicts (jsonl)."""
    return list(iter_render(province, rows, industries))


def iter_render(province: str, rows: Iterable[LicenseRow], industries: dict) -> Iterator:
    """:func:`render`, one row at a time."""
    if province not in ("sh", "js", "zj", "ah"):
        raise ValueError(f"unknown province {province!r}")
    for r in rows:
        if province == "ah":
            capital = r.capital_delivered if r.capital_delivered is not None else r.registered_capital_yuan / 10_000
        else:
            capital = r.capital_delivered if r.capital_delivered is not None else r.registered_capital_yuan
        d = r.established_date
        if province == "sh":
            yield [_text(r.uscc), _text(r.enterprise_name), r.legal_representative,
                   ENTITY_TYPE_ZH[r.entity_type_code], _yuan_text(capital, True),
                   d.isoformat() if d else "", r.registration_division_code,
                   industries[r.industry_code].section_code + r.industry_code,
                   STATUS_ZH[r.status_code], r.ecert_identifier]
        elif province == "js":
            yield [_text(r.uscc), _text(r.enterprise_name), r.legal_representative,
                   ENTITY_TYPE_JS[r.entity_type_code], _yuan_text(capital, False),
                   d.strftime("%Y%m%d") if d else "", r.registration_division_code, r.industry_code,
                   STATUS_JS[r.status_code], r.ecert_identifier]
        elif province == "zj":
            values = [r.uscc, r.enterprise_name, r.legal_representative, r.entity_type_code.upper(),
                      _json_number(capital), epoch_ms_beijing(d) if d else None, r.registration_division_code,
                      r.industry_code, r.status_code.upper(), r.ecert_identifier]
            yield dict(zip(COLUMNS["zj"], values, strict=True))
        elif province == "ah":
            yield [r.uscc, r.enterprise_name, r.legal_representative, ENTITY_TYPE_ZH[r.entity_type_code],
                   _json_number(capital), zh_date(d) if d else None, r.registration_division_code,
                   r.industry_code, STATUS_ZH[r.status_code], r.ecert_identifier]


def generate(province: Province, rows: int, seed: int,
             ref: RefView | None = None) -> tuple[list[LicenseRow], list[KeyRow]]:
    """The standard-form rows of one province's delivery and its answer key (in memory)."""
    return _Generator(province, rows, seed, ref or RefView()).generate()


def write(out_dir: Path, rows: int, seed: int, ref_dir: Path | None = None, *, xlsx_max_rows: int | None = None,
          provinces: Iterable[str] | None = None) -> list[WrittenDelivery]:
    """Each province's delivery and answer key, streamed: generated, rendered and written row by
    row (see :func:`tongban.sample.writers.write_delivery` for ``xlsx_max_rows``)."""
    ref = RefView(ref_dir)
    written: list[WrittenDelivery] = []
    for p in select_provinces(provinces):
        keys: list[KeyRow] = []
        shaped = iter_render(p.key, _Generator(p, rows, seed, ref).iter_rows(keys), ref.industries)
        written.append(write_delivery(ENTITY, p.key, out_dir, COLUMNS, FILE_NAMES, shaped, keys, rows,
                                      xlsx_max_rows=xlsx_max_rows))
    return written
