"""The `log_events` table: one row per event, in the fields of Auth0's log object."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Model, UTCDateTime, utcnow


class LogEvent(Model):
    """One log event; `log_id` sorts as `date` does (a zero-padded time, then random digits)."""

    __tablename__ = "log_events"

    log_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    connection: Mapped[str | None] = mapped_column(String(128))
    connection_id: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    client_name: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    hostname: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    user_name: Mapped[str | None] = mapped_column(String(320))
    audience: Mapped[str | None] = mapped_column(String(2048))
    scope: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[str | None] = mapped_column(String(32))
    strategy_type: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return Auth0's log object: the fields that are set, `date` in ISO 8601 with milliseconds."""
        body: dict[str, Any] = {
            "date": self.date.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "type": self.type, "description": self.description, "connection": self.connection,
            "connection_id": self.connection_id, "client_id": self.client_id,
            "client_name": self.client_name, "ip": self.ip, "user_agent": self.user_agent,
            "hostname": self.hostname, "user_id": self.user_id, "user_name": self.user_name,
            "audience": self.audience, "scope": self.scope, "strategy": self.strategy,
            "strategy_type": self.strategy_type, "details": self.details or {},
            "log_id": self.log_id, "_id": self.log_id, "isMobile": False,
        }
        return {key: value for key, value in body.items() if value is not None}
