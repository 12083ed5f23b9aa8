"""The mail queue: every mail (or task that composes one) is a row until it is sent or given up.

Many processes on many hosts share one queue. A sender takes a row with one conditional UPDATE that
moves its `due_at` past a lease and stamps its own claim token, and it finishes the row only while
that token is still on it. A sender that dies mid-send leaves its claim behind; when the lease runs
out the row is due again and any sender retries it. Times are seconds since the epoch, like the
counters', so that due rows compare the same way on SQLite and PostgreSQL.
"""

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, Double, LargeBinary, String, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Model, db


class QueuedMail(Model):
    """A mail waiting to be sent, or a task waiting to compose one; deleted when done."""

    __tablename__ = "mail_queue"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str | None] = mapped_column(String(255))  # None: `payload` is the message itself
    label: Mapped[str] = mapped_column(String(512))  # what logs call it: recipient and subject at most
    # The message (or the task's arguments), encrypted: see idp.mail._seal for why.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Double)
    due_at: Mapped[float] = mapped_column(Double, index=True)  # next attempt, or when a claim expires
    attempts: Mapped[int]
    claim: Mapped[str | None] = mapped_column(String(32))  # the token of the sender holding it
    last_error: Mapped[str | None] = mapped_column(String(1024))


@dataclass(frozen=True)
class Claim:
    """A row a sender holds, copied out of the session that claimed it."""

    id: int
    token: str
    task: str | None
    label: str
    payload: bytes = field(repr=False)
    created_at: float
    attempts: int  # this attempt included
    last_error: str | None  # why the previous attempt failed


def add(task: str | None, label: str, payload: bytes) -> None:
    """Queue a row in the current session, due now; the caller commits."""
    now = time.time()
    db.session.add(QueuedMail(task=task, label=label[:512], payload=payload, created_at=now, due_at=now,
                              attempts=0))


def claim(lease: float) -> Claim | None:
    """Take the row that has been due longest, for `lease` seconds, and commit; None when none is due.

    It writes even when nothing is due (on SQLite, taking the write lock): a sender that polls asks
    `next_due` first.
    """
    now, token = time.time(), secrets.token_hex(16)
    table = QueuedMail.__table__
    # SKIP LOCKED lets PostgreSQL senders pass over a row another is claiming instead of queueing
    # behind it; SQLite renders no FOR UPDATE, and runs one writer at a time, so the single statement
    # is atomic there too. The outer `due_at` test makes a sender that lost a race claim nothing.
    oldest = (select(table.c.id).where(table.c.due_at <= now).order_by(table.c.due_at, table.c.id)
              .limit(1).with_for_update(skip_locked=True).scalar_subquery())
    row = db.session.execute(
        update(table).where(table.c.id == oldest, table.c.due_at <= now)
        .values(claim=token, due_at=now + lease, attempts=table.c.attempts + 1)
        .returning(table.c.id, table.c.task, table.c.label, table.c.payload, table.c.created_at,
                   table.c.attempts, table.c.last_error)
    ).first()
    db.session.commit()  # at once: other senders must see the claim before this one starts sending
    if row is None:
        return None
    return Claim(token=token, **row._asdict())


def _ours(item: Claim) -> list[ColumnElement[bool]]:
    table = QueuedMail.__table__
    return [table.c.id == item.id, table.c.claim == item.token]


def finish(item: Claim) -> bool:
    """Delete a row that was sent or given up, if it is still ours; the caller commits."""
    result = cast(CursorResult[Any], db.session.execute(delete(QueuedMail.__table__).where(*_ours(item))))
    return result.rowcount == 1


def retry(item: Claim, delay: float, error: str) -> bool:
    """Release a row for another attempt in `delay` seconds, if it is still ours; the caller commits."""
    result = cast(CursorResult[Any], db.session.execute(
        update(QueuedMail.__table__).where(*_ours(item))
        .values(claim=None, due_at=time.time() + delay, last_error=error[:1024])
    ))
    return result.rowcount == 1


def next_due() -> float | None:
    """Return when the next row falls due (or its claim expires); None when the queue is empty."""
    return db.session.scalar(select(func.min(QueuedMail.due_at)))


def untried() -> int:
    """Count the rows never tried yet or being tried now, on a connection of their own."""
    table = QueuedMail.__table__
    query = select(func.count()).where(or_(table.c.attempts == 0, table.c.claim.is_not(None)))
    # Not the session: its transaction may be an old snapshot that never sees the senders' work.
    with db.engine.connect() as conn:
        return conn.execute(query).scalar_one()
