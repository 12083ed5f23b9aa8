"""The hosted login and consent pages, SSO sessions and logout."""

import pytest
from sqlalchemy import func, select

from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.users.accounts import create_user
from idp.users.models import Session
from tests.conftest import PASSWORD
from tests.support import Browser, csrf_token, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def login_page(browser, rp, **params) -> str:
    """Start an authorization request and return the login page URL it leads to."""
    response = browser.authorize(rp, **params)
    assert response.status_code == 302 and "/u/login?state=" in response.headers["Location"]
    return response.headers["Location"]


def sessions() -> int:
    """Count live SSO sessions."""
    return db.session.scalar(select(func.count()).select_from(Session).where(Session.ended_at.is_(None)))


def test_login_page_is_a_protected_form(browser, rp):
    page = browser.get(login_page(browser, rp, login_hint="ada@example.com"))
    assert page.status_code == 200
    assert 'value="ada@example.com"' in page.text  # login_hint
    assert "Example App" in page.text  # the client's name
    assert csrf_token(page.text)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


def test_wrong_password_and_unknown_email_answer_alike(browser, user, rp):
    url = login_page(browser, rp)
    wrong = browser.login(url, user.email, "not the password")
    unknown = browser.login(url, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert 'value="ada@example.com"' in wrong.text  # the typed email is kept
    assert sessions() == 0


def test_post_without_csrf_token_is_refused(browser, user, rp):
    url = login_page(browser, rp)
    response = browser.client.post(url, data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400 and "form has expired" in response.text
    assert sessions() == 0


def test_login_sets_a_safe_cookie_and_rotates_the_session(browser, user, rp):
    browser.sign_in(rp, user.email, PASSWORD)
    cookie = browser.client.get_cookie("idp_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    first = db.session.scalars(select(Session)).one()
    callback = browser.sign_in(rp, user.email, PASSWORD, prompt="login")
    assert callback["code"]
    db.session.expire_all()
    rows = db.session.scalars(select(Session).order_by(Session.created_at)).all()
    assert len(rows) == 2 and rows[0].id == first.id and rows[0].ended_at is not None
    assert rows[1].ended_at is None and rows[1].id != first.id
    assert browser.client.get_cookie("idp_session").value != cookie.value


def test_sso_session_signs_in_without_the_login_page(browser, user, rp, public_rp):
    browser.sign_in(rp, user.email, PASSWORD)
    response = browser.authorize(rp)
    assert response.status_code == 302 and response.headers["Location"].startswith(rp.redirect_uri)


def test_third_party_client_asks_for_consent_once(browser, user, third_party_rp):
    response = browser.authorize(third_party_rp)
    response = browser.login(response.headers["Location"], user.email, PASSWORD)
    page = browser.follow(response, third_party_rp.redirect_uri)
    consent_url = page.request.url
    assert page.status_code == 200 and "/u/consent?state=" in consent_url
    assert "Partner App" in page.text and "See your email address" in page.text
    response = browser.client.post(consent_url, data={"csrf_token": csrf_token(page.text), "allow": "Allow"})
    response = browser.follow(response, third_party_rp.redirect_uri)
    assert query(response.headers["Location"])["code"]
    again = browser.authorize(third_party_rp)
    assert again.headers["Location"].startswith(third_party_rp.redirect_uri)
    forced = browser.authorize(third_party_rp, prompt="consent")
    assert "/u/consent" in forced.headers["Location"]


def test_denied_consent_answers_access_denied(browser, user, third_party_rp):
    response = browser.authorize(third_party_rp, state="xyz")
    page = browser.follow(browser.login(response.headers["Location"], user.email, PASSWORD),
                          third_party_rp.redirect_uri)
    consent_url = page.request.url
    response = browser.client.post(consent_url, data={"csrf_token": csrf_token(page.text), "deny": "Deny"})
    response = browser.follow(response, third_party_rp.redirect_uri)
    answer = query(response.headers["Location"])
    assert answer["error"] == "access_denied" and answer["state"] == "xyz" and "code" not in answer


def test_prompt_none_without_consent_answers_consent_required(browser, user, third_party_rp, rp):
    browser.sign_in(rp, user.email, PASSWORD)
    response = browser.authorize(third_party_rp, prompt="none")
    assert query(response.headers["Location"])["error"] == "consent_required"


def test_rp_initiated_logout_ends_the_session(browser, user, rp):
    callback = browser.sign_in(rp, user.email, PASSWORD)
    id_token = browser.exchange(rp, callback["code"]).json["id_token"]
    response = browser.get("/oidc/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://rp.example.com/bye", "state": "st"})
    assert response.status_code == 302
    assert response.headers["Location"] == "https://rp.example.com/bye?state=st"
    assert sessions() == 0
    assert query(browser.authorize(rp, prompt="none").headers["Location"])["error"] == "login_required"


def test_logout_never_redirects_to_an_unregistered_uri(browser, user, rp):
    callback = browser.sign_in(rp, user.email, PASSWORD)
    id_token = browser.exchange(rp, callback["code"]).json["id_token"]
    response = browser.get("/oidc/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example.com/"})
    assert response.status_code == 400 and "Location" not in response.headers
    assert sessions() == 1
    bad_hint = browser.get("/oidc/logout", query_string={"id_token_hint": "not-a-jwt"})
    assert bad_hint.status_code == 400


def test_logout_without_hint_asks_first(browser, user, rp):
    browser.sign_in(rp, user.email, PASSWORD)
    page = browser.get("/oidc/logout")
    assert page.status_code == 200 and "Sign out?" in page.text and sessions() == 1
    done = browser.client.post("/oidc/logout", data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 200 and "You are signed out" in done.text
    assert sessions() == 0


def test_healthz_reports_the_database(browser):
    response = browser.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


def test_a_waiting_request_is_honoured_only_in_the_browser_that_made_it(browser, app, user, rp):
    url = login_page(browser, rp)
    handle = query(url)["state"]
    other = Browser(app.test_client())
    page = other.get(url)
    assert "Example App" not in page.text  # the other browser does not see the request
    response = other.login(url, user.email, PASSWORD)
    assert response.status_code == 302 and "/authorize/resume" not in response.headers["Location"]
    assert other.get(f"/authorize/resume?state={handle}").status_code == 400
    done = browser.follow(browser.login(url, user.email, PASSWORD), rp.redirect_uri)
    assert query(done.headers["Location"])["code"]


def test_relying_party_may_post_the_logout_request(browser, user, rp):
    callback = browser.sign_in(rp, user.email, PASSWORD)
    id_token = browser.exchange(rp, callback["code"]).json["id_token"]
    response = browser.client.post("/oidc/logout", data={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://rp.example.com/bye"})
    assert response.status_code == 302 and response.headers["Location"] == "https://rp.example.com/bye"
    assert sessions() == 0


def test_an_access_token_is_no_id_token_hint(browser, user, rp):
    callback = browser.sign_in(rp, user.email, PASSWORD)
    access_token = browser.exchange(rp, callback["code"]).json["access_token"]
    response = browser.get("/oidc/logout", query_string={"id_token_hint": access_token})
    assert response.status_code == 400 and sessions() == 1


def test_someone_elses_id_token_hint_does_not_sign_me_out(browser, app, user, rp):
    create_user("mallory@example.com", PASSWORD, NATIVE_ID)
    mallory = Browser(app.test_client())
    hint = mallory.exchange(rp, mallory.sign_in(rp, "mallory@example.com", PASSWORD)["code"]).json["id_token"]
    browser.sign_in(rp, user.email, PASSWORD)
    page = browser.get("/oidc/logout", query_string={"id_token_hint": hint})
    assert page.status_code == 200 and "Sign out?" in page.text
    assert sessions() == 2  # nobody was signed out
