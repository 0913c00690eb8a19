"""The pseudonym key: where it comes from (``$TONGBAN_PSEUDONYM_KEY`` in production, else a local
key file made on first use) and how it is refused when it is too short or unreadable.

Never log or print a key: messages name the variable or the file, never its content.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
import warnings
from pathlib import Path

KEY_ENV = "TONGBAN_PSEUDONYM_KEY"
KEY_FILE_ENV = "TONGBAN_PSEUDONYM_KEY_FILE"
KEY_MIN_LENGTH = 32
KEY_HOWTO = 'python -c "import secrets; print(secrets.token_hex(32))"'


class PiiKeyError(RuntimeError):
    """The pseudonym key is missing, too short or unreadable."""


class PiiKeyWarning(UserWarning):
    """A local pseudonym key file is in use (fine for development, not for production)."""


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
