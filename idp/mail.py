"""Outgoing mail: SMTP in production, the instance outbox in development, always through a queue.

`SMTP_URL` (environment `IDP_SMTP_URL`) picks the transport:

    smtp://host[:port]                            plain SMTP, port 25
    smtp+starttls://user:password@host[:port]     STARTTLS, port 587 (same: smtp://…?starttls=1)
    smtps://user:password@host[:port]             implicit TLS, port 465
    …?cafile=/path/to/ca.pem                      trust this CA (PEM) instead of the system's

User and password are percent-decoded; when present the provider logs in, which it does only over
TLS (a URL with credentials and no TLS is refused). The server certificate and host name are always
verified. There is deliberately no option to turn that off: for a server with a self-signed
certificate, give that certificate (or the CA that signed it) as `cafile`. Connecting and each reply
of the server time out after `SMTP_TIMEOUT` seconds.

Without `SMTP_URL`, each mail is written as an .eml file (mode 0600) into `<instance>/outbox/` and
its links are logged, so a developer can follow a verification link offline. Over SMTP only the
recipient and subject are logged: links carry single-use tokens.

`send_later` and `in_background` are what request handlers use: they add a row to the mail queue
(idp.mail_queue) in the caller's transaction, and a sender thread in every web process sends it
once committed, retrying with growing waits until `MAIL_GIVE_UP_AFTER`. So an answer takes the same
time whether or not a mail goes out, and an SMTP outage, a hanging server or a restart delays mail
without losing it. Delivery is at least once: a sender that dies after the server took a mail but
before deleting its row sends it again (with the same Message-ID) when its claim expires.
"""

import functools
import itertools
import json
import logging
import os
import re
import secrets
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from flask import Flask, current_app
from sqlalchemy import Pool, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp import mail_queue
from idp.db import db
from idp.errors import ConfigurationError, Unavailable
from idp.keys import kek

logger = logging.getLogger("idp.mail")

DEFAULT_FROM = "idp <no-reply@localhost>"
# Settings that must be positive numbers of seconds.
DURATIONS = ("SMTP_TIMEOUT", "MAIL_RETRY_INITIAL", "MAIL_RETRY_MAX", "MAIL_GIVE_UP_AFTER", "MAIL_CLAIM_LEASE",
             "MAIL_POLL_INTERVAL")

_PORTS = {"plain": 25, "starttls": 587, "tls": 465}
_SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
_LINK = re.compile(r"https?://[^\s<>\"']+")
_SENDER = "idp.mail.sender"  # app.extensions key: the app stops its database's sender when disposed
_WAKE = "idp.mail.wake"  # session.info key: the sender to wake when the session commits

F = TypeVar("F", bound=Callable[..., None])


class MailError(Unavailable):
    """A mail could not be handed to the SMTP server, or SMTP_URL is unusable."""


class Undecryptable(MailError):
    """A queued row the key-encryption key does not open: no later attempt can send it."""


def links(text: str) -> list[str]:
    """Return the http(s) links in a text, without trailing punctuation."""
    return [match.rstrip(".,;:!?)]}") for match in _LINK.findall(text)]


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    user: str | None = None
    password: str = field(default="", repr=False)
    cafile: str | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _parse(url: str) -> _Server:
    """Read an SMTP_URL; error messages never quote the URL (it may hold a password)."""
    parts = urlsplit(url)
    security = _SCHEMES.get(parts.scheme.lower())
    if security is None:
        raise MailError(f"SMTP_URL: unknown scheme {parts.scheme!r} (use smtp, smtp+starttls or smtps)")
    if not parts.hostname:
        raise MailError("SMTP_URL has no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise MailError("SMTP_URL must not have a path or fragment")
    try:
        port = parts.port
    except ValueError:
        raise MailError("SMTP_URL has an invalid port") from None
    cafile = None
    try:
        options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise MailError("SMTP_URL has a malformed query") from None
    for name, value in options:
        if name == "starttls" and value in ("0", "1"):
            if value == "1" and security == "tls":
                raise MailError("SMTP_URL: smtps already uses TLS; drop starttls")
            security = "starttls" if value == "1" else security
        elif name == "cafile" and value:
            cafile = value
        else:
            # The name only: a misplaced password must not end up in the message.
            raise MailError(f"SMTP_URL: unknown or empty option {name!r} (known: starttls=0|1, cafile=PATH)")
    user = unquote(parts.username) if parts.username is not None else None
    if user is not None and security == "plain":
        raise MailError("SMTP_URL has credentials but no TLS: use smtp+starttls:// or smtps:// "
                        "so the password never crosses the network in clear")
    return _Server(parts.hostname, port or _PORTS[security], security, user,
                   unquote(parts.password or ""), cafile)


def init_app(app: Flask) -> None:
    """Refuse to start with unusable mail settings rather than fail at the first mail."""
    url = app.config.get("SMTP_URL")
    if url:
        try:
            _parse(url)
        except MailError as error:
            raise ConfigurationError(str(error)) from None
    for name in DURATIONS:
        value = app.config[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigurationError(f"IDP_{name} must be a positive number of seconds, not {value!r}")
    # Lazily, in the process that serves: gunicorn forks its workers after importing, and a thread
    # does not survive a fork.
    app.before_request(_start_sender)


def _compose(mail_from: str, to: str, subject: str, text: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # An explicit domain: make_msgid would otherwise ask DNS for this host's name.
    message["Message-ID"] = make_msgid(domain=parseaddr(mail_from)[1].rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _reason(error: OSError) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error  # bytes from the server, or smtplib's own str ("Line too long.")
        return f"{error.smtp_code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    return f"{type(error).__name__}: {error}"


def _deliver(server: _Server, message: EmailMessage, timeout: float) -> None:
    context = None
    if server.security != "plain":
        try:
            context = ssl.create_default_context(cafile=server.cafile)
        except OSError as error:
            raise MailError(f"SMTP_URL: cannot load cafile {server.cafile}: {_reason(error)}") from None
    try:
        if server.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout,
                                                   context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with client:
            if server.security == "starttls":
                client.starttls(context=context)
            if server.user is not None:
                client.login(server.user, server.password)
            client.send_message(message)
    except OSError as error:  # smtplib's and ssl's errors are OSErrors
        raise MailError(f"cannot send mail through {server.address}: {_reason(error)}") from None


def _write_outbox(outbox: Path, message: EmailMessage) -> Path:
    outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
    # 0600 from the start: the file holds single-use tokens.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(message.as_bytes())
    return path


def _transmit(message: EmailMessage) -> None:
    """Hand a composed message to the SMTP server, or write it to the outbox without SMTP_URL."""
    config = current_app.config
    label = _label(str(message["To"]), str(message["Subject"]))
    if config["SMTP_URL"]:
        server = _parse(config["SMTP_URL"])
        _deliver(server, message, config["SMTP_TIMEOUT"])
        logger.info("%s sent through %s", label, server.address)
    else:
        path = _write_outbox(Path(current_app.instance_path) / "outbox", message)
        text = message.get_body(preferencelist=("plain",))
        found = links(cast(EmailMessage, text).get_content()) if text is not None else []
        logger.info("%s written to %s; links: %s", label, path, " ".join(found) or "none")


def _label(to: str, subject: str) -> str:
    """Name a mail in the logs and the queue: never its body, whose links carry tokens."""
    return f"mail to {to}: {subject!r}"


def _mail_from() -> str:
    return current_app.config.get("MAIL_FROM") or DEFAULT_FROM


def _seal(data: bytes) -> bytes:
    """Encrypt what a queued row carries with the key-encryption key."""
    # A queued reset or verification mail holds a live single-use link, while the database otherwise
    # keeps only digests of those tokens (account_tokens), so that a copy of it, or of its backups,
    # opens no account. Sealing the body with the key that protects the signing keys, which lives
    # apart from the database, keeps that true while a mail waits; the row is deleted as soon as the
    # mail is sent or dropped, and what stays readable (recipient and subject) the logs show anyway.
    return kek.encrypt(data)


def _unseal(payload: bytes) -> bytes:
    try:
        kek.check()
    except kek.KeyEncryptionKeyError as error:  # no key at all (its file gone for a while): retried
        raise MailError(str(error)) from None
    try:
        return kek.decrypt(payload)
    except kek.KeyEncryptionKeyError:  # the key is there but does not open this row: it never will
        raise Undecryptable("the key-encryption key does not open it (was the key replaced, or is the "
                            "stored row malformed?)") from None


def _enqueue(task: str | None, label: str, data: bytes) -> None:
    mail_queue.add(task, label, _seal(data))
    # Woken by the commit, not now: until then the sender cannot see the row.
    db.session.info[_WAKE] = _sender()


@event.listens_for(Session, "after_commit")
def _wake_sender(session: Session) -> None:
    """Wake the sender of the mails a transaction queued, once they are committed."""
    if sender := session.info.pop(_WAKE, None):
        sender.wake.set()


def send_later(to: str, subject: str, text: str, html: str) -> None:
    """Queue a mail in the current transaction (the caller commits); failures are retried, never raised."""
    message = _compose(_mail_from(), to, subject, text, html)
    _enqueue(None, _label(to, subject), message.as_bytes())


_tasks: dict[str, Callable[..., None]] = {}


def _task_name(function: Callable[..., None]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def task(function: F) -> F:
    """Register a function `in_background` may queue (at import, so that every process knows it)."""
    _tasks[_task_name(function)] = function
    return function


def in_background(function: Callable[..., None], **arguments: Any) -> None:
    """Queue a task that may send mail, to run after the answer has gone; the caller commits."""
    # So that its timing reveals nothing. It runs in a sender, in a request context at the issuer's
    # URL (so `url_for` builds the same links), in one transaction with the deletion of its row: what
    # it writes and the mails it queues count only if it finishes, and it is retried like a mail if
    # it raises (a MailError is logged without a traceback). `arguments` must be JSON values.
    name = _task_name(function)
    if _tasks.get(name) is not function:
        raise ValueError(f"{name} is not a mail task: decorate it with @mail.task")
    _enqueue(name, f"task {name}", json.dumps(arguments).encode())


def _carry_out(item: mail_queue.Claim) -> None:
    """Send a claimed mail or run a claimed task, then delete its row; raise if that failed."""
    data = _unseal(item.payload)
    if item.task is None:
        _transmit(message_from_bytes(data, policy=policy.default))
    else:
        function = _tasks.get(item.task)
        if function is None:  # queued by a newer version of idp, during an upgrade
            raise MailError(f"this process has no task {item.task}")
        with current_app.test_request_context(base_url=current_app.config["ISSUER"]):
            function(**json.loads(data))
    if mail_queue.finish(item):
        db.session.commit()
    elif item.task is None:
        logger.warning("%s was sent after its claim expired, so another sender may send it again: "
                       "raise MAIL_CLAIM_LEASE", item.label)
    else:
        db.session.rollback()  # the sender that took it over runs it: its mails count, not these
        logger.warning("%s outlasted its claim and was left to the sender that took it over", item.label)


def _failed(item: mail_queue.Claim, error: Exception) -> None:
    """Try a failed row again after a longer wait, or drop it once MAIL_GIVE_UP_AFTER has passed."""
    config = current_app.config
    if isinstance(error, Undecryptable):  # retrying cannot help: drop it now, with one line
        dropped = mail_queue.finish(item)
        db.session.commit()  # before saying so: whoever reads the log finds the row gone
        if dropped:
            logger.error("%s dropped: %s", item.label, error)
        return
    expected = isinstance(error, MailError)
    reason = str(error) if expected else f"{type(error).__name__}: {error}"
    delay = min(config["MAIL_RETRY_INITIAL"] * 2 ** min(item.attempts - 1, 32), config["MAIL_RETRY_MAX"])
    if time.time() + delay > item.created_at + config["MAIL_GIVE_UP_AFTER"]:
        _drop(item, item.attempts, reason, None if expected else error)
        return
    if mail_queue.retry(item, delay, reason):
        # The label only, never the message: its links carry single-use tokens.
        logger.warning("%s failed (attempt %d), trying again in %.3g s: %s", item.label, item.attempts,
                       delay, reason, exc_info=None if expected else error)
    db.session.commit()


def _drop(item: mail_queue.Claim, attempts: int, reason: str, error: Exception | None = None) -> None:
    """Delete a row that is past saving and commit, then say why (whoever reads the log finds it gone)."""
    dropped = mail_queue.finish(item)
    db.session.commit()
    if dropped:
        logger.error("%s dropped after %d failed attempts: %s", item.label, attempts, reason, exc_info=error)


def _send_one() -> bool:
    """Claim the mail or task due longest and carry it out; say whether there was one."""
    config = current_app.config
    item = mail_queue.claim(config["MAIL_CLAIM_LEASE"])
    if item is None:
        return False
    if time.time() >= item.created_at + config["MAIL_GIVE_UP_AFTER"]:  # e.g. no sender ran for days:
        # too late to be of use (its links have expired), so this claim is no attempt.
        _drop(item, item.attempts - 1, f"not sent within MAIL_GIVE_UP_AFTER; last error: {item.last_error}")
        return True
    try:
        _carry_out(item)
    except Exception as error:  # a sender must outlive any one mail
        db.session.rollback()
        _failed(item, error)
    return True


_numbers = itertools.count(1)


class _Sender:
    """The thread that sends a database's queued mail from this process, as one of its apps."""

    def __init__(self, app: Flask) -> None:
        self.app = app  # whichever app of this process asked for the sender last
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pool: Pool | None = None  # the engine's pool when this sender last looked at the queue
        self.thread = threading.Thread(target=self._run, name=f"idp-mail-sender-{next(_numbers)}",
                                       daemon=True)

    def alive(self) -> bool:
        """Say whether the thread runs and has not been told to stop."""
        return self.thread.is_alive() and not self.stopping.is_set()

    def stop(self) -> None:
        """Stop after the current mail, waiting for that to end."""
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(self.app.config["SMTP_TIMEOUT"] * 2 + 5)

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()  # before looking: a wake-up while looking makes the next wait return at once
            app = self.app
            pause = poll = app.config["MAIL_POLL_INTERVAL"]
            try:
                with app.app_context():
                    self.pool = db.engine.pool
                    # A read first: claiming writes (on SQLite it takes the database's one write
                    # lock), which an idle sender in every process must not do at each poll.
                    due = mail_queue.next_due()
                    if due is not None and due <= time.time():
                        _send_one()  # claims nothing if another sender took it first
                        continue
                if due is not None:  # a retry or an expiring claim; others' new mail within `poll`
                    pause = min(poll, max(due - time.time(), 0.01))
            except SQLAlchemyError as error:
                logger.error("mail queue unreachable, trying again in %.3g s: %s", poll, error)
            except Exception:
                logger.exception("mail sender failed, trying again in %.3g s", poll)
            self.wake.wait(pause)


# One sender per database in a process. A server builds one app per process; tests build many on one
# database, and a sender left with an app a finished test dropped would send the next test's mail.
_senders: dict[str, _Sender] = {}
_lock = threading.Lock()


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a fork may happen while another thread holds it
    _senders.clear()  # their threads stayed in the parent


os.register_at_fork(after_in_child=_after_fork)


def _sender() -> _Sender:
    """Return this process's sender for the current app's database, started and working for this app."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key = str(db.engine.url)  # the password masked
    sender = _senders.get(key)
    if sender is None or not sender.alive() or sender.app is not app:
        with _lock:
            sender = _senders.get(key)
            if sender is None or not sender.alive():
                sender = _senders[key] = _Sender(app)
                sender.thread.start()
            sender.app = app
            if _SENDER not in app.extensions:
                app.extensions[_SENDER] = True
                event.listen(db.engine, "engine_disposed", functools.partial(_stop, key))
    return sender


def _stop(key: str, engine: Engine) -> None:
    """Stop sending from a database an app lets go of (a test's, which the next test may use)."""
    with _lock:
        sender = _senders.pop(key, None)
    if sender is None:
        return
    sender.stop()
    # A connection the sender held through the dispose went back to the pool the engine dropped,
    # where nothing would ever close it.
    for pool in {pool for pool in (sender.pool, engine.pool) if pool is not None}:
        pool.dispose()


def _start_sender() -> None:
    _sender()


def wait_for_sent(timeout: float = 10.0) -> None:
    """Wait until every mail and task queued so far was tried at least once; raise TimeoutError if not."""
    sender = _sender()
    deadline = time.monotonic() + timeout
    while mail_queue.untried():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"mails still queued after {timeout} s")
        sender.wake.set()
        time.sleep(0.02)
