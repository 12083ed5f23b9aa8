"""The demo relying party against the provider over real HTTP, with requests as the browser."""

import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import PASSWORD
from tests.support import csrf_token, query


@pytest.fixture
def agent() -> Iterator[requests.Session]:
    """A user agent that keeps cookies."""
    with requests.Session() as session:
        yield session


def text_of(html: str) -> str:
    """Return a page's text without tags, to look for values in it."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def sign_in(agent: requests.Session, rp_url: str, email: str, password: str) -> requests.Response:
    """Start at the RP, fill in the provider's login page, and return the page the RP ends on."""
    page = agent.get(rp_url + "/login")
    assert page.status_code == 200, page.text
    assert urlsplit(page.url).path == "/u/login" and "state" in query(page.url)
    return agent.post(page.url, data={
        "csrf_token": csrf_token(page.text), "email": email, "password": password,
    })


def test_sign_in_shows_id_token_and_userinfo(agent, live_server, rp_url, user):
    home = agent.get(rp_url + "/")
    assert "Sign in with idp" in home.text and 'href="/login"' in home.text

    page = sign_in(agent, rp_url, user.email, PASSWORD)

    assert page.status_code == 200, page.text
    assert page.url == rp_url + "/"
    callback = next(r for r in page.history if r.url.startswith(rp_url + "/callback"))
    params = query(callback.url)
    assert params["iss"] == live_server.url and params["code"] and params["state"]
    text = text_of(page.text)
    assert f"sub {user.id}" in text
    assert "email ada@example.com" in text
    assert f"iss {live_server.url}" in text
    userinfo = re.search(r'<pre id="userinfo">(.*?)</pre>', page.text, re.S)
    assert userinfo is not None
    assert f'"sub": "{user.id}"' in unescape(userinfo.group(1))
    assert '"name": "Ada Lovelace"' in unescape(userinfo.group(1))
    assert f"GET {live_server.url}/userinfo" in text
    assert 'href="/logout"' in page.text


def test_logout_ends_the_provider_session(agent, live_server, rp_url, user):
    sign_in(agent, rp_url, user.email, PASSWORD)
    again = agent.get(rp_url + "/login")  # single sign-on: no login page the second time
    assert again.url == rp_url + "/" and user.id in again.text

    start = agent.get(rp_url + "/logout", allow_redirects=False)
    assert start.status_code == 302
    end_session = start.headers["Location"]
    assert end_session.startswith(live_server.url + "/oidc/logout?")
    params = query(end_session)
    assert params["id_token_hint"] and params["post_logout_redirect_uri"] == rp_url + "/"

    back = agent.get(end_session)
    assert back.status_code == 200, back.text
    assert back.url == rp_url + "/?state=" + params["state"]
    assert "You are signed out" in back.text and user.id not in back.text
    assert "Sign in with idp" in back.text

    page = agent.get(rp_url + "/login")
    assert urlsplit(page.url).path == "/u/login"


def test_callback_refuses_another_issuer(agent, rp_url):
    start = agent.get(rp_url + "/login", allow_redirects=False)
    state = query(start.headers["Location"])["state"]
    page = agent.get(rp_url + "/callback", params={
        "code": "x", "state": state, "iss": "https://evil.example"})
    assert page.status_code == 400
    assert "Wrong issuer" in page.text


def test_callback_refuses_a_foreign_state(agent, live_server, rp_url):
    page = agent.get(rp_url + "/callback", params={
        "code": "x", "state": "forged", "iss": live_server.url})
    assert page.status_code == 400
    assert "mismatching_state" in page.text


def test_callback_reports_a_denied_request(agent, live_server, rp_url):
    start = agent.get(rp_url + "/login", allow_redirects=False)
    state = query(start.headers["Location"])["state"]
    page = agent.get(rp_url + "/callback", params={
        "error": "access_denied", "error_description": "The user said no.", "state": state,
        "iss": live_server.url})
    assert page.status_code == 400
    assert "access_denied" in page.text and "The user said no." in page.text
