"""A post-login action: its code, its secrets (encrypted at rest) and its place in the run order."""

import json
import secrets
from datetime import datetime

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Model, UTCDateTime, utcnow
from idp.keys import kek


def new_action_id() -> str:
    """Return a fresh action id, `act_` and 32 hex digits."""
    return "act_" + secrets.token_hex(16)


class Action(Model):
    """Python source defining `on_execute_post_login(event, api)`, run after every sign-in in order."""

    __tablename__ = "actions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_action_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    code: Mapped[str] = mapped_column(Text)
    # A JSON object of the action's secrets, sealed with the key-encryption key like private signing keys.
    secrets_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(index=True)  # run order: lowest first
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def secrets(self) -> dict[str, str]:
        """Return the decrypted secrets."""
        if not self.secrets_encrypted:
            return {}
        return dict(json.loads(kek.decrypt(self.secrets_encrypted)))

    @secrets.setter
    def secrets(self, values: dict[str, str]) -> None:
        self.secrets_encrypted = kek.encrypt(json.dumps(values, sort_keys=True).encode()) if values else None
