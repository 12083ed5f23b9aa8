"""A circuit breaker per connection: while the legacy store is down, fail fast instead of waiting.

Failures are counted over BREAKER_WINDOW seconds; BREAKER_FAILURES of them open the breaker for
BREAKER_COOLDOWN seconds. After that one call may try again: a success closes the breaker, a
failure opens it at once for another cooldown. Counters share the lockout storage (Redis when
configured), so every worker and host agrees.
"""

from flask import current_app
from limits.storage import Storage


def _storage() -> Storage:
    return current_app.extensions["idp.throttle"]


def is_open(connection_id: str) -> bool:
    """Say whether calls to this connection's scripts should fail fast."""
    return bool(_storage().get(f"idp:breaker:open:{connection_id}"))


def failure(connection_id: str) -> bool:
    """Count a failed call; return True when it opens the breaker."""
    config, storage = current_app.config, _storage()
    failures = storage.incr(f"idp:breaker:fail:{connection_id}", config["BREAKER_WINDOW"])
    if failures >= config["BREAKER_FAILURES"]:
        storage.clear(f"idp:breaker:open:{connection_id}")
        storage.incr(f"idp:breaker:open:{connection_id}", config["BREAKER_COOLDOWN"])
        return True
    return False


def success(connection_id: str) -> None:
    """Close the breaker: the legacy store answered."""
    _storage().clear(f"idp:breaker:fail:{connection_id}")
