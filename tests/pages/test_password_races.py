"""A password reset against double clicks and against a sign-in racing it."""

import threading
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from idp.connections import stores
from idp.db import db
from idp.pages import links, views
from idp.pages.models import AccountToken
from idp.users.models import Session, User
from idp.users.passwords import verify_password
from tests.conftest import PASSWORD
from tests.support import csrf_token, in_threads

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NEW_PASSWORD = "a brand new passphrase"
OTHER_PASSWORD = "yet another passphrase"
USED = "already been used"


def reset_url(user: User) -> str:
    """Issue a reset link for a user, as the reset mail would; return its path."""
    token = links.issue(links.RESET_PASSWORD, user.email, user.connection_id, user.id)
    db.session.commit()
    return f"/u/reset-password/new?token={token}"


def live_sessions(user_id: str) -> int:
    """Count a user's live SSO sessions."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Session).where(
        Session.user_id == user_id, Session.ended_at.is_(None))) or 0


def password_is(user_id: str, password: str) -> bool:
    """Say whether a user's password is this one now."""
    db.session.expire_all()
    return verify_password(db.session.get(User, user_id).password_hash, password)


def choose(browser, url: str, form_page: Any, password: str):
    """Post the new-password form of a page already loaded."""
    return browser.client.post(url, data={"csrf_token": csrf_token(form_page.text), "password": password,
                                          "confirm": password})


def test_a_double_click_shows_success_twice_but_a_used_link_sets_nothing(browser, user):
    url = reset_url(user)
    form = browser.get(url)
    first = choose(browser, url, form, NEW_PASSWORD)
    again = choose(browser, url, form, NEW_PASSWORD)  # the second click of a double click
    assert first.status_code == again.status_code == 200
    assert "Password changed" in first.text and "Password changed" in again.text
    other = choose(browser, url, form, OTHER_PASSWORD)
    assert other.status_code == 400 and USED in other.text
    assert password_is(user.id, NEW_PASSWORD)
    assert browser.get(url).status_code == 400  # the link itself stays used

    # Long after, even the same password is refused: a used link confirms nothing.
    db.session.expire_all()
    row = db.session.scalars(select(AccountToken)).one()
    row.used_at -= timedelta(seconds=links.RESUBMIT_WINDOW)
    db.session.commit()
    late = choose(browser, url, form, NEW_PASSWORD)
    assert late.status_code == 400 and USED in late.text


def test_two_clicks_at_once_both_succeed_and_change_the_password_once(app, user, live_server):
    url = live_server.url + reset_url(user)
    with requests.Session() as session:
        form = session.get(url, timeout=10)
        data = {"csrf_token": csrf_token(form.text), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        barrier = threading.Barrier(2)
        answers: list[requests.Response] = []

        def click() -> None:
            barrier.wait(10)
            answers.append(session.post(url, data=data, timeout=30))

        in_threads(*[click] * 2, timeout=30)
    assert [a.status_code for a in answers] == [200, 200]
    assert all("Password changed" in a.text for a in answers)
    assert password_is(user.id, NEW_PASSWORD)


@pytest.mark.parametrize("where", ["after_the_check", "while_signing_in"])
def test_a_reset_racing_a_sign_in_leaves_no_session_with_the_old_password(
        app, user, live_server, monkeypatch, where: str):
    """Whether the reset lands between the check and the session, or during its transaction."""
    reached, go_on = threading.Event(), threading.Event()
    authenticate, start_session = stores.NativeStore.authenticate, views.start_session

    def hold() -> None:
        reached.set()
        go_on.wait(10)

    def checked_then_held(*args: Any) -> Any:  # the old password checked, no session yet
        verified = authenticate(*args)
        hold()
        return verified

    def held_then_started(*args: Any) -> Any:  # in the sign-in's transaction, before the session
        hold()
        return start_session(*args)

    if where == "after_the_check":
        monkeypatch.setattr(stores.NativeStore, "authenticate", checked_then_held)
    else:
        monkeypatch.setattr(views, "start_session", held_then_started)
    user_id, email, reset = user.id, user.email, live_server.url + reset_url(user)
    answers: dict[str, requests.Response] = {}

    def sign_in() -> None:
        with requests.Session() as session:
            page = session.get(live_server.url + "/u/login", timeout=10)
            answers["login"] = session.post(page.url, allow_redirects=False, timeout=30, data={
                "csrf_token": csrf_token(page.text), "email": email, "password": PASSWORD})

    def change() -> None:
        with requests.Session() as session:
            form = session.get(reset, timeout=10)
            answers["reset"] = session.post(reset, timeout=30, data={
                "csrf_token": csrf_token(form.text), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    login = threading.Thread(target=sign_in)
    login.start()
    assert reached.wait(10)
    resetting = threading.Thread(target=change)
    resetting.start()
    resetting.join(0.5 if where == "while_signing_in" else 30)  # there it waits for the sign-in
    go_on.set()
    login.join(30)
    resetting.join(30)
    assert answers["reset"].status_code == 200 and "Password changed" in answers["reset"].text
    if where == "after_the_check":
        assert answers["login"].status_code == 400 and "Wrong email or password" in answers["login"].text
    else:
        assert answers["login"].status_code == 302  # signed in first, then signed out by the reset
    assert live_sessions(user_id) == 0
    assert password_is(user_id, NEW_PASSWORD)
