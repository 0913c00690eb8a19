"""证据互认: GET /verify/business_license/{uscc} and /verify/birth_certificate/{certificate_no}.

Any registered consumer may ask. The number's own check is made first (an invalid number is
``valid: false`` without a lookup); the answer never holds personal data. A birth certificate number
is looked up by its keyed pseudonym (the exchange holds no raw numbers) and audited as one.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from tongban.common import pii
from tongban.common.config import settings
from tongban.common.validators import gb32100_problem
from tongban.exchange import signing
from tongban.serve import reader
from tongban.serve.audit import pseudonymous
from tongban.serve.deps import CallerDep, Context, CtxDep, note
from tongban.serve.schemas import KeyList, Problem, PublicKey, Signature, SnapshotInfo, Verification

router = APIRouter(prefix="/verify", tags=["verify"], responses={401: {"model": Problem}})

#: 出生医学证明编号: one capital letter and nine digits (the sample's: letter, province, 7-digit serial)
BIRTH_CERTIFICATE = re.compile(r"[A-Z][0-9]{9}")


def _signed(answer: Verification) -> Verification:
    return answer.model_copy(update={"signature": Signature(**signing.sign(answer.model_dump(mode="json")))})


def _invalid() -> Verification:
    return _signed(Verification(found=False, valid=False, status=None, issuing_province=None, snapshot=None))


def _answer(ctx: Context, entity: str, where: dict[str, str], status_column: str | None) -> Verification:
    try:
        snap = reader.resolve(ctx.exchange_root, entity)
    except reader.NotFound:
        return Verification(found=False, valid=True, status=None, issuing_province=None, snapshot=None)
    columns = ["province_code"] + ([status_column] if status_column else [])
    found = reader.first_row(snap, columns, where, "province_code")
    info = SnapshotInfo(**reader.snapshot_info(snap))
    if found is None:
        return Verification(found=False, valid=True, status=None, issuing_province=None, snapshot=info)
    status = found[status_column] if status_column else "registered"
    return Verification(found=True, valid=True, status=status, issuing_province=found["province_code"], snapshot=info)


@router.get("/business_license/{uscc}", response_model=Verification)
def business_license(request: Request, uscc: str, ctx: CtxDep,
                     _: CallerDep) -> Verification:
    value = uscc.strip().upper()
    note(request, entity="business_license", key=value)
    if gb32100_problem(value) is not None:  # whatever it is, it is not a licence: never written as is
        note(request, valid=False, key=pseudonymous(uscc))
        return _invalid()
    answer = _answer(ctx, "business_license", {"uscc": value}, "status_code")
    note(request, rows=int(answer.found), snapshot=answer.snapshot.version if answer.snapshot else None)
    return _signed(answer)


@router.get("/birth_certificate/{certificate_no}", response_model=Verification)
def birth_certificate(request: Request, certificate_no: str, ctx: CtxDep,
                      _: CallerDep) -> Verification:
    note(request, entity="birth_registration", key=pseudonymous(certificate_no))
    value = pii.normalise("id_number", certificate_no) or ""
    if not BIRTH_CERTIFICATE.fullmatch(value):
        note(request, valid=False)
        return _invalid()
    pseudonym = pii.pseudonym("id_number", value, pii.pseudonym_key(settings().build_dir))
    answer = _answer(ctx, "birth_registration", {"birth_certificate_number_pseudonym": pseudonym}, None)
    note(request, rows=int(answer.found), snapshot=answer.snapshot.version if answer.snapshot else None)
    return _signed(answer)


keys_router = APIRouter(tags=["verify"])


@keys_router.get("/keys", response_model=KeyList,
                 description="The public keys that sign verification answers (Ed25519), old ones included.")
def keys() -> KeyList:
    return KeyList(keys=[PublicKey(**k) for k in signing.public_keys()])
