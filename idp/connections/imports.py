"""Moving many users into a connection at once, with the password hashes they had: the rest of a legacy
store (`idp migration finish`), a page of export_users at a time.

A page is one transaction: its users, their migration events and the export's cursor commit together,
so an interrupted run resumes after the last page it finished and a second run imports nothing new. A
user already in idp (moved over by a sign-in meanwhile, or by an earlier run) is skipped, never
duplicated: the insert skips whatever row would break the table's unique keys, and what it skipped is
then sorted into "already here" and "refused" (an id that belongs to a user with another email).
"""

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, func, or_, select
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
        """The summary as JSON (Auth0's job summary, and the refusals)."""
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
        _store(connection, users, summary)
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


def _store(connection: Connection, page: Iterable[Any], summary: Summary) -> None:
    """Insert a page's new users with their migration events; count the rest (the caller commits)."""
    incoming: dict[str, Exported] = {}  # by local id
    emails: set[str] = set()
    for value in page:
        email = value.get("email") if isinstance(value, dict) else None
        label = email if isinstance(email, str) else "(no email)"
        try:
            user = exported(value)
        except ProfileInvalid as error:
            _refused(connection, summary, label, str(error))
            continue
        local_id, email_key = user.profile.local_id(connection.id), normalize(user.profile.email)
        if local_id in incoming or email_key in emails:
            _refused(connection, summary, label, "the page has this user twice")
            continue
        incoming[local_id] = user
        emails.add(email_key)
    if not incoming:
        return
    now = utcnow()
    rows = [_row(connection, local_id, user, now) for local_id, user in incoming.items()]
    inserted = set(db.session.scalars(_insert(rows).returning(User.id)))
    summary.inserted += len(inserted)
    if inserted:
        db.session.execute(MigrationEvent.__table__.insert(), [
            {"connection_id": connection.id, "type": legacy.MIGRATED, "source": IMPORT, "user_id": local_id,
             "email": normalize(incoming[local_id].profile.email), "duration_ms": 0, "at": now}
            for local_id in inserted])
    left = {local_id: user for local_id, user in incoming.items() if local_id not in inserted}
    if left:
        _sort_out(connection, left, summary)


def _sort_out(connection: Connection, left: dict[str, Exported], summary: Summary) -> None:
    """Tell the users the insert skipped apart: already here, or holding another user's id."""
    by_email = {normalize(user.profile.email): local_id for local_id, user in left.items()}
    owners = db.session.execute(select(User.id, User.email_normalized).where(
        User.connection_id == connection.id,
        or_(User.id.in_(list(left)), User.email_normalized.in_(list(by_email))))).all()
    emails_by_id = {owner_id: email for owner_id, email in owners}
    for local_id, user in left.items():
        email = normalize(user.profile.email)
        if local_id in emails_by_id and emails_by_id[local_id] != email:
            _refused(connection, summary, user.profile.email,
                     f"the profile's `user_id` {user.profile.user_id!r} already belongs to a user with "
                     "another email: two legacy users cannot share an account")
        else:
            summary.skipped += 1


def _refused(connection: Connection, summary: Summary, email: str, reason: str) -> None:
    logger.error("connection %s: not imported: %s", connection.name, reason)
    legacy.record(connection, legacy.PROFILE_REJECTED, source=IMPORT, email=email[:320], detail=reason)
    summary.refuse(email, reason)


def _row(connection: Connection, local_id: str, user: Exported, now: Any) -> dict[str, Any]:
    profile = user.profile
    return {
        "id": local_id, "connection_id": connection.id, "email": profile.email,
        "email_normalized": normalize(profile.email), "email_verified": profile.email_verified,
        "password_hash": user.password_hash, "name": profile.name, "given_name": profile.given_name,
        "family_name": profile.family_name, "nickname": profile.nickname, "picture": profile.picture,
        "created_at": now, "updated_at": now, "user_metadata": profile.user_metadata,
        "app_metadata": profile.app_metadata, "migrated_at": now, "legacy_id": profile.user_id,
        "migrated_via": IMPORT, "logins_count": 0,
    }


def _insert(rows: list[dict[str, Any]]) -> Insert:
    """One INSERT of every row that breaks no unique key (ON CONFLICT DO NOTHING, on both databases)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(User).values(rows).on_conflict_do_nothing()
