"""Synthetic birth-registration deliveries (出生一件事), one shape per province.

Standard fields (the regional standard's names) are built first for every row; a defect, when
the row has one, changes exactly one of them; then the row is rendered in the province's shape.
See docs/samples.md for the shapes, the defect classes and their rates.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tongban.common.config import settings
from tongban.sample.common import (
    FUTURE_FIRST, FUTURE_LAST, GIVEN_FEMALE, GIVEN_CHILD, DefectClass, KeyRow, Province, RefView,
    born_at_age, epoch_ms_beijing, id15, id18, mobile_phone, person_name, pick, plan_defects, province_rng,
    rand_int, random_date, sex_sequence, wrong_check_char, zh_date,
)
from tongban.sample.writers import WrittenDelivery, select_provinces, write_delivery

ENTITY = "births"

FIRST_BIRTH = dt.date(2023, 1, 1)
LAST_BIRTH = dt.date(2025, 12, 31)

#: the certificate letter by birth year (unique across years; the province code follows it)
CERT_LETTERS = {2023: "N", 2024: "O", 2025: "P"}

FATHER_ID_MISSING_RATE = 0.03
PHONE_MISSING_RATE = 0.10
#: where a clean parent's ID address code comes from
ADDRESS_OWN_CURRENT = 0.80  # own province, code still in force
ADDRESS_OWN_ABOLISHED = 0.08  # own province, code abolished since (valid in the birth year)
# the rest (0.12): a county code of another province, in force then and now
HAN_SHARE = 0.90

DEFAULT_RATE = 0.005
DEFECTS: tuple[DefectClass, ...] = (
    DefectClass("bad_id_check", "mother_id_number", "id_bad_check_character", DEFAULT_RATE),
    DefectClass("birthplace_not_in_use", "mother_id_number", "id_birthplace_not_in_use", DEFAULT_RATE),
    DefectClass("legacy_15_digit", "mother_id_number", "id_legacy_15_digit", DEFAULT_RATE),
    DefectClass("unknown_ethnicity", "mother_ethnicity_code", "unmapped_code", DEFAULT_RATE),
    DefectClass("nbs_division_code", "birth_division_code", "division_nbs_statistical_code", DEFAULT_RATE),
    DefectClass("future_birth_date", "birth_date", "date_in_future", DEFAULT_RATE),
    DefectClass("mother_under_14", "mother_id_number", "mother_too_young", DEFAULT_RATE),
    DefectClass("duplicate_certificate", "birth_certificate_number", "duplicate_value", DEFAULT_RATE),
    DefectClass("blank_required", "child_name", "missing_required", DEFAULT_RATE),
)
BLANK_FIELDS = ("child_name", "birth_date", "mother_id_number", "birth_certificate_number")
#: ethnicity values the standard does not know: code-delivering / name-delivering provinces. 97 (其他)
#: and 98 (外国血统中国籍人士) are not among them: the code list has them (an extension beyond GB 3304)
UNKNOWN_ETHNICITY_CODES = ("00", "99")
UNKNOWN_ETHNICITY_NAMES = ("未知", "不详")

SERVICES = ("hukou", "medical_insurance", "social_security_card", "vaccination", "birth_allowance")
SERVICE_SHARE = {"hukou": 0.92, "medical_insurance": 0.70, "social_security_card": 0.60,
                 "vaccination": 0.50, "birth_allowance": 0.30}
SERVICE_ZH = {"hukou": "户口登记", "medical_insurance": "医保参保", "social_security_card": "社保卡",
              "vaccination": "预防接种", "birth_allowance": "生育津贴"}
SERVICE_JS = {"hukou": "HK", "medical_insurance": "YB", "social_security_card": "SBK",
              "vaccination": "YFJZ", "birth_allowance": "SYJT"}
INSTITUTION_SUFFIXES = ("妇幼保健院", "人民医院", "妇幼保健院", "中心医院", "中医医院", "第一人民医院", "妇产医院")

ETHNICITY_FILE = "code_lists/gbt3304_ethnic_groups.csv"

#: the standard fields in delivery order, and each province's column names for them
STANDARD_FIELDS = (
    "record_id", "birth_certificate_number", "child_name", "child_sex_code", "birth_date",
    "birth_division_code", "birth_institution_name", "mother_name", "mother_id_number",
    "mother_ethnicity_code", "father_id_number", "hukou_division_code", "services_requested", "contact_phone",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "sh": ("record_id", "certificate_no", "child_name", "child_sex", "birth_date", "birth_district_code",
           "hospital_name", "mother_name", "mother_id_no", "mother_ethnicity", "father_id_no",
           "hukou_district_code", "services", "contact_phone"),
    "js": ("LSH", "CSYXZMBH", "XM", "XB", "CSRQ", "CSDQDM", "JSJG", "MQXM", "MQSFZH", "MQMZ", "FQSFZH",
           "HJDQDM", "BLSX", "LXDH"),
    "zj": ("recordId", "certificateNumber", "childName", "childSex", "birthDate", "birthDivisionCode",
           "institutionName", "motherName", "motherIdNumber", "motherEthnicity", "fatherIdNumber",
           "hukouDivisionCode", "servicesRequested", "contactPhone"),
    "ah": ("登记编号", "出生医学证明编号", "新生儿姓名", "性别", "出生日期", "出生地行政区划代码", "助产机构名称",
           "母亲姓名", "母亲身份证号", "母亲民族", "父亲身份证号", "户籍地行政区划代码", "申请事项", "联系电话"),
}
FILE_NAMES = {"sh": "births.csv", "js": "births.csv", "zj": "births.jsonl", "ah": "births.xlsx"}


def ethnic_groups(ref_dir: Path | None = None) -> dict[str, str]:
    """GB 3304 code → name_zh (56 groups)."""
    path = (ref_dir or settings().reference_dir) / ETHNICITY_FILE
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {r["code"]: r["name_zh"] for r in csv.DictReader(fh)}


def defect_classes(province: Province, ref: RefView) -> tuple[DefectClass, ...]:
    """The classes injected in ``province``: nbs_division_code only where NBS has dev-zone codes."""
    return tuple(c for c in DEFECTS if c.name != "nbs_division_code" or ref.nbs_codes(province.code))


@dataclass
class BirthRow:
    """One row in standard terms. ``None`` is an absent value; ``ethnicity_delivered`` overrides
    the rendering of ``mother_ethnicity_code`` (a local code or name outside GB 3304)."""

    record_id: str
    birth_certificate_number: str | None
    child_name: str | None
    child_sex_code: str
    birth_date: dt.date | None
    birth_division_code: str
    birth_institution_name: str
    mother_name: str
    mother_id_number: str | None
    mother_ethnicity_code: str
    father_id_number: str | None
    hukou_division_code: str
    services_requested: tuple[str, ...]
    contact_phone: str | None
    ethnicity_delivered: str | None = None


class _Generator:
    def __init__(self, province: Province, rows: int, seed: int, ref: RefView, ethnic: dict[str, str]):
        self.p = province
        self.rows = rows
        self.rng = province_rng(seed, ENTITY, province)
        self.ref = ref
        self.ethnic = ethnic
        codes = sorted(ethnic)
        self.han = "01"
        self.others = [c for c in codes if c != self.han]
        self.birth_counties = ref.counties(province.code)
        self.hukou_elsewhere = ref.counties_not_in(province.code)
        self.nbs = ref.nbs_codes(province.code)
        self.cert_serial = {y: rand_int(self.rng, 1, 40_000) for y in sorted(CERT_LETTERS)}
        self.classes = defect_classes(province, ref)
        self.plan = plan_defects(self.rng, rows, self.classes)
        self.blank_count = 0
        self.places: dict[str, str] = {}
        self.address_pools: dict[int, tuple[list[str], list[str], list[str]]] = {}

    # pieces -------------------------------------------------------------------------------
    def certificate(self, year: int) -> str:
        self.cert_serial[year] += rand_int(self.rng, 1, 5)
        serial = self.cert_serial[year]
        if serial > 9_999_999:
            raise ValueError("too many rows for 7-digit certificate serials")
        return f"{CERT_LETTERS[year]}{self.p.code}{serial:07d}"

    def address(self, year: int) -> str:
        pools = self.address_pools.get(year)
        if pools is None:
            ref, prefix = self.ref, self.p.code
            # (江苏 re-coded most counties in 1983: for earlier years only abolished codes exist)
            current = (ref.id_address_codes(year, prefix, current=True)
                       or ref.id_address_codes(year, prefix, current=None))
            abolished = ref.id_address_codes(year, prefix, current=False) or current
            elsewhere = ref.id_address_codes_elsewhere(year, prefix)
            pools = self.address_pools[year] = (current or elsewhere, abolished or elsewhere, elsewhere)
        r = self.rng.random()
        pool = pools[0] if r < ADDRESS_OWN_CURRENT else pools[1] if r < ADDRESS_OWN_CURRENT + ADDRESS_OWN_ABOLISHED \
            else pools[2]
        return pool[int(self.rng.random() * len(pool))]

    def parent_id(self, on: dt.date, age: int, female: bool, address: str | None = None) -> tuple[str, dt.date]:
        born = born_at_age(self.rng, on, age)
        code = address or self.address(born.year)
        return id18(code, born, sex_sequence(self.rng, female)), born

    def ethnicity(self) -> str:
        return self.han if self.rng.random() < HAN_SHARE else pick(self.rng, self.others)

    def services(self) -> tuple[str, ...]:
        chosen = tuple(s for s in SERVICES if self.rng.random() < SERVICE_SHARE[s])
        return chosen or ("hukou",)

    def institution(self, county: str) -> str:
        place = self.places.get(county)
        if place is None:
            place = self.places[county] = self.ref.city_name(county) + self.ref.name(county)
        return place + pick(self.rng, INSTITUTION_SUFFIXES)

    def hukou(self, birth_county: str) -> str:
        r = self.rng.random()
        if r < 0.05:
            return pick(self.rng, self.hukou_elsewhere)
        if r < 0.60:
            return birth_county
        return pick(self.rng, self.birth_counties)

    # rows ---------------------------------------------------------------------------------
    def generate(self) -> tuple[list[BirthRow], list[KeyRow]]:
        keys: list[KeyRow] = []
        rows = list(self.iter_rows(keys))
        return rows, keys

    def iter_rows(self, keys: list[KeyRow]) -> Iterator[BirthRow]:
        """The rows one by one (streaming); each defective row's key is appended to ``keys``
        before the row is yielded."""
        clean_certs: list[str] = []
        rng = self.rng
        for i in range(self.rows):
            defect = self.plan.get(i)
            name = defect.name if defect else None
            birth = random_date(rng, FIRST_BIRTH, LAST_BIRTH)
            cert = self.certificate(birth.year)
            if name == "future_birth_date":
                birth = random_date(rng, FUTURE_FIRST, FUTURE_LAST)
            county = pick(rng, self.birth_counties)
            if name == "mother_under_14":
                mother_age = rand_int(rng, 10, 13)
            elif name == "legacy_15_digit":
                mother_age = rand_int(rng, 27, 45)  # born in the 1900s, when 15-digit numbers were issued
            else:
                mother_age = int(rng.triangular(18, 46, 30))
            father_age = min(55, mother_age + rand_int(rng, -2, 8)) if mother_age >= 18 else rand_int(rng, 20, 40)
            father_age = max(20, father_age)
            mother_born = born_at_age(rng, birth, mother_age)
            if name == "birthplace_not_in_use":
                mother_addr = pick(rng, self.ref.county_codes_not_in_use(mother_born.year, self.p.code))
            else:
                mother_addr = self.address(mother_born.year)
            mother_seq = sex_sequence(rng, True)
            mother_id = (id15(mother_addr, mother_born, mother_seq) if name == "legacy_15_digit"
                         else id18(mother_addr, mother_born, mother_seq))
            father_id: str | None = None
            if name == "bad_id_check" or rng.random() >= FATHER_ID_MISSING_RATE:
                father_id, _ = self.parent_id(birth, father_age, female=False)
            row = BirthRow(
                record_id=self.record_id(i),
                birth_certificate_number=cert,
                child_name=person_name(rng, GIVEN_CHILD),
                child_sex_code="1" if rng.random() < 0.515 else "2",
                birth_date=birth,
                birth_division_code=county,
                birth_institution_name=self.institution(county),
                mother_name=person_name(rng, GIVEN_FEMALE),
                mother_id_number=mother_id,
                mother_ethnicity_code=self.ethnicity(),
                father_id_number=father_id,
                hukou_division_code=self.hukou(county),
                services_requested=self.services(),
                contact_phone=None if rng.random() < PHONE_MISSING_RATE else mobile_phone(rng),
            )
            field = defect.field if defect else ""
            if name == "bad_id_check":
                if rng.random() < 0.5:
                    field = "father_id_number"
                value = getattr(row, field)
                setattr(row, field, value[:17] + wrong_check_char(rng, value[17], "0123456789X"))
            elif name == "unknown_ethnicity":
                codes = UNKNOWN_ETHNICITY_CODES if self.p.key in ("js", "zj") else UNKNOWN_ETHNICITY_NAMES
                row.ethnicity_delivered = pick(rng, codes)
            elif name == "nbs_division_code":
                row.birth_division_code = pick(rng, self.nbs)
                row.birth_institution_name = self.ref.nbs[row.birth_division_code] + pick(rng, 
                    ("医院", "人民医院", "妇幼保健所"))
            elif name == "duplicate_certificate":
                row.birth_certificate_number = pick(rng, clean_certs)
            elif name == "blank_required":
                field = BLANK_FIELDS[self.blank_count % len(BLANK_FIELDS)]
                self.blank_count += 1
                setattr(row, field, None)
            if defect is None:
                clean_certs.append(cert)
            else:
                keys.append(KeyRow(i + 1, defect.name, field, defect.expected_reason))
            yield row

    def record_id(self, i: int) -> str:
        if self.p.key == "sh":
            return f"SHCS{i + 1:08d}"
        if self.p.key == "js":
            return str(320_000_000_000 + i + 1)
        if self.p.key == "zj":
            h = f"{self.rng.getrandbits(128):032x}"
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return f"AHCS{i + 1:08d}"


# --------------------------------------------------------------------------------------------
# rendering


def _ethnicity(row: BirthRow, ethnic: dict[str, str], as_name: bool) -> str:
    if row.ethnicity_delivered is not None:
        return row.ethnicity_delivered
    return ethnic[row.mother_ethnicity_code] if as_name else row.mother_ethnicity_code


def _text(v: str | None) -> str:
    return "" if v is None else v


def render(province: str, rows: Iterable[BirthRow], ethnic: dict[str, str]) -> list:
    """Rows in the province's shape: lists of cells (csv/xlsx) or dicts (jsonl)."""
    return list(iter_render(province, rows, ethnic))


def iter_render(province: str, rows: Iterable[BirthRow], ethnic: dict[str, str]) -> Iterator:
    """:func:`render`, one row at a time."""
    if province == "sh":
        for r in rows:
            yield [r.record_id, _text(r.birth_certificate_number), _text(r.child_name),
                   "男" if r.child_sex_code == "1" else "女",
                   r.birth_date.isoformat() if r.birth_date else "", r.birth_division_code,
                   r.birth_institution_name, r.mother_name, _text(r.mother_id_number),
                   _ethnicity(r, ethnic, True), _text(r.father_id_number), r.hukou_division_code,
                   ";".join(SERVICE_ZH[s] for s in r.services_requested), _text(r.contact_phone)]
    elif province == "js":
        for r in rows:
            yield [r.record_id, _text(r.birth_certificate_number), _text(r.child_name), r.child_sex_code,
                   r.birth_date.strftime("%Y%m%d") if r.birth_date else "", r.birth_division_code,
                   r.birth_institution_name, r.mother_name, _text(r.mother_id_number),
                   _ethnicity(r, ethnic, False), _text(r.father_id_number), r.hukou_division_code,
                   ",".join(SERVICE_JS[s] for s in r.services_requested), _text(r.contact_phone)]
    elif province == "zj":
        keys = COLUMNS["zj"]
        for r in rows:
            values = [r.record_id, r.birth_certificate_number, r.child_name,
                      "M" if r.child_sex_code == "1" else "F",
                      epoch_ms_beijing(r.birth_date) if r.birth_date else None, r.birth_division_code,
                      r.birth_institution_name, r.mother_name, r.mother_id_number,
                      _ethnicity(r, ethnic, False), r.father_id_number, r.hukou_division_code,
                      list(r.services_requested), r.contact_phone]
            yield dict(zip(keys, values, strict=True))
    elif province == "ah":
        for r in rows:
            yield [r.record_id, r.birth_certificate_number, r.child_name,
                   "男" if r.child_sex_code == "1" else "女",
                   zh_date(r.birth_date) if r.birth_date else None, r.birth_division_code,
                   r.birth_institution_name, r.mother_name, r.mother_id_number,
                   _ethnicity(r, ethnic, True), r.father_id_number, r.hukou_division_code,
                   "、".join(SERVICE_ZH[s] for s in r.services_requested), r.contact_phone]
    else:
        raise ValueError(f"unknown province {province!r}")


def generate(province: Province, rows: int, seed: int, ref: RefView | None = None,
             ethnic: dict[str, str] | None = None) -> tuple[list[BirthRow], list[KeyRow]]:
    """The standard-form rows of one province's delivery and its answer key (in memory)."""
    ref = ref or RefView()
    ethnic = ethnic or ethnic_groups(ref.ref_dir)
    return _Generator(province, rows, seed, ref, ethnic).generate()


def write(out_dir: Path, rows: int, seed: int, ref_dir: Path | None = None, *, xlsx_max_rows: int | None = None,
          provinces: Iterable[str] | None = None) -> list[WrittenDelivery]:
    """Each province's delivery and answer key, streamed: generated, rendered and written row by
    row (see :func:`tongban.sample.writers.write_delivery` for ``xlsx_max_rows``)."""
    ref = RefView(ref_dir)
    ethnic = ethnic_groups(ref_dir)
    written: list[WrittenDelivery] = []
    for p in select_provinces(provinces):
        keys: list[KeyRow] = []
        shaped = iter_render(p.key, _Generator(p, rows, seed, ref, ethnic).iter_rows(keys), ethnic)
        written.append(write_delivery(ENTITY, p.key, out_dir, COLUMNS, FILE_NAMES, shaped, keys, rows,
                                      xlsx_max_rows=xlsx_max_rows))
    return written
