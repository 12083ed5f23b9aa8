"""Legacy users move over on login and password reset, exactly once, and failures create nothing."""

import logging
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from idp import mail
from idp.connections import registry as connections
from idp.connections.models import MigrationEvent
from idp.connections.status import status
from idp.db import db
from idp.users.models import User
from tests.interop.browser import authorization_url
from tests.migration.conftest import LEGACY_PASSWORD, SCRIPT
from tests.support import count_hashes, csrf_token, in_threads, pkce, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

CANT = "We can&#39;t sign you in right now"


def users() -> int:
    """Count local users."""
    return db.session.scalar(select(func.count()).select_from(User))


def events(type_: str) -> list[MigrationEvent]:
    """Return the recorded events of a type."""
    return list(db.session.scalars(select(MigrationEvent).where(MigrationEvent.type == type_)))


def login(browser, rp, email: str, password: str):
    """Start an authorization request for the client as a signed-out visitor and post the login form."""
    browser.client.delete_cookie("idp_session")
    first = browser.authorize(rp)
    return browser.login(first.headers["Location"], email, password)


def break_script(legacy, body: str) -> None:
    """Replace both scripts with ones whose functions run `body`."""
    source = f"def login(email, password, configuration):\n    {body}\n\n\n" \
             f"def get_user(email, configuration):\n    {body}\n"
    connections.configure(legacy.connection, login=source, get_user=source)


def test_first_login_moves_the_user_over_and_later_logins_are_local(browser, legacy):
    callback = browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)
    assert callback["code"]
    user = db.session.get(User, f"{legacy.connection.id}|42")
    assert user is not None and user.connection_id == legacy.connection.id
    assert (user.email, user.name, user.email_verified) == ("Lin@Example.com", "Lin Legacy", True)
    assert user.user_metadata == {"plan": "gold"} and user.app_metadata == {"legacy_id": 42}
    assert user.password_hash.startswith("$argon2id$") and user.migrated_at is not None
    tokens = browser.exchange(legacy.rp, callback["code"]).json
    claims = browser.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json
    assert claims["sub"] == user.id and claims["email_verified"] is True
    [event] = events("migrated")
    assert (event.source, event.user_id) == ("login", user.id)

    legacy.path.unlink()  # the legacy store is gone: migrated users do not notice
    browser.client.delete_cookie("idp_session")
    assert browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)["code"]
    assert users() == 1


def test_wrong_password_and_unknown_user_answer_alike(browser, legacy):
    wrong = login(browser, legacy.rp, "lin@example.com", "not the password")
    unknown = login(browser, legacy.rp, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert users() == 0
    assert len(events("legacy_login_failed")) == 2


@pytest.mark.parametrize("body", [
    "raise RuntimeError('legacy database exploded')",
    "import sqlite3; sqlite3.connect('/nonexistent/dir/db').execute('select 1')",
    "import time; time.sleep(30)",
    "import os; os._exit(1)",
])
def test_script_failures_create_nothing_and_leave_migrated_users_alone(browser, app, legacy, body, caplog):
    browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)
    browser.client.delete_cookie("idp_session")
    app.config.update(SCRIPT_TIMEOUT=1)
    break_script(legacy, body)
    failed = login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD)
    assert failed.status_code == 503 and CANT in failed.text
    assert users() == 1
    [event] = events("script_error")
    assert event.email == "max@example.com" and event.detail
    assert any("script" in r.getMessage() or "login" in r.getMessage() for r in caplog.records
               if r.name == "idp.migration")
    assert browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)["code"]  # migrated: unaffected


def test_circuit_breaker_fails_fast_and_closes_when_the_store_is_back(browser, app, legacy):
    app.config.update(BREAKER_FAILURES=2, BREAKER_WINDOW=60, BREAKER_COOLDOWN=1)
    break_script(legacy, "raise ConnectionError('legacy down')")
    for _ in range(3):  # one address failing again and again does not open it: its data may be at fault
        assert login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD).status_code == 503
    assert len(events("script_error")) == 3
    assert login(browser, legacy.rp, "other@example.com", LEGACY_PASSWORD).status_code == 503
    assert len(events("script_error")) == 4  # a second address failing too: the store is down
    started = time.perf_counter()
    fast = login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD)
    assert fast.status_code == 503 and len(events("script_error")) == 4  # the script was not called
    assert time.perf_counter() - started < 1
    connections.configure(legacy.connection, login=SCRIPT, get_user=SCRIPT)  # the store is back
    time.sleep(1.1)
    assert browser.sign_in(legacy.rp, "max@example.com", LEGACY_PASSWORD)["code"]
    assert users() == 1


@pytest.mark.parametrize(("profile", "reason"), [
    ("{'email': email}", "user_id"),
    ("{'user_id': 7}", "email"),
    ("{'user_id': 7, 'email': email, 'email_verified': 'yes'}", "email_verified"),
    ("{'user_id': [7], 'email': email}", "user_id"),
    ("{'user_id': 7, 'email': email, 'user_metadata': 'x'}", "user_metadata"),
    ("{'user_id': 7, 'email': 'someone.else@example.com'}", "not the address"),
    ("['not', 'a', 'dict']", "dict"),
    ("{'user_id': 7, 'email': email, 'user_metadata': {'note': 'a' + chr(0)}}", "NUL"),
    ("{'user_id': 7, 'email': email, 'app_metadata': __import__('functools').reduce("
     "lambda inner, _: {'a': [inner]}, range(250), {})}", "levels deep"),  # 500 deep: not a RecursionError
])
def test_bad_profiles_are_refused_with_a_clear_logged_error(browser, legacy, profile, reason, caplog):
    break_script(legacy, f"return {profile}")
    caplog.set_level(logging.ERROR, "idp.migration")
    response = login(browser, legacy.rp, "max@example.com", "whatever it is")
    assert response.status_code == 503 and users() == 0
    [event] = events("profile_rejected")
    assert reason in event.detail
    assert any(reason in r.getMessage() for r in caplog.records)


def test_signup_is_refused_while_the_legacy_user_exists(browser, legacy, mailbox, monkeypatch):
    hashed = count_hashes(monkeypatch)  # a legacy user's email costs the hash a new one does
    response = browser.authorize(legacy.rp)
    handle = query(response.headers["Location"])["state"]
    url = f"/u/signup?state={handle}"
    page = browser.get(url)
    taken = browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": "MAX@example.com",
                                           "password": "a whole new password"})
    assert taken.status_code == 400 and "already exists" in taken.text and users() == 0 and len(hashed) == 1
    fresh = browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": "new@example.com",
                                           "password": "a whole new password"})
    assert fresh.status_code == 302 and len(hashed) == 2
    assert db.session.scalar(select(User.connection_id).where(User.email == "new@example.com")) \
        == legacy.connection.id


def test_password_reset_moves_the_user_over_with_the_new_password(browser, legacy, mailbox):
    response = browser.authorize(legacy.rp)
    handle = query(response.headers["Location"])["state"]
    url = f"/u/reset-password?state={handle}"
    page = browser.get(url)
    sent = browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": "max@example.com"})
    assert sent.status_code == 200 and users() == 0
    message = mailbox.wait_for("max@example.com")
    assert "Max Legacy" in message.get_body(("plain",)).get_content()
    link = urlsplit(mailbox.link(message))
    link_path = f"{link.path}?{link.query}"
    form = browser.get(link_path)
    new = "my new password!"
    done = browser.client.post(link_path, data={"csrf_token": csrf_token(form.text), "password": new,
                                                "confirm": new})
    assert done.status_code == 200 and "Password changed" in done.text
    user = db.session.get(User, f"{legacy.connection.id}|43")  # the id login would have given
    assert user is not None and user.name == "Max Legacy" and user.email_verified is True
    assert [e.source for e in events("migrated")] == ["password_reset"]
    legacy.path.unlink()  # later logins are local
    assert browser.sign_in(legacy.rp, "max@example.com", "my new password!")["code"]
    browser.client.delete_cookie("idp_session")
    assert login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD).status_code == 400


def test_reset_request_reveals_nothing_and_sends_nothing_for_unknown_emails(browser, legacy, mailbox):
    response = browser.authorize(legacy.rp)
    url = f"/u/reset-password?state={query(response.headers['Location'])['state']}"
    page = browser.get(url)
    known = browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": "max@example.com"})
    unknown = browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": "no@example.com"})
    assert known.text.replace("max@example.com", "X") == unknown.text.replace("no@example.com", "X")
    mailbox.wait_for("max@example.com")
    mail.wait_for_sent(5)
    assert "no@example.com" not in {m["To"] for m in mailbox.messages}


def test_twenty_concurrent_first_logins_create_exactly_one_user(app, legacy, live_server):
    # More passwords in flight at once than a lockout allows are refused for a moment (a guard of
    # its own, tested with the throttle); here every one of them must reach the migration.
    app.config["LOCKOUT_THRESHOLD"] = 20
    barrier = threading.Barrier(20)
    outcomes: list[int] = []

    url = authorization_url(live_server.url, legacy.rp.id, pkce()[1], "s", legacy.rp.redirect_uri)

    def sign_in() -> None:
        with requests.Session() as session:
            page = session.get(url, timeout=10)  # follows to the login page
            barrier.wait(10)
            answer = session.post(page.url, allow_redirects=False, timeout=30, data={
                "csrf_token": csrf_token(page.text), "email": "lin@example.com", "password": LEGACY_PASSWORD})
            outcomes.append(answer.status_code)

    in_threads(*[sign_in] * 20)
    assert outcomes == [302] * 20
    db.session.expire_all()
    assert users() == 1
    assert len(events("migrated")) == 1


def test_disconnect_stops_the_legacy_store_and_keeps_migrated_users(browser, legacy, mailbox):
    browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)
    browser.client.delete_cookie("idp_session")
    connections.disconnect(legacy.connection)
    assert login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD).status_code == 400
    assert browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)["code"]
    report = status(legacy.connection)
    assert report["migrated"] == 1 and report["by_source"] == {"login": 1} and report["disconnected_at"]


def test_no_password_or_configuration_value_reaches_the_logs(browser, legacy, caplog):
    caplog.set_level(logging.DEBUG)
    browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)
    break_script(legacy, "raise RuntimeError('cannot open ' + configuration['path'] + ' as ' + password)")
    login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert LEGACY_PASSWORD not in text and str(legacy.path) not in text
    assert "[redacted]" in text


def test_status_reports_migrations_by_way_and_recent_failures(browser, legacy):
    browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)
    break_script(legacy, "raise RuntimeError('down')")
    login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD)
    report = status(legacy.connection)
    assert report["connection"] == "legacy-db" and report["migrated"] == 1
    assert report["by_source"] == {"login": 1} and report["last_migrated_at"]
    assert [f["type"] for f in report["recent_failures"]] == ["script_error"]


def test_what_a_failing_script_printed_goes_to_the_connection_log(browser, legacy):
    break_script(legacy, "print('connecting to the legacy server'); raise TimeoutError('no answer')")
    login(browser, legacy.rp, "max@example.com", LEGACY_PASSWORD)
    [event] = events("script_error")
    assert "TimeoutError" in event.detail and "connecting to the legacy server" in event.detail
    assert LEGACY_PASSWORD not in event.detail
