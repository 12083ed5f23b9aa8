"""Finding, creating and authenticating users."""

from dataclasses import dataclass
from datetime import datetime

from blinker import Namespace
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from idp.db import db, utcnow
from idp.errors import InvalidInput
from idp.events import log as events
from idp.users import throttle
from idp.users.models import User, normalize
from idp.users.passwords import hash_password, needs_rehash, verify_password
from idp.users.sessions import end_user_sessions

# Sent with a user's id, before the caller commits, when everything issued on their old credentials
# must end; the OAuth layer revokes the user's grants (and so their refresh and access tokens).
credentials_changed = Namespace().signal("credentials-changed")


class UserExists(InvalidInput):
    """A user with that email already exists."""


@dataclass(frozen=True)
class Verified:
    """A user whose password was just checked, and when that password had last been changed."""

    user: User
    password_changed_at: datetime | None  # read with the hash that was checked


def find_by_email(email: str, connection_id: str) -> User | None:
    """Return the user of a connection with this email, whatever its case."""
    return db.session.scalar(select(User).where(
        User.connection_id == connection_id, User.email_normalized == normalize(email)))


def create_user(email: str, password: str | None, connection_id: str, **profile: object) -> User:
    """Create a user with an argon2id-hashed password; UserExists if the email is taken."""
    # Hashed first, so that an email already taken costs the same time as a new one.
    return add_user(email, hash_password(password) if password else None, connection_id, **profile)


def add_user(email: str, password_hash: str | None, connection_id: str, **profile: object) -> User:
    """Create a user with a password the caller hashed; UserExists if the email is taken."""
    if find_by_email(email, connection_id) is not None:
        raise UserExists(email)
    user = User(
        email=email.strip(), email_normalized=normalize(email), connection_id=connection_id,
        password_hash=password_hash, **profile,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # the same email signed up at the same moment
        db.session.rollback()
        raise UserExists(email) from None
    return user


def set_password(user: User, password: str, keep_session: str | None = None) -> None:
    """Change a password: every refresh token and every other session of the user ends."""
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    # The user's row first: a sign-in holding it (still_verified) finishes before the sessions are
    # ended below, so its session ends with them; one that comes after sees the change.
    db.session.flush()
    sign_out_everywhere(user.id, keep=keep_session)
    db.session.commit()
    throttle.clear(user.connection_id, user.email)  # after the commit: counters write on their own


def sign_out_everywhere(user_id: str, keep: str | None = None) -> None:
    """End every session of a user but `keep`, and everything issued to their apps; the caller commits."""
    credentials_changed.send(user_id)
    end_user_sessions(user_id, keep=keep)


def set_blocked(user: User, blocked: bool) -> None:
    """Block or unblock a user; blocking ends their sessions and everything issued to their apps. The
    caller commits."""
    if blocked and not user.blocked:
        sign_out_everywhere(user.id)
    user.blocked = blocked


def check_password(user: User | None, password: str) -> Verified | None:
    """Say whether the password is right; no user costs the same time (a dummy verify)."""
    password_hash, changed_at = (user.password_hash, user.password_changed_at) if user else (None, None)
    if not verify_password(password_hash, password):
        return None
    assert user is not None and password_hash is not None
    if needs_rehash(password_hash):
        user.password_hash = hash_password(password)  # older parameters: upgrade now we know it
        db.session.commit()
    return Verified(user, changed_at)


def still_verified(verified: Verified) -> bool:
    """Begin the transaction that signs the user in; say whether the checked password is still theirs.

    A password change committed after the check (a reset racing the sign-in) would otherwise leave
    the new session alive: the reset ends only the sessions that exist when it commits. The caller
    creates the session and commits in this same transaction, or rolls back.
    """
    user_id = verified.user.id
    # Written first, so that no password change commits until this transaction does (SQLite locks
    # the database, PostgreSQL the row); one that committed before is then read below.
    db.session.execute(update(User).where(User.id == user_id).values(last_login_at=utcnow())
                       .execution_options(synchronize_session=False))
    changed_at = db.session.scalar(select(User.password_changed_at).where(User.id == user_id))
    return changed_at == verified.password_changed_at


def list_users(connection_id: str | None = None) -> list[User]:
    """Return the users kept in idp's database (of one connection, or all), oldest first."""
    query = select(User).order_by(User.created_at, User.id)
    if connection_id is not None:
        query = query.where(User.connection_id == connection_id)
    return list(db.session.scalars(query))


def delete_user(user: User, connection: str) -> None:
    """Delete a user of a connection (by name), with its `sdu` event; the database's cascades take their
    sessions, grants, tokens, consents and links."""
    events.record(events.SUCCESS_DELETE_USER, "Deleted User", connection=connection,
                  connection_id=user.connection_id, user_id=user.id, user_name=user.email)
    db.session.delete(user)
    db.session.commit()
