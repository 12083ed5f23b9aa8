"""The database handle, shared column types and time helpers."""

import contextlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ColumnElement, CursorResult, DateTime, MetaData, Table, event, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)

    if TYPE_CHECKING:
        __table__: ClassVar[Table]  # every model here maps a Table (SQLAlchemy allows any FromClause)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

# The models' base class. mypy takes no attribute (db.Model) as a base class; at run time db.Model is Base
# with Flask-SQLAlchemy's table-name and bind mixins.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection: Any, record: Any) -> None:
    """Make SQLite enforce foreign keys, as PostgreSQL does, and let readers run beside a writer."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode except on power loss
        cursor.close()


def claim_once(model: type[Base], *where: ColumnElement[bool], **values: Any) -> bool:
    """Update the row matching `where` only while it still matches; of concurrent callers, one wins.

    The caller commits (or rolls back when it lost). Used for everything spent once: codes, rotated
    refresh tokens, emailed links, key-state changes.
    """
    # Session.execute types every result as Result; an UPDATE gives a CursorResult, which has rowcount.
    result = cast(CursorResult[Any], db.session.execute(update(model).where(*where).values(**values)
                                                        .execution_options(synchronize_session=False)))
    return result.rowcount == 1


def utcnow() -> datetime:
    """Return the current time, timezone-aware."""
    return datetime.now(UTC)


@event.listens_for(Engine, "do_connect")
def _private_sqlite_file(dialect: Dialect, record: Any, cargs: tuple[Any, ...],
                         cparams: dict[str, Any]) -> None:
    """Create a SQLite database file readable by its owner only, before SQLite makes it by the umask.

    SQLite gives its -wal and -shm files the permissions of the database file.
    """
    database = cargs[0] if cargs else cparams.get("database")
    if dialect.name != "sqlite" or not isinstance(database, str) or database in ("", ":memory:") \
            or database.startswith("file:"):  # a URI names its own options
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
