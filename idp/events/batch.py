"""Events written off the request: a hot path that writes nothing else (a client-credentials token)
queues its event in memory, and a timer writes whatever queued within FLUSH_DELAY seconds in one INSERT.

A process that exits normally writes what it queued first; one that is killed loses at most its last
FLUSH_DELAY seconds of such events. While the database is unreachable, events wait (at most
MAX_PENDING per database, the oldest dropped first, which is logged) and are tried again.
"""

import atexit
import functools
import logging
import os
import threading
import weakref
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import Pool

from idp import cache
from idp.db import db
from idp.events.log import columns
from idp.events.models import LogEvent

logger = logging.getLogger(__name__)

FLUSH_DELAY = 1.0  # seconds an event waits, at most, while its database is reachable
RETRY_DELAY = 5.0  # seconds before trying again when it is not
MAX_PENDING = 10_000  # events kept per database while it is unreachable


class _Batch:
    """The events queued for one database in this process, and the timer that will write them."""

    def __init__(self, app: Flask) -> None:
        self.app = app  # whichever app of this process queued last
        self.rows: list[dict[str, Any]] = []
        self.dropped = 0
        self.timer: threading.Timer | None = None
        self.writing = threading.Lock()  # one write at a time: a disposal waits for the one under way
        self.pool: Pool | None = None  # the pool the last write took its connection from

    def schedule(self, key: str, delay: float) -> None:
        """Start the timer unless it runs already; the caller holds the lock."""
        if self.timer is None:
            self.timer = threading.Timer(delay, flush, (key,))
            self.timer.daemon = True
            self.timer.start()

    def trim(self) -> None:
        """Drop the oldest rows past MAX_PENDING; the caller holds the lock."""
        overflow = len(self.rows) - MAX_PENDING
        if overflow > 0:
            del self.rows[:overflow]
            self.dropped += overflow


# One batch per database in a process, as for the mail sender: tests build many apps on one database.
_batches: dict[str, _Batch] = {}
_lock = threading.Lock()
_watched: "weakref.WeakSet[Engine]" = weakref.WeakSet()  # engines whose disposal writes their batch first


def record_soon(type_: str, description: str | None = None, **fields: Any) -> None:
    """Queue a log event (see `events.log.columns`) to be written within FLUSH_DELAY seconds."""
    row = columns(type_, description, **fields)  # no ORM object: this is the hot path's own cost
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    engine = db.engine
    key = str(engine.url)
    with _lock:
        batch = _batches.get(key)
        if batch is None:
            batch = _batches[key] = _Batch(app)
        batch.app = app
        batch.rows.append(row)
        batch.trim()
        batch.schedule(key, FLUSH_DELAY)
        if engine not in _watched:
            _watched.add(engine)
            event.listen(engine, "engine_disposed", functools.partial(_disposed, key))


def flush(key: str | None = None) -> None:
    """Write what queued for one database (by URL) or for all, now."""
    for name in [key] if key is not None else list(_batches):
        with _lock:
            batch = _batches.get(name)
            if batch is None:
                continue
            if batch.timer is not None and batch.timer is not threading.current_thread():
                batch.timer.cancel()
            batch.timer = None
            rows, batch.rows = batch.rows, []
            dropped, batch.dropped = batch.dropped, 0
        if dropped:
            logger.error("%d log events dropped: their database was unreachable for too long", dropped)
        if rows:
            _write(name, batch, rows)


def flush_current() -> None:
    """Write what this process queued for the current app's database (before reading the log)."""
    flush(str(db.engine.url))


def _write(key: str, batch: _Batch, rows: list[dict[str, Any]]) -> None:
    try:
        with batch.writing, batch.app.app_context():  # a session of its own, even inside a request
            batch.pool = db.engine.pool
            db.session.execute(insert(LogEvent), rows)
            db.session.commit()
    except SQLAlchemyError as error:
        logger.error("%d log events not written, trying again in %.3g s: %s", len(rows), RETRY_DELAY,
                     error.__class__.__name__)
        with _lock:
            batch.rows[:0] = rows  # before those queued since
            batch.trim()
            batch.schedule(key, RETRY_DELAY)


def _disposed(key: str, engine: Engine) -> None:
    """Write an app's queued events when it lets go of its database, then close what writing opened
    (a write under way at the disposal gave its connection back to the pool the engine dropped)."""
    batch = _batches.get(key)
    if batch is not None:
        with batch.writing:
            pass  # the write under way ends first
    flush(key)
    engine.pool.dispose()
    if batch is not None and batch.pool is not None:
        batch.pool.dispose()


def forget() -> None:
    """Drop every queued event: the database was replaced behind idp's back (a test's reset)."""
    with _lock:
        for batch in _batches.values():
            if batch.timer is not None:
                batch.timer.cancel()
        _batches.clear()


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a fork may happen while another thread holds it
    _batches.clear()  # the parent writes its own


os.register_at_fork(after_in_child=_after_fork)
atexit.register(flush)
cache.on_forget(forget)
