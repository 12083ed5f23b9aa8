"""Sign-up, email verification, password reset and the account page, with mail through real SMTP."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from idp.db import db
from idp.oauth.models import Grant
from idp.pages.models import AccountToken
from idp.users.models import Session, User
from tests.conftest import PASSWORD
from tests.support import auth, count_hashes, csrf_token, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NEW_PASSWORD = "a brand new passphrase"


def submit(browser, url: str, **fields: str):
    """GET a form page and POST it with its CSRF token."""
    page = browser.get(url)
    return browser.client.post(url, data={"csrf_token": csrf_token(page.text), **fields})


def path(link: str) -> str:
    """Return the path and query of an emailed link (the test client needs no host)."""
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def live_sessions(user_id: str) -> int:
    """Count a user's live SSO sessions."""
    return db.session.scalar(select(func.count()).select_from(Session).where(
        Session.user_id == user_id, Session.ended_at.is_(None)))


def test_signup_continues_the_authorization_and_verification_reaches_the_tokens(browser, rp, mailbox):
    response = browser.authorize(rp, login_hint="grace@example.com")
    handle = query(response.headers["Location"])["state"]
    page = browser.get(f"/u/signup?state={handle}")
    assert page.status_code == 200 and 'value="grace@example.com"' in page.text and "Example App" in page.text
    response = browser.client.post(f"/u/signup?state={handle}", data={
        "csrf_token": csrf_token(page.text), "email": "Grace@Example.com", "password": "hopper's compiler",
        "name": "Grace Hopper"})
    callback = query(browser.follow(response, rp.redirect_uri).headers["Location"])
    tokens = browser.exchange(rp, callback["code"]).json
    claims = browser.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json
    assert claims["email"] == "Grace@Example.com" and claims["email_verified"] is False
    assert claims["name"] == "Grace Hopper"

    message = mailbox.wait_for("Grace@Example.com")
    assert message["Subject"] == "Verify your email address"
    assert message.get_body(("plain",)) and message.get_body(("html",))
    link = mailbox.link(message)
    assert link.startswith("http://localhost/u/verify-email?token=")
    done = browser.get(path(link))
    assert done.status_code == 200 and "Email verified" in done.text
    again = browser.get(path(link))
    assert again.status_code == 400 and "already been used" in again.text

    callback = browser.sign_in(rp, "grace@example.com", "hopper's compiler")
    fresh = browser.exchange(rp, callback["code"]).json
    claims = browser.get("/userinfo", headers={"Authorization": f"Bearer {fresh['access_token']}"}).json
    assert claims["email_verified"] is True


def test_signup_refuses_an_existing_email_and_weak_passwords(browser, user, mailbox):
    taken = submit(browser, "/u/signup", email="ADA@example.com", password="another fine password")
    assert taken.status_code == 400 and "already exists" in taken.text and "Sign in, or reset" in taken.text
    for password, message in [("short", "at least 8"), ("password1", "too common"),
                              ("grace@example.com", "email address"), ("grace", "email address")]:
        refused = submit(browser, "/u/signup", email="grace@example.com", password=password)
        assert refused.status_code == 400 and message in refused.text, password
        assert 'value="grace@example.com"' in refused.text  # the entered email is kept
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_signup_costs_one_hash_whether_or_not_the_email_is_taken(browser, user, mailbox, monkeypatch):
    hashed = count_hashes(monkeypatch)
    taken = submit(browser, "/u/signup", email="ADA@example.com", password="another fine password")
    assert taken.status_code == 400 and len(hashed) == 1
    new = submit(browser, "/u/signup", email="grace@example.com", password="another fine password")
    assert new.status_code == 302 and len(hashed) == 2


def test_reset_request_says_the_same_whether_or_not_the_email_exists(browser, user, mailbox):
    known = submit(browser, "/u/reset-password", email=user.email)
    unknown = submit(browser, "/u/reset-password", email="nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(user.email, "X") == unknown.text.replace("nobody@example.com", "X")
    assert mailbox.wait_for(user.email)["Subject"] == "Reset your password"
    mailbox_addresses = {m["To"] for m in mailbox.messages}
    assert "nobody@example.com" not in mailbox_addresses


def test_reset_sets_the_password_once_and_ends_every_session_and_refresh_token(
        browser, app, user, rp, mailbox):
    callback = browser.sign_in(rp, user.email, PASSWORD)
    tokens = browser.exchange(rp, callback["code"]).json
    other = type(browser)(app.test_client())
    other.sign_in(rp, user.email, PASSWORD)
    assert live_sessions(user.id) == 2

    submit(browser, "/u/reset-password", email=user.email)
    link = path(mailbox.link(mailbox.wait_for(user.email)))
    form = browser.get(link)
    assert form.status_code == 200 and "Choose a new password" in form.text
    mismatch = browser.client.post(link, data={"csrf_token": csrf_token(form.text), "password": NEW_PASSWORD,
                                               "confirm": "something else"})
    assert mismatch.status_code == 400 and "The two passwords differ." in mismatch.text
    weak = browser.client.post(link, data={"csrf_token": csrf_token(form.text), "password": "qwertyuiop",
                                           "confirm": "qwertyuiop"})
    assert weak.status_code == 400 and "too common" in weak.text
    done = browser.client.post(link, data={"csrf_token": csrf_token(form.text), "password": NEW_PASSWORD,
                                           "confirm": NEW_PASSWORD})
    assert done.status_code == 200 and "Password changed" in done.text
    assert browser.get(link).status_code == 400  # single use

    assert live_sessions(user.id) == 0
    assert db.session.scalar(select(func.count()).select_from(Grant).where(Grant.revoked_at.is_(None))) == 0
    refreshed = browser.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, **auth(rp))
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    assert browser.authorize(rp, prompt="none").headers["Location"].count("login_required") == 1
    old = browser.login(browser.authorize(rp).headers["Location"], user.email, PASSWORD)
    assert old.status_code == 400
    assert browser.sign_in(rp, user.email, NEW_PASSWORD)["code"]
    assert db.session.get(User, user.id).email_verified is True


def test_reset_links_expire_and_refuse_tampering(browser, user, mailbox):
    submit(browser, "/u/reset-password", email=user.email)
    link = path(mailbox.link(mailbox.wait_for(user.email)))
    tampered = browser.get(link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb"))
    assert tampered.status_code == 400 and "not valid" in tampered.text
    row = db.session.scalars(select(AccountToken)).one()
    row.expires_at -= timedelta(days=1)
    db.session.commit()
    expired = browser.get(link)
    assert expired.status_code == 400 and "expired" in expired.text


def test_account_page_changes_the_password_and_signs_out_everywhere(browser, app, user, rp, mailbox):
    callback = browser.sign_in(rp, user.email, PASSWORD)
    tokens = browser.exchange(rp, callback["code"]).json
    other = type(browser)(app.test_client())
    other.sign_in(rp, user.email, PASSWORD)
    page = browser.get("/u/account")
    assert page.status_code == 200 and user.email in page.text and "is verified" in page.text

    wrong = browser.client.post("/u/account/password", data={
        "csrf_token": csrf_token(page.text), "pw-current": "not it", "pw-password": NEW_PASSWORD,
        "pw-confirm": NEW_PASSWORD})
    assert wrong.status_code == 400 and "not your current password" in wrong.text
    changed = browser.client.post("/u/account/password", data={
        "csrf_token": csrf_token(page.text), "pw-current": PASSWORD, "pw-password": NEW_PASSWORD,
        "pw-confirm": NEW_PASSWORD})
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert live_sessions(user.id) == 1  # this one stays
    refreshed = browser.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, **auth(rp))
    assert refreshed.json["error"] == "invalid_grant"
    assert other.get("/u/account").status_code == 302  # the other device is signed out

    everywhere = browser.client.post("/u/account/sign-out-everywhere",
                                     data={"csrf_token": csrf_token(page.text)})
    assert everywhere.status_code == 200 and "Signed out everywhere" in everywhere.text
    assert live_sessions(user.id) == 0
    assert browser.get("/u/account").status_code == 302


def test_unverified_user_can_ask_for_the_link_again(browser, app, rp, mailbox):
    submit(browser, "/u/signup", email="lin@example.com", password="another fine password")
    first = mailbox.wait_for("lin@example.com")
    page = browser.get("/u/account")
    assert "not verified yet" in page.text
    again = browser.client.post("/u/account/verify-email", data={"csrf_token": csrf_token(page.text)})
    assert again.status_code == 200 and "We sent a new verification link" in again.text
    second = mailbox.wait_for("lin@example.com")
    assert mailbox.link(first) != mailbox.link(second)
    assert browser.get(path(mailbox.link(second))).status_code == 200


def test_verification_ends_the_sessions_opened_before_it(browser, app, mailbox):
    """Whoever registered an address before its owner proved it keeps no session that now says verified."""
    squatter = type(browser)(app.test_client())
    submit(squatter, "/u/signup", email="owner@example.com", password="squatted passphrase")
    user = db.session.scalar(select(User).where(User.email == "owner@example.com"))
    assert squatter.get("/u/account").status_code == 200 and live_sessions(user.id) == 1

    link = mailbox.link(mailbox.wait_for("owner@example.com"))
    assert browser.get(path(link)).status_code == 200  # the owner, in a browser of their own
    assert live_sessions(user.id) == 0
    assert squatter.get("/u/account").status_code == 302  # signed out


def test_verifying_in_the_signed_in_browser_keeps_its_session(browser, app, mailbox):
    """The browser that follows the link while signed in as that user is the owner's: it stays."""
    submit(browser, "/u/signup", email="keen@example.com", password="keen new passphrase")
    link = mailbox.link(mailbox.wait_for("keen@example.com"))
    assert browser.get(path(link)).status_code == 200
    assert browser.get("/u/account").status_code == 200
