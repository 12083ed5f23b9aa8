"""Bulk-import jobs (Auth0's users-imports): the file is kept in the database in chunks as it arrives,
checked on the way, and imported in the background a page per transaction by whichever process claims
the job, so that a job survives a restart and any host can finish it.

A page's users, its error reports and the job's position commit together: a job taken over after its
runner died resumes after the last page it finished, and imports nobody twice.
"""

import io
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import IO, Any

from flask import Flask, current_app, request
from sqlalchemy import JSON, Double, ForeignKey, LargeBinary, String, Text, delete, event, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import Pool

from idp.connections import imports, users_file
from idp.connections.models import Connection
from idp.db import Model, UTCDateTime, db, utcnow
from idp.events import log as events

logger = logging.getLogger("idp.imports")

CHUNK = 1024 * 1024  # bytes of the file per stored chunk
PAGE = 500  # users per transaction
LEASE = 60.0  # seconds a runner holds a job between two pages before another may take it over
POLL = 5.0  # seconds between two looks for jobs to run
KEPT = timedelta(hours=24)  # how long an ended job and its errors are kept, as Auth0 keeps them
PENDING, PROCESSING, COMPLETED, FAILED = "pending", "processing", "completed", "failed"


class ImportJob(Model):
    """A users-import job and how far it has got."""

    __tablename__ = "import_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    upsert: Mapped[bool]
    external_id: Mapped[str | None] = mapped_column(String(255))
    send_completion_email: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    total: Mapped[int] = mapped_column(default=0)  # users in the file
    position: Mapped[int] = mapped_column(default=0)  # users looked at so far
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    status_details: Mapped[str | None] = mapped_column(Text)
    claim: Mapped[str | None] = mapped_column(String(32))  # the token of the runner holding it
    lease_until: Mapped[float] = mapped_column(Double, default=0.0)  # seconds since the epoch
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def as_dict(self, connection_name: str | None) -> dict[str, Any]:
        """Auth0's job object."""
        body: dict[str, Any] = {
            "id": self.id, "type": "users_import", "status": self.status, "connection_id": self.connection_id,
            "connection": connection_name, "upsert": self.upsert,
            "send_completion_email": self.send_completion_email,
            "created_at": self.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if self.external_id is not None:
            body["external_id"] = self.external_id
        if self.status == PROCESSING and self.total:
            body["percentage_done"] = int(100 * self.position / self.total)
            body["time_left_seconds"] = self._time_left()
        if self.status in (COMPLETED, FAILED):
            body["summary"] = {"failed": self.failed, "updated": self.updated, "inserted": self.inserted,
                               "total": self.position}
        if self.status_details:
            body["status_details"] = self.status_details
        return body

    def _time_left(self) -> int:
        if not self.started_at or not self.position:
            return 0
        spent = (utcnow() - self.started_at).total_seconds()
        return int(spent / self.position * (self.total - self.position))


class ImportChunk(Model):
    """A piece of a job's file, deleted when the job ends."""

    __tablename__ = "import_chunks"

    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportFailure(Model):
    """A user a job did not import, as Auth0's job errors show them."""

    __tablename__ = "import_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), index=True)
    user: Mapped[Any] = mapped_column(JSON)  # as in the file, hashes redacted
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON)


def get(job_id: str) -> ImportJob | None:
    """Return a job, unless there is none or it ended longer than KEPT ago."""
    job = db.session.get(ImportJob, job_id)
    if job is None or (job.status in (COMPLETED, FAILED) and job.created_at < utcnow() - KEPT):
        return None
    return job


def prune() -> None:
    """Delete the jobs that ended longer than KEPT ago, with their errors."""
    ended = select(ImportJob.id).where(ImportJob.status.in_((COMPLETED, FAILED)),
                                       ImportJob.created_at < utcnow() - KEPT)
    db.session.execute(delete(ImportFailure).where(ImportFailure.job_id.in_(ended)))
    db.session.execute(delete(ImportJob).where(ImportJob.id.in_(ended.scalar_subquery())))


def create(connection: Connection, upload: IO[bytes], *, upsert: bool, external_id: str | None = None,
           send_completion_email: bool = False) -> ImportJob:
    """Store an uploaded file as a pending job; users_file.FileInvalid (and nothing kept) if it is not
    a JSON array. Old jobs go first."""
    prune()
    job = ImportJob(id="job_" + secrets.token_hex(8), connection_id=connection.id, status=PENDING,
                    upsert=upsert, external_id=external_id, send_completion_email=send_completion_email)
    db.session.add(job)
    db.session.flush()  # before its chunks, which refer to it
    checker = users_file.Checker()
    try:
        for seq, data in enumerate(iter(lambda: upload.read(CHUNK), b"")):
            checker.feed(data)
            db.session.add(ImportChunk(job_id=job.id, seq=seq, data=data))
            db.session.flush()  # a chunk at a time: the file is never whole in memory
        checker.close()
    except Exception:
        db.session.rollback()
        raise
    job.total = checker.users
    db.session.commit()
    return job


def run(job_id: str, progress: Callable[[int], None] = lambda n: None) -> bool:
    """Run a job if it is free to take (pending, or its runner's lease ran out); say whether it ran."""
    token = secrets.token_hex(16)
    if not _claim(job_id, token):
        return False
    job = db.session.get(ImportJob, job_id)
    connection = db.session.get(Connection, job.connection_id) if job else None
    if job is None or connection is None:
        return False
    try:
        _import(job, connection, token, progress)
    except _Lost:
        db.session.rollback()
        logger.warning("import job %s was taken over by another runner", job_id)
    except Exception as error:  # the job fails; what it imported so far stays, each page whole
        db.session.rollback()
        logger.exception("import job %s failed", job_id)
        details = f"The job failed: {type(error).__name__}"
        _finish(job_id, token, FAILED, details)
        events.record(events.FAILED_IMPORT, details, connection=connection.name, connection_id=connection.id,
                      details={"job_id": job_id})
        db.session.commit()
    return True


class _Lost(Exception):
    """Another runner took the job over (this one was too slow to renew its lease)."""


def _claim(job_id: str, token: str) -> bool:
    now = time.time()
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(ImportJob).where(ImportJob.id == job_id, ImportJob.status.in_((PENDING, PROCESSING)),
                                ImportJob.lease_until < now)
        .values(status=PROCESSING, claim=token, lease_until=now + LEASE)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def _import(job: ImportJob, connection: Connection, token: str, progress: Callable[[int], None]) -> None:
    if job.started_at is None:
        job.started_at = utcnow()
    skip = job.position
    values = users_file.users(io.BufferedReader(_Chunks(job.id), CHUNK))
    for _ in range(skip):  # a job taken over resumes after its last whole page
        next(values)
    page: list[Any] = []
    for value in values:
        page.append(value)
        if len(page) == PAGE:
            _page(job, connection, token, page)
            progress(len(page))
            page = []
    if page:
        _page(job, connection, token, page)
        progress(len(page))
    _finish(job.id, token, COMPLETED, None)
    summary = {"inserted": job.inserted, "updated": job.updated, "failed": job.failed, "total": job.position}
    events.record(events.SUCCESS_IMPORT, "Successfully imported users", connection=connection.name,
                  connection_id=connection.id, details={"job_id": job.id, "summary": summary})
    db.session.commit()


def _page(job: ImportJob, connection: Connection, token: str, page: list[Any]) -> None:
    """Import a page, record its failures and move the job on, in one transaction held under the lease."""
    incoming: list[imports.Incoming] = []
    refused: list[imports.Refusal] = []
    for item in users_file.incoming(connection, page):
        if isinstance(item, imports.Incoming):
            incoming.append(item)
        else:
            refused.append(item)
    stored = imports.store(connection, incoming, upsert=job.upsert)
    duplicates = [imports.Refusal(item.value, "DUPLICATED_USER", "The user already exists.")
                  for item in stored.existing]
    failures = refused + stored.refused + duplicates
    if failures:
        db.session.add_all(ImportFailure(job_id=job.id, user=users_file.redacted(f.value),
                                         errors=[{"code": f.code, "message": f.message}]) for f in failures)
    job.position += len(page)
    job.inserted += stored.inserted
    job.updated += stored.updated
    job.failed += len(failures)
    renewed: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(ImportJob).where(ImportJob.id == job.id, ImportJob.claim == token)
        .values(lease_until=time.time() + LEASE).execution_options(synchronize_session=False))
    if renewed.rowcount != 1:
        raise _Lost()
    db.session.commit()


def _finish(job_id: str, token: str, status: str, details: str | None) -> None:
    """End a job this runner holds; its file goes."""
    ended: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(ImportJob).where(ImportJob.id == job_id, ImportJob.claim == token)
        .values(status=status, status_details=details, claim=None)
        .execution_options(synchronize_session=False))
    if ended.rowcount == 1:
        db.session.execute(delete(ImportChunk).where(ImportChunk.job_id == job_id))
    db.session.commit()


class _Chunks(io.RawIOBase):
    """A job's stored file, read a chunk at a time."""

    def __init__(self, job_id: str) -> None:
        self.job_id, self.seq, self.buffer = job_id, 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self.buffer:
            data = db.session.scalar(select(ImportChunk.data).where(ImportChunk.job_id == self.job_id,
                                                                     ImportChunk.seq == self.seq))
            if data is None:
                return 0
            self.buffer, self.seq = data, self.seq + 1
        size = min(len(target), len(self.buffer))
        target[:size], self.buffer = self.buffer[:size], self.buffer[size:]
        return size


def _due() -> list[str]:
    """Jobs free to take: pending, or processing under a lease that ran out."""
    return list(db.session.scalars(select(ImportJob.id).where(
        ImportJob.status.in_((PENDING, PROCESSING)), ImportJob.lease_until < time.time())
        .order_by(ImportJob.created_at).limit(5)))


def _unfinished() -> bool:
    return db.session.scalar(select(ImportJob.id).where(ImportJob.status.in_((PENDING, PROCESSING)))
                             .limit(1)) is not None


# A runner thread per process while jobs are unfinished (another process's, too: it may die).
_runner: dict[str, Any] = {"thread": None, "app": None, "engine": None, "round": None, "kicked": False,
                           "wake": threading.Event()}
_used: "weakref.WeakKeyDictionary[Engine, Pool]" = weakref.WeakKeyDictionary()  # the pool a round used
_lock = threading.Lock()
_watched: "weakref.WeakSet[Engine]" = weakref.WeakSet()  # engines whose disposal stops the runner
_CHECKED = "idp.import_jobs_checked"


def _loop() -> None:
    while True:
        with _lock:
            _runner["kicked"] = False  # a kick from now on asks for another round
            _runner["wake"].clear()
            app = _runner["app"]
        unfinished = app is not None
        if app is not None:
            try:
                with app.app_context():
                    with _lock:  # what this round's connections come from, for _stop
                        stopped = _runner["app"] is not app  # its database let go meanwhile
                        if not stopped:
                            _runner["round"] = db.engine
                            _used[db.engine] = db.engine.pool
                    try:
                        if not stopped:
                            for job_id in _due():
                                run(job_id)
                            unfinished = _unfinished()
                            db.session.remove()
                    finally:
                        with _lock:
                            _runner["round"] = None
            except SQLAlchemyError as error:
                logger.error("import jobs unreachable, trying again in %g s: %s", POLL, type(error).__name__)
            except Exception:
                logger.exception("import job runner failed, trying again in %g s", POLL)
        with _lock:
            if _runner["app"] is None or not (unfinished or _runner["kicked"]):
                _runner["thread"] = None
                return
        _runner["wake"].wait(POLL)


def start() -> None:
    """Run unfinished jobs in this process, for the current app, until none is left."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with _lock:
        _runner.update(app=app, engine=db.engine, kicked=True)
        _runner["wake"].set()
        if db.engine not in _watched:
            _watched.add(db.engine)
            event.listen(db.engine, "engine_disposed", _stop)
        if _runner["thread"] is None:
            thread = _runner["thread"] = threading.Thread(target=_loop, name="idp-import-jobs", daemon=True)
            thread.start()


def _stop(engine: Engine) -> None:
    """An app let go of its database (a test's): the runner stops working for it, a round under way
    with it ends first, and the connections it used, which went back to a pool the engine dropped,
    are closed."""
    with _lock:
        if _runner["engine"] is engine:
            _runner.update(app=None, engine=None)
            _runner["wake"].set()
    deadline = time.monotonic() + LEASE
    while time.monotonic() < deadline and threading.current_thread() is not _runner["thread"]:
        with _lock:
            if _runner["round"] is not engine:
                break
        time.sleep(0.01)
    with _lock:
        pool = _used.pop(engine, None)
    engine.pool.dispose()
    if pool is not None:
        pool.dispose()


def _check_once() -> None:
    """At an app's first request: take up the jobs a stopped process left (they survive restarts)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.extensions.get(_CHECKED) or request.endpoint == "oauth.healthz":
        return  # a health probe checks the database its own way, within its own timeout
    try:
        unfinished = _unfinished()
    except SQLAlchemyError:
        db.session.rollback()
        return  # the database is unreachable: this request meets that itself; look again at the next
    app.extensions[_CHECKED] = True
    if unfinished:
        start()


def init_app(app: Flask) -> None:
    """Take up unfinished jobs in each process that serves."""
    app.before_request(_check_once)


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a fork may happen while another thread holds it; the runner stays there
    _runner.update(thread=None, app=None, engine=None, round=None, kicked=False, wake=threading.Event())


os.register_at_fork(after_in_child=_after_fork)
