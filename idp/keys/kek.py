"""The key-encryption key that protects private signing keys at rest."""

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from idp.errors import ConfigurationError


class KeyEncryptionKeyError(ConfigurationError):
    """The key-encryption key is missing or does not open the stored keys."""


def kek_path() -> Path:
    """Return where the key-encryption key file lives."""
    configured = current_app.config["KEYS_DIR"]
    base = Path(configured) if configured else Path(current_app.instance_path).parent / "keys"
    return base / "kek"


def create_kek() -> bool:
    """Write a new key-encryption key file unless one is configured or exists; say if written."""
    path = kek_path()
    if current_app.config["KEY_ENCRYPTION_KEY"] or path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(Fernet.generate_key())
    return True


def _fernet() -> Fernet:
    key = current_app.config["KEY_ENCRYPTION_KEY"]
    if not key:
        path = kek_path()
        if not path.exists():
            raise KeyEncryptionKeyError(
                f"no key-encryption key: run `idp init` or set IDP_KEY_ENCRYPTION_KEY ({path})"
            )
        key = path.read_bytes().strip()
    return Fernet(key)


def check() -> None:
    """Fail at start-up, with the fix in the message, when no key-encryption key is available."""
    _fernet()


def encrypt(data: bytes) -> bytes:
    """Encrypt private key material."""
    return _fernet().encrypt(data)


def decrypt(token: bytes) -> bytes:
    """Decrypt private key material."""
    try:
        return _fernet().decrypt(token)
    except InvalidToken:
        raise KeyEncryptionKeyError("the key-encryption key does not open the signing keys") from None
