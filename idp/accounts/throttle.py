"""Per-account protection against password guessing: growing delays, then a temporary lock.

Counters are keyed by a digest of the normalized email, not by the user row, so an address
that has no account is throttled exactly like one that has (no user enumeration). They live in
Redis when IDP_REDIS_URL is set (shared by every worker and host), else in this process.
"""

import hashlib
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app
from limits.storage import Storage, storage_from_string

from idp.accounts.models import normalize


@dataclass(frozen=True)
class Wait:
    """An attempt refused for now: how long to wait, and whether the account is locked."""

    seconds: int
    locked: bool
    new: bool = False  # this very attempt locked it: tell the owner


def init_app(app: Flask) -> None:
    """Connect the counters' storage."""
    app.extensions["idp.throttle"] = storage_from_string(app.config["REDIS_URL"] or "memory://")


def _storage() -> Storage:
    return current_app.extensions["idp.throttle"]


def _key(kind: str, connection_id: str, email: str) -> str:
    account = f"{connection_id}\0{normalize(email)}"
    return f"idp:{kind}:" + hashlib.sha256(account.encode()).hexdigest()


def _remaining(key: str) -> int:
    return max(1, math.ceil(_storage().get_expiry(key) - time.time()))


def begin(connection_id: str, email: str) -> Wait | None:
    """Reserve a password attempt for an account, or say how long it must wait.

    The attempt is counted before the password is checked, so parallel attempts cannot slip past
    the limit between the check and the count.
    """
    storage = _storage()
    for kind, locked in (("lock", True), ("wait", False)):
        key = _key(kind, connection_id, email)
        if storage.get(key):
            return Wait(_remaining(key), locked=locked)
    attempts = storage.incr(_failures(connection_id, email), current_app.config["FAILURE_WINDOW"])
    if attempts > current_app.config["LOCKOUT_THRESHOLD"]:
        _lock(connection_id, email)
        return Wait(_remaining(_key("lock", connection_id, email)), locked=True, new=True)
    return None


def _failures(connection_id: str, email: str) -> str:
    """Return the key counting failures since the account's last lock."""
    # A lock starts a new count under a new key instead of clearing the old one: an attempt that
    # passed the lock check just before the lock still counts on the old, full key, and is refused.
    locks = _storage().get(_key("locks", connection_id, email))
    return _key(f"fail{locks}", connection_id, email)


def _lock(connection_id: str, email: str) -> None:
    config, storage = current_app.config, _storage()
    storage.clear(_key("lock", connection_id, email))
    storage.incr(_key("lock", connection_id, email), config["LOCKOUT_SECONDS"])
    # Outlives every failure key counted before it, so the count never restarts on a full key.
    storage.incr(_key("locks", connection_id, email), config["FAILURE_WINDOW"] + config["LOCKOUT_SECONDS"])


def failed(connection_id: str, email: str) -> bool:
    """Settle a reserved attempt whose password was wrong; return True when it locks the account."""
    config, storage = current_app.config, _storage()
    if storage.get(_key("lock", connection_id, email)):
        return False  # a parallel attempt locked it already
    attempts = storage.get(_failures(connection_id, email))
    if attempts >= config["LOCKOUT_THRESHOLD"]:
        _lock(connection_id, email)
        return True
    if attempts >= config["THROTTLE_AFTER"]:
        delay = min(2 ** (attempts - config["THROTTLE_AFTER"]), config["THROTTLE_MAX_DELAY"])
        storage.incr(_key("wait", connection_id, email), delay)
    return False


def clear(connection_id: str, email: str) -> None:
    """Forget the failures and lift any lock (after a successful sign-in or a password reset)."""
    storage = _storage()
    storage.clear(_failures(connection_id, email))
    for kind in ("wait", "lock"):
        storage.clear(_key(kind, connection_id, email))
