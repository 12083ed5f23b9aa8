"""The mail queue: mail is stored with the work that asks for it, then sent from the database once,
whatever the SMTP server does, by however many senders share the database."""

import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import Row, event, select
from werkzeug.test import TestResponse

from idp import counters, create_app, mail, mail_queue
from idp.connections import registry as connections
from idp.connections.legacy import PROFILE_REJECTED
from idp.connections.models import MigrationEvent
from idp.db import db
from idp.keys import kek
from idp.mail_queue import QueuedMail
from tests.mailbox import Mailbox, Silent
from tests.migration import conftest as migration
from tests.migration.conftest import SCRIPT, Legacy
from tests.support import Browser, csrf_token, eventually, in_threads, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

TO = "ada@example.com"
LINK = "https://idp.example.com/u/verify?token=s1ngle-use"
TEXT = f"Hello Ada,\n\nfollow {LINK}.\n"
HTML = f'<p>Hello Ada,</p><p><a href="{LINK}">Verify</a></p>'
# Short waits, so that a test sees several attempts.
FAST = {"SMTP_TIMEOUT": 1, "MAIL_RETRY_INITIAL": 0.1, "MAIL_RETRY_MAX": 0.4, "MAIL_POLL_INTERVAL": 0.1}



@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    """The test configuration with short mail waits."""
    config.update(FAST)
    return config


@pytest.fixture
def down() -> Iterator[socket.socket]:
    """A loopback port where no SMTP server listens (bound, so nobody takes it); close it to serve there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def queued() -> list[Row[Any]]:
    """Return the queue as the database holds it now, not as the test's session last saw it."""
    with db.engine.connect() as conn:
        return list(conn.execute(select(QueuedMail.__table__).order_by(QueuedMail.id)))


def ask_for_reset(browser: Browser, email: str) -> TestResponse:
    """Ask for a password-reset link, as the form does."""
    page = browser.get("/u/reset-password")
    form = {"csrf_token": csrf_token(page.text), "email": email}
    return browser.client.post("/u/reset-password", data=form)


def path(link: str) -> str:
    """Return the path and query of an emailed link (the test client needs no host)."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def mail_log(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "idp.mail" and r.levelno == level]


def test_mail_asked_for_while_smtp_is_down_arrives_when_it_is_back(app: Flask, user: Any, browser: Browser,
                                                                   down: socket.socket,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    port = down.getsockname()[1]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    answer = ask_for_reset(browser, user.email)
    assert answer.status_code == 200 and "Check your inbox" in answer.text

    # The reset was looked up and its mail composed; sending it failed twice, and it waits.
    [row] = eventually(lambda: [r for r in queued() if r.task is None and r.attempts >= 2 and not r.claim])
    assert row.label == f"mail to {user.email}: 'Reset your password'"
    assert "ConnectionRefusedError" in row.last_error
    down.close()
    with Mailbox(port=port) as box:
        message = box.wait_for(user.email)
        eventually(lambda: not queued())
    assert len(box.messages) == 1 and message["Subject"] == "Reset your password"
    assert "Choose a new password" in browser.get(path(box.link(message))).text
    failures = mail_log(caplog, logging.WARNING)
    assert failures[0] == (f"mail to {user.email}: 'Reset your password' failed (attempt 1), trying again "
                           f"in 0.1 s: cannot send mail through 127.0.0.1:{port}: ConnectionRefusedError: "
                           "[Errno 111] Connection refused")
    assert "token=" not in caplog.text


def test_an_smtp_server_that_goes_down_and_comes_back_loses_no_mail(app: Flask, user: Any,
                                                                     browser: Browser) -> None:
    with Mailbox() as box:
        app.config["SMTP_URL"] = box.url
        ask_for_reset(browser, user.email)
        assert box.wait_for(user.email)["Subject"] == "Reset your password"
    # The server goes down between two mails: the second waits in the queue, failing, until it is back.
    ask_for_reset(browser, user.email)
    [row] = eventually(lambda: [r for r in queued() if r.task is None and r.attempts >= 2 and not r.claim])
    assert "ConnectionRefusedError" in row.last_error
    with Mailbox(port=box.port) as back:
        second = back.wait_for(user.email)
        eventually(lambda: not queued())
    assert len(box.messages) == len(back.messages) == 1 and box.link(box.messages[0]) != back.link(second)
    assert "Choose a new password" in browser.get(path(back.link(second))).text


def test_a_hanging_server_delays_mail_without_slowing_answers(
        app: Flask, user: Any, browser: Browser, caplog: pytest.LogCaptureFixture) -> None:
    app.config["SMTP_TIMEOUT"] = 2
    with Silent() as silent:
        app.config["SMTP_URL"] = silent.url
        ask_for_reset(browser, user.email)
        eventually(lambda: [r for r in queued() if r.task is None and r.claim])  # the sender waits on it
        took = []
        for _ in range(3):
            started = time.monotonic()
            assert "Check your inbox" in ask_for_reset(browser, user.email).text
            took.append(time.monotonic() - started)
        assert max(took) < app.config["SMTP_TIMEOUT"] / 4, took  # the sender waits 2 s each time
        eventually(lambda: any("timed out" in m for m in mail_log(caplog, logging.WARNING)))
        port = silent.port
    with Mailbox(port=port) as box:  # a working server where the hanging one was
        messages = [box.wait_for(user.email, timeout=15) for _ in range(4)]
        eventually(lambda: not queued())
    assert len(box.messages) == 4
    assert len({box.link(m) for m in messages}) == 4  # four mails, each once


def test_two_senders_on_one_database_send_each_mail_once(
        app: Flask, config: dict[str, Any], database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "idp.mail")
    # Another host: the same database, reached through a URL of its own (a process runs one sender
    # per database URL).
    option = "timeout=5" if database_url.startswith("sqlite") else "application_name=other-host"
    with Mailbox(delay=0.05) as box:  # a slow server: while one sender waits for it, the other sends
        app.config["SMTP_URL"] = box.url
        other = create_app({**config, "SMTP_URL": box.url, "DATABASE_URL": f"{database_url}?{option}"})
        try:
            with other.app_context():
                mail._sender()
            for n in range(20):
                mail.send_later(TO, f"mail {n}", TEXT, HTML)
            db.session.commit()
            for _ in range(20):
                box.wait_for(TO)
            eventually(lambda: not queued())
            time.sleep(0.3)  # a second copy would have come by now
        finally:
            with other.app_context():
                db.engine.dispose()
                counters.dispose()
    assert sorted(str(m["Subject"]) for m in box.messages) == sorted(f"mail {n}" for n in range(20))
    senders = {r.threadName for r in caplog.records if " sent through " in r.getMessage()}
    assert len(senders) == 2


def test_concurrent_claims_take_each_mail_once(app: Flask) -> None:
    for n in range(60):
        mail_queue.add(None, f"mail {n}", b"sealed")
    db.session.commit()
    taken: list[int] = []
    failures: list[BaseException] = []

    def sender() -> None:
        try:
            with app.app_context():
                while (item := mail_queue.claim(30)) is not None:
                    taken.append(item.id)
                    assert mail_queue.finish(item)
                    db.session.commit()
        except BaseException as error:
            failures.append(error)

    in_threads(*[sender] * 6, timeout=30)
    assert not failures
    assert len(taken) == len(set(taken)) == 60
    assert not queued()


def test_a_claim_left_by_a_dead_sender_expires_and_another_sends_the_mail(app: Flask) -> None:
    with Mailbox() as box:
        app.config["SMTP_URL"] = box.url
        message = mail._compose("idp <no-reply@localhost>", TO, "Hi", TEXT, HTML)
        mail_queue.add(None, f"mail to {TO}", mail._seal(message.as_bytes()))
        db.session.commit()
        dead = mail_queue.claim(lease=1)  # a sender that dies mid-send never finishes its claim
        assert dead is not None and dead.attempts == 1
        claimed = time.monotonic()
        mail._sender()
        message = box.wait_for(TO)
        assert time.monotonic() - claimed > 0.8  # not before the lease ran out
        eventually(lambda: not queued())
    assert not mail_queue.finish(dead)  # the claim expired: the dead sender's word no longer counts
    assert len(box.messages) == 1 and message["Subject"] == "Hi"


def test_retries_back_off_then_give_up_and_log_neither_body_nor_links(
        app: Flask, down: socket.socket, caplog: pytest.LogCaptureFixture) -> None:
    port = down.getsockname()[1]
    app.config.update(SMTP_URL=f"smtp://127.0.0.1:{port}", MAIL_GIVE_UP_AFTER=1.3)
    mail.send_later(TO, "Hello", TEXT, HTML)
    db.session.commit()
    eventually(lambda: mail_log(caplog, logging.ERROR))
    assert not queued()
    retries = mail_log(caplog, logging.WARNING)
    waits = [float(re.search(r"trying again in (\S+) s", m)[1]) for m in retries]  # type: ignore[index]
    assert waits[:3] == [0.1, 0.2, 0.4] and set(waits[3:]) <= {0.4}  # doubling up to MAIL_RETRY_MAX
    [gave_up] = mail_log(caplog, logging.ERROR)
    refused = (f"cannot send mail through 127.0.0.1:{port}: ConnectionRefusedError: "
               "[Errno 111] Connection refused")
    # Dropped when an attempt fails too late for another, or, on a slow machine, when a retry comes too late.
    assert gave_up in (f"mail to {TO}: 'Hello' dropped after {len(retries) + 1} failed attempts: {refused}",
                       f"mail to {TO}: 'Hello' dropped after {len(retries)} failed attempts: not sent within "
                       f"MAIL_GIVE_UP_AFTER; last error: {refused}")
    assert "s1ngle-use" not in caplog.text and "Hello Ada" not in caplog.text


def test_a_refused_login_is_logged_without_the_password(app: Flask, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    password = "wr0ng-s3cret"
    with Mailbox(tls="starttls", auth=True, directory=tmp_path) as box:
        app.config["SMTP_URL"] = f"smtp+starttls://{box.user}:{password}@127.0.0.1:{box.port}?cafile={box.cafile}"
        mail.send_later(TO, "Hello", TEXT, HTML)
        db.session.commit()
        mail.wait_for_sent(5)
    failure = mail_log(caplog, logging.WARNING)[0]
    assert failure.startswith(f"mail to {TO}: 'Hello' failed (attempt 1), trying again in 0.1 s: "
                              f"cannot send mail through 127.0.0.1:{box.port}: 535 ")
    assert password not in caplog.text and "s1ngle-use" not in caplog.text


def test_a_queued_mail_is_encrypted_at_rest_and_deleted_once_sent(app: Flask, down: socket.socket) -> None:
    port = down.getsockname()[1]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    mail.send_later(TO, "Hello", TEXT, HTML)
    db.session.commit()
    [row] = queued()
    assert b"s1ngle-use" not in row.payload and b"Hello Ada" not in row.payload
    assert b"s1ngle-use" in kek.decrypt(row.payload)
    assert row.label == f"mail to {TO}: 'Hello'"
    down.close()
    with Mailbox(port=port) as box:
        assert box.link(box.wait_for(TO)) == LINK
        eventually(lambda: not queued())


def test_mail_goes_out_only_if_its_transaction_commits(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "idp.mail")
    mail.send_later(TO, "rolled back", TEXT, HTML)
    db.session.rollback()
    mail.send_later(TO, "committed", TEXT, HTML)
    db.session.commit()
    mail.wait_for_sent(5)
    [written] = (Path(app.instance_path) / "outbox").glob("*.eml")  # no SMTP_URL: the outbox
    assert "Subject: committed" in written.read_text()
    [record] = mail_log(caplog, logging.INFO)
    assert record.startswith(f"mail to {TO}: 'committed' written to {written}") and LINK in record.split()


def test_no_mail_is_dropped_however_many_are_queued(app: Flask) -> None:
    for n in range(200):  # twice what the in-memory queue that used to drop mail held
        mail.send_later(f"user{n}@example.com", "Hello", TEXT, HTML)
    db.session.commit()
    mail.wait_for_sent(60)
    assert len(list((Path(app.instance_path) / "outbox").glob("*.eml"))) == 200
    assert not queued()


def test_the_sender_stops_with_its_app_and_starts_again_on_demand(app: Flask) -> None:
    sender = mail._sender()
    assert sender.thread.is_alive() and mail._sender() is sender
    db.engine.dispose()  # what a test's app does when it ends
    assert not sender.thread.is_alive()
    assert mail._sender() is not sender and mail._sender().thread.is_alive()


def test_an_app_dropped_on_the_same_database_sends_nothing_more(app: Flask, config: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    dropped = create_app({**config, "INSTANCE_PATH": str(tmp_path / "dropped")})  # a finished test's
    try:
        assert dropped.test_client().get("/healthz").status_code == 200  # its sender started
        for n in range(20):
            mail.send_later(f"user{n}@example.com", "Hello", TEXT, HTML)
        db.session.commit()
        mail.wait_for_sent(10)
    finally:
        with dropped.app_context():
            db.engine.dispose()
            counters.dispose()
    assert len(list((Path(app.instance_path) / "outbox").glob("*.eml"))) == 20
    assert not (tmp_path / "dropped" / "outbox").exists()


# A legacy store that fails while a switch file says "down", as a store that is down for a while does.
FLAKY = SCRIPT.replace('''def get_user(email, configuration):
''', '''def get_user(email, configuration):
    with open(configuration["switch"]) as switch:
        if switch.read() == "down":
            raise ConnectionError("the legacy store is down")
''')


legacy = migration.legacy  # the fixture: a legacy store, its migrating connection and its client


def ask_legacy_reset(browser: Browser, legacy: Legacy, email: str) -> TestResponse:
    """Ask for a reset link in an authorization request of the legacy connection's client."""
    handle = query(browser.authorize(legacy.rp).headers["Location"])["state"]
    url = f"/u/reset-password?state={handle}"
    page = browser.get(url)
    return browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": email})


def test_a_reset_asked_for_while_the_legacy_store_is_down_is_mailed_when_it_answers(
        app: Flask, legacy: Legacy, browser: Browser, mailbox: Mailbox, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    switch = tmp_path / "switch"
    switch.write_text("down")
    legacy.connection.configuration = {**legacy.connection.configuration, "switch": str(switch)}
    connections.configure(legacy.connection, get_user=FLAKY)
    db.session.commit()
    answer = ask_legacy_reset(browser, legacy, "max@example.com")
    assert answer.status_code == 200 and "Check your inbox" in answer.text

    # The lookup failed and waits for another attempt, as a mail the SMTP server refused would.
    [row] = eventually(lambda: [r for r in queued() if r.attempts >= 2 and not r.claim])
    assert row.task == "idp.pages.mails._reset" and "the legacy store is down" in row.last_error
    assert not mailbox.messages
    switch.write_text("up")  # in place: the jail shows the file it found
    message = mailbox.wait_for("max@example.com", timeout=10)
    eventually(lambda: not queued())
    assert "Max Legacy" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Choose a new password" in browser.get(path(mailbox.link(message))).text
    retried = [m for m in mail_log(caplog, logging.WARNING) if "the legacy store is down" in m]
    assert retried and all(m.startswith("task idp.pages.mails._reset failed (attempt ") for m in retried)
    assert not mail_log(caplog, logging.ERROR)
    assert len(mailbox.messages) == 1


def test_a_reset_whose_legacy_profile_is_refused_is_dropped_at_once(
        app: Flask, legacy: Legacy, browser: Browser, mailbox: Mailbox,
        caplog: pytest.LogCaptureFixture) -> None:
    # A profile for another address than the one asked for: refused, and it would be every time.
    wrong = SCRIPT.replace('"email": row[1]', '"email": "someone.else@example.com"')
    connections.configure(legacy.connection, get_user=wrong)
    db.session.commit()
    assert ask_legacy_reset(browser, legacy, "max@example.com").status_code == 200
    mail.wait_for_sent(5)
    eventually(lambda: not queued())
    time.sleep(0.5)  # a retry would have come by now (MAIL_RETRY_INITIAL is 0.1 s)
    db.session.expire_all()
    rejected = db.session.scalars(select(MigrationEvent).where(MigrationEvent.type == PROFILE_REJECTED))
    assert [e.email for e in rejected] == ["max@example.com"]
    assert not mail_log(caplog, logging.WARNING) and not mailbox.messages


def test_a_mail_the_key_does_not_open_is_dropped_at_once_with_one_error(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    other_key = Fernet(Fernet.generate_key())  # what the rows were sealed with before the key was replaced
    message = mail._compose("idp <no-reply@localhost>", TO, "Hello", TEXT, HTML)
    mail_queue.add(None, f"mail to {TO}: 'Hello'", other_key.encrypt(message.as_bytes()))
    mail_queue.add(None, f"mail to {TO}: 'Malformed'", b"not a sealed mail")
    db.session.commit()
    mail.wait_for_sent(5)
    eventually(lambda: not queued())
    errors = mail_log(caplog, logging.ERROR)
    reason = "the key-encryption key does not open it (was the key replaced, or is the stored row malformed?)"
    assert sorted(errors) == [f"mail to {TO}: 'Hello' dropped: {reason}",
                              f"mail to {TO}: 'Malformed' dropped: {reason}"]
    assert not mail_log(caplog, logging.WARNING)  # not retried
    assert not [r for r in caplog.records if r.name == "idp.mail" and r.exc_info]
    assert "s1ngle-use" not in caplog.text and "Hello Ada" not in caplog.text
    assert not (Path(app.instance_path) / "outbox").exists()


def test_an_idle_sender_only_reads_the_queue(app: Flask) -> None:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        mail._sender()
        time.sleep(0.6)  # a few polls, every MAIL_POLL_INTERVAL (0.1 s)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    polls = [s for s in statements if "mail_queue" in s]
    assert len(polls) >= 3
    assert all(s.lstrip().upper().startswith("SELECT") for s in polls), polls  # no claim, no write lock
    mail.send_later(TO, "Hello", TEXT, HTML)  # and the next mail still goes out
    db.session.commit()
    mail.wait_for_sent(5)
    assert not queued()
