"""Outgoing mail against real SMTP servers (aiosmtpd): plain, STARTTLS, implicit TLS, AUTH, outbox.

These send at once (`send` below, what the queue's sender does with each mail); the queue that request
handlers use is tested in test_mail_queue.py.
"""

import logging
import socket
import stat
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask

from idp import ConfigurationError, mail
from tests.mailbox import Mailbox, Silent

TO = "ada@example.com"
LINK = "https://idp.example.com/u/verify?token=s1ngle-use"
TEXT = f"Hello Ada,\n\nfollow {LINK}.\n"
HTML = f'<p>Hello Ada,</p><p><a href="{LINK}">Verify</a></p>'


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """A bare Flask app: sending at once needs only the config and the instance folder."""
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.from_object("idp.config")
    app.config["MAIL_FROM"] = "idp <no-reply@idp.example.com>"
    with app.app_context():
        yield app


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, so nobody else takes it, but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def send(to: str, subject: str, text: str, html: str) -> None:
    """Compose and send a mail now, as the sender does with a queued one; raise MailError if that fails."""
    mail._transmit(mail._compose(mail._mail_from(), to, subject, text, html))


def mail_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "idp.mail")


def test_plain_smtp_delivers_text_and_html(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "idp.mail")
    with Mailbox() as box:
        app.config["SMTP_URL"] = box.url
        send(TO, "Verify your email address", TEXT, HTML)
        message = box.wait_for(TO)

    assert message["From"] == "idp <no-reply@idp.example.com>"
    assert message["To"] == TO
    assert message["Subject"] == "Verify your email address"
    assert message["Date"].datetime is not None
    assert message["Message-ID"].endswith("@idp.example.com>")
    assert message["X-MailFrom"] == "no-reply@idp.example.com"
    assert message["X-TLS"] == "none"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == TEXT
    assert message.get_body(("html",)).get_content().strip() == HTML
    assert box.link(message) == LINK
    log = mail_log(caplog)
    assert TO in log and "Verify your email address" in log and f"127.0.0.1:{box.port}" in log
    assert "token" not in log  # links carry single-use tokens


@pytest.mark.parametrize("scheme", ["smtp+starttls://{}?cafile={}", "smtp://{}?starttls=1&cafile={}"])
def test_starttls_with_auth(app: Flask, tmp_path: Path, scheme: str) -> None:
    with Mailbox(tls="starttls", auth=True, directory=tmp_path) as box:
        credentials = f"{quote(box.user, safe='')}:{quote(box.password, safe='')}"
        app.config["SMTP_URL"] = scheme.format(f"{credentials}@127.0.0.1:{box.port}", box.cafile)
        send(TO, "Hello", TEXT, HTML)
        message = box.wait_for(TO)
    assert message["X-TLS"].startswith("TLSv1.")
    assert message["X-Auth"] == box.user


def test_wrong_password_raises_without_revealing_it(app: Flask, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = "wr0ng-s3cret"
    with Mailbox(tls="starttls", auth=True, directory=tmp_path) as box:
        app.config["SMTP_URL"] = f"smtp+starttls://{box.user}:{password}@127.0.0.1:{box.port}?cafile={box.cafile}"
        with pytest.raises(mail.MailError, match=f"127.0.0.1:{box.port}.*535") as caught:
            send(TO, "Hello", TEXT, HTML)
        assert box.messages == []
    assert password not in str(caught.value) and password not in caplog.text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_untrusted_certificate_is_refused(app: Flask, tmp_path: Path) -> None:
    with Mailbox(tls="starttls", directory=tmp_path) as box:
        app.config["SMTP_URL"] = f"smtp+starttls://127.0.0.1:{box.port}"  # no cafile: system CAs only
        with pytest.raises(mail.MailError, match="CERTIFICATE_VERIFY_FAILED"):
            send(TO, "Hello", TEXT, HTML)
        assert box.messages == []


def test_implicit_tls_with_auth(app: Flask, tmp_path: Path) -> None:
    with Mailbox(tls="implicit", auth=True, directory=tmp_path) as box:
        app.config["SMTP_URL"] = box.url
        assert box.url.startswith("smtps://")
        send(TO, "Hello", TEXT, HTML)
        message = box.wait_for(TO)
    assert message["X-TLS"].startswith("TLSv1.")
    assert message["X-Auth"] == box.user


def test_server_down_names_host_and_port(app: Flask, closed_port: int) -> None:
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{closed_port}"
    with pytest.raises(mail.MailError, match=f"127.0.0.1:{closed_port}: ConnectionRefusedError"):
        send(TO, "Hello", TEXT, HTML)


def test_outbox_without_smtp_url(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "idp.mail")
    send(TO, "Verify your email address", TEXT, HTML)

    outbox = Path(app.instance_path) / "outbox"
    [path] = outbox.glob("*.eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == TO
    assert Mailbox.link(message) == LINK  # type: ignore[arg-type]
    [record] = [r for r in caplog.records if r.name == "idp.mail"]
    assert record.levelno == logging.INFO
    assert TO in record.getMessage() and "Verify your email address" in record.getMessage()
    assert LINK in record.getMessage().split()


def test_a_hanging_server_times_out(app: Flask) -> None:
    app.config["SMTP_TIMEOUT"] = 0.5
    with Silent() as silent:
        app.config["SMTP_URL"] = silent.url
        started = time.monotonic()
        with pytest.raises(mail.MailError, match=f"127.0.0.1:{silent.port}: .*timed out"):
            send(TO, "Hello", TEXT, HTML)
    assert 0.4 < time.monotonic() - started < 3


@pytest.mark.parametrize(("url", "error"), [
    ("http://mail.example.com", "unknown scheme 'http'"),
    ("smtp://", "no host"),
    ("smtp://mail.example.com:port", "invalid port"),
    ("smtp://mail.example.com?verify=0", "unknown or empty option 'verify'"),
    ("smtps://mail.example.com?password=hunter2", "unknown or empty option 'password'"),
    ("smtps://mail.example.com?starttls=1", "smtps already uses TLS"),
    ("smtp://user:hunter2@mail.example.com", "credentials but no TLS"),
])
def test_unusable_smtp_url(app: Flask, url: str, error: str) -> None:
    app.config["SMTP_URL"] = url
    with pytest.raises(mail.MailError, match=error) as caught:
        send(TO, "Hello", TEXT, HTML)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigurationError, match=error):
        mail.init_app(app)


def test_default_ports_and_decoded_credentials() -> None:
    assert mail._parse("smtp://mail.example.com").port == 25
    assert mail._parse("smtp://mail.example.com?starttls=1").port == 587
    assert mail._parse("smtp+starttls://mail.example.com").port == 587
    assert mail._parse("smtps://mail.example.com").port == 465
    server = mail._parse("smtps://us%40er:p%3Aw%2Fd@mail.example.com:2465?cafile=/etc/ca.pem")
    assert (server.user, server.password, server.port) == ("us@er", "p:w/d", 2465)
    assert server.cafile == "/etc/ca.pem"
    assert "p:w/d" not in repr(server)


def test_links() -> None:
    text = "Go to https://a.example/x?t=1. Or (http://b.example/y), not ftp://c.example."
    assert mail.links(text) == ["https://a.example/x?t=1", "http://b.example/y"]


@pytest.mark.parametrize("name", mail.DURATIONS)
@pytest.mark.parametrize("value", [0, -1, "10", True])
def test_mail_durations_must_be_positive_numbers(app: Flask, name: str, value: object) -> None:
    app.config[name] = value
    with pytest.raises(ConfigurationError, match=f"IDP_{name} must be a positive number of seconds"):
        mail.init_app(app)
