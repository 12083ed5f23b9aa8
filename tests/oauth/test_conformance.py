"""The checks of the OpenID Foundation's Basic OP and Config OP test plans, as our own tests."""

import json
import math
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
from sqlalchemy import update
from werkzeug.test import TestResponse

from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.oauth.clients import create_client
from idp.oauth.models import AuthorizationCode, digest
from idp.users.accounts import create_user
from idp.users.models import Session, User
from tests.conftest import PASSWORD
from tests.support import Browser, RegisteredClient, auth, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

ISSUER = "http://localhost"
PRIVATE_PARTS = ("d", "p", "q", "dp", "dq", "qi")


# Helpers ------------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, dict[str, str]]:
    """Return test-client arguments that send an access token in the Authorization header."""
    return {"headers": {"Authorization": f"Bearer {token}"}}


def tokens_for(browser: Browser, user: User, rp: RegisteredClient, **params: Any) -> dict[str, Any]:
    """Sign in (or reuse the session), exchange the code and return the token response."""
    callback = browser.sign_in(rp, user.email, PASSWORD, **params)
    assert "code" in callback, callback
    response = browser.exchange(rp, callback["code"])
    assert response.status_code == 200, response.text
    return dict(response.json or {})


def jwks(browser: Browser) -> dict[str, dict[str, Any]]:
    """Return the published keys by kid."""
    keys = browser.get("/.well-known/jwks.json").json["keys"]
    return {k["kid"]: k for k in keys}


def id_claims(browser: Browser, id_token: str, audience: str) -> dict[str, Any]:
    """Verify an ID token against the published JWKS, as a relying party would; return its claims."""
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256"
    key = jwks(browser)[header["kid"]]
    return jwt.decode(id_token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience,
                      issuer=ISSUER, options={"require": ["iss", "aud", "exp", "iat", "sub"]})


def age_sessions(seconds: int) -> None:
    """Pretend every SSO session was authenticated `seconds` earlier than it was."""
    db.session.execute(update(Session).values(auth_time=Session.auth_time - seconds))
    db.session.commit()


def is_login_page(response: TestResponse) -> bool:
    """Say whether a response sends the browser to the hosted login page."""
    return response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/u/login"


def callback_of(response: TestResponse, rp: RegisteredClient) -> dict[str, str]:
    """Return the query a redirect delivers to the client's redirect URI."""
    assert response.status_code == 302, response.text
    assert response.headers["Location"].startswith(rp.redirect_uri + "?"), response.headers["Location"]
    return query(response.headers["Location"])


class FormPost(HTMLParser):
    """Collect the form, its hidden inputs and the script nonce of a form_post response page."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str | None] = {}
        self.fields: dict[str, str | None] = {}
        self.script_nonces: list[str | None] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.form = values
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values.get("name") or ""] = values.get("value")
        elif tag == "script":
            self.script_nonces.append(values.get("nonce"))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


# Config OP: discovery and keys --------------------------------------------------------------------


def test_discovery_is_json_with_the_required_metadata(browser):
    """Answer discovery with 200 JSON carrying every metadata field a relying party needs."""
    response = browser.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    meta = response.json
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                 "response_types_supported", "subject_types_supported",
                 "id_token_signing_alg_values_supported", "scopes_supported"):
        assert meta.get(name), name
    assert "code" in meta["response_types_supported"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert "openid" in meta["scopes_supported"]
    assert set(meta["subject_types_supported"]) <= {"public", "pairwise"}
    assert meta["code_challenge_methods_supported"] == ["S256"]
    for name, value in meta.items():
        if name.endswith("_endpoint") or name == "jwks_uri":
            assert value.startswith(ISSUER + "/"), name


def test_discovery_issuer_is_the_url_it_was_fetched_from(browser):
    """Make `issuer` + the well-known path equal the discovery URL exactly."""
    response = browser.get("/.well-known/openid-configuration")
    assert response.json["issuer"] == ISSUER
    assert response.json["issuer"] + "/.well-known/openid-configuration" == response.request.url


def test_discovery_issuer_follows_the_configuration(app, browser):
    """Take `issuer` from the configuration, never from the Host header of the request."""
    app.config["ISSUER"] = "https://login.example.com"
    response = browser.get("/.well-known/openid-configuration", base_url="https://login.example.com")
    assert response.json["issuer"] == "https://login.example.com"
    assert response.json["jwks_uri"] == "https://login.example.com/.well-known/jwks.json"
    spoofed = browser.get("/.well-known/openid-configuration", base_url="https://evil.example.net")
    assert spoofed.json["issuer"] == "https://login.example.com"


def test_jwks_is_public_cacheable_json(browser):
    """Serve the JWKS at jwks_uri as cacheable JSON with an ETag that answers 304."""
    jwks_uri = browser.get("/.well-known/openid-configuration").json["jwks_uri"]
    response = browser.get(urlsplit(jwks_uri).path)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.cache_control.public
    assert response.cache_control.max_age and response.cache_control.max_age > 0
    etag = response.headers["ETag"]
    again = browser.get(urlsplit(jwks_uri).path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    other = browser.get(urlsplit(jwks_uri).path, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_jwks_keys_are_public_rsa_signing_keys_with_unique_kids(browser):
    """Publish RSA signature keys, each with its own kid and no private component."""
    keys = browser.get("/.well-known/jwks.json").json["keys"]
    assert keys
    kids = [k.get("kid") for k in keys]
    assert all(kids) and len(set(kids)) == len(kids)
    for key in keys:
        assert key["kty"] == "RSA" and key["use"] == "sig"
        assert key.get("alg", "RS256") == "RS256"
        assert key["n"] and key["e"]
        assert not set(PRIVATE_PARTS) & set(key), key.keys()
        assert jwt.PyJWK(key).key.key_size >= 2048


# Basic OP: the code and the ID token --------------------------------------------------------------


def test_code_has_at_least_128_bits_and_is_stored_hashed(browser, user, rp):
    """Issue codes of ≥128 bits of URL-safe randomness, kept only as a digest."""
    codes = [browser.sign_in(rp, user.email, PASSWORD)["code"] for _ in range(3)]
    assert len(set(codes)) == 3
    for code in codes:
        assert re.fullmatch(r"[A-Za-z0-9_.~-]+", code), code
        assert len(code) * math.log2(62) >= 128  # even a 62-letter alphabet needs 22 characters
        assert db.session.get(AuthorizationCode, digest(code)) is not None
        assert db.session.get(AuthorizationCode, code) is None


def test_id_token_has_the_required_claims_and_a_valid_signature(browser, user, rp):
    """Sign ID tokens with RS256 under a published kid, with every claim the plan checks."""
    body = tokens_for(browser, user, rp, nonce="n-0S6_WzA2Mj")
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256" and header["kid"] in jwks(browser)
    claims = id_claims(browser, body["id_token"], rp.id)
    assert claims["iss"] == ISSUER and claims["aud"] == rp.id and claims["sub"] == user.id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["auth_time"] <= claims["iat"] < claims["exp"]
    assert isinstance(claims["auth_time"], int)
    session = db.session.get(Session, claims["sid"])
    assert session is not None and session.user_id == user.id
    assert claims["at_hash"]  # its value is checked in test_flow


def test_id_token_signature_fails_with_another_key(browser, user, rp):
    """Reject an ID token whose signature is checked against a key that is not its own."""
    body = tokens_for(browser, user, rp)
    header = jwt.get_unverified_header(body["id_token"])
    others = [k for kid, k in jwks(browser).items() if kid != header["kid"]]
    assert others, "the JWKS publishes the next key too"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["id_token"], jwt.PyJWK(others[0]).key, algorithms=["RS256"], audience=rp.id)


def test_nonce_is_optional_in_the_code_flow(browser, user, rp):
    """Accept a code-flow request without nonce, and put no nonce in the ID token."""
    callback = browser.sign_in(rp, user.email, PASSWORD, nonce=None)
    response = browser.exchange(rp, callback["code"])
    assert response.status_code == 200, response.text
    assert "nonce" not in id_claims(browser, response.json["id_token"], rp.id)


# Basic OP: userinfo and scopes --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["get-header", "post-header", "post-body"])
def test_userinfo_answers_with_the_id_token_sub(browser, user, rp, how):
    """Answer userinfo by GET or POST with the same `sub` as the ID token."""
    body = tokens_for(browser, user, rp)
    token = body["access_token"]
    if how == "get-header":
        response = browser.get("/userinfo", **bearer(token))
    elif how == "post-header":
        response = browser.client.post("/userinfo", **bearer(token))
    else:
        response = browser.client.post("/userinfo", data={"access_token": token})
    assert response.status_code == 200, response.text
    assert response.mimetype == "application/json"
    assert response.json["sub"] == id_claims(browser, body["id_token"], rp.id)["sub"] == user.id


@pytest.mark.parametrize(("scope", "present", "absent"), [
    ("openid", set(), {"name", "email", "email_verified", "given_name"}),
    ("openid profile", {"name", "given_name", "family_name", "updated_at"}, {"email", "email_verified"}),
    ("openid email", {"email", "email_verified"}, {"name", "given_name", "family_name"}),
    ("openid profile email", {"name", "given_name", "family_name", "email", "email_verified"}, set()),
])
def test_scopes_release_their_claims(browser, user, rp, scope, present, absent):
    """Release profile and email claims at userinfo exactly when their scope was granted."""
    body = tokens_for(browser, user, rp, scope=scope)
    assert body["scope"].split() == scope.split()
    info = browser.get("/userinfo", **bearer(body["access_token"])).json
    assert present <= set(info) and not absent & set(info), info
    if "email" in present:
        assert info["email"] == "ada@example.com" and info["email_verified"] is True
    if "name" in present:
        assert info["name"] == "Ada Lovelace" and isinstance(info["updated_at"], int)


def test_unknown_scopes_are_ignored(browser, user, rp):
    """Ignore scope values we do not know, and grant only the ones we do (OIDC Core §5.4)."""
    body = tokens_for(browser, user, rp, scope="openid email phone address launch/patient")
    assert sorted(body["scope"].split()) == ["email", "openid"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert sorted(claims["scope"].split()) == ["email", "openid"]
    assert set(browser.get("/userinfo", **bearer(body["access_token"])).json) == {
        "sub", "email", "email_verified"}


# Basic OP: bad authorization requests -------------------------------------------------------------


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example.net/callback",
    "https://rp.example.com/callback?extra=1",
    "https://rp.example.com/callback/",
    "https://rp.example.com/callback#frag",
    "https://RP.example.com/callback",
    "http://rp.example.com/callback",
])
@pytest.mark.parametrize("signed_in", [False, True])
def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(
    browser, user, rp, redirect_uri, signed_in
):
    """Show an HTML error page for a redirect URI that does not match exactly, and never redirect."""
    if signed_in:
        browser.sign_in(rp, user.email, PASSWORD)
    response = browser.authorize(rp, redirect_uri=redirect_uri, prompt="none")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    assert f'href="{redirect_uri}' not in response.text and "http-equiv" not in response.text


def test_missing_response_type_is_rejected(browser, user, rp):
    """Refuse a request without response_type and issue no code, even to a signed-in user."""
    browser.sign_in(rp, user.email, PASSWORD)
    before = db.session.query(AuthorizationCode).count()
    callback = callback_of(browser.authorize(rp, response_type=None, state="st"), rp)
    # RFC 6749 §4.1.2.1: a missing parameter is invalid_request; the redirect URI is valid, so redirect.
    assert callback["error"] == "invalid_request"
    assert callback["state"] == "st" and "code" not in callback
    assert db.session.query(AuthorizationCode).count() == before


def test_request_object_is_refused_with_request_not_supported(browser, user, rp):
    """Answer a `request` parameter with request_not_supported at the redirect URI."""
    browser.sign_in(rp, user.email, PASSWORD)
    unsigned = jwt.encode({"client_id": rp.id, "scope": "openid"}, key=None, algorithm="none")
    callback = callback_of(browser.authorize(rp, request=unsigned, state="st"), rp)
    assert callback["error"] == "request_not_supported"
    assert callback["state"] == "st" and callback["iss"] == ISSUER and "code" not in callback


# Basic OP: prompt, max_age, id_token_hint ---------------------------------------------------------


def test_prompt_login_forces_a_new_login_with_a_newer_auth_time(browser, user, rp):
    """Ask for the password again under prompt=login and report the new auth_time."""
    browser.sign_in(rp, user.email, PASSWORD)
    age_sessions(30)
    before = id_claims(browser, tokens_for(browser, user, rp)["id_token"], rp.id)
    response = browser.authorize(rp, prompt="login")
    assert is_login_page(response)
    response = browser.follow(browser.login(response.headers["Location"], user.email, PASSWORD),
                              rp.redirect_uri)
    callback = callback_of(response, rp)
    after = id_claims(browser, browser.exchange(rp, callback["code"]).json["id_token"], rp.id)
    assert after["sub"] == before["sub"]
    assert after["auth_time"] >= before["auth_time"] + 30
    assert after["sid"] != before["sid"]  # the session id rotates at login


def test_prompt_none_without_a_session_answers_login_required(browser, rp):
    """Send login_required to the redirect URI under prompt=none when nobody is signed in."""
    callback = callback_of(browser.authorize(rp, prompt="none", state="st"), rp)
    assert callback["error"] == "login_required"
    assert callback["state"] == "st" and callback["iss"] == ISSUER
    assert "code" not in callback


def test_prompt_none_with_a_session_keeps_sub_and_auth_time(browser, user, rp):
    """Issue a code silently under prompt=none, with the session's sub and auth_time."""
    first = id_claims(browser, tokens_for(browser, user, rp)["id_token"], rp.id)
    response = browser.authorize(rp, prompt="none")
    silent = id_claims(browser, browser.exchange(rp, callback_of(response, rp)["code"]).json["id_token"],
                       rp.id)
    assert (silent["sub"], silent["auth_time"], silent["sid"]) == (
        first["sub"], first["auth_time"], first["sid"])


def test_max_age_1_forces_a_new_login(browser, user, rp):
    """Send a user whose login is older than max_age back to the login page."""
    first = id_claims(browser, tokens_for(browser, user, rp)["id_token"], rp.id)
    age_sessions(5)
    response = browser.authorize(rp, max_age="1")
    assert is_login_page(response)
    response = browser.follow(browser.login(response.headers["Location"], user.email, PASSWORD),
                              rp.redirect_uri)
    claims = id_claims(browser, browser.exchange(rp, callback_of(response, rp)["code"]).json["id_token"],
                       rp.id)
    assert claims["auth_time"] >= first["auth_time"]  # without a new login it would be 5 s older
    assert claims["sid"] != first["sid"]


def test_max_age_1_with_prompt_none_answers_login_required(browser, user, rp):
    """Answer login_required, not a login page, when max_age has passed under prompt=none."""
    browser.sign_in(rp, user.email, PASSWORD)
    age_sessions(5)
    callback = callback_of(browser.authorize(rp, max_age="1", prompt="none"), rp)
    assert callback["error"] == "login_required"


def test_max_age_10000_does_not_force_a_login(browser, user, rp):
    """Reuse a session younger than max_age, and report its auth_time."""
    first = id_claims(browser, tokens_for(browser, user, rp)["id_token"], rp.id)
    age_sessions(5)
    response = browser.authorize(rp, max_age="10000")
    claims = id_claims(browser, browser.exchange(rp, callback_of(response, rp)["code"]).json["id_token"],
                       rp.id)
    assert claims["auth_time"] == first["auth_time"] - 5
    assert claims["sid"] == first["sid"]


def test_id_token_hint_with_prompt_none_succeeds(browser, user, rp):
    """Issue a code silently for prompt=none with the ID token of the signed-in user as hint."""
    body = tokens_for(browser, user, rp)
    response = browser.authorize(rp, prompt="none", id_token_hint=body["id_token"])
    callback = callback_of(response, rp)
    assert "code" in callback, callback
    claims = id_claims(browser, browser.exchange(rp, callback["code"]).json["id_token"], rp.id)
    assert claims["sub"] == user.id


def test_id_token_hint_of_another_user_with_prompt_none_answers_login_required(
    app, browser, user, rp
):
    """Refuse to answer silently for a different user than the hint names."""
    other = create_user("grace@example.com", PASSWORD, NATIVE_ID, name="Grace Hopper")
    hint = Browser(app.test_client())
    hint_token = tokens_for(hint, other, rp)["id_token"]
    browser.sign_in(rp, user.email, PASSWORD)
    callback = callback_of(browser.authorize(rp, prompt="none", id_token_hint=hint_token), rp)
    assert callback["error"] == "login_required" and "code" not in callback


@pytest.mark.parametrize(("name", "value"), [
    ("display", "page"),
    ("display", "popup"),
    ("login_hint", "ada@example.com"),
    ("ui_locales", "se fr-CA en"),
    ("claims_locales", "se fr-CA en"),
    ("acr_values", "1 2"),
    ("claims", json.dumps({"id_token": {"email": {"essential": True}},
                           "userinfo": {"name": None}})),
    ("unknown_param", "some value"),
    ("resource", "https://api.example.com"),
])
def test_optional_and_unknown_parameters_cause_no_error(browser, user, rp, name, value):
    """Carry on normally when a request has optional or unknown parameters."""
    callback = browser.sign_in(rp, user.email, PASSWORD, **{name: value})
    assert "code" in callback and "error" not in callback, callback
    response = browser.exchange(rp, callback["code"])
    assert response.status_code == 200, response.text


def test_login_hint_fills_in_the_email(browser, rp):
    """Pre-fill the login form's email with login_hint."""
    response = browser.authorize(rp, login_hint="ada@example.com")
    assert is_login_page(response)
    page = browser.get(response.headers["Location"])
    assert re.search(r'<input[^>]*name="email"[^>]*value="ada@example.com"', page.text), page.text


# Basic OP: code reuse and refresh tokens ----------------------------------------------------------


def test_code_reuse_is_refused_and_revokes_the_first_tokens(browser, user, rp):
    """Refuse a second use of a code and revoke the tokens its first use issued."""
    callback = browser.sign_in(rp, user.email, PASSWORD)
    first = browser.exchange(rp, callback["code"])
    assert first.status_code == 200
    assert browser.get("/userinfo", **bearer(first.json["access_token"])).status_code == 200
    second = browser.exchange(rp, callback["code"])
    assert second.status_code == 400
    assert second.json["error"] == "invalid_grant"
    assert "access_token" not in second.json
    info = browser.get("/userinfo", **bearer(first.json["access_token"]))
    assert info.status_code == 401
    refreshed = browser.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first.json["refresh_token"]}, **auth(rp))
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"


def test_refresh_token_of_another_client_is_refused(browser, user, rp):
    """Answer invalid_grant when a client presents a refresh token issued to another client."""
    body = tokens_for(browser, user, rp)
    client, secret = create_client("Other App", ["https://other.example.com/cb"], first_party=True)
    stolen = browser.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        auth=(client.id, secret))
    assert stolen.status_code == 400
    assert stolen.json["error"] == "invalid_grant"
    assert "access_token" not in stolen.json


# Basic OP: response modes and the authorization endpoint's methods -------------------------------


def test_form_post_returns_an_auto_submitting_form(browser, user, rp):
    """Deliver code, state and iss by an auto-submitting form POSTed to the redirect URI."""
    browser.sign_in(rp, user.email, PASSWORD)
    state = '"><script>alert(1)</script>'
    response = browser.authorize(rp, response_mode="form_post", state=state)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "<script>alert(1)" not in response.text
    page = FormPost()
    page.feed(response.text)
    assert page.form["method"] == "post" and page.form["action"] == rp.redirect_uri
    assert set(page.fields) == {"code", "state", "iss"}
    assert page.fields["state"] == state and page.fields["iss"] == ISSUER
    assert any("submit()" in s for s in page.scripts)
    nonce = page.script_nonces[0]
    assert nonce and f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    exchanged = browser.exchange(rp, page.fields["code"] or "")
    assert exchanged.status_code == 200, exchanged.text


def test_form_post_carries_errors_too(browser, rp):
    """Deliver an authorization error by form_post when that response mode was asked for."""
    response = browser.authorize(rp, response_mode="form_post", prompt="none", state="st")
    assert response.status_code == 200
    page = FormPost()
    page.feed(response.text)
    assert page.form["action"] == rp.redirect_uri
    assert page.fields["error"] == "login_required" and page.fields["state"] == "st"


def test_unknown_response_mode_is_refused(browser, user, rp):
    """Refuse a response mode we do not offer instead of silently using another."""
    browser.sign_in(rp, user.email, PASSWORD)
    response = browser.authorize(rp, response_mode="fragment")
    callback = callback_of(response, rp)
    assert callback["error"] == "invalid_request" and "code" not in callback


def test_authorization_endpoint_accepts_post(browser, user, rp):
    """Accept an authorization request sent as a form POST, through login, to a code."""
    params = {"response_type": "code", "client_id": rp.id, "redirect_uri": rp.redirect_uri,
              "scope": "openid email", "state": "st", "nonce": "nn"}
    response = browser.client.post("/authorize", data=params)
    assert is_login_page(response)
    response = browser.follow(browser.login(response.headers["Location"], user.email, PASSWORD),
                              rp.redirect_uri)
    callback = callback_of(response, rp)
    assert callback["state"] == "st"
    body = browser.exchange(rp, callback["code"]).json
    assert id_claims(browser, body["id_token"], rp.id)["nonce"] == "nn"
    again = browser.client.post("/authorize", data=params)
    assert "code" in callback_of(again, rp)


def test_authorization_endpoint_get_without_session_remembers_the_request(browser, user, rp):
    """Resume the exact request after login: its state and nonce come back unchanged."""
    response = browser.client.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.id, "redirect_uri": rp.redirect_uri,
        "scope": "openid", "state": "s t&x", "nonce": "n+1"}))
    assert is_login_page(response)
    response = browser.follow(browser.login(response.headers["Location"], user.email, PASSWORD),
                              rp.redirect_uri)
    callback = callback_of(response, rp)
    assert callback["state"] == "s t&x"
    body = browser.exchange(rp, callback["code"]).json
    assert id_claims(browser, body["id_token"], rp.id)["nonce"] == "n+1"
