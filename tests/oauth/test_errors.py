"""Bad input gets the protocol's own error, never a 500."""

import base64
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.test import TestResponse

from idp.db import db, utcnow
from idp.oauth import tokens
from idp.oauth.clients import create_client
from idp.oauth.models import AuthorizationCode, Token, digest
from idp.users.models import User
from tests.conftest import PASSWORD
from tests.support import Browser, RegisteredClient, auth, pkce, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

API = "https://api.example.com"


# Helpers ------------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, dict[str, str]]:
    """Return test-client arguments that send an access token in the Authorization header."""
    return {"headers": {"Authorization": f"Bearer {token}"}}


def basic(client_id: str, secret: str) -> dict[str, dict[str, str]]:
    """Return test-client arguments for client_secret_basic (RFC 6749 §2.3.1 form-encoding)."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"headers": {"Authorization": f"Basic {raw}"}}


def token_error(response: TestResponse, status: int, error: str) -> dict[str, Any]:
    """Assert an OAuth error JSON answer and return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.mimetype == "application/json"
    body = dict(response.json or {})
    assert body.get("error") == error, body
    assert "access_token" not in body
    return body


def tokens_for(browser: Browser, user: User, rp: RegisteredClient, **params: Any) -> dict[str, Any]:
    """Sign in (or reuse the session), exchange the code and return the token response."""
    callback = browser.sign_in(rp, user.email, PASSWORD, **params)
    response = browser.exchange(rp, callback["code"])
    assert response.status_code == 200, response.text
    return dict(response.json or {})


def refresh(browser: Browser, rp: RegisteredClient, refresh_token: str) -> TestResponse:
    """Present a refresh token at the token endpoint."""
    return browser.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_token}, **auth(rp))


def redirect_error(response: TestResponse, rp: RegisteredClient) -> dict[str, str]:
    """Assert an error sent to the client's redirect URI, with no code; return the parameters."""
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?"), location
    params = query(location)
    assert "error" in params and "code" not in params, params
    assert params["iss"] == "http://localhost"
    return params


def page_error(response: TestResponse, error: str) -> None:
    """Assert an HTML error page (no redirect) naming an error code."""
    assert response.status_code == 400, response.status_code
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    assert f"<code>{error}</code>" in response.text


def assert_invalid_token(response: TestResponse) -> None:
    """Assert a 401 with an RFC 6750 invalid_token challenge."""
    assert response.status_code == 401, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert response.json["error"] == "invalid_token"


def introspect(browser: Browser, rp: RegisteredClient, token: str, **extra: str) -> TestResponse:
    """Ask the introspection endpoint about a token, as a client."""
    return browser.client.post("/oauth/introspect", data={"token": token, **extra}, **auth(rp))


# Client authentication and grant types ------------------------------------------------------------


def test_wrong_client_secret_basic_is_invalid_client_with_a_challenge(browser, rp):
    """Answer 401 invalid_client with a Basic challenge to a wrong client_secret_basic."""
    response = browser.client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                          "audience": API}, **basic(rp.id, "wrong"))
    token_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_client_secret_post_is_invalid_client(browser, rp):
    """Answer 401 invalid_client to a wrong client_secret_post."""
    response = browser.client.post("/oauth/token", data={
        "grant_type": "client_credentials", "audience": API, "client_id": rp.id,
        "client_secret": "wrong"})
    token_error(response, 401, "invalid_client")


def test_unknown_client_is_invalid_client(browser, rp):
    """Answer 401 invalid_client to a client id that does not exist."""
    response = browser.client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                          "audience": API},
                                   **basic("no-such-client", rp.secret or ""))
    token_error(response, 401, "invalid_client")


@pytest.mark.parametrize("header", ["Basic ", "Basic \xa0", "Basic \t\x0b", "Bearer \x85", "Basic é",
                                    "Basic " + "é:x".encode().decode("latin-1"), "Basic YQ==\xff"])
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_malformed_authorization_header_is_invalid_client(browser, rp, path, header):
    """Answer 401 invalid_client to a scheme with only whitespace after it, or non-ASCII credentials."""
    data = {"grant_type": "client_credentials", "audience": API, "token": "x"}
    token_error(browser.client.post(path, data=data, headers={"Authorization": header}), 401,
                "invalid_client")


def test_secret_of_a_code_exchange_is_checked(browser, user, rp):
    """Refuse to exchange a code for a confidential client that gives a wrong secret."""
    callback = browser.sign_in(rp, user.email, PASSWORD)
    response = browser.client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": callback["code"],
        "redirect_uri": rp.redirect_uri}, **basic(rp.id, "wrong"))
    token_error(response, 401, "invalid_client")
    assert browser.exchange(rp, callback["code"]).status_code == 200  # the code was not burnt


@pytest.mark.parametrize("grant_type", [
    "password", "implicit", "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer", "nonsense",
])
def test_unknown_grant_type_is_unsupported_grant_type(browser, rp, grant_type):
    """Answer unsupported_grant_type to a grant we do not offer."""
    response = browser.client.post("/oauth/token", data={
        "grant_type": grant_type, "username": "ada@example.com", "password": PASSWORD}, **auth(rp))
    token_error(response, 400, "unsupported_grant_type")


# PKCE ---------------------------------------------------------------------------------------------


def public_code(browser: Browser, user: User, public_rp: RegisteredClient) -> tuple[str, str]:
    """Run the front channel for the public client; return (code, verifier)."""
    verifier, challenge = pkce()
    callback = browser.sign_in(public_rp, user.email, PASSWORD, code_challenge=challenge,
                               code_challenge_method="S256")
    return callback["code"], verifier


def public_exchange(browser: Browser, rp: RegisteredClient, code: str, **extra: str) -> TestResponse:
    """Exchange a code as a public client (client_id in the body, no secret)."""
    return browser.client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "client_id": rp.id, **extra})


def test_public_client_with_the_right_verifier_gets_tokens(browser, user, public_rp):
    """Exchange a public client's code with its verifier (the control for the tests below)."""
    code, verifier = public_code(browser, user, public_rp)
    response = public_exchange(browser, public_rp, code, code_verifier=verifier)
    assert response.status_code == 200, response.text
    assert response.json["id_token"] and response.json["refresh_token"]


def test_missing_pkce_verifier_is_invalid_request(browser, user, public_rp):
    """Answer invalid_request when a public client leaves out the code_verifier."""
    code, _ = public_code(browser, user, public_rp)
    token_error(public_exchange(browser, public_rp, code), 400, "invalid_request")


def test_wrong_pkce_verifier_is_invalid_grant(browser, user, public_rp):
    """Answer invalid_grant when the code_verifier does not match the challenge."""
    code, _ = public_code(browser, user, public_rp)
    other, _ = pkce()
    token_error(public_exchange(browser, public_rp, code, code_verifier=other), 400, "invalid_grant")


def test_malformed_pkce_verifier_is_invalid_request(browser, user, public_rp):
    """Answer invalid_request to a code_verifier that breaks RFC 7636's syntax."""
    code, _ = public_code(browser, user, public_rp)
    token_error(public_exchange(browser, public_rp, code, code_verifier="short"), 400,
                "invalid_request")


def test_confidential_client_cannot_drop_its_pkce_verifier(browser, user, rp):
    """Require the verifier once a challenge was sent, even from a confidential client."""
    _, challenge = pkce()
    callback = browser.sign_in(rp, user.email, PASSWORD, code_challenge=challenge,
                               code_challenge_method="S256")
    token_error(browser.exchange(rp, callback["code"]), 400, "invalid_request")


def test_verifier_without_a_challenge_is_refused(browser, user, rp):
    """Refuse a code_verifier for a code that had no challenge (PKCE downgrade, RFC 9700 §2.1.1)."""
    callback = browser.sign_in(rp, user.email, PASSWORD)
    verifier, _ = pkce()
    token_error(browser.exchange(rp, callback["code"], code_verifier=verifier), 400,
                "invalid_request")


@pytest.mark.parametrize("method", ["plain", "S512", ""])
def test_pkce_methods_other_than_s256_are_refused_at_authorize(browser, user, public_rp, method):
    """Refuse PKCE `plain` (and any other method but S256) at the authorization endpoint."""
    browser.sign_in(public_rp, user.email, PASSWORD, code_challenge=pkce()[1])
    verifier = pkce()[0]
    response = browser.authorize(public_rp, code_challenge=verifier, code_challenge_method=method,
                                 state="st")
    params = redirect_error(response, public_rp)
    assert params["error"] == "invalid_request" and params["state"] == "st"


def test_public_client_without_code_challenge_is_refused(browser, user, public_rp):
    """Refuse an authorization request from a public client that does not use PKCE."""
    response = browser.authorize(public_rp, state="st")
    params = redirect_error(response, public_rp)
    assert params["error"] == "invalid_request" and params["state"] == "st"


# Codes --------------------------------------------------------------------------------------------


def test_expired_code_is_invalid_grant(browser, user, rp):
    """Answer invalid_grant to a code past its lifetime."""
    callback = browser.sign_in(rp, user.email, PASSWORD)
    row = db.session.get(AuthorizationCode, digest(callback["code"]))
    assert row is not None
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    token_error(browser.exchange(rp, callback["code"]), 400, "invalid_grant")


def test_code_with_another_redirect_uri_is_invalid_grant(browser, user, rp):
    """Refuse a code exchanged with a redirect_uri other than the one it was issued to."""
    callback = browser.sign_in(rp, user.email, PASSWORD)
    response = browser.exchange(rp, callback["code"], redirect_uri="https://rp.example.com/other")
    token_error(response, 400, "invalid_grant")


def test_code_of_another_client_is_invalid_grant(browser, user, rp):
    """Refuse a code presented by a client it was not issued to, and keep it for its owner."""
    callback = browser.sign_in(rp, user.email, PASSWORD)
    client, secret = create_client("Other App", [rp.redirect_uri], first_party=True)
    thief = RegisteredClient(client.id, secret, rp.redirect_uri)
    token_error(browser.exchange(thief, callback["code"]), 400, "invalid_grant")
    assert browser.exchange(rp, callback["code"]).status_code == 200


def test_unknown_code_is_invalid_grant(browser, rp):
    """Answer invalid_grant to a code we never issued."""
    token_error(browser.exchange(rp, "made-up-code"), 400, "invalid_grant")


def test_code_exchange_without_code_is_invalid_request(browser, rp):
    """Answer invalid_request when the code parameter is missing."""
    response = browser.client.post("/oauth/token", data={
        "grant_type": "authorization_code", "redirect_uri": rp.redirect_uri}, **auth(rp))
    token_error(response, 400, "invalid_request")


# Userinfo -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [
    "not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 5000, "Bearer", "ünïcödé",
])
def test_malformed_access_token_is_invalid_token(browser, token):
    """Answer 401 invalid_token at userinfo to a token that is not one of ours."""
    headers = {"Authorization": f"Bearer {token}".encode().decode("latin-1")}
    assert_invalid_token(browser.get("/userinfo", headers=headers))


def test_expired_access_token_is_invalid_token(browser, user, rp):
    """Answer 401 invalid_token to a genuinely signed access token past its exp."""
    access = tokens_for(browser, user, rp)["access_token"]
    claims = jwt.decode(access, options={"verify_signature": False})
    now = int(time.time())
    expired = tokens.sign({**claims, "iat": now - 7200, "exp": now - 60}, typ="at+jwt")
    assert browser.get("/userinfo", **bearer(access)).status_code == 200  # same jti, still live
    assert_invalid_token(browser.get("/userinfo", **bearer(expired)))


def test_access_token_signed_by_another_key_is_invalid_token(browser, user, rp):
    """Answer 401 invalid_token to a token signed with a key that only claims our kid."""
    access = tokens_for(browser, user, rp)["access_token"]
    header = jwt.get_unverified_header(access)
    claims = jwt.decode(access, options={"verify_signature": False})
    forger = rsa.generate_private_key(65537, 2048)
    forged = jwt.encode(claims, forger, algorithm="RS256", headers=header)
    assert_invalid_token(browser.get("/userinfo", **bearer(forged)))


def test_unsigned_and_hs256_access_tokens_are_invalid_token(browser, user, rp):
    """Refuse `alg: none` and HS256 tokens made from a real token's claims."""
    access = tokens_for(browser, user, rp)["access_token"]
    header = jwt.get_unverified_header(access)
    claims = jwt.decode(access, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert_invalid_token(browser.get("/userinfo", **bearer(unsigned)))
    hmac = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert_invalid_token(browser.get("/userinfo", **bearer(hmac)))


def test_id_token_is_not_an_access_token(browser, user, rp):
    """Refuse an ID token presented as a bearer access token."""
    body = tokens_for(browser, user, rp)
    assert_invalid_token(browser.get("/userinfo", **bearer(body["id_token"])))


def test_revoked_access_token_is_invalid_token(browser, user, rp):
    """Answer 401 invalid_token once the access token was revoked at /oauth/revoke."""
    access = tokens_for(browser, user, rp)["access_token"]
    assert browser.get("/userinfo", **bearer(access)).status_code == 200
    revoked = browser.client.post("/oauth/revoke", data={"token": access}, **auth(rp))
    assert revoked.status_code == 200
    assert_invalid_token(browser.get("/userinfo", **bearer(access)))
    assert_invalid_token(browser.client.post("/userinfo", data={"access_token": access}))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_without_a_token_asks_for_one(browser, method):
    """Answer 401 with a bare Bearer challenge when no token was sent (RFC 6750 §3.1)."""
    response = browser.client.open("/userinfo", method=method)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and "error=" not in challenge


def test_userinfo_with_another_scheme_asks_for_a_bearer_token(browser, rp):
    """Answer 401 with a Bearer challenge to Basic credentials."""
    response = browser.get("/userinfo", **basic(rp.id, rp.secret or ""))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_api_only_token_cannot_read_userinfo(browser, user, rp):
    """Refuse userinfo to an access token granted without the openid scope."""
    callback = browser.sign_in(rp, user.email, PASSWORD, scope="profile", audience=API, nonce=None)
    body = browser.exchange(rp, callback["code"]).json
    assert "id_token" not in body
    response = browser.get("/userinfo", **bearer(body["access_token"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


# Authorization requests ---------------------------------------------------------------------------


def test_missing_openid_scope_without_audience_is_invalid_scope(browser, user, rp):
    """Send invalid_scope to the redirect URI for scope=profile with no audience."""
    browser.sign_in(rp, user.email, PASSWORD)
    response = browser.authorize(rp, scope="profile", state="st")
    params = redirect_error(response, rp)
    assert params["error"] == "invalid_scope" and params["state"] == "st"


def test_scope_without_openid_is_fine_with_an_audience(browser, user, rp):
    """Issue an API access token (no ID token) for scope=profile with an allowed audience."""
    callback = browser.sign_in(rp, user.email, PASSWORD, scope="profile", audience=API)
    body = browser.exchange(rp, callback["code"]).json
    assert "id_token" not in body
    claims = tokens.verify(body["access_token"], typ="at+jwt", audience=API)
    assert claims["aud"] == API and claims["sub"] == user.id


def test_audience_the_client_may_not_ask_for_is_invalid_target(browser, user, rp):
    """Send invalid_target to the redirect URI for an audience the client may not use."""
    browser.sign_in(rp, user.email, PASSWORD)
    params = redirect_error(browser.authorize(rp, audience="https://other-api.example.com"), rp)
    assert params["error"] == "invalid_target"


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token", "none"])
def test_unsupported_response_type(browser, user, rp, response_type):
    """Send unsupported_response_type to the redirect URI for anything but `code`."""
    browser.sign_in(rp, user.email, PASSWORD)
    params = redirect_error(browser.authorize(rp, response_type=response_type, state="st"), rp)
    assert params["error"] == "unsupported_response_type" and params["state"] == "st"


@pytest.mark.parametrize("response_type", ["", "code\"", "code\\", "codé", "c\x7f"])
def test_missing_or_hostile_response_type_is_a_protocol_error(browser, rp, response_type):
    """Redirect invalid_request for a missing response_type, else unsupported_response_type."""
    params = redirect_error(browser.authorize(rp, response_type=response_type, state="st"), rp)
    assert params["error"] == ("unsupported_response_type" if response_type else "invalid_request")
    assert params["state"] == "st"
    assert not response_type or response_type not in params.get("error_description", "")


@pytest.mark.parametrize("suffix", ['"', "\\", "é", "\x7f", '"><script>alert(1)</script>'])
@pytest.mark.parametrize("response_type", ["code", "code\"", "tokén"])
def test_hostile_redirect_uri_gets_an_error_page(browser, rp, suffix, response_type):
    """Show an error page that does not repeat a hostile redirect URI the client did not register."""
    response = browser.authorize(rp, redirect_uri=rp.redirect_uri + suffix, response_type=response_type)
    page_error(response, "invalid_request" if response_type == "code" else "unsupported_response_type")
    assert rp.redirect_uri not in response.text and "<script>" not in response.text


def test_unknown_client_at_authorize_gets_an_error_page(browser):
    """Show an error page, never a redirect, for a client_id we do not know."""
    response = browser.get("/authorize?response_type=code&client_id=nobody&scope=openid"
                           "&redirect_uri=https%3A%2F%2Fevil.example.net%2Fcb")
    page_error(response, "invalid_client")


@pytest.mark.parametrize("name", ["response_type", "client_id", "redirect_uri", "scope", "state",
                                  "nonce", "code_challenge", "prompt", "max_age", "response_mode"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_repeated_parameters_are_refused(browser, user, rp, name, method):
    """Refuse an authorization request that repeats a parameter, with a page and no redirect."""
    browser.sign_in(rp, user.email, PASSWORD)
    values = {"response_type": "code", "client_id": rp.id, "redirect_uri": rp.redirect_uri,
              "scope": "openid", "state": "st", "nonce": "nn", "code_challenge": pkce()[1],
              "code_challenge_method": "S256", "prompt": "none", "max_age": "100",
              "response_mode": "query"}
    pairs = [*values.items(), (name, values[name])]
    if method == "GET":
        response = browser.client.get("/authorize", query_string=pairs)
    else:
        response = browser.client.post("/authorize", data=_multi(pairs))
    page_error(response, "invalid_request")


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Group pairs into a dict of lists (how the test client sends repeated form fields)."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


@pytest.mark.parametrize(("params", "error"), [
    ({"max_age": "abc"}, "invalid_request"),
    ({"max_age": "-1"}, "invalid_request"),
    ({"max_age": "1e99"}, "invalid_request"),
    ({"max_age": "9" * 40}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"prompt": "none", "id_token_hint": "garbage"}, "invalid_request"),
    ({"request_uri": "https://rp.example.com/request.jwt"}, "request_uri_not_supported"),
    ({"nonce": "n" * 513}, "invalid_request"),
    ({"nonce": "n\x00"}, "invalid_request"),
    ({"login_hint": "ada@example.com\x00"}, "invalid_request"),
])
def test_bad_authorization_parameters_get_protocol_errors(browser, user, rp, params, error):
    """Send the protocol's error to the redirect URI for malformed optional parameters."""
    browser.sign_in(rp, user.email, PASSWORD)
    result = redirect_error(browser.authorize(rp, state="st", **params), rp)
    assert result["error"] == error and result["state"] == "st"


# Garbage and oversized input ----------------------------------------------------------------------

BIG = "A" * 100_000
RAW = b"%FF%FE%00\xff\xfe".decode("latin-1")  # WSGI carries raw bytes as latin-1 text
FORM = "application/x-www-form-urlencoded"

# (name, method, path, keyword arguments for the test client; "{client}" and "{redirect}" are
# replaced by the relying party's values, `"auth": True` authenticates as it).
GARBAGE: list[tuple[str, str, str, dict[str, Any]]] = [
    ("authorize-100kB-state", "GET", "/authorize", {"query_string": {"state": BIG}}),
    ("authorize-100kB-nonce", "GET", "/authorize", {"query_string": {"nonce": BIG}}),
    ("authorize-100kB-client_id", "GET", "/authorize", {"query_string": {"client_id": BIG}}),
    ("authorize-100kB-redirect_uri", "GET", "/authorize", {"query_string": {"redirect_uri": BIG}}),
    ("authorize-100kB-scope", "GET", "/authorize", {"query_string": {"scope": BIG}}),
    ("authorize-100kB-scope-with-openid", "GET", "/authorize",
     {"query_string": {"scope": "openid " + " ".join(["x" * 50] * 2000)}}),
    ("authorize-100kB-login_hint", "GET", "/authorize", {"query_string": {"login_hint": BIG}}),
    ("authorize-100kB-code_challenge", "GET", "/authorize",
     {"query_string": {"code_challenge": BIG, "code_challenge_method": "S256"}}),
    ("authorize-100kB-id_token_hint", "GET", "/authorize", {"query_string": {"id_token_hint": BIG}}),
    ("authorize-100kB-audience", "GET", "/authorize", {"query_string": {"audience": BIG}}),
    ("authorize-100kB-max_age", "GET", "/authorize", {"query_string": {"max_age": "9" * 100_000}}),
    ("authorize-header-injection-state", "GET", "/authorize",
     {"query_string": {"state": "\x00\r\nLocation: https://evil.example.net"}}),
    ("authorize-raw-bytes-client_id", "GET", "/authorize",
     {"query_string": "response_type=code&scope=openid&client_id=" + RAW}),
    ("authorize-raw-bytes-state", "GET", "/authorize", {"raw_extra": "state=" + RAW + "&nonce=" + RAW}),
    ("authorize-post-raw-bytes", "POST", "/authorize",
     {"data": b"client_id=\xff\xfe&response_type=code", "content_type": FORM}),
    ("resume-100kB-handle", "GET", "/authorize/resume", {"query_string": {"state": BIG}}),
    ("login-garbage-handle", "GET", "/u/login", {"query_string": {"state": "\xff" + BIG}}),
    ("consent-garbage-handle", "GET", "/u/consent", {"query_string": {"state": RAW}}),
    ("logout-garbage-hint", "GET", "/oidc/logout",
     {"query_string": {"id_token_hint": "garbage.garbage.garbage"}}),
    ("logout-100kB-values", "GET", "/oidc/logout",
     {"query_string": {"client_id": BIG, "post_logout_redirect_uri": BIG}}),
    ("token-raw-bytes-code", "POST", "/oauth/token",
     {"data": b"grant_type=authorization_code&code=\xff\xfe", "content_type": FORM, "auth": True}),
    ("token-100kB-code", "POST", "/oauth/token",
     {"data": {"grant_type": "authorization_code", "code": BIG, "redirect_uri": "{redirect}"},
      "auth": True}),
    ("token-100kB-refresh_token", "POST", "/oauth/token",
     {"data": {"grant_type": "refresh_token", "refresh_token": BIG}, "auth": True}),
    ("token-100kB-grant_type", "POST", "/oauth/token", {"data": {"grant_type": BIG}, "auth": True}),
    ("token-100kB-audience", "POST", "/oauth/token",
     {"data": {"grant_type": "client_credentials", "audience": BIG}, "auth": True}),
    ("token-100kB-code_verifier", "POST", "/oauth/token",
     {"data": {"grant_type": "authorization_code", "code": "x", "code_verifier": BIG},
      "auth": True}),
    ("token-basic-not-base64", "POST", "/oauth/token",
     {"data": {"grant_type": "client_credentials"},
      "headers": {"Authorization": "Basic %%%not-base64%%%"}}),
    ("token-basic-not-utf8", "POST", "/oauth/token",
     {"data": {"grant_type": "client_credentials"},
      "headers": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()}}),
    ("token-basic-no-colon", "POST", "/oauth/token",
     {"data": {"grant_type": "client_credentials"},
      "headers": {"Authorization": "Basic " + base64.b64encode(b"just-an-id").decode()}}),
    ("token-100kB-client-credentials", "POST", "/oauth/token",
     {"data": {"grant_type": "client_credentials", "client_id": BIG, "client_secret": BIG}}),
    ("token-binary-body", "POST", "/oauth/token",
     {"data": b"\x00\x01\x02", "content_type": "application/octet-stream"}),
    ("token-array-params", "POST", "/oauth/token",
     {"data": {"grant_type": ["client_credentials", "refresh_token"], "audience": ["a", "b"]},
      "auth": True}),
    ("revoke-100kB-token", "POST", "/oauth/revoke", {"data": {"token": BIG}, "auth": True}),
    ("revoke-raw-bytes", "POST", "/oauth/revoke",
     {"data": b"token=\xff\xfe", "content_type": FORM, "auth": True}),
    ("revoke-basic-not-utf8", "POST", "/oauth/revoke",
     {"data": {"token": "x"},
      "headers": {"Authorization": "Basic " + base64.b64encode(b"\xff:\xff").decode()}}),
    ("introspect-100kB-token", "POST", "/oauth/introspect", {"data": {"token": BIG}, "auth": True}),
    ("introspect-100kB-hint", "POST", "/oauth/introspect",
     {"data": {"token": "a.b.c", "token_type_hint": BIG}, "auth": True}),
    ("userinfo-100kB-bearer", "GET", "/userinfo", {"headers": {"Authorization": "Bearer " + BIG}}),
    ("userinfo-latin1-bearer", "GET", "/userinfo", {"headers": {"Authorization": "Bearer " + RAW}}),
    ("userinfo-100kB-body-token", "POST", "/userinfo", {"data": {"access_token": BIG}}),
    ("jwks-garbage-etag", "GET", "/.well-known/jwks.json", {"headers": {"If-None-Match": RAW + BIG}}),
]


NOISE = secrets.token_urlsafe(75_000)  # 100 kB that, unlike BIG, does not compress


@pytest.mark.parametrize("params", [
    {"state": NOISE}, {"nonce": NOISE}, {"login_hint": NOISE}, {"scope": "openid " + NOISE},
    {"claims": NOISE}, {"unknown": NOISE}, {"state": NOISE[:2000], "nonce": NOISE[2000:3000]},
], ids=["state", "nonce", "login_hint", "scope", "claims", "unknown", "3kB-in-all"])
def test_oversized_request_is_refused_before_it_reaches_the_cookie(browser, rp, params):
    """Refuse an authorization request too large to keep in a cookie while the user signs in."""
    response = browser.authorize(rp, **params)
    result = redirect_error(response, rp)
    assert result["error"] == "invalid_request"
    assert result.get("state") == params.get("state", result.get("state"))
    for cookie in response.headers.getlist("Set-Cookie"):
        assert len(cookie) < 4096, "browsers drop cookies over 4 kB"


def test_largest_accepted_requests_keep_the_cookie_small(browser, user, rp):
    """Keep the session cookie under 4 kB with several large waiting requests; the newest wins."""
    for i in range(6):
        state = f"{i}-" + secrets.token_urlsafe(1800)  # random, so the cookie cannot compress it
        response = browser.authorize(rp, state=state)
        assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/u/login"
        for cookie in response.headers.getlist("Set-Cookie"):
            assert len(cookie) < 4096, (i, len(cookie))
    response = browser.follow(browser.login(response.headers["Location"], user.email, PASSWORD),
                              rp.redirect_uri)
    assert response.status_code == 302, response.text
    callback = query(response.headers["Location"])
    assert callback["state"] == state and "code" in callback


def _garbage_kwargs(rp: RegisteredClient, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Fill in a GARBAGE entry's client values and turn it into test-client arguments."""
    kwargs = dict(kwargs)
    good = {"response_type": "code", "client_id": rp.id, "redirect_uri": rp.redirect_uri,
            "scope": "openid"}
    if kwargs.pop("auth", False):
        kwargs.update(auth(rp))
    if isinstance(kwargs.get("data"), dict):
        kwargs["data"] = {k: rp.redirect_uri if v == "{redirect}" else v
                          for k, v in kwargs["data"].items()}
    if isinstance(kwargs.get("query_string"), dict):
        kwargs["query_string"] = {**good, **kwargs["query_string"]}
    if "raw_extra" in kwargs:
        kwargs["query_string"] = "&".join(
            [f"{k}={v}" for k, v in good.items()] + [kwargs.pop("raw_extra")])
    return kwargs


@pytest.mark.parametrize(("method", "path", "kwargs"), [c[1:] for c in GARBAGE],
                         ids=[c[0] for c in GARBAGE])
def test_garbage_and_oversized_input_never_gives_a_500(browser, user, rp, method, path, kwargs):
    """Answer hostile input with a 4xx (or a normal answer), never a server error."""
    browser.sign_in(rp, user.email, PASSWORD)
    response = browser.client.open(path, method=method, **_garbage_kwargs(rp, kwargs))
    assert response.status_code < 500, (response.status_code, response.text[:500])
    location = response.headers.get("Location", "")
    assert "\n" not in location and "\r" not in location
    assert urlsplit(location).netloc in ("", "localhost", "rp.example.com"), location
    if response.status_code >= 400 and path.startswith(("/oauth/", "/userinfo")):
        assert response.mimetype == "application/json"
        assert response.json.get("error") or path == "/userinfo"
    if response.status_code >= 400 and path.startswith(("/authorize", "/u/", "/oidc/")):
        assert response.mimetype == "text/html"


@pytest.mark.parametrize(("kwargs", "content_type"), [
    ({"json": ["client_credentials", API]}, "application/json"),
    ({"json": {"grant_type": "client_credentials", "audience": ["x"]}}, "application/json"),
    ({"data": "{not json", "content_type": "application/json"}, "application/json"),
    ({}, None),
    ({"data": ""}, "application/x-www-form-urlencoded"),
])
def test_token_endpoint_without_a_form_answers_a_protocol_error(browser, rp, kwargs, content_type):
    """Answer an empty body, or a JSON body that is not an object of strings, with a 400 OAuth error.

    A JSON object of strings is read as the form would be (tests/oauth/test_apis.py).
    """
    response = browser.client.post("/oauth/token", **kwargs, **auth(rp))
    assert response.status_code == 400, response.text
    assert response.mimetype == "application/json"
    # RFC 6749 names invalid_request for a missing parameter; Authlib answers unsupported_grant_type.
    assert response.json["error"] in ("invalid_request", "unsupported_grant_type")


def test_token_endpoint_refuses_get(browser, rp):
    """Answer a GET at the token endpoint with 405 and an OAuth error JSON, not an HTML page."""
    response = browser.get("/oauth/token?grant_type=client_credentials")
    assert response.status_code == 405
    assert response.mimetype == "application/json" and response.json["error"] == "invalid_request"


# Client credentials -------------------------------------------------------------------------------


def client_credentials(browser: Browser, rp: RegisteredClient, **data: str) -> TestResponse:
    """Ask for a machine-to-machine token."""
    return browser.client.post("/oauth/token", data={"grant_type": "client_credentials", **data},
                               **auth(rp))


def test_client_credentials_without_audience_is_invalid_request(browser, rp):
    """Answer invalid_request when client_credentials names no audience."""
    token_error(client_credentials(browser, rp), 400, "invalid_request")


def test_client_credentials_for_a_foreign_audience_is_invalid_target(browser, rp):
    """Answer invalid_target for an audience the client is not allowed."""
    token_error(client_credentials(browser, rp, audience="https://other-api.example.com"), 400,
                "invalid_target")


def test_client_credentials_for_the_allowed_audience_gives_an_rfc9068_token(browser, rp):
    """Issue an at+jwt access token for the client itself, for exactly the allowed audience."""
    response = client_credentials(browser, rp, audience=API)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["token_type"].lower() == "bearer" and body["expires_in"] > 0
    assert "refresh_token" not in body and "id_token" not in body
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    claims = tokens.verify(body["access_token"], typ="at+jwt", audience=API)
    assert claims["aud"] == API
    assert claims["sub"] == f"{rp.id}@clients" and claims["client_id"] == rp.id
    assert claims["iss"] == "http://localhost" and claims["jti"] and claims["exp"] > claims["iat"]


def test_client_credentials_token_cannot_read_userinfo(browser, rp):
    """Refuse userinfo to a machine token: it belongs to no user."""
    access = client_credentials(browser, rp, audience=API).json["access_token"]
    assert_invalid_token(browser.get("/userinfo", **bearer(access)))


def test_public_client_cannot_use_client_credentials(browser, public_rp):
    """Refuse client_credentials to a client that has no secret."""
    response = browser.client.post("/oauth/token", data={
        "grant_type": "client_credentials", "audience": API, "client_id": public_rp.id})
    token_error(response, 401, "invalid_client")


# Revocation (RFC 7009) and introspection (RFC 7662) -----------------------------------------------


def test_revoking_a_refresh_token_kills_it_and_its_access_token(browser, user, rp):
    """Revoke the refresh token, and with it the access token issued alongside."""
    body = tokens_for(browser, user, rp)
    response = browser.client.post("/oauth/revoke", data={
        "token": body["refresh_token"], "token_type_hint": "refresh_token"}, **auth(rp))
    assert response.status_code == 200
    token_error(refresh(browser, rp, body["refresh_token"]), 400, "invalid_grant")
    assert_invalid_token(browser.get("/userinfo", **bearer(body["access_token"])))
    assert introspect(browser, rp, body["access_token"]).json == {"active": False}
    assert introspect(browser, rp, body["refresh_token"]).json == {"active": False}


def test_revoking_without_hint_finds_the_refresh_token(browser, user, rp):
    """Find the token's type without a hint (RFC 7009 §2.1: the hint is optional)."""
    body = tokens_for(browser, user, rp)
    assert browser.client.post("/oauth/revoke", data={"token": body["refresh_token"]},
                               **auth(rp)).status_code == 200
    token_error(refresh(browser, rp, body["refresh_token"]), 400, "invalid_grant")


def test_revoking_an_access_token_keeps_the_refresh_token(browser, user, rp):
    """Revoke only the access token when that is what was presented."""
    body = tokens_for(browser, user, rp)
    assert browser.client.post("/oauth/revoke", data={"token": body["access_token"]},
                               **auth(rp)).status_code == 200
    assert_invalid_token(browser.get("/userinfo", **bearer(body["access_token"])))
    assert refresh(browser, rp, body["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_answers_200(browser, rp):
    """Answer 200 to the revocation of a token we do not know (RFC 7009 §2.2)."""
    response = browser.client.post("/oauth/revoke", data={"token": "never-issued"}, **auth(rp))
    assert response.status_code == 200


def test_revocation_requires_client_authentication(browser, user, rp):
    """Answer 401 invalid_client to a revocation without (or with wrong) credentials."""
    body = tokens_for(browser, user, rp)
    token_error(browser.client.post("/oauth/revoke", data={"token": body["refresh_token"]}), 401,
                "invalid_client")
    token_error(browser.client.post("/oauth/revoke", data={"token": body["refresh_token"]},
                                    **basic(rp.id, "wrong")), 401, "invalid_client")
    assert refresh(browser, rp, body["refresh_token"]).status_code == 200


def test_another_client_cannot_revoke_a_token(browser, user, rp):
    """Leave a token alive when a client it was not issued to asks to revoke it."""
    body = tokens_for(browser, user, rp)
    client, secret = create_client("Other App", ["https://other.example.com/cb"], first_party=True)
    other = RegisteredClient(client.id, secret, "https://other.example.com/cb")
    response = browser.client.post("/oauth/revoke", data={"token": body["refresh_token"]},
                                   **auth(other))
    assert response.status_code == 200  # answered as for an unknown token: nothing leaks
    assert browser.get("/userinfo", **bearer(body["access_token"])).status_code == 200
    assert refresh(browser, rp, body["refresh_token"]).status_code == 200


def test_introspection_of_live_tokens_is_active(browser, user, rp):
    """Describe a live access token and refresh token to the client they were issued to."""
    body = tokens_for(browser, user, rp)
    access = introspect(browser, rp, body["access_token"])
    assert access.status_code == 200 and access.mimetype == "application/json"
    info = access.json
    assert info["active"] is True
    assert info["client_id"] == rp.id and info["sub"] == user.id
    assert info["scope"].split() == body["scope"].split()
    assert info["iss"] == "http://localhost" and info["exp"] > info["iat"] > 0
    assert info["jti"] == jwt.decode(body["access_token"], options={"verify_signature": False})["jti"]
    refreshed = introspect(browser, rp, body["refresh_token"], token_type_hint="refresh_token").json
    assert refreshed["active"] is True and refreshed["token_type"] == "refresh_token"
    assert "jti" not in refreshed


@pytest.mark.parametrize("token", ["never-issued", "a.b.c", ""])
def test_introspection_of_unknown_tokens_is_inactive(browser, rp, token):
    """Answer {"active": false} about a token we never issued."""
    response = introspect(browser, rp, token)
    assert response.status_code == 200 and response.json == {"active": False}


def test_introspection_without_a_token_is_invalid_request(browser, rp):
    """Answer invalid_request when the token parameter is missing."""
    response = browser.client.post("/oauth/introspect", data={"token_type_hint": "access_token"},
                                   **auth(rp))
    token_error(response, 400, "invalid_request")


def test_introspection_of_expired_and_rotated_tokens_is_inactive(browser, user, rp):
    """Answer inactive for an expired access token and a refresh token already rotated."""
    body = tokens_for(browser, user, rp)
    assert refresh(browser, rp, body["refresh_token"]).status_code == 200
    assert introspect(browser, rp, body["refresh_token"]).json == {"active": False}
    jti = jwt.decode(body["access_token"], options={"verify_signature": False})["jti"]
    row = db.session.get(Token, jti)
    assert row is not None
    row.access_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert introspect(browser, rp, body["access_token"]).json == {"active": False}


def test_another_client_cannot_introspect_a_token(browser, user, rp):
    """Tell a client that a token issued to another client is inactive (RFC 7662 §2.2)."""
    body = tokens_for(browser, user, rp)
    client, secret = create_client("Other App", ["https://other.example.com/cb"], first_party=True)
    other = RegisteredClient(client.id, secret, "https://other.example.com/cb")
    for token in (body["access_token"], body["refresh_token"]):
        response = introspect(browser, other, token)
        assert response.status_code == 200 and response.json == {"active": False}
    assert introspect(browser, rp, body["access_token"]).json["active"] is True


def test_introspection_requires_a_confidential_client(browser, user, rp, public_rp):
    """Answer 401 invalid_client to an unauthenticated or public caller."""
    body = tokens_for(browser, user, rp)
    token_error(browser.client.post("/oauth/introspect", data={"token": body["access_token"]}), 401,
                "invalid_client")
    token_error(browser.client.post("/oauth/introspect", data={
        "token": body["access_token"], "client_id": public_rp.id}), 401, "invalid_client")


def test_oauth_endpoint_paths_answer_json_404(browser):
    """Answer an unknown path under /oauth/ with JSON, not an HTML page."""
    response = browser.get("/oauth/nothing-here")
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert urlsplit(response.request.url).path == "/oauth/nothing-here"
