"""Writing log events: `record` adds one to the current session (the caller commits, with the thing
the event tells of), and old events are pruned now and then.

Nothing secret goes in: callers pass names, ids, addresses and error messages, never a password,
token, code or configuration value; `details` holds only what each call site builds from such fields.
"""

import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import delete

from idp.db import db, utcnow
from idp.events.models import LogEvent

# Auth0's type codes, and our own `migration`.
SUCCESS_LOGIN, FAILED_LOGIN, WRONG_PASSWORD, UNKNOWN_USER = "s", "f", "fp", "fu"
SUCCESS_SIGNUP, FAILED_SIGNUP = "ss", "fs"
SUCCESS_CHANGE_PASSWORD, FAILED_CHANGE_PASSWORD, CHANGE_PASSWORD_REQUEST = "scp", "fcp", "scpr"
SUCCESS_CLIENT_CREDENTIALS, FAILED_CLIENT_CREDENTIALS = "seccft", "feccft"
SUCCESS_REFRESH, FAILED_REFRESH = "sertft", "fertft"
SUCCESS_API, SUCCESS_DELETE_USER = "sapi", "sdu"
SUCCESS_IMPORT, FAILED_IMPORT = "sui", "fui"
MIGRATION = "migration"  # a legacy user moved over (Auth0 has no such type: a lazy migration is an `s`)

PRUNE_INTERVAL = 3600.0  # seconds between two prunings in one process
_pruned = {"at": 0.0}
_lock = threading.Lock()


def new_log_id() -> str:
    """A log id that sorts by time: microseconds since the epoch (17 digits), then 12 random hex digits."""
    return f"{time.time_ns() // 1000:017d}{secrets.token_hex(6)}"


def _clip(value: str | None, limit: int) -> str | None:
    # PostgreSQL refuses NUL in text, and a request can carry one (a path, a header).
    return value.replace("\x00", "\ufffd")[:limit] if value else None


def columns(type_: str, description: str | None = None, *, connection: str | None = None,
            connection_id: str | None = None, client_id: str | None = None, client_name: str | None = None,
            user_id: str | None = None, user_name: str | None = None, audience: str | None = None,
            scope: str | None = None, details: dict[str, Any] | None = None,
            database: bool = True) -> dict[str, Any]:
    """Return a log event's columns, with the request's address, user agent and host (none outside one).

    `database` marks events of a database connection (strategy "auth0", strategy_type "database").
    """
    ip = user_agent = hostname = None
    if has_request_context():
        ip, user_agent, hostname = request.remote_addr, request.headers.get("User-Agent"), request.host
    return {
        "log_id": new_log_id(), "date": utcnow(), "type": type_, "description": _clip(description, 2000),
        "connection": _clip(connection, 128), "connection_id": _clip(connection_id, 64),
        "client_id": _clip(client_id, 64), "client_name": _clip(client_name, 255), "ip": _clip(ip, 64),
        "user_agent": _clip(user_agent, 512), "hostname": _clip(hostname, 255),
        "user_id": _clip(user_id, 255), "user_name": _clip(user_name, 320),
        "audience": _clip(audience, 2048), "scope": _clip(scope, 4000),
        "strategy": "auth0" if database else None, "strategy_type": "database" if database else None,
        "details": details or {},
    }


def build(type_: str, description: str | None = None, **fields: Any) -> LogEvent:
    """Return a log event (see `columns`)."""
    return LogEvent(**columns(type_, description, **fields))


def record(type_: str, description: str | None = None, **fields: Any) -> LogEvent:
    """Add a log event to the session (see `build`); the caller commits, with what the event tells of."""
    event = build(type_, description, **fields)
    db.session.add(event)
    prune_now_and_then()
    return event


def prune(now: datetime | None = None) -> int:
    """Delete, in the current transaction, the events older than LOG_RETENTION_DAYS; return how many."""
    days = float(current_app.config.get("LOG_RETENTION_DAYS", 30))
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = db.session.execute(delete(LogEvent).where(LogEvent.date < cutoff)
                                .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_now_and_then() -> None:
    """Prune at most once every PRUNE_INTERVAL seconds in this process, with the event being recorded."""
    now = time.monotonic()
    with _lock:
        if _pruned["at"] and now - _pruned["at"] < PRUNE_INTERVAL:
            return
        _pruned["at"] = now
    prune()


def forget_pruning() -> None:
    """Let the next recorded event prune again (tests)."""
    with _lock:
        _pruned["at"] = 0.0
