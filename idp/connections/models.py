"""Connections (user stores) and the record of what migrating them did."""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp import redact
from idp.db import Model, UTCDateTime, utcnow
from idp.keys import kek

NATIVE_ID = "con_native"
NATIVE_NAME = "Username-Password-Authentication"


class Connection(Model):
    """A user store. A migrating one imports users from a legacy store through its scripts."""

    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # "Use my own database" and "import users" both on: users move over on first use.
    migrating: Mapped[bool] = mapped_column(default=False)
    login_script: Mapped[str | None] = mapped_column(Text)
    get_user_script: Mapped[str | None] = mapped_column(Text)
    # Optional: how many users the legacy store has, and its users a page at a time (with their hashes).
    count_users_script: Mapped[str | None] = mapped_column(Text)
    export_users_script: Mapped[str | None] = mapped_column(Text)
    export_cursor: Mapped[str | None] = mapped_column(Text)  # JSON: where an unfinished export resumes
    # Named values (DSNs, passwords) for the scripts, encrypted with the key-encryption key.
    configuration_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def configuration(self) -> dict[str, str]:
        """Return the decrypted configuration."""
        if not self.configuration_encrypted:
            return {}
        return dict(json.loads(kek.decrypt(self.configuration_encrypted)))

    @configuration.setter
    def configuration(self, values: dict[str, str]) -> None:
        self.configuration_encrypted = kek.encrypt(json.dumps(values, sort_keys=True).encode())

    def masked_configuration(self) -> dict[str, str]:
        """Return the configuration with every value masked: all of them are treated as secrets."""
        return {key: redact.mask(value) for key, value in self.configuration.items()}


class MigrationEvent(Model):
    """One migration, failed legacy login or script error, as `idp migration status` reads them."""

    __tablename__ = "migration_events"
    __table_args__ = (Index("ix_migration_events_connection_at", "connection_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(32))  # login, password_reset, signup, email_change
    user_id: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    detail: Mapped[str | None] = mapped_column(Text)

    def as_dict(self) -> dict[str, Any]:
        """Return the event as JSON-ready data."""
        return {"type": self.type, "source": self.source, "user_id": self.user_id, "email": self.email,
                "at": self.at.isoformat(), "duration_ms": self.duration_ms, "detail": self.detail}
