"""The hot paths served from memory still answer exactly: machine tokens, discovery, JWKS and clients."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import event, func, select, text

from idp.cache import Recent
from idp.db import db, utcnow
from idp.keys import store
from idp.oauth import tokens
from idp.oauth.clients import create_client, delete_client, update_client
from idp.oauth.models import Grant, RevokedToken, Token
from tests.conftest import PASSWORD
from tests.support import Browser, RegisteredClient, auth

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

API = "https://api.example.com"


def machine_token(browser: Browser, rp: RegisteredClient) -> str:
    """Get a client-credentials access token for API."""
    response = browser.client.post("/oauth/token", data={"grant_type": "client_credentials", "audience": API},
                                   **auth(rp))
    assert response.status_code == 200, response.text
    return str(response.json["access_token"])


def introspect(browser: Browser, rp: RegisteredClient, token: str) -> dict[str, Any]:
    return dict(browser.client.post("/oauth/introspect", data={"token": token}, **auth(rp)).json or {})


def stored() -> tuple[int, int]:
    return (db.session.scalar(select(func.count()).select_from(Grant)) or 0,
            db.session.scalar(select(func.count()).select_from(Token)) or 0)


def test_a_machine_token_is_issued_without_a_write_and_says_what_it_is(browser, rp):
    before = stored()
    claims = tokens.verify(machine_token(browser, rp), typ="at+jwt", audience=API)
    assert stored() == before
    assert claims["gty"] == "client-credentials" and claims["client_id"] == rp.id
    assert claims["sub"] == f"{rp.id}@clients"


def test_a_machine_token_introspects_for_its_own_client_only(browser, rp, app):
    token = machine_token(browser, rp)
    seen = introspect(browser, rp, token)
    assert seen["active"] is True and seen["client_id"] == rp.id and seen["aud"] == API
    assert seen["gty"] == "client-credentials" and seen["token_type"] == "Bearer"
    other, secret = create_client("Other", ["https://other.example.com/cb"])
    assert introspect(browser, RegisteredClient(other.id, secret, ""), token) == {"active": False}


def test_a_revoked_machine_token_is_inactive_and_its_record_goes_when_it_expires(browser, rp):
    token = machine_token(browser, rp)
    for _ in range(2):  # revoking twice is answered the same, and records it once
        assert browser.client.post("/oauth/revoke", data={"token": token}, **auth(rp)).status_code == 200
    assert introspect(browser, rp, token) == {"active": False}
    [row] = db.session.scalars(select(RevokedToken)).all()
    jti = row.jti
    assert jti == tokens.verify(token, typ="at+jwt", audience=API)["jti"]
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    browser.client.post("/oauth/revoke", data={"token": machine_token(browser, rp)}, **auth(rp))
    assert jti not in db.session.scalars(select(RevokedToken.jti)).all()  # the expired one went


def test_another_clients_revocation_does_not_revoke(browser, rp):
    token = machine_token(browser, rp)
    other, secret = create_client("Other", ["https://other.example.com/cb"])
    outsider = RegisteredClient(other.id, secret, "")
    browser.client.post("/oauth/revoke", data={"token": token}, **auth(outsider))
    assert introspect(browser, rp, token)["active"] is True


def test_a_deleted_clients_tokens_stop_at_once_in_this_process(browser, rp):
    token = machine_token(browser, rp)
    delete_client(rp.id)
    seen = browser.client.post("/oauth/token", data={"grant_type": "client_credentials", "audience": API},
                               **auth(rp))
    assert seen.status_code == 401
    other, secret = create_client("Other", ["https://other.example.com/cb"])
    assert introspect(browser, RegisteredClient(other.id, secret, ""), token) == {"active": False}


def test_a_client_change_applies_at_once_in_this_process(browser, rp):
    machine_token(browser, rp)  # now cached
    update_client(rp.id, audiences=["https://elsewhere.example.com"])
    response = browser.client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                          "audience": API}, **auth(rp))
    assert response.status_code == 400 and response.json["error"] == "invalid_target"


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
def test_public_documents_are_cacheable_and_answer_304_when_unchanged(browser, path):
    first = browser.client.get(path)
    assert first.status_code == 200 and first.headers["ETag"]
    assert "public" in first.headers["Cache-Control"] and "max-age=" in first.headers["Cache-Control"]
    again = browser.client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
def test_public_documents_skip_the_request_machinery_and_answer_as_it_would(browser, app, path):
    entered: list[str] = []
    app.before_request_funcs.setdefault(None, []).append(lambda: entered.append(path))
    fast = browser.client.get(path)
    assert entered == []  # answered before Flask's request handling
    full = browser.client.get(path, query_string={"x": "1"})  # a query string goes through Flask
    assert entered == [path]
    assert fast.data == full.data and fast.json
    same = ("Content-Type", "Content-Length", "ETag", "Cache-Control", "Access-Control-Allow-Origin",
            "X-Content-Type-Options", "Referrer-Policy")
    assert [fast.headers.get(h) for h in same] == [full.headers.get(h) for h in same]
    assert fast.headers["Access-Control-Allow-Origin"] == "*" and fast.headers["Date"]
    etag = fast.headers["ETag"]
    assert browser.client.get(path, headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304
    assert browser.client.get(path, headers={"If-None-Match": "*"}).status_code == 304
    head = browser.client.head(path)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(fast.data))
    assert browser.client.post(path).status_code == 405  # other methods are Flask's
    assert browser.client.get(path, headers={"If-Match": '"other"'}).status_code == 412  # and If-Match
    assert entered == [path, path, path]
    # The Host is checked first, as for every path.
    assert browser.client.get(path, headers={"Host": "a..b.example"}).status_code == 400


def test_a_jwks_whose_keys_cannot_be_read_is_answered_by_flask(browser, app):
    assert browser.client.get("/.well-known/jwks.json").status_code == 200
    db.session.execute(text("ALTER TABLE signing_keys RENAME TO signing_keys_gone"))
    db.session.commit()
    app.config["KEY_SET_MAX_AGE"] = 0  # read the keys again now
    try:
        down = browser.client.get("/.well-known/jwks.json")
        # Flask's own error answer: the error did not escape the middleware to the server.
        assert down.status_code == 500 and b"Something went wrong on our side" in down.data
    finally:
        db.session.rollback()
        db.session.execute(text("ALTER TABLE signing_keys_gone RENAME TO signing_keys"))
        db.session.commit()
    assert browser.client.get("/.well-known/jwks.json").status_code == 200


def test_a_rotation_here_changes_the_jwks_and_the_signing_key_at_once(browser, rp, app):
    before = browser.client.get("/.well-known/jwks.json")
    signer = store.signing_key()[0]
    store.rotate(force=True)
    after = browser.client.get("/.well-known/jwks.json", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    kid = jwt.get_unverified_header(machine_token(browser, rp))["kid"]
    assert kid != signer and kid in {k["kid"] for k in after.json["keys"]}


def test_the_code_exchange_and_a_refresh_take_the_fewest_statements(browser, rp, user, app):
    """Each statement a correct exchange needs, and no other."""
    # As in production, key maintenance (every request here) runs now and then; the enabled actions are
    # read once, however slow the machine.
    app.config.update(KEY_MAINTENANCE_INTERVAL=3600, CLIENT_CACHE_MAX_AGE=60)
    warm = browser.exchange(rp, browser.sign_in(rp, user.email, PASSWORD)["code"])
    assert warm.status_code == 200
    code = browser.sign_in(rp, user.email, PASSWORD)["code"]
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        exchanged = browser.exchange(rp, code)
        assert exchanged.status_code == 200 and exchanged.json["id_token"]
        after_exchange = list(seen)
        seen.clear()
        refreshed = browser.client.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": exchanged.json["refresh_token"]}, **auth(rp))
        assert refreshed.status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # The code claimed and read at once, the user, the grant, the code tied to it, the tokens; nothing is
    # read again after the commit, which comes last: the ID token is made before it.
    assert after_exchange == ["UPDATE", "SELECT", "INSERT", "UPDATE", "INSERT"], after_exchange
    # The token with its grant, its user (the enabled actions are cached), the claim, the log event, the
    # new token.
    assert seen == ["SELECT", "SELECT", "UPDATE", "INSERT", "INSERT"], seen


def test_a_code_sent_twice_at_once_is_exchanged_once_and_what_it_gave_is_revoked(browser, rp, user, app):
    code = browser.sign_in(rp, user.email, PASSWORD)["code"]
    together = threading.Barrier(2)

    def exchange(_: int) -> Any:
        client = app.test_client()  # a request context, session and connection of its own
        together.wait()
        return client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                  "redirect_uri": rp.redirect_uri}, **auth(rp))

    with ThreadPoolExecutor(2) as pool:
        answers = sorted(pool.map(exchange, range(2)), key=lambda a: a.status_code)
    assert [a.status_code for a in answers] == [200, 400]
    assert answers[1].json["error"] == "invalid_grant"
    # A code used twice is assumed stolen (RFC 6749 §4.1.2): the tokens of its first use are revoked.
    issued = answers[0].json
    assert introspect(browser, rp, issued["access_token"]) == {"active": False}
    assert introspect(browser, rp, issued["refresh_token"]) == {"active": False}


def test_a_value_read_while_its_cache_was_cleared_is_not_kept(app):
    """A change made while a request read the old value: the next request reads again."""
    recent: Recent[str] = Recent("CLIENT_CACHE_MAX_AGE")

    def read_as_it_changes() -> str:
        recent.clear()  # what a registry write does when it commits, here in the middle of the read
        return "before the change"

    assert recent.get("key", read_as_it_changes) == "before the change"
    assert recent.get("key", lambda: "after the change") == "after the change"
    assert recent.get("key", lambda: "later") == "after the change"  # kept for CLIENT_CACHE_MAX_AGE

