"""Finding, creating and authenticating users."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.accounts import throttle
from idp.accounts.models import User, normalize
from idp.accounts.passwords import hash_password, needs_rehash, verify_password
from idp.accounts.sessions import end_user_sessions
from idp.db import db, utcnow
from idp.migration.models import NATIVE_ID
from idp.oauth.server import revoke_user_grants


class UserExists(ValueError):
    """A user with that email already exists."""


def find_by_email(email: str, connection_id: str = NATIVE_ID) -> User | None:
    """Return the user of a connection with this email, whatever its case."""
    return db.session.scalar(select(User).where(
        User.connection_id == connection_id, User.email_normalized == normalize(email)))


def create_user(email: str, password: str | None, connection_id: str = NATIVE_ID, **profile: object) -> User:
    """Create a user with an argon2id-hashed password."""
    # Hashed first, so that an email already taken costs the same time as a new one.
    password_hash = hash_password(password) if password else None
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
    revoke_user_grants(user.id)
    end_user_sessions(user.id, keep=keep_session)
    db.session.commit()
    throttle.clear(user.connection_id, user.email)  # after the commit: counters write on their own


def check_password(user: User | None, password: str) -> User | None:
    """Return the user if the password is right; no user costs the same time (a dummy verify)."""
    if not verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None and user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # older parameters: upgrade now we know it
        db.session.commit()
    return user
