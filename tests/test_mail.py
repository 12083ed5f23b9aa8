"""Outgoing mail against real SMTP servers (aiosmtpd): plain, STARTTLS, implicit TLS, AUTH, outbox."""

import logging
import socket
import stat
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask

from idp import ConfigurationError, mail
from tests.mailbox import Mailbox

TO = "ada@example.com"
LINK = "https://idp.example.com/u/verify?token=s1ngle-use"
TEXT = f"Hello Ada,\n\nfollow {LINK}.\n"
HTML = f'<p>Hello Ada,</p><p><a href="{LINK}">Verify</a></p>'


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """A bare Flask app: mail needs only its config and instance folder."""
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config["MAIL_FROM"] = "idp <no-reply@idp.example.com>"
    with app.app_context():
        yield app


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, so nobody else takes it, but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def mail_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "idp.mail")


def test_plain_smtp_delivers_text_and_html(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "idp.mail")
    with Mailbox() as box:
        app.config["SMTP_URL"] = box.url
        mail.send(TO, "Verify your email address", TEXT, HTML)
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
        mail.send(TO, "Hello", TEXT, HTML)
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
            mail.send(TO, "Hello", TEXT, HTML)
        assert box.messages == []
    assert password not in str(caught.value) and password not in caplog.text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_untrusted_certificate_is_refused(app: Flask, tmp_path: Path) -> None:
    with Mailbox(tls="starttls", directory=tmp_path) as box:
        app.config["SMTP_URL"] = f"smtp+starttls://127.0.0.1:{box.port}"  # no cafile: system CAs only
        with pytest.raises(mail.MailError, match="CERTIFICATE_VERIFY_FAILED"):
            mail.send(TO, "Hello", TEXT, HTML)
        assert box.messages == []


def test_implicit_tls_with_auth(app: Flask, tmp_path: Path) -> None:
    with Mailbox(tls="implicit", auth=True, directory=tmp_path) as box:
        app.config["SMTP_URL"] = box.url
        assert box.url.startswith("smtps://")
        mail.send(TO, "Hello", TEXT, HTML)
        message = box.wait_for(TO)
    assert message["X-TLS"].startswith("TLSv1.")
    assert message["X-Auth"] == box.user


def test_server_down_names_host_and_port(app: Flask, closed_port: int) -> None:
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{closed_port}"
    with pytest.raises(mail.MailError, match=f"127.0.0.1:{closed_port}: ConnectionRefusedError"):
        mail.send(TO, "Hello", TEXT, HTML)


def test_outbox_without_smtp_url(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "idp.mail")
    mail.send(TO, "Verify your email address", TEXT, HTML)

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


def test_send_later_delivers_in_the_background(app: Flask) -> None:
    with Mailbox() as box:
        app.config["SMTP_URL"] = box.url
        mail.send_later(TO, "Hello", TEXT, HTML)
        app.config["SMTP_URL"] = "smtp://changed.invalid"  # the request's config was already copied
        mail.wait_for_sent(5)
        assert box.link(box.wait_for(TO)) == LINK


def test_send_later_logs_failures_instead_of_raising(app: Flask, tmp_path: Path, closed_port: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    password = "wr0ng-s3cret"
    with Mailbox(tls="starttls", auth=True, directory=tmp_path) as box:
        app.config["SMTP_URL"] = f"smtp+starttls://{box.user}:{password}@127.0.0.1:{box.port}?cafile={box.cafile}"
        mail.send_later(TO, "Hello", TEXT, HTML)
        app.config["SMTP_URL"] = f"smtp://127.0.0.1:{closed_port}"
        mail.send_later("bob@example.com", "Hi", TEXT, HTML)
        mail.wait_for_sent(5)
    errors = [r.getMessage() for r in caplog.records if r.name == "idp.mail" and r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert any(TO in e and f"MailError: cannot send mail through 127.0.0.1:{box.port}: 535" in e
               for e in errors)
    assert any("bob@example.com" in e and f"127.0.0.1:{closed_port}" in e for e in errors)
    assert password not in caplog.text and LINK not in caplog.text


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
        mail.send(TO, "Hello", TEXT, HTML)
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


def test_send_later_drops_mail_when_the_queue_is_full(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(mail, "WORKERS", 1)
    monkeypatch.setattr(mail, "QUEUE_SIZE", 1)
    monkeypatch.setattr(mail, "_pool", mail._Pool())
    release = threading.Event()
    mail._pool.submit(lambda: release.wait(5))  # occupies the only worker
    while mail._pool._jobs.qsize():
        time.sleep(0.001)
    mail.send_later(TO, "queued", TEXT, HTML)  # fills the queue
    mail.send_later("bob@example.com", "dropped", TEXT, HTML)
    [error] = [r.getMessage() for r in caplog.records if r.name == "idp.mail"]
    assert "bob@example.com" in error and "queue is full" in error
    release.set()
    mail.wait_for_sent(5)
    assert len(list((Path(app.instance_path) / "outbox").glob("*.eml"))) == 1
