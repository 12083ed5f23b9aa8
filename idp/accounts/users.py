"""Finding, creating and authenticating users."""

from sqlalchemy import select

from idp.accounts.models import User
from idp.accounts.passwords import hash_password, needs_rehash, verify_password
from idp.db import db


class UserExists(ValueError):
    """A user with that email already exists."""


def normalize(email: str) -> str:
    """Return the case-insensitive form of an email address."""
    return email.strip().lower()


def find_by_email(email: str) -> User | None:
    """Return the user with this email, whatever its case."""
    return db.session.scalar(select(User).where(User.email_normalized == normalize(email)))


def create_user(email: str, password: str | None, **profile: object) -> User:
    """Create a user with an argon2id-hashed password."""
    if find_by_email(email) is not None:
        raise UserExists(email)
    user = User(
        email=email.strip(), email_normalized=normalize(email),
        password_hash=hash_password(password) if password else None, **profile,
    )
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the user if the password is right; unknown emails cost the same time."""
    user = find_by_email(email)
    if not verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None and user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # older parameters: upgrade now we know it
        db.session.commit()
    return user
