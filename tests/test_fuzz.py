"""Hypothesis fuzzing: hostile requests to every endpoint get a 4xx or a normal answer, never a 500."""

# Requests go through the whole WSGI stack, middleware included (werkzeug's test client cannot even
# send some Host headers a real server passes on). Examples are derandomized and each starts with the
# fixture's browser session alive, so a run is reproducible; the module takes about half a minute.

import base64
import contextvars
import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from werkzeug.test import EnvironBuilder, run_wsgi_app

from idp import mail
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.oauth.clients import create_client
from idp.users.accounts import create_user
from idp.users.models import Session
from tests.conftest import PASSWORD, app_for, base_config, fresh_database
from tests.support import Browser, RegisteredClient, csrf_token, pkce, query

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

EMAIL = "ada@example.com"
API = "https://api.example.com"
FORM = "application/x-www-form-urlencoded"

# Parameter names the endpoints read, including the prefixed fields of the password form.
AUTHORIZE_NAMES = [
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method", "prompt", "max_age", "response_mode", "id_token_hint", "login_hint",
    "audience", "request", "request_uri", "claims",
]
FORM_NAMES = ["email", "password", "confirm", "name", "csrf_token", "allow", "deny", "pw-current",
              "pw-password", "pw-confirm", "pw-csrf_token"]
NAMES = [*AUTHORIZE_NAMES, *FORM_NAMES, "grant_type", "code", "code_verifier", "refresh_token",
         "client_secret", "token", "token_type_hint", "access_token", "post_logout_redirect_uri"]
NASTY = [
    "", " ", '"', "\\", "'", "\x00", "a\x00b", "\r\n", "\t", "\x1b[0m", "\x7f", "\x85", "é", "日本語",
    "\U0001f600", "\u202e", "\ufeff", "%00", "%", "%zz", "%ff%fe", "+", "&", "=", "#", "?", "/",
    "<script>alert(1)</script>", "{{7*7}}", "'; DROP TABLE users; --", "../../../etc/passwd",
    "null", "[]", "{}", "-1", "1e309", "9" * 40, "http://[", "https://localhost:99999/", "javascript:x",
    "a" * 64, "a" * 300, "a" * 5000, "A" * 100_000,
]
# Pieces of query strings that no form encoder makes.
RAW_QUERY = ["%", "%z", "%zz", "%00", "%ff", "%c3%28", "%e2%82", "%25", "+", "&", "=", "&&", ";",
             "a=b", "=x", "state=%ff", "client_id=%00", "scope=openid%20%ff", "response_type=%22"]
CONTENT_TYPES = [
    FORM, "application/json", "multipart/form-data", "multipart/form-data; boundary=x",
    "multipart/form-data; boundary=", "text/plain", f"{FORM}; charset=utf-16", "application/xml", "*/*",
    "application/json; charset=latin-1", ";;;", "\x00",
]
HOSTS = ["localhost", "a" * 64 + ".example", "a..b", ".", "xn--zz", "xn--.example", "é.example",
         "[::1]", "[::1", "localhost:99999", "localhost:abc", "", " ", "exa mple", "a" * 300,
         "localhost\x00", "evil.example:443", "127.0.0.1:0", "[zz]:80"]
HEADER_NAMES = ["Accept", "Accept-Language", "If-None-Match", "If-Modified-Since", "Origin",
                "Referer", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Range",
                "Content-Encoding", "Transfer-Encoding", "User-Agent", "X-Requested-With",
                "Script-Name", "X-Script-Name", "X-Forwarded-Prefix"]
ODD_PATHS = ["/oauth/nothing", "/u/", "/%ff", "//authorize", "/authorize/", "/.well-known/",
             "/static/", "/u/login%00", "/userinfo/x", "/" + "a" * 5000]


@dataclass
class Target:
    """The fuzzed app and what a signed-in browser and two relying parties know about it."""

    app: Flask
    rp: RegisteredClient  # confidential and first-party, allowed an API audience
    spa: RegisteredClient  # public and third-party: its requests need PKCE and the user's consent
    session_id: str
    cookie: str  # the signed-in browser's session cookie ...
    csrf: str  # ... and the CSRF token of its forms
    verifier: str
    challenge: str
    tokens: dict[str, str]  # a real token response for `rp`
    routes: list[tuple[str, list[str]]]  # each rule's path and the methods to send it

    @property
    def plausible(self) -> list[str]:
        """Values a real client would send, so that requests get past the first check."""
        return [self.rp.id, self.spa.id, self.rp.redirect_uri, self.spa.redirect_uri, self.rp.secret or "",
                "code", "openid", "openid profile email offline_access", "S256", self.challenge,
                self.verifier, EMAIL, API, "authorization_code", "refresh_token", "client_credentials",
                "query", "form_post", "none", "login", "consent", "https://rp.example.com/bye",
                self.tokens["access_token"], self.tokens["refresh_token"], self.tokens["id_token"],
                self.csrf, "access_token", "y", "https", "http://localhost", "https://localhost/u/login"]

    @property
    def browser(self) -> dict[str, str]:
        """The signed-in browser's Cookie header."""
        return {"Cookie": f"{self.app.config['SESSION_COOKIE_NAME']}={self.cookie}"}

    def reset(self) -> None:
        """Revive the browser's session, which an example may have ended."""
        db.session.execute(update(Session).where(Session.id == self.session_id).values(ended_at=None))
        db.session.commit()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One app per database for the whole module, with a user, two clients and a signed-in browser."""
    tmp = tmp_path_factory.mktemp("fuzz")
    config = base_config(fresh_database(request, request.param, tmp), tmp)
    with app_for({**config, "PROXY_HOPS": 1}) as app:  # so X-Forwarded-* headers are read
        user = create_user(EMAIL, PASSWORD, NATIVE_ID, name="Ada", email_verified=True)
        client, secret = create_client("Fuzz App", ["https://rp.example.com/cb"], first_party=True,
                                       post_logout_redirect_uris=["https://rp.example.com/bye"],
                                       audiences=[API])
        spa, _ = create_client("Fuzz SPA", ["http://127.0.0.1:8765/cb"], public=True)
        rp = RegisteredClient(client.id, secret, "https://rp.example.com/cb")
        public = RegisteredClient(spa.id, None, "http://127.0.0.1:8765/cb")
        browser = Browser(app.test_client())
        token_response = browser.exchange(rp, browser.sign_in(rp, EMAIL, PASSWORD)["code"]).json
        verifier, challenge = pkce()
        csrf = csrf_token(browser.get("/u/account").text)
        session_id = db.session.scalar(select(Session.id).where(Session.user_id == user.id))
        cookie = browser.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        assert token_response and session_id and cookie
        routes = [(rule.rule.replace("<path:filename>", "{filename}"),
                   sorted((rule.methods or set()) | {"GET", "POST"}))
                  for rule in app.url_map.iter_rules()]
        yield Target(app, rp, public, session_id, cookie.value, csrf, verifier, challenge,
                     token_response, routes)
        mail.wait_for_sent(5)  # mails the examples queued are written before the app goes


def send(t: Target, method: str, path: str, query_string: str = "", headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], str]:
    """Send one request through the whole WSGI stack; assert it is not a server error."""
    environ = EnvironBuilder(path=path, method=method, query_string=query_string, headers=headers,
                             data=body, environ_base={"REMOTE_ADDR": "127.0.0.1"},  # a trusted proxy
                             ).get_environ()
    # A fresh context, as a real request has: not the fixture's app context, `g` and session.
    app_iter, status, response_headers = contextvars.Context().run(run_wsgi_app, t.app, environ, True)
    text = b"".join(app_iter).decode("latin-1")
    request = f"{method} {path[:200]}?{query_string[:300]!r} headers={headers!r:.500} body={body!r:.300}"
    assert int(status[:3]) < 500, f"{request}\n-> {status}\n{text[:2000]}"
    assert "Traceback" not in text and 'File "' not in text, f"{request}\n{text[:2000]}"
    location = response_headers.get("Location", "")
    assert "\n" not in location and "\r" not in location
    return int(status[:3]), dict(response_headers), text


# Strategies ---------------------------------------------------------------------------------------

hostile = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.text(st.characters(max_codepoint=0x1f), max_size=5),
    st.lists(st.sampled_from(NASTY[:30]), min_size=2, max_size=4).map("".join),
)


def values(t: Target) -> st.SearchStrategy[str]:
    """Parameter values: hostile ones, real ones, and real ones with something hostile appended."""
    plausible = st.sampled_from(t.plausible)
    return st.one_of(hostile, plausible, st.tuples(plausible, hostile).map("".join))


def pairs(t: Target) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Parameters by name and value, names possibly repeated or made up."""
    return st.lists(st.tuples(st.one_of(st.sampled_from(NAMES), hostile), values(t)), max_size=8)


def query_strings(t: Target) -> st.SearchStrategy[str]:
    """Encoded parameters, raw odd percent-encodings, or both."""
    raw = st.lists(st.one_of(st.sampled_from(RAW_QUERY), st.text(max_size=8)), max_size=8).map("".join)
    encoded = pairs(t).map(urlencode)
    return st.one_of(encoded, raw, st.tuples(encoded, raw).map("&".join))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES) | hostile, inner,
                                                                 max_size=4),
    max_leaves=10,
)


def header_text(text: str) -> str:
    """Turn text into a WSGI header value: its UTF-8 bytes as latin-1, without line breaks."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1").replace("\r", "").replace("\n", "")


def authorizations(t: Target) -> st.SearchStrategy[str]:
    """Authorization headers: junk Basic and Bearer credentials, and real ones spoiled."""
    def basic(raw: bytes) -> str:
        return "Basic " + base64.b64encode(raw).decode()
    credentials = st.one_of(
        st.tuples(values(t), values(t)).map(lambda p: f"{quote(p[0])}:{quote(p[1])}".encode()),
        st.tuples(values(t), values(t)).map(lambda p: f"{p[0]}:{p[1]}".encode("utf-8", "surrogatepass")),
        st.binary(max_size=40),
    )
    return st.one_of(
        credentials.map(basic),
        st.tuples(st.sampled_from(["Basic", "Bearer", "basic", "BEARER", "Digest", "", "Basic  "]),
                  values(t)).map(" ".join),
        st.sampled_from(["Basic", "Bearer", "Basic =", "Basic %%%", "Bearer a.b.c", "Bearer ..",
                         basic(b"\xff\xfe:\xff"), basic(b"no-colon"), basic(f"{t.rp.id}:".encode())]),
    ).map(header_text)


def cookies(t: Target) -> st.SearchStrategy[str]:
    """Cookie headers: junk, a junk or tampered session cookie, or the signed-in browser's."""
    name = t.app.config["SESSION_COOKIE_NAME"]
    return st.one_of(
        hostile,
        hostile.map(lambda v: f"{name}={v}"),
        st.just(f"{name}={t.cookie}"),
        hostile.map(lambda v: f"{name}={t.cookie}{v}"),
        hostile.map(lambda v: f"{name}={t.cookie}; {name}={v}"),
    ).map(header_text)


def noise(t: Target) -> st.SearchStrategy[dict[str, str]]:
    """A few more headers (proxy, caching, origin), with hostile or plausible values."""
    return st.dictionaries(st.sampled_from(HEADER_NAMES), values(t).map(header_text), max_size=3)


@st.composite
def headers(draw: st.DrawFn, t: Target) -> dict[str, str]:
    """A few request headers, each left out or hostile."""
    result = draw(noise(t))
    if draw(st.booleans()):
        result["Host"] = header_text(draw(st.one_of(st.sampled_from(HOSTS), hostile)))
    if draw(st.booleans()):
        result["Authorization"] = draw(authorizations(t))
    if draw(st.booleans()):
        result["Cookie"] = draw(cookies(t))
    return result


@st.composite
def bodies(draw: st.DrawFn, t: Target) -> tuple[bytes | None, str | None]:
    """A body and the Content-Type it is sent with, which need not match."""
    kind = draw(st.sampled_from(["none", "form", "json", "bytes"]))
    body: bytes | None = None
    if kind == "form":
        body = urlencode(draw(pairs(t))).encode()
    elif kind == "json":
        body = json.dumps(draw(json_values), ensure_ascii=False).encode("utf-8", "surrogatepass")
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    content_type = draw(st.one_of(st.none(), st.sampled_from(CONTENT_TYPES), hostile.map(header_text)))
    return body, content_type


# Every endpoint -----------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_every_endpoint_survives_hostile_requests(target: Target, data: st.DataObject) -> None:
    """Send hostile parameters, bodies and headers to every route with each method; never a 500."""
    t = target
    t.reset()
    path, methods = data.draw(st.sampled_from(t.routes + [(p, ["GET", "POST"]) for p in ODD_PATHS]))
    filename = data.draw(st.one_of(st.sampled_from(["style.css", "nope.js", "..%2fapp.py"]), hostile))
    path = path.replace("{filename}", quote(filename, safe="%"))
    method = data.draw(st.sampled_from(methods))
    request_headers = data.draw(headers(t))
    body, content_type = data.draw(bodies(t))
    if content_type is not None:
        request_headers["Content-Type"] = content_type
    send(t, method, path, data.draw(query_strings(t)), request_headers, body)


# Deeper, with real clients, tokens and a signed-in browser ----------------------------------------


def mutate(data: st.DataObject, t: Target, params: dict[str, str], extra: list[str]) -> list[tuple[str, str]]:
    """Spoil, drop or add a few parameters of an otherwise valid request."""
    params = dict(params)
    for name in data.draw(st.lists(st.sampled_from([*params, *extra]), min_size=1, max_size=3)):
        if data.draw(st.booleans()) and name in params:
            del params[name]
        else:
            params[name] = data.draw(values(t))
    return list(params.items())


def signed_in(t: Target, data: st.DataObject) -> dict[str, str]:
    """The signed-in browser's cookie, mostly, or none; and a few more headers."""
    cookie = t.browser if data.draw(st.sampled_from([True, True, False])) else {}
    return {**data.draw(noise(t)), **cookie}


def client_auth(t: Target, data: st.DataObject) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and form fields that authenticate (or nearly authenticate) a client."""
    rp = t.rp
    how = data.draw(st.sampled_from(["basic", "post", "public", "spoiled"]))
    if how == "basic":
        raw = base64.b64encode(f"{quote(rp.id)}:{quote(rp.secret or '')}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}, {}
    if how == "post":
        return {}, {"client_id": rp.id, "client_secret": rp.secret or ""}
    if how == "public":
        return {}, {"client_id": t.spa.id}
    return {"Authorization": data.draw(authorizations(t))}, {}


def authorize_params(t: Target, client: RegisteredClient) -> dict[str, str]:
    """A valid authorization request of a client (the public one uses PKCE)."""
    params = {"response_type": "code", "client_id": client.id, "redirect_uri": client.redirect_uri,
              "scope": "openid profile email", "state": "st", "nonce": "nn"}
    if client.secret is None:
        params |= {"code_challenge": t.challenge, "code_challenge_method": "S256"}
    return params


def fresh_code(t: Target) -> str:
    """Have the signed-in browser get a new code for the confidential client."""
    query_string = urlencode(authorize_params(t, t.rp))
    _, response_headers, _ = send(t, "GET", "/authorize", query_string, t.browser)
    return query(response_headers["Location"])["code"]


def consent_handle(t: Target) -> str:
    """Have the signed-in browser start a third-party request; return its consent page's handle."""
    params = {**authorize_params(t, t.spa), "prompt": "consent"}  # even if an example consented
    _, response_headers, _ = send(t, "GET", "/authorize", urlencode(params), t.browser)
    location = urlsplit(response_headers["Location"])
    assert location.path == "/u/consent", location
    return query(response_headers["Location"])["state"]


def follow(t: Target, headers: dict[str, str], response_headers: dict[str, str]) -> None:
    """Follow redirects to our own pages as a browser would, and allow on a consent page."""
    name = t.app.config["SESSION_COOKIE_NAME"]
    for _ in range(4):
        if (set_cookie := response_headers.get("Set-Cookie", "")).startswith(f"{name}="):
            headers = {**headers, "Cookie": set_cookie.split(";", 1)[0]}
        location = urlsplit(response_headers.get("Location", ""))
        if location.netloc or not location.path.startswith("/"):
            return
        code, response_headers, _ = send(t, "GET", location.path, location.query, headers)
        if code == 200 and location.path == "/u/consent":
            _, response_headers, _ = send(t, "POST", location.path, location.query,
                                          {**headers, "Content-Type": FORM},
                                          urlencode({"csrf_token": t.csrf, "allow": "Allow"}).encode())


@FUZZ
@given(data=st.data())
def test_real_clients_with_spoiled_requests(target: Target, data: st.DataObject) -> None:
    """Spoil a few parameters of valid requests from registered clients; never a 500."""
    t = target
    t.reset()
    flow = data.draw(st.sampled_from(["authorize", "token", "revoke", "introspect", "userinfo", "logout",
                                      "consent", "forms"]))
    if flow == "authorize":
        client = data.draw(st.sampled_from([t.rp, t.spa]))
        params = mutate(data, t, authorize_params(t, client), AUTHORIZE_NAMES)
        method = data.draw(st.sampled_from(["GET", "POST"]))
        headers = signed_in(t, data)
        if method == "GET":
            _, response_headers, _ = send(t, "GET", "/authorize", urlencode(params), headers)
        else:
            _, response_headers, _ = send(t, "POST", "/authorize", headers={**headers, "Content-Type": FORM},
                                          body=urlencode(params).encode())
        follow(t, headers, response_headers)  # the stored request comes back at login, consent, resume
    elif flow == "token":
        grant = data.draw(st.sampled_from(["authorization_code", "refresh_token", "client_credentials"]))
        base = {"grant_type": grant}
        if grant == "authorization_code":
            code = fresh_code(t) if data.draw(st.booleans()) else "not-a-code"
            base |= {"code": code, "redirect_uri": t.rp.redirect_uri}
        elif grant == "refresh_token":
            base["refresh_token"] = t.tokens["refresh_token"]
        else:
            base["audience"] = API
        auth_headers, auth_fields = client_auth(t, data)
        params = mutate(data, t, {**base, **auth_fields}, ["code_verifier", "scope", "audience", "nonce"])
        send(t, "POST", "/oauth/token", headers={**auth_headers, "Content-Type": FORM},
             body=urlencode(params).encode())
    elif flow in ("revoke", "introspect"):
        token = data.draw(st.sampled_from([t.tokens["access_token"], t.tokens["refresh_token"]]))
        auth_headers, auth_fields = client_auth(t, data)
        params = mutate(data, t, {"token": token, **auth_fields}, ["token_type_hint"])
        send(t, "POST", f"/oauth/{flow}", headers={**auth_headers, "Content-Type": FORM},
             body=urlencode(params).encode())
    elif flow == "userinfo":
        token = t.tokens["access_token"] + data.draw(st.one_of(st.just(""), hostile))
        method = data.draw(st.sampled_from(["GET", "POST"]))
        send(t, method, "/userinfo", headers={"Authorization": header_text(f"Bearer {token}")})
    elif flow == "logout":
        base = {"client_id": t.rp.id, "post_logout_redirect_uri": "https://rp.example.com/bye",
                "id_token_hint": t.tokens["id_token"], "state": "st"}
        params = mutate(data, t, base, [])
        send(t, data.draw(st.sampled_from(["GET", "POST"])), "/oidc/logout", urlencode(params),
             signed_in(t, data))
    elif flow == "consent":
        handle = consent_handle(t)
        params = [("csrf_token", t.csrf), *mutate(data, t, {"allow": "Allow"}, ["deny"])]
        send(t, "POST", "/u/consent", urlencode({"state": handle}),
             {**signed_in(t, data), "Content-Type": FORM}, urlencode(params).encode())
        send(t, "GET", "/authorize/resume", urlencode({"state": handle}), signed_in(t, data))
    else:
        path = data.draw(st.sampled_from(["/u/login", "/u/signup", "/u/reset-password",
                                          "/u/reset-password/new", "/u/account/password",
                                          "/u/account/verify-email", "/u/account"]))
        csrf = "pw-csrf_token" if path == "/u/account/password" else "csrf_token"
        params = [(csrf, t.csrf), *mutate(data, t, {}, FORM_NAMES)]  # past CSRF, into the form
        send(t, "POST", path, urlencode({"state": data.draw(values(t))}),
             {**signed_in(t, data), "Content-Type": FORM}, urlencode(params).encode())
