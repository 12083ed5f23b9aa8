"""The single-use tokens behind emailed links."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Model, UTCDateTime, utcnow


class AccountToken(Model):
    """A single-use token behind an emailed link (email verification, password reset).

    A reset link for a legacy user who has not moved over yet has no user: it names the connection
    and the email, and the user is created from the legacy store when the link is used.
    """

    __tablename__ = "account_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))  # the address it was sent to
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
