"""Values a database refuses (NUL, odd digits, huge repeats) get a protocol error, never a 500."""

import base64
import json

import pytest

from tests.conftest import PASSWORD
from tests.support import csrf_token, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def forged(header: dict) -> str:
    """Return a JWT-shaped string with the given header and a junk signature."""
    part = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{part}.e30.c2ln"


def test_a_nul_kid_is_an_invalid_token(browser, user, rp):
    token = forged({"alg": "RS256", "typ": "at+jwt", "kid": "\u0000"})
    response = browser.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    hint = forged({"alg": "RS256", "typ": "JWT", "kid": "\u0000"})
    assert browser.get("/oidc/logout", query_string={"id_token_hint": hint}).status_code == 400


def test_nul_in_a_form_or_a_handle_is_refused(browser, user):
    page = browser.get("/u/signup")
    response = browser.client.post("/u/signup", data={"csrf_token": csrf_token(page.text),
                                                      "email": "eve@example.com", "password": PASSWORD,
                                                      "name": "Eve\x00"})
    assert response.status_code == 400 and "NUL" in response.text
    assert browser.get("/u/login?state=%00").status_code == 400


def test_odd_digits_in_max_age_and_repeated_scopes(browser, user, rp):
    browser.sign_in(rp, user.email, PASSWORD)
    odd = query(browser.authorize(rp, max_age="²").headers["Location"])
    assert odd["error"] == "invalid_request"
    repeated = query(browser.authorize(rp, scope="openid " * 300).headers["Location"])
    assert repeated["code"]
