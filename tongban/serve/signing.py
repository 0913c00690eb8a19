"""Signed answers (电子印章 / 数字验证): an Ed25519 key signs every verification answer, so a province
relying on one can prove later what the exchange said.

Keys live in ``$TONGBAN_SIGNING_KEY_DIR`` or ``<build dir>/secrets/signing/`` (never under
``exchange/``), one PEM file per key, created on first use (mode 0600). The newest key signs; every
key's public half stays published (GET /api/v1/keys), so answers signed before a rotation still check.
The signature is over the canonical JSON (keys sorted, no spaces, UTF-8) of the answer without its
``signature`` member, plus ``key_id`` and ``signed_at``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tongban.common.config import settings
from tongban.serve.audit import canonical

KEY_DIR_ENV = "TONGBAN_SIGNING_KEY_DIR"
_lock = threading.Lock()


def key_dir() -> Path:
    value = os.environ.get(KEY_DIR_ENV, "").strip()
    path = Path(value).expanduser() if value else settings().build_dir / "secrets" / "signing"
    exchange = settings().exchange_dir.resolve()
    if path.resolve().is_relative_to(exchange):
        raise ValueError(f"the signing keys must not live in the exchange ({exchange}); set ${KEY_DIR_ENV} elsewhere")
    return path


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


def signed_message(answer: dict, key: str, signed_at: str) -> bytes:
    body = {k: v for k, v in answer.items() if k != "signature"}
    return canonical({"answer": body, "key_id": key, "signed_at": signed_at}).encode("utf-8")


def sign(answer: dict) -> dict:
    """``{key_id, signed_at, value}`` for ``answer`` (value: base64 Ed25519 signature)."""
    key = current_key()
    kid = key_id(key.public_key())
    signed_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    value = key.sign(signed_message(answer, kid, signed_at))
    return {"key_id": kid, "signed_at": signed_at, "value": base64.b64encode(value).decode()}


def check(answer: dict, keys: list[dict]) -> bool:
    """Whether ``answer['signature']`` is valid under one of the published ``keys`` (offline)."""
    sig = answer.get("signature") or {}
    for k in keys:
        if k["key_id"] == sig.get("key_id"):
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(k["public_key"]))
            try:
                public.verify(base64.b64decode(sig["value"]), signed_message(answer, sig["key_id"], sig["signed_at"]))
                return True
            except Exception:  # cryptography's InvalidSignature, or a malformed value
                return False
    return False
