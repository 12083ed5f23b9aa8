"""A circuit breaker per connection: while the legacy store is down, fail fast instead of waiting.

Failures are counted over BREAKER_WINDOW seconds, each email at most once, so that one address
whose legacy data the script cannot handle (knowable to anyone) cannot stop everyone's logins; an
outage fails for every address. BREAKER_FAILURES such failures open the breaker for
BREAKER_COOLDOWN seconds. After that calls go through again: a success closes the breaker, and while
the window's failures still count, the next failure (of another address) opens it again at once.
The counts are the shared counters of `idp.counters`, so every worker and host agrees.
"""

import hashlib

from flask import current_app

from idp.counters import storage as _storage
from idp.users.models import normalize


def is_open(connection_id: str) -> bool:
    """Say whether calls to this connection's scripts should fail fast."""
    return bool(_storage().get(f"idp:breaker:open:{connection_id}"))


def failure(connection_id: str, email: str) -> bool:
    """Count a failed call for an email; return True when it opens the breaker."""
    config, storage = current_app.config, _storage()
    seen = f"idp:breaker:seen:{connection_id}:" + hashlib.sha256(normalize(email).encode()).hexdigest()
    if storage.incr(seen, config["BREAKER_WINDOW"]) > 1:
        return False
    failures = storage.incr(f"idp:breaker:fail:{connection_id}", config["BREAKER_WINDOW"])
    if failures >= config["BREAKER_FAILURES"]:
        storage.clear(f"idp:breaker:open:{connection_id}")
        storage.incr(f"idp:breaker:open:{connection_id}", config["BREAKER_COOLDOWN"])
        return True
    return False


def success(connection_id: str) -> None:
    """Close the breaker: the legacy store answered."""
    _storage().clear(f"idp:breaker:fail:{connection_id}")
