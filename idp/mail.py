"""Outgoing mail: SMTP in production, the instance outbox in development.

`SMTP_URL` (environment `IDP_SMTP_URL`) picks the transport:

    smtp://host[:port]                            plain SMTP, port 25
    smtp+starttls://user:password@host[:port]     STARTTLS, port 587 (same: smtp://…?starttls=1)
    smtps://user:password@host[:port]             implicit TLS, port 465
    …?cafile=/path/to/ca.pem                      trust this CA (PEM) instead of the system's

User and password are percent-decoded; when present the provider logs in, which it does only over
TLS (a URL with credentials and no TLS is refused). The server certificate and host name are always
verified. There is deliberately no option to turn that off: for a server with a self-signed
certificate, give that certificate (or the CA that signed it) as `cafile`. Connections time out after
10 seconds.

Without `SMTP_URL`, each mail is written as an .eml file (mode 0600) into `<instance>/outbox/` and
its links are logged, so a developer can follow a verification link offline. Over SMTP only the
recipient and subject are logged: links carry single-use tokens.

`send_later` is what request handlers use: the SMTP conversation happens on a background thread, so
a response takes the same time whether or not a mail went out, and failures are logged, not raised.
"""

import logging
import os
import queue
import re
import secrets
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from flask import Flask, current_app

from idp import ConfigurationError

logger = logging.getLogger("idp.mail")

TIMEOUT = 10.0  # seconds, per SMTP connection
WORKERS = 2
QUEUE_SIZE = 100
DEFAULT_FROM = "idp <no-reply@localhost>"

_PORTS = {"plain": 25, "starttls": 587, "tls": 465}
_SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
_LINK = re.compile(r"https?://[^\s<>\"']+")


class MailError(RuntimeError):
    """A mail could not be handed to the SMTP server, or SMTP_URL is unusable."""


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
    """Refuse to start with an unusable SMTP_URL rather than fail at the first mail."""
    url = app.config.get("SMTP_URL")
    if url:
        try:
            _parse(url)
        except MailError as error:
            raise ConfigurationError(str(error)) from None


@dataclass(frozen=True)
class _Settings:
    """What sending needs from the app config, copied so a worker never reads it mid-change."""

    mail_from: str
    smtp_url: str
    outbox: Path


def _settings() -> _Settings:
    config = current_app.config
    return _Settings(config.get("MAIL_FROM") or DEFAULT_FROM, config.get("SMTP_URL") or "",
                     Path(current_app.instance_path) / "outbox")


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
        return f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
    return f"{type(error).__name__}: {error}"


def _deliver(server: _Server, message: EmailMessage) -> None:
    context = None
    if server.security != "plain":
        try:
            context = ssl.create_default_context(cafile=server.cafile)
        except OSError as error:
            raise MailError(f"SMTP_URL: cannot load cafile {server.cafile}: {_reason(error)}") from None
    try:
        if server.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT,
                                                   context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
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


def _send(settings: _Settings, to: str, subject: str, text: str, html: str) -> None:
    message = _compose(settings.mail_from, to, subject, text, html)
    if settings.smtp_url:
        server = _parse(settings.smtp_url)
        _deliver(server, message)
        logger.info("mail to %s: %r sent through %s", to, subject, server.address)
    else:
        path = _write_outbox(settings.outbox, message)
        logger.info("mail to %s: %r written to %s; links: %s", to, subject, path,
                    " ".join(links(text)) or "none")


def send(to: str, subject: str, text: str, html: str) -> None:
    """Send a mail with text and HTML parts now; raise MailError if the SMTP server refuses it."""
    _send(_settings(), to, subject, text, html)


class _Pool:
    """A few worker threads behind a bounded queue, with a way to wait until it is empty."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=QUEUE_SIZE)
        self._idle = threading.Condition()
        self._pending = 0
        self._started = False

    def submit(self, job: Callable[[], None]) -> bool:
        with self._idle:
            if not self._started:
                for n in range(WORKERS):
                    threading.Thread(target=self._work, name=f"idp-mail-{n}", daemon=True).start()
                self._started = True
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                return False
            self._pending += 1
            return True

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # a worker must outlive any one mail
                logger.exception("mail job failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


_pool = _Pool()


def _new_pool() -> None:
    global _pool
    _pool = _Pool()  # a forked child has the parent's queue but none of its threads


os.register_at_fork(after_in_child=_new_pool)


def send_later(to: str, subject: str, text: str, html: str) -> None:
    """Queue a mail for a background thread; failures are logged, never raised to the caller."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = _settings()

    def job() -> None:
        with app.app_context():
            try:
                _send(settings, to, subject, text, html)
            except MailError as error:
                logger.error("mail to %s: %r not sent: %s: %s", to, subject, type(error).__name__, error)
            except Exception:
                logger.exception("mail to %s: %r not sent", to, subject)

    if not _pool.submit(job):
        # Dropping beats blocking: a blocked request would show that it tried to send a mail.
        logger.error("mail to %s: %r not sent: the mail queue is full (%d waiting)", to, subject, QUEUE_SIZE)


def in_background(job: Callable[[], None]) -> None:
    """Run work that may send mail after the answer has gone, so its timing reveals nothing.

    The job runs in a request context at the issuer's URL, so `url_for` builds the same links.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        with app.test_request_context(base_url=app.config["ISSUER"]):
            job()

    if not _pool.submit(run):
        logger.error("background mail job dropped: the mail queue is full (%d waiting)", QUEUE_SIZE)


def wait_for_sent(timeout: float = 10.0) -> None:
    """Wait until every queued mail was sent or failed; raise TimeoutError if that takes too long."""
    if not _pool.wait(timeout):
        raise TimeoutError(f"mails still queued after {timeout} s")
