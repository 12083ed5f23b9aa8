"""Users and their SSO sessions."""

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Model, UTCDateTime, utcnow


def normalize(email: str) -> str:
    """Return the case-insensitive form of an email address."""
    return email.strip().lower()


def new_user_id() -> str:
    """Return a fresh, never-reused user id (the `sub`)."""
    return secrets.token_hex(12)


class User(Model):
    """A person who signs in; `id` is the `sub` and never changes."""

    __tablename__ = "users"
    # The management API's search (idp/management/search.py) orders by (created_at, id) and looks
    # users up by email_normalized, last_login_at and migrated_via (schema revision 0011).
    __table_args__ = (UniqueConstraint("connection_id", "email_normalized"),
                      Index("ix_users_created_at_id", "created_at", "id"))

    id: Mapped[str] = mapped_column(String(255), primary_key=True, default=new_user_id)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))  # its user store
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased copy: email is unique per connection, case-insensitively.
    email_normalized: Mapped[str] = mapped_column(String(320), index=True)
    email_verified: Mapped[bool] = mapped_column(default=False)
    # argon2id; or, until the user's first sign-in, a legacy hash they were imported with.
    password_hash: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    nickname: Mapped[str | None] = mapped_column(String(255))
    picture: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    app_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set for users imported from a legacy store: when, and the id the legacy store knows them by.
    migrated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    legacy_id: Mapped[str | None] = mapped_column(String(255))
    # How they moved over: "login", "password_reset" (or "import"); None for users who never moved.
    migrated_via: Mapped[str | None] = mapped_column(String(32), index=True)
    # Sign-ins that started a session, and the client address of the last one (Auth0's fields).
    logins_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # A blocked user cannot sign in (Auth0's `blocked`); blocking ends their sessions and grants.
    blocked: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_ip: Mapped[str | None] = mapped_column(String(64))
    # May sign in to the admin dashboard (`idp admins add`); checked again on every dashboard request.
    admin: Mapped[bool] = mapped_column(default=False, server_default=false())


class Session(Model):
    """A server-side SSO session; its id is the `sid` claim and lives in the signed cookie."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
