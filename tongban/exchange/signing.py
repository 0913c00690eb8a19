"""Signatures (电子印章 / 数字验证): an Ed25519 key signs every snapshot manifest at publish and every
verification answer the served exchange gives, so a province relying on either can prove later what
the exchange said.

Keys live in ``$TONGBAN_SIGNING_KEY_DIR`` or ``<build dir>/secrets/signing/`` (never under
``exchange/``), one PEM file per key, created on first use (mode 0600). The newest key signs; every
key's public half stays published (``exchange/keys.json``, GET /api/v1/keys), so what was signed before
a rotation still checks.

One signed form for everything: the signature is over :func:`canonical` JSON (keys sorted, no spaces,
UTF-8) of ``{"answer": <the document without its "signature" member>, "key_id": ..., "signed_at": ...}``
(the member is called ``answer`` for manifests too: one form, one offline check). The document
carries ``"signature": {"key_id", "signed_at", "value"}`` (value: base64 of the 64-byte signature).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tongban.common.config import settings
from tongban.exchange.files import replaced_atomically

KEY_DIR_ENV = "TONGBAN_SIGNING_KEY_DIR"
#: the public keys beside the catalog: {"keys": [{key_id, algorithm, public_key, created}, ...]}
KEYS_FILE = "keys.json"
_lock = threading.Lock()


def canonical(value: object) -> str:
    """The one canonical JSON of tongban (signatures, the audit chain): keys sorted, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def key_dir() -> Path:
    value = os.environ.get(KEY_DIR_ENV, "").strip()
    path = Path(value).expanduser() if value else settings().build_dir / "secrets" / "signing"
    _outside(path, settings().exchange_dir)
    return path


def _outside(path: Path, exchange_root: Path) -> None:
    exchange = Path(exchange_root).resolve()
    if path.resolve().is_relative_to(exchange):
        raise ValueError(f"the signing keys must not live in the exchange ({exchange}); set ${KEY_DIR_ENV} elsewhere")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def _key_files() -> list[Path]:
    d = key_dir()
    return sorted(d.glob("ed25519-*.pem")) if d.is_dir() else []


def rotate() -> str:
    """Create a new signing key (the newest signs from now on); returns its key id."""
    with _lock:
        d = key_dir()
        d.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = d / f"ed25519-{stamp}-{key_id(key.public_key())}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return key_id(key.public_key())


def _load(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 key")
    return key


def current_key() -> Ed25519PrivateKey:
    files = _key_files()
    if not files:
        rotate()
        files = _key_files()
    return _load(files[-1])


def public_keys() -> list[dict]:
    """Every key's public half, oldest first: {key_id, algorithm, public_key (base64 raw), created}."""
    out = []
    for path in _key_files():
        public = _load(path).public_key()
        created = path.name.split("-")[1]
        out.append({"key_id": key_id(public), "algorithm": "Ed25519",
                    "public_key": base64.b64encode(_raw_public(public)).decode(), "created": created})
    return out


def write_public_keys(exchange_root: Path) -> Path:
    """Every public key, old ones included, as ``exchange/keys.json`` (replaced in one rename)."""
    root = Path(exchange_root)
    _outside(key_dir(), root)
    root.mkdir(parents=True, exist_ok=True)
    target, tmp = root / KEYS_FILE, root / f".{KEYS_FILE}.tmp-{secrets.token_hex(6)}"
    with replaced_atomically(target, tmp, lambda p: p.unlink(missing_ok=True)):
        tmp.write_text(json.dumps({"keys": public_keys()}, indent=2) + "\n", encoding="utf-8")
    return target


def signed_message(document: Mapping, key: str, signed_at: str) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return canonical({"answer": body, "key_id": key, "signed_at": signed_at}).encode("utf-8")


def sign(document: Mapping) -> dict:
    """``{key_id, signed_at, value}`` for ``document`` (value: base64 Ed25519 signature)."""
    key = current_key()
    kid = key_id(key.public_key())
    signed_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    value = key.sign(signed_message(document, kid, signed_at))
    return {"key_id": kid, "signed_at": signed_at, "value": base64.b64encode(value).decode()}


def signed(document: Mapping) -> dict:
    """``document`` with its ``signature`` member (a manifest as it is written at publish)."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return {**body, "signature": sign(body)}


def problem(document: Mapping, keys: Sequence[Mapping]) -> str | None:
    """Why ``document['signature']`` does not check under the published ``keys`` (offline), or None:
    ``unsigned``, ``signed by unknown key <id>``, ``signature does not match``."""
    sig = document.get("signature")
    if not sig:
        return "unsigned"
    if not isinstance(sig, Mapping):
        return "signature does not match"
    known = {k["key_id"]: k for k in keys}
    if sig.get("key_id") not in known:
        return f"signed by unknown key {str(sig.get('key_id'))[:32]}"
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(known[sig["key_id"]]["public_key"]))
    try:
        public.verify(base64.b64decode(sig["value"]), signed_message(document, sig["key_id"], sig["signed_at"]))
    except (InvalidSignature, KeyError, TypeError, ValueError):  # a changed document, or a malformed value
        return "signature does not match"
    return None


def check(document: Mapping, keys: Sequence[Mapping]) -> bool:
    """Whether ``document['signature']`` is valid under one of the published ``keys`` (offline)."""
    return problem(document, keys) is None
