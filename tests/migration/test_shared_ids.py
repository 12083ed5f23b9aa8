"""Two legacy users whose scripts give the same user_id never share an account, whichever way they come."""

import logging
import threading
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from idp import mail
from idp.connections import registry as connections
from idp.connections.legacy import MIGRATED, PROFILE_REJECTED
from idp.connections.models import MigrationEvent
from idp.db import db
from idp.users.models import Session, User
from idp.users.passwords import verify_password
from tests.interop.browser import authorization_url
from tests.support import csrf_token, in_threads, pkce, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

CANT = "We can&#39;t sign you in right now"
FIRST, SECOND = "first@example.com", "second@example.com"
PASSWORDS = {FIRST: "first legacy secret", SECOND: "second legacy secret"}
NEW_PASSWORD = "the second one's new passphrase"

# A legacy store whose two users have one id (a reused id, a bad join, a script's mistake).
TWINS = f'''
PASSWORDS = {PASSWORDS!r}


def _profile(email):
    return {{"user_id": "shared-7", "email": email, "name": email.split("@")[0]}}


def login(email, password, configuration):
    if PASSWORDS.get(email.lower()) != password:
        raise WrongUsernameOrPassword(email)
    return _profile(email)


def get_user(email, configuration):
    return _profile(email) if email.lower() in PASSWORDS else None
'''


@pytest.fixture
def twins(legacy):
    """The legacy connection, now with the two users who share an id."""
    connections.configure(legacy.connection, login=TWINS, get_user=TWINS)
    return legacy


def count(model: type, *where: object) -> int:
    """Count the rows of a model."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def owner() -> User:
    """Return the one user the two share an id with."""
    [user] = db.session.scalars(select(User)).all()
    return user


def rejections(source: str) -> list[MigrationEvent]:
    """Return the refused profiles recorded for a way of moving over."""
    return list(db.session.scalars(select(MigrationEvent).where(
        MigrationEvent.type == PROFILE_REJECTED, MigrationEvent.source == source)))


def login(browser, rp, email: str, password: str):
    """Post the login form of a fresh authorization request, signed out."""
    browser.client.delete_cookie("idp_session")
    return browser.login(browser.authorize(rp).headers["Location"], email, password)


def ask_reset(browser, rp, email: str):
    """Ask for a reset link for an email, signed out, in an authorization request of the client."""
    browser.client.delete_cookie("idp_session")
    handle = query(browser.authorize(rp).headers["Location"])["state"]
    url = f"/u/reset-password?state={handle}"
    page = browser.get(url)
    return browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": email})


def reset_link(browser, rp, mailbox, email: str) -> str:
    """Ask for a reset link for an email and return its path."""
    ask_reset(browser, rp, email)
    link = urlsplit(mailbox.link(mailbox.wait_for(email)))
    return f"{link.path}?{link.query}"


def test_a_login_whose_id_belongs_to_another_user_is_refused(browser, twins, caplog):
    caplog.set_level(logging.INFO)
    assert browser.sign_in(twins.rp, FIRST, PASSWORDS[FIRST])["code"]
    refused = login(browser, twins.rp, SECOND, PASSWORDS[SECOND])
    assert refused.status_code == 503 and CANT in refused.text
    assert count(User) == 1 and owner().email == FIRST
    assert count(Session) == count(Session, Session.user_id == owner().id) == 1  # the first's own
    [event] = rejections("login")
    assert event.email == SECOND and "already belongs" in event.detail and "shared-7" in event.detail
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "idp.migration")
    assert "already belongs" in logged
    assert not any(p in r.getMessage() for r in caplog.records for p in PASSWORDS.values())
    assert browser.sign_in(twins.rp, FIRST, PASSWORDS[FIRST])["code"]  # the first is unaffected


def test_a_reset_whose_id_belongs_to_another_user_is_refused(browser, app, twins, mailbox):
    link = reset_link(browser, twins.rp, mailbox, SECOND)  # asked for before the first moved over
    assert count(User) == 0
    assert browser.sign_in(twins.rp, FIRST, PASSWORDS[FIRST])["code"]
    form = browser.get(link)
    refused = browser.client.post(link, data={"csrf_token": csrf_token(form.text), "password": NEW_PASSWORD,
                                              "confirm": NEW_PASSWORD})
    assert refused.status_code == 503 and "reset your password" in refused.text
    user = owner()
    assert user.email == FIRST and verify_password(user.password_hash, PASSWORDS[FIRST])
    assert not verify_password(user.password_hash, NEW_PASSWORD)
    assert count(Session, Session.user_id == user.id, Session.ended_at.is_(None)) == 1  # still signed in
    [event] = rejections("password_reset")
    assert event.email == SECOND and "already belongs" in event.detail

    # Asked for now, the link is not even sent: the lookup meets the same refusal.
    assert ask_reset(browser, twins.rp, SECOND).status_code == 200
    mail.wait_for_sent(5)
    assert [m["To"] for m in mailbox.messages] == [SECOND]  # the first link only
    assert len(rejections("password_reset")) == 2
    assert count(User) == 1


def test_a_login_and_a_reset_of_the_two_at_once_make_one_account(app, twins, live_server, mailbox):
    url = authorization_url(live_server.url, twins.rp.id, pkce()[1], "s", twins.rp.redirect_uri)
    statuses: dict[str, int] = {}
    with requests.Session() as resetter, requests.Session() as signer:
        handle = query(resetter.get(url, timeout=10).url)["state"]  # the client's login page
        page = resetter.get(f"{live_server.url}/u/reset-password?state={handle}", timeout=10)
        resetter.post(page.url, timeout=10, data={"csrf_token": csrf_token(page.text), "email": SECOND})
        form = resetter.get(mailbox.link(mailbox.wait_for(SECOND)), timeout=10)
        login_page = signer.get(url, timeout=10)
        barrier = threading.Barrier(2)

        def reset() -> None:
            barrier.wait(10)
            statuses["reset"] = resetter.post(form.url, timeout=30, data={
                "csrf_token": csrf_token(form.text), "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD}).status_code

        def sign_in() -> None:
            barrier.wait(10)
            statuses["login"] = signer.post(login_page.url, allow_redirects=False, timeout=30, data={
                "csrf_token": csrf_token(login_page.text), "email": FIRST,
                "password": PASSWORDS[FIRST]}).status_code

        in_threads(reset, sign_in)

    # Whoever came first has the account; the other is refused and shares nothing.
    assert sorted(statuses.values()) in ([200, 503], [302, 503]), statuses
    user = owner()
    sessions = count(Session, Session.ended_at.is_(None))
    if statuses["login"] == 302:
        assert user.email == FIRST and verify_password(user.password_hash, PASSWORDS[FIRST]) and sessions == 1
        assert len(rejections("password_reset")) == 1
    else:
        assert user.email == SECOND and verify_password(user.password_hash, NEW_PASSWORD) and sessions == 0
        assert not verify_password(user.password_hash, PASSWORDS[FIRST])
        assert len(rejections("login")) == 1
    assert count(MigrationEvent, MigrationEvent.type == MIGRATED) == 1
