"""Per-account protection against password guessing: growing delays, then a temporary lock.

Counters are keyed by a digest of the normalized email, not by the user row, so an address
that has no account is throttled exactly like one that has (no user enumeration). They are the
shared counters of `idp.counters`, so every worker and host agrees.
"""

import hashlib
import math
import time
from dataclasses import dataclass

from flask import current_app

from idp import counters
from idp.users.models import normalize


@dataclass(frozen=True)
class Wait:
    """An attempt refused for now: how long to wait, and whether the account is locked."""

    seconds: int
    locked: bool
    new: bool = False  # this very attempt locked it: tell the owner


def _key(kind: str, connection_id: str, email: str) -> str:
    account = f"{connection_id}\0{normalize(email)}"
    return f"idp:{kind}:" + hashlib.sha256(account.encode()).hexdigest()


def _remaining(key: str) -> int:
    return max(1, math.ceil(counters.storage().get_expiry(key) - time.time()))


def begin(connection_id: str, email: str) -> Wait | None:
    """Reserve a password attempt for an account, or say how long it must wait.

    The attempt is counted before the password is checked, so parallel attempts cannot slip past
    the limit between the check and the count.
    """
    storage = counters.storage()
    lock = _key("lock", connection_id, email)
    for key, locked in ((lock, True), (_key("wait", connection_id, email), False)):
        if storage.get(key):
            return Wait(_remaining(key), locked=locked)
    attempts = storage.incr(_key("fail", connection_id, email), current_app.config["FAILURE_WINDOW"])
    # Looked at again after counting: a parallel attempt may have locked the account and restarted
    # the count since the first look, and this attempt may have been counted on the fresh count.
    if storage.get(lock):
        return Wait(_remaining(lock), locked=True)
    if attempts > current_app.config["LOCKOUT_THRESHOLD"]:
        # As many attempts as a lock allows are being checked right now: if they fail, they lock.
        return Wait(1, locked=False)
    return None


def _lock(connection_id: str, email: str) -> bool:
    """Lock an account and restart its failure count; return True when this call locked it."""
    storage = counters.storage()
    new = storage.incr(_key("lock", connection_id, email), current_app.config["LOCKOUT_SECONDS"]) == 1
    # Only after the lock is set: an attempt counted on the restarted count then sees the lock.
    storage.clear(_key("fail", connection_id, email))
    return new


def failed(connection_id: str, email: str) -> bool:
    """Settle a reserved attempt whose password was wrong; return True when it locks the account."""
    config, storage = current_app.config, counters.storage()
    if storage.get(_key("lock", connection_id, email)):
        return False  # a parallel attempt locked it already
    attempts = storage.get(_key("fail", connection_id, email))
    if attempts >= config["LOCKOUT_THRESHOLD"]:
        return _lock(connection_id, email)
    if attempts >= config["THROTTLE_AFTER"]:
        delay = min(2 ** (attempts - config["THROTTLE_AFTER"]), config["THROTTLE_MAX_DELAY"])
        storage.incr(_key("wait", connection_id, email), delay)
    return False


def clear(connection_id: str, email: str) -> None:
    """Forget the failures and lift any lock (after a successful sign-in or a password reset)."""
    storage = counters.storage()
    for kind in ("fail", "wait", "lock"):
        storage.clear(_key(kind, connection_id, email))
