"""Password hashing with argon2id (parameters from config) and the password policy."""

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from idp.migration import hashes
from idp.users.models import normalize

_hashers: dict[tuple[int, int, int], PasswordHasher] = {}
_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _hasher() -> PasswordHasher:
    config = current_app.config
    params = (config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_COST"], config["ARGON2_PARALLELISM"])
    if params not in _hashers:
        _hashers[params] = PasswordHasher(*params)
    return _hashers[params]


def hash_password(password: str) -> str:
    """Return an argon2id hash of the password."""
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash, spend the same time and fail (no user enumeration).

    A legacy hash a user was imported with is checked by its own algorithm, and then costs an argon2id
    computation too (the re-hash on success, a dummy check on failure), so that a wrong password takes
    at least as long as anyone else's.
    """
    hasher = _hasher()
    if password_hash is not None and password_hash.startswith("$argon2"):
        return _check(hasher, password_hash, password)
    if password_hash is not None and hashes.verify_imported(password, password_hash):
        return True  # the caller re-hashes it (needs_rehash)
    params = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if params not in _dummy_hashes:
        _dummy_hashes[params] = hasher.hash("dummy password for unknown accounts")
    _check(hasher, _dummy_hashes[params], password)
    return False


def _check(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Say whether a hash is not argon2id with the configured parameters (a legacy one, say)."""
    if not password_hash.startswith("$argon2id$"):
        return True
    try:
        return _hasher().check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


@cache
def _common() -> frozenset[str]:
    """Return the 30,000 most common passwords (zxcvbn's list from leaked password sets)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def policy_error(password: str, email: str) -> str | None:
    """Return why a new password is refused, or None when it is acceptable."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        return f"Use at least {minimum} characters."
    if len(password) > 1024:
        return "Use at most 1024 characters."
    lowered, address = password.lower(), normalize(email)
    if lowered in (address, address.split("@")[0]):
        return "Don't use your email address as your password."
    if lowered in _common():
        return "This password is too common. Choose one that is harder to guess."
    return None
