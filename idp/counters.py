"""Expiring counters shared by every worker and host: lockout, throttles, per-IP limits, breakers.

They live in Redis when IDP_REDIS_URL is set, else in our own database, never in process memory.
Both backends speak the `limits` storage interface, so Flask-Limiter uses the same ones.
"""

import time

from flask import Flask, current_app
from limits.storage import Storage, storage_from_string
from sqlalchemy import Double, String, case, create_engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Model

SWEEP_INTERVAL = 60  # seconds between deletions of expired rows, per process
_swept = [0.0]  # when this process last deleted them


class Counter(Model):
    """A named count that restarts when it expires."""

    __tablename__ = "counters"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    count: Mapped[int]
    expires_at: Mapped[float] = mapped_column(Double)  # seconds since the epoch


class DatabaseStorage(Storage):
    """Counters in the provider's own database, each change one atomic statement."""

    STORAGE_SCHEME = ["idpdb"]

    @property
    def engine(self) -> Engine:
        # The current app's: Flask-Limiter keeps one storage for every app it serves.
        return current_app.extensions["idp.counters.engine"]

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add to a count, restarting it (with a new expiry) when it has expired."""
        now = time.time()
        table = Counter.__table__
        insert = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert
        expired = table.c.expires_at <= now
        statement = insert(table).values(key=key, count=amount, expires_at=now + expiry)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((expired, amount), else_=table.c.count + amount),
                "expires_at": case((expired, now + expiry), else_=table.c.expires_at),
            },
        ).returning(table.c.count)
        with self.engine.begin() as conn:
            count = conn.execute(statement).scalar_one()
            if now - _swept[0] > SWEEP_INTERVAL:
                _swept[0] = now
                conn.execute(delete(table).where(expired))
        return count

    def _row(self, key: str) -> tuple[int, float] | None:
        table = Counter.__table__
        query = select(table.c.count, table.c.expires_at).where(
            table.c.key == key, table.c.expires_at > time.time())
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (row[0], row[1]) if row else None

    def get(self, key: str) -> int:
        """Return a count, 0 when absent or expired."""
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        """Return when a count expires (now when absent)."""
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        """Say whether the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        """Forget every count."""
        with self.engine.begin() as conn:
            return conn.execute(delete(Counter.__table__)).rowcount

    def clear(self, key: str) -> None:
        """Forget one count."""
        with self.engine.begin() as conn:
            conn.execute(delete(Counter.__table__).where(Counter.__table__.c.key == key))


def init_app(app: Flask) -> None:
    """Connect the counters: Redis when configured, else the app's database.

    Flask-Limiter's per-IP limits are pointed at the same place.
    """
    config = app.config
    if not config["REDIS_URL"]:
        # An engine of their own: a request holding its session's connection while it waits for a
        # counter must never wait for a connection from its own exhausted pool.
        app.extensions["idp.counters.engine"] = create_engine(
            config["SQLALCHEMY_DATABASE_URI"], **config["SQLALCHEMY_ENGINE_OPTIONS"])
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "idpdb://"
    app.extensions["idp.counters"] = storage_from_string(config["RATELIMIT_STORAGE_URI"])


def storage() -> Storage:
    """Return the current app's counters."""
    return current_app.extensions["idp.counters"]


def dispose() -> None:
    """Close the current app's counter connections (for apps that are built and dropped)."""
    if engine := current_app.extensions.get("idp.counters.engine"):
        engine.dispose()
