"""What `idp migration status` and the management API's migration statistics report: who moved over,
how, when, and what failed lately or in a window of days."""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select

from idp import cache
from idp.connections.imports import legacy_total, moved
from idp.connections.legacy import (
    LOGIN_FAILED,
    MIGRATED,
    PROFILE_REJECTED,
    SCRIPT_ERROR,
    LegacyUnavailable,
    imports,
)
from idp.connections.models import Connection, MigrationEvent
from idp.db import db

RECENT = 10
WAYS = ("login", "password_reset", "import")  # how a user moves over: MigrationEvent.source of "migrated"
# What goes wrong: a script failing, a profile refused, and a wrong email or password at the legacy store.
FAILURES = (SCRIPT_ERROR, PROFILE_REJECTED, LOGIN_FAILED)


def status(connection: Connection) -> dict[str, Any]:
    """Return a connection's migration progress."""
    rows = db.session.execute(
        select(MigrationEvent.source, func.count()).where(
            MigrationEvent.connection_id == connection.id, MigrationEvent.type == MIGRATED)
        .group_by(MigrationEvent.source)
    )
    by_source = {str(source): count for source, count in rows}
    last = db.session.scalar(select(func.max(MigrationEvent.at)).where(
        MigrationEvent.connection_id == connection.id, MigrationEvent.type == MIGRATED))
    failures = db.session.scalars(
        select(MigrationEvent).where(MigrationEvent.connection_id == connection.id,
                                     MigrationEvent.type.in_((SCRIPT_ERROR, PROFILE_REJECTED)))
        .order_by(MigrationEvent.at.desc(), MigrationEvent.id.desc()).limit(RECENT)
    )
    report = {
        "connection": connection.name,
        "migrated": sum(by_source.values()),
        "by_source": dict(sorted(by_source.items())),
        "last_migrated_at": last.isoformat() if last else None,
        "disconnected_at": connection.disconnected_at.isoformat() if connection.disconnected_at else None,
        "recent_failures": [event.as_dict() for event in failures],
    }
    return report | _left(connection)


def _left(connection: Connection) -> dict[str, Any]:
    """How many users the legacy store has and how many of them are not in idp yet, if it can count."""
    if not connection.count_users_script or not imports(connection):
        return {}
    script = hashlib.sha256(connection.count_users_script.encode()).hexdigest()
    key = (connection.id, script, json.dumps(connection.configuration, sort_keys=True))
    total, error = _counts.get(key, lambda: _count(connection))
    if total is None:
        return {"legacy_total": None, "remaining": None, "count_error": error}
    return {"legacy_total": total, "remaining": max(0, total - moved(connection))}


_counts: cache.Recent[tuple[int | None, str | None]] = cache.Recent("LEGACY_COUNT_MAX_AGE")


def _count(connection: Connection) -> tuple[int | None, str | None]:
    """Ask the legacy store how many users it has: the number, or None and why it cannot say."""
    try:
        total = legacy_total(connection)
    except LegacyUnavailable as error:
        return None, str(error)[:500]
    assert total is not None
    return total, None


def _day(column: Any) -> Any:
    """The UTC calendar day of a timestamp column, in SQL (PostgreSQL's sessions may have another zone)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # SQLite keeps UTC timestamps as text


def window(connection: Connection, first: date, last: date) -> dict[str, Any]:
    """Return migrations per UTC day by way, and failures by type, in all and per day, from `first` to
    `last` (both included)."""
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    day = _day(MigrationEvent.at)
    rows = db.session.execute(
        select(day, MigrationEvent.type, MigrationEvent.source, func.count())
        .where(MigrationEvent.connection_id == connection.id, MigrationEvent.at >= start,
               MigrationEvent.at < end, MigrationEvent.type.in_((MIGRATED, *FAILURES)))
        .group_by(day, MigrationEvent.type, MigrationEvent.source)
    )
    dates = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    days = {key: dict.fromkeys(WAYS, 0) for key in dates}
    failed = {key: dict.fromkeys(FAILURES, 0) for key in dates}
    failures = dict.fromkeys(FAILURES, 0)
    for moment, type_, source, count in rows:
        if type_ != MIGRATED:
            failures[type_] += count
            if (kinds := failed.get(str(moment)[:10])) is not None:
                kinds[type_] += count
        elif (counts := days.get(str(moment)[:10])) is not None and source in counts:
            counts[source] += count
    return {"daily": [{"date": key, **counts} for key, counts in days.items()], "failures": failures,
            "daily_failures": [{"date": key, **kinds} for key, kinds in failed.items()]}
