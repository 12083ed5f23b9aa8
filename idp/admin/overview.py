"""The overview's figures: users, each connection's migration, recent failures, signing keys, clients."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from idp import redact
from idp.connections import registry, status
from idp.connections.legacy import MIGRATED, PROFILE_REJECTED, SCRIPT_ERROR, imports
from idp.connections.models import Connection, MigrationEvent
from idp.db import db, utcnow
from idp.keys import store
from idp.keys.models import CURRENT, NEXT, PREVIOUS
from idp.oauth.models import Client
from idp.users.models import User

DAY, WEEK = timedelta(days=1), timedelta(days=7)
# What went wrong on idp's side of a migration: a script failing, a legacy profile refused. (A wrong
# password at the legacy store is the user's, not a failure.)
FAILURES = (SCRIPT_ERROR, PROFILE_REJECTED)


@dataclass
class ConnectionFigures:
    """One connection: its users here and, while it migrates, how the moving goes."""

    name: str
    users: int
    migrating: bool  # users still move over from its legacy store
    disconnected: bool
    moved_day: int = 0
    moved_week: int = 0
    moved: int = 0  # every user moved over, however
    failures_day: int = 0
    legacy_total: int | None = None  # with a count_users script
    remaining: int | None = None
    count_error: str | None = None


@dataclass
class KeyFigures:
    """The signing keys: which one signs, since when, and how long the next one has been published."""

    current: str | None
    current_since: datetime | None
    next: str | None
    next_age: timedelta | None
    next_safe_at: datetime | None  # before this, rotating could break relying parties' cached JWKS
    previous: int


@dataclass
class Overview:
    """Everything the overview page shows, as of a moment."""

    at: datetime
    users: int
    admins: int
    clients: int
    keys: KeyFigures
    connections: list[ConnectionFigures] = field(default_factory=list)

    @property
    def failures_day(self) -> int:
        """Migration failures of the last 24 hours, every connection together."""
        return sum(c.failures_day for c in self.connections)

    @property
    def migrating(self) -> list[ConnectionFigures]:
        """The connections that migrated at some point (still migrating, or disconnected since)."""
        return [c for c in self.connections if c.migrating or c.disconnected]


def _count(query: Any) -> int:
    return db.session.scalar(query) or 0


def _events_since(since: datetime) -> dict[tuple[str, str], int]:
    """Return the migration events since a moment, counted by (connection id, type)."""
    rows = db.session.execute(
        select(MigrationEvent.connection_id, MigrationEvent.type, func.count())
        .where(MigrationEvent.at >= since, MigrationEvent.type.in_((MIGRATED, *FAILURES)))
        .group_by(MigrationEvent.connection_id, MigrationEvent.type))
    return {(str(connection), str(type_)): count for connection, type_, count in rows}


def _connection(connection: Connection, users: int, day: dict[tuple[str, str], int],
                week: dict[tuple[str, str], int]) -> ConnectionFigures:
    figures = ConnectionFigures(connection.name, users, imports(connection),
                                connection.disconnected_at is not None)
    if not connection.migrating:
        return figures
    report = status.status(connection)  # counts the legacy store's users when it has count_users
    figures.moved = report["migrated"]
    figures.moved_day = day.get((connection.id, MIGRATED), 0)
    figures.moved_week = week.get((connection.id, MIGRATED), 0)
    figures.failures_day = sum(day.get((connection.id, kind), 0) for kind in FAILURES)
    figures.legacy_total, figures.remaining = report.get("legacy_total"), report.get("remaining")
    if report.get("count_error"):
        # Scrubbed where it was raised; scrubbed again here, since this page shows it.
        secrets = redact.secrets_in(connection.configuration)
        figures.count_error = redact.scrub(report["count_error"], secrets)
    return figures


def _keys() -> KeyFigures:
    keys = store.published_keys()
    current = next((k for k in keys if k.state == CURRENT), None)
    upcoming = next((k for k in keys if k.state == NEXT), None)
    return KeyFigures(
        current=current.kid if current else None,
        current_since=(current.activated_at or current.created_at) if current else None,
        next=upcoming.kid if upcoming else None,
        next_age=utcnow() - upcoming.created_at if upcoming else None,
        next_safe_at=store.unsafe_until(upcoming) if upcoming else None,
        previous=sum(1 for k in keys if k.state == PREVIOUS),
    )


def overview() -> Overview:
    """Gather the overview's figures."""
    now = utcnow()
    day, week = _events_since(now - DAY), _events_since(now - WEEK)
    per_connection = {str(connection): int(count) for connection, count in db.session.execute(
        select(User.connection_id, func.count()).group_by(User.connection_id))}
    return Overview(
        at=now,
        users=_count(select(func.count()).select_from(User)),
        admins=_count(select(func.count()).select_from(User).where(User.admin.is_(True))),
        clients=_count(select(func.count()).select_from(Client)),
        keys=_keys(),
        connections=[_connection(c, per_connection.get(c.id, 0), day, week)
                     for c in registry.all_connections()],
    )
