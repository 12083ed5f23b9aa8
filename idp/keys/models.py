"""The signing-key table."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Model, UTCDateTime, utcnow

NEXT, CURRENT, PREVIOUS, RETIRED, REVOKED = "next", "current", "previous", "retired", "revoked"
PUBLISHED = (NEXT, CURRENT, PREVIOUS)


class SigningKey(Model):
    """An RSA key pair; its private half is encrypted with the key-encryption key."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        # At most one current and one next key, whatever several instances try at once.
        Index(
            "uq_signing_keys_current", "state", unique=True,
            sqlite_where=text("state = 'current'"), postgresql_where=text("state = 'current'"),
        ),
        Index(
            "uq_signing_keys_next", "state", unique=True,
            sqlite_where=text("state = 'next'"), postgresql_where=text("state = 'next'"),
        ),
    )

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
