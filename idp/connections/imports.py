"""Moving many users into a connection at once, with the password hashes they had: the rest of a legacy
store (`idp migration finish`, a page of export_users at a time) and Auth0 users files (`jobs.py`).

A page is one transaction: its users, their migration events and where the next page starts (the
export's cursor, a job's position) commit together, so an interrupted run resumes after the last page
it finished and a second run imports nothing new. A
user already in idp (moved over by a sign-in meanwhile, or by an earlier run) is skipped, never
duplicated: the insert skips whatever row would break the table's unique keys, and what it skipped is
then sorted into "already here" and "refused" (an id that belongs to a user with another email).
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Insert,
    Table,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from idp.connections import legacy
from idp.connections.models import Connection, MigrationEvent
from idp.db import db, utcnow
from idp.events import log as events
from idp.migration.profiles import Exported, ProfileInvalid, exported
from idp.users.models import User, normalize

logger = logging.getLogger("idp.migration")

IMPORT = "import"  # the way these users moved over (User.migrated_via, MigrationEvent.source)
MAX_PAGE = 10_000  # users one export_users call may return
ERRORS_KEPT = 100  # refused users a summary names; all of them are logged and recorded


@dataclass
class Summary:
    """What an import did."""

    inserted: int = 0
    skipped: int = 0  # already in idp
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # the first ERRORS_KEPT refusals: email and why

    @property
    def total(self) -> int:
        """Every user looked at."""
        return self.inserted + self.skipped + self.failed

    def refuse(self, email: str, reason: str) -> None:
        """Count a refused user, naming them while few have been."""
        self.failed += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(f"{email}: {reason}")

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON, for the `sui` log event."""
        return {"inserted": self.inserted, "skipped": self.skipped, "failed": self.failed,
                "total": self.total, "errors": self.errors}


def legacy_total(connection: Connection) -> int | None:
    """Return how many users the legacy store has (count_users), or None when it cannot say."""
    if not connection.count_users_script or not legacy.imports(connection):
        return None
    value = legacy.run(connection, "count_users")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise legacy.LegacyUnavailable("count_users: it must return a number of users (an int, 0 or more)")
    return value


def moved(connection: Connection) -> int:
    """Return how many of the connection's users came from its legacy store."""
    query = select(func.count()).where(User.connection_id == connection.id, User.legacy_id.is_not(None))
    return db.session.scalar(query) or 0


def finish(connection: Connection, progress: Callable[[int], None] = lambda n: None) -> Summary:
    """Import every legacy user not moved over yet, a page of export_users at a time, from where an
    interrupted run stopped; `progress` hears how many users each page held."""
    if not connection.export_users_script or not legacy.imports(connection):
        raise legacy.LegacyUnavailable(f"{connection.name} has no export_users script")
    summary = Summary()
    cursor = json.loads(connection.export_cursor) if connection.export_cursor else None
    while True:
        users, following = _page(connection, cursor)
        _count(connection, summary, users)
        # The page's users and where the next one starts commit together: a rerun resumes here.
        connection.export_cursor = None if following is None else json.dumps(following)
        db.session.commit()
        progress(len(users))
        if following is None:
            break
        cursor = following
    events.record(events.SUCCESS_IMPORT, "Successfully imported users", connection=connection.name,
                  connection_id=connection.id, details={"via": IMPORT, "summary": summary.as_dict()})
    db.session.commit()
    return summary


def _count(connection: Connection, summary: Summary, page: list[Any]) -> None:
    """Store a page of exported users; count what happened, and log and record every refusal."""
    incoming, refused = [], []
    for value in page:
        try:
            user = exported(value)
        except ProfileInvalid as error:
            refused.append(Refusal(value, "INVALID", str(error)))
            continue
        incoming.append(Incoming(value, user, user.profile.local_id(connection.id), user.profile.user_id))
    stored = store(connection, incoming)
    summary.inserted += stored.inserted
    summary.skipped += len(stored.existing)
    for refusal in refused + stored.refused:
        email = refusal.value.get("email") if isinstance(refusal.value, dict) else None
        label = email[:320] if isinstance(email, str) else "(no email)"
        logger.error("connection %s: not imported: %s", connection.name, refusal.message)
        legacy.record(connection, legacy.PROFILE_REJECTED, source=IMPORT, email=label, detail=refusal.message)
        summary.refuse(label, refusal.message)


def _page(connection: Connection, cursor: Any) -> tuple[list[Any], Any]:
    """Call export_users and check the shape of what it returned."""
    value = legacy.run(connection, "export_users", cursor)
    if not isinstance(value, dict) or not isinstance(value.get("users"), list):
        raise legacy.LegacyUnavailable(
            'export_users: it must return {"users": [profile…], "next": cursor or None}')
    users, following = value["users"], value.get("next")
    if len(users) > MAX_PAGE:
        raise legacy.LegacyUnavailable(f"export_users: a page holds at most {MAX_PAGE} users")
    if following is not None and (following == cursor or not users):
        # A cursor that does not move, or pages that stay empty, would loop forever.
        raise legacy.LegacyUnavailable("export_users: `next` must move on, and come with users")
    return users, following


@dataclass(frozen=True)
class Incoming:
    """A user to import: what the script or file gave (for error reports), and what it becomes."""

    value: Any
    user: Exported
    local_id: str  # the id the user gets in idp
    legacy_id: str | None  # the id the store or file knew them by
    updates: dict[str, Any] = field(default_factory=dict)  # what an upsert sets on a user already here
    blocked: bool = False


@dataclass(frozen=True)
class Refusal:
    """A user not imported, and why (Auth0's import error codes)."""

    value: Any
    code: str
    message: str


@dataclass
class Stored:
    """What storing a page did."""

    inserted: int = 0
    updated: int = 0
    existing: list[Incoming] = field(default_factory=list)  # already in idp, left as they are
    refused: list[Refusal] = field(default_factory=list)


def store(connection: Connection, page: list[Incoming], *, upsert: bool = False) -> Stored:
    """Insert a page's new users with their migration events, and with `upsert` update those already
    here (matched by email) with what the page gives; the caller commits."""
    stored, incoming, emails = Stored(), {}, set()
    for item in page:
        email = normalize(item.user.profile.email)
        if item.local_id in incoming or email in emails:
            stored.refused.append(Refusal(item.value, "DUPLICATED_USER", "The user appears twice in a page."))
            continue
        incoming[item.local_id] = item
        emails.add(email)
    if not incoming:
        return stored
    now = utcnow()
    rows = [_row(connection, item, now) for item in incoming.values()]
    inserted = set(_insert(User.__table__, rows, returning=User.__table__.c.id))
    stored.inserted = len(inserted)
    if inserted:
        _insert(MigrationEvent.__table__, [
            {"connection_id": connection.id, "type": legacy.MIGRATED, "source": IMPORT, "user_id": local_id,
             "email": normalize(incoming[local_id].user.profile.email), "duration_ms": 0, "at": now}
            for local_id in inserted])
    left = [item for local_id, item in incoming.items() if local_id not in inserted]
    if left:
        _sort_out(connection, left, stored, upsert, now)
    return stored


def _sort_out(connection: Connection, left: list[Incoming], stored: Stored, upsert: bool, now: Any) -> None:
    """Tell the users the insert skipped apart: already here (updated with `upsert`), or holding the id
    of a user with another email."""
    emails = [normalize(item.user.profile.email) for item in left]
    owners = db.session.execute(select(User.id, User.email_normalized).where(
        User.connection_id == connection.id,
        or_(User.id.in_([item.local_id for item in left]), User.email_normalized.in_(emails)))).all()
    email_of = {owner_id: email for owner_id, email in owners}
    id_of = {email: owner_id for owner_id, email in owners}
    for item, email in zip(left, emails, strict=True):
        if item.local_id in email_of and email_of[item.local_id] != email:
            stored.refused.append(Refusal(item.value, "CONFLICT", (
                f"The user_id {item.user.profile.user_id!r} belongs to a user with another email: two users "
                "cannot share an account.")))
        elif upsert and email in id_of:
            if item.updates:
                db.session.execute(update(User).where(User.id == id_of[email])
                                   .values(**item.updates, updated_at=now))
            stored.updated += 1
        else:
            stored.existing.append(item)


def _row(connection: Connection, item: Incoming, now: Any) -> dict[str, Any]:
    profile, user = item.user.profile, item.user
    return {
        "id": item.local_id, "connection_id": connection.id, "email": profile.email,
        "email_normalized": normalize(profile.email), "email_verified": profile.email_verified,
        "password_hash": user.password_hash, "name": profile.name, "given_name": profile.given_name,
        "family_name": profile.family_name, "nickname": profile.nickname, "picture": profile.picture,
        "created_at": now, "updated_at": now, "user_metadata": profile.user_metadata,
        "app_metadata": profile.app_metadata, "migrated_at": now, "legacy_id": item.legacy_id,
        "migrated_via": IMPORT, "logins_count": 0, "blocked": item.blocked,
    }


def _insert(table: Table, rows: list[dict[str, Any]], returning: Column[Any] | None = None) -> list[Any]:
    """Insert the rows that break no unique key (ON CONFLICT DO NOTHING); return `returning` of those.

    On PostgreSQL the rows travel as one JSON parameter (json_populate_recordset): a statement with
    thousands of bind parameters costs the driver more to prepare than the database to run.
    """
    statement: Insert
    if db.session.get_bind().dialect.name == "postgresql":
        names = list(rows[0])
        data = cast(bindparam("rows", json.dumps(rows, default=_iso), type_=Text), JSON)  # encoded once
        records = func.json_populate_recordset(literal_column(f'NULL::"{table.name}"'), data)
        source = select(*records.table_valued(*names).c)
        statement = postgresql.insert(table).from_select(names, source).on_conflict_do_nothing()
        parameters = None
    else:
        statement, parameters = sqlite.insert(table).on_conflict_do_nothing(), rows
    if returning is None:
        db.session.execute(statement, parameters)
        return []
    return list(db.session.scalars(statement.returning(returning), parameters))


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
