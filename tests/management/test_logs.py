"""Log events: written by the real flows in Auth0's shape, never with a secret, and read through
GET /api/v2/logs (search, paging, checkpoints), /logs/{id} and /users/{id}/logs; old ones pruned."""

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from idp.db import db, utcnow
from idp.events import log as events
from idp.events.models import LogEvent
from idp.oauth import apis
from idp.oauth.clients import create_client
from tests.conftest import PASSWORD
from tests.management.conftest import Api, management_token
from tests.support import Browser, auth, csrf_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NATIVE = "Username-Password-Authentication"
NEW_PASSWORD = "a brand new passphrase"
WRONG = "not the right password"


@pytest.fixture
def reader(app) -> Api:
    return Api(app.test_client(), management_token(app, scope="read:logs"))


def logs(type_: str | None = None) -> list[LogEvent]:
    """The stored events (of one type), oldest first."""
    query_ = select(LogEvent).order_by(LogEvent.log_id)
    if type_:
        query_ = query_.where(LogEvent.type == type_)
    return list(db.session.scalars(query_))


def submit(browser: Browser, url: str, **fields: str) -> Any:
    page = browser.get(url)
    return browser.client.post(url, data={"csrf_token": csrf_token(page.text), **fields})


def everything_stored() -> str:
    """Every column of every stored event, as text."""
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM log_events")).mappings().all()
    return json.dumps([{k: str(v) for k, v in row.items()} for row in rows])


def test_sign_ins_failures_sign_up_and_password_changes_are_logged(app, browser, rp, user, reader):
    # Wrong password and unknown email: one answer for the user, two types for the admins.
    wrong = browser.login(browser.authorize(rp).headers["Location"], user.email, WRONG)
    unknown = browser.login(browser.authorize(rp).headers["Location"], "nobody@example.com", WRONG)
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong email or password" in wrong.text and "Wrong email or password" in unknown.text
    fp, fu = logs("fp"), logs("fu")
    assert len(fp) == len(fu) == 1
    assert fp[0].user_id == user.id and fp[0].user_name == user.email and fp[0].client_id == rp.id
    assert fp[0].description == "Wrong email or password." and fp[0].details == {
        "error": {"message": "Wrong email or password."}}
    assert fu[0].user_id is None and fu[0].user_name == "nobody@example.com"

    # A successful sign-in, with the client, the connection and the request's address and host.
    callback = browser.sign_in(rp, user.email, PASSWORD, scope="openid offline_access")
    [success] = reader.get("/logs", q="type:s").json
    assert success["user_id"] == user.id and success["user_name"] == user.email
    assert success["client_id"] == rp.id and success["client_name"] == "Example App"
    assert success["connection"] == NATIVE and success["connection_id"] == user.connection_id
    assert success["strategy"] == "auth0" and success["strategy_type"] == "database"
    assert success["ip"] == "127.0.0.1" and success["hostname"] == "localhost"
    assert success["log_id"] == success["_id"] and success["date"].endswith("Z")

    # Refresh: a success logged with the rotation, a failure on its own (never the token itself).
    tokens = browser.exchange(rp, callback["code"]).json
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = browser.client.post("/oauth/token", data=refresh, **auth(rp))
    assert refreshed.status_code == 200
    again = browser.client.post("/oauth/token", data=refresh, **auth(rp))
    assert again.status_code == 400
    [sertft], [fertft] = logs("sertft"), logs("fertft")
    assert sertft.user_id == user.id and sertft.client_id == rp.id and fertft.client_id == rp.id
    assert fertft.details["error"]["oauthError"] == "invalid_grant"

    # Password change on the account page: a wrong current password, then the change.
    page = browser.get("/u/account")
    assert submit_change(browser, page.text, WRONG).status_code == 400
    assert submit_change(browser, page.text, PASSWORD).status_code == 200
    assert [e.type for e in logs() if e.type.endswith("cp")] == ["fcp", "scp"]
    assert logs("scp")[0].user_id == user.id and logs("scp")[0].details == {"via": "account"}

    # A reset request, whether or not the email has an account.
    assert submit(browser, "/u/reset-password", email="someone@example.com").status_code == 200
    [scpr] = logs("scpr")
    assert scpr.user_name == "someone@example.com" and scpr.user_id is None

    # Sign-up: refused (taken, weak), then done, with its automatic sign-in.
    browser.client.delete_cookie("idp_session")
    assert submit(browser, "/u/signup", email=user.email, password="another fine password").status_code == 400
    assert submit(browser, "/u/signup", email="grace@example.com", password="short").status_code == 400
    done = submit(browser, "/u/signup", email="grace@example.com", password="hopper's compiler")
    assert done.status_code == 302
    refusals = [e.description for e in logs("fs")]
    assert refusals[0] == "The user already exists." and refusals[1].startswith("PasswordStrengthError: ")
    [ss] = logs("ss")
    assert ss.user_name == "grace@example.com" and logs("s")[-1].user_id == ss.user_id

    # No password, token or code was stored in any event.
    stored = everything_stored()
    for secret in (PASSWORD, NEW_PASSWORD, WRONG, "hopper's compiler", "another fine password",
                   tokens["refresh_token"], tokens["access_token"], callback["code"], rp.secret):
        assert secret not in stored


def submit_change(browser: Browser, page: str, current: str) -> Any:
    return browser.client.post("/u/account/password", data={
        "csrf_token": csrf_token(page), "pw-current": current, "pw-password": NEW_PASSWORD,
        "pw-confirm": NEW_PASSWORD})


def test_locked_accounts_are_failed_logins(app, browser, rp, user):
    app.config.update(LOCKOUT_THRESHOLD=2)
    for _ in range(4):
        browser.login(browser.authorize(rp).headers["Location"], user.email, WRONG)
    assert {e.type for e in logs()} >= {"fp", "f"}
    assert any("locked" in (e.description or "") for e in logs("f"))


def test_client_credentials_exchanges_are_logged_off_the_request(app, reader):
    client, secret = create_client("Billing job", [])
    apis.grant(client.id, apis.management_identifier(), ["read:users", "read:logs"])
    http = app.test_client()
    audience = app.config["ISSUER"] + "/api/v2/"
    exchange = {"grant_type": "client_credentials", "audience": audience, "scope": "read:users"}
    ok = http.post("/oauth/token", data=exchange, auth=(client.id, secret))
    assert ok.status_code == 200 and logs() == []  # the token is issued without a database write
    deadline = time.monotonic() + 10
    while not logs() and time.monotonic() < deadline:  # the batch's timer writes it within a second
        time.sleep(0.05)
    [success] = logs("seccft")
    assert success.client_id == client.id and success.client_name == "Billing job"
    assert success.audience == audience and success.scope == "read:users" and success.strategy is None
    assert success.description == "Client Credentials for Access Token" and success.ip == "127.0.0.1"

    # Reading the log writes what this process queued first.
    assert http.post("/oauth/token", data=exchange, auth=(client.id, secret)).status_code == 200
    assert [e["type"] for e in reader.get("/logs", q="type:seccft").json] == ["seccft", "seccft"]
    bad = http.post("/oauth/token", data={"grant_type": "client_credentials", "audience": audience},
                    auth=(client.id, "wrong secret"))
    assert bad.status_code == 401
    [failed] = logs("feccft")
    assert failed.client_id == client.id and failed.audience == audience and failed.strategy is None
    assert failed.details["error"]["oauthError"] == "invalid_client"
    assert "wrong secret" not in everything_stored() and secret not in everything_stored()


def test_management_writes_and_deletions_are_logged(app, reader):
    writer = Api(app.test_client(), management_token(app, scope="create:users update:users delete:users"))
    headers = {"Authorization": f"Bearer {writer.token}"}
    created = writer.client.post("/api/v2/users", json={"connection": NATIVE, "email": "new@example.com",
                                                         "password": PASSWORD}, headers=headers)
    assert created.status_code == 201
    user_id = created.json["user_id"]
    refused = writer.client.post("/api/v2/users", json={"connection": NATIVE, "email": "new@example.com",
                                                         "password": PASSWORD}, headers=headers)
    assert refused.status_code == 409
    patched = writer.client.patch(f"/api/v2/users/{user_id}", json={"password": NEW_PASSWORD},
                                  headers=headers)
    assert patched.status_code == 200
    assert writer.client.delete(f"/api/v2/users/{user_id}", headers=headers).status_code == 204
    assert writer.client.delete("/api/v2/users/nobody", headers=headers).status_code == 204
    sapi = logs("sapi")
    assert [(e.details["request"]["method"], e.details["response"]["statusCode"]) for e in sapi] == [
        ("POST", 201), ("PATCH", 200), ("DELETE", 204), ("DELETE", 204)]
    assert sapi[0].details["request"]["path"] == "/api/v2/users" and sapi[0].client_id == "mgmt-test-client"
    [sdu] = logs("sdu")
    assert sdu.user_id == user_id and sdu.user_name == "new@example.com" and sdu.connection == NATIVE
    assert reader.get(f"/users/{user_id}/logs", token=management_token(app, scope="read:logs_users")).json[0][
        "type"] == "sdu"
    stored = everything_stored()
    assert PASSWORD not in stored and NEW_PASSWORD not in stored


# Reading


def add(type_: str, minutes_ago: float, **fields: Any) -> LogEvent:
    row = events.build(type_, fields.pop("description", f"event {type_}"), **fields)
    row.date = utcnow() - timedelta(minutes=minutes_ago)
    row.log_id = f"{int(row.date.timestamp() * 1_000_000):017d}{row.log_id[17:]}"
    db.session.add(row)
    return row


@pytest.fixture
def stored(app) -> list[LogEvent]:
    """Ten events, oldest first, of a few types, users, clients and connections."""
    rows = [add("s" if i % 3 == 0 else "fp" if i % 3 == 1 else "sapi", 100 - i * 10,
                user_id=f"u-{i % 2}", user_name=f"User{i % 2}@Example.com",
                client_id="c-1" if i < 5 else "c-2",
                client_name="Shop" if i < 5 else "Admin", connection=NATIVE, connection_id="con_native",
                details={"n": i}) for i in range(10)]
    rows[9].date = rows[9].date.replace(year=2020, month=1, day=2)  # oldest date, newest log id
    db.session.commit()
    return rows


@pytest.mark.parametrize(("q", "expected"), [
    ("type:s", {0, 3, 6, 9}),
    ('type:"fp" AND user_id:u-1', {1, 7}),
    ("client_id:c-2", {5, 6, 7, 8, 9}),
    ("client_name:shop", {0, 1, 2, 3, 4}),
    ("user_name:user0@example.com", {0, 2, 4, 6, 8}),
    ("connection:Username*", set(range(10))),
    ("strategy:auth0 AND strategy_type:database", set(range(10))),
    ("date:2020-01-02", {9}),
    ("date:[2021-01-01 TO *]", set(range(9))),
    ("NOT type:s", {1, 2, 4, 5, 7, 8}),
    ("description:\"event sapi\"", {2, 5, 8}),
    ("shop", {0, 1, 2, 3, 4}),
    ("ip:*", set()),
])
def test_search(reader, stored, q, expected):
    response = reader.get("/logs", q=q, per_page=100)
    assert response.status_code == 200, response.text
    assert {row["log_id"] for row in response.json} == {stored[i].log_id for i in expected}


def test_paging_sort_totals_fields_and_checkpoints(reader, stored):
    by_date = sorted(stored, key=lambda r: r.date)
    newest = reader.get("/logs").json
    assert [r["log_id"] for r in newest] == [r.log_id for r in reversed(by_date)]
    assert reader.get("/logs", sort="date:1", per_page=3, page=1).json[0]["log_id"] == by_date[3].log_id
    page = reader.get("/logs", per_page=4, page=2, include_totals="true").json
    assert (page["start"], page["limit"], page["length"], page["total"]) == (8, 4, 2, 10)
    assert set(page["logs"][0]) >= {"date", "type", "description", "log_id", "details", "client_id"}
    only = reader.get("/logs", fields="type,log_id", per_page=1).json
    assert set(only[0]) == {"type", "log_id"}
    without = reader.get("/logs", fields="details", include_fields="false", per_page=1).json
    assert "details" not in without[0] and "type" in without[0]
    # Checkpoints: from a log id onwards, oldest first; the latest without one.
    by_id = sorted(stored, key=lambda r: r.log_id)
    after = reader.get("/logs", **{"from": by_id[2].log_id, "take": 3}).json
    assert [r["log_id"] for r in after] == [r.log_id for r in by_id[3:6]]
    latest = reader.get("/logs", take=2).json
    assert [r["log_id"] for r in latest] == [by_id[9].log_id, by_id[8].log_id]
    one = reader.get(f"/logs/{stored[4].log_id}")
    assert one.status_code == 200 and one.json["details"] == {"n": 4} and one.json["type"] == "fp"
    missing = reader.get("/logs/0000")
    assert missing.status_code == 404 and missing.json["errorCode"] == "inexistent_log"
    mine = reader.get("/users/u-1/logs", include_totals="true", per_page=2).json
    assert mine["total"] == 5 and [r["user_id"] for r in mine["logs"]] == ["u-1", "u-1"]
    assert reader.get("/users/nobody/logs").json == []


@pytest.mark.parametrize("params", [
    {"q": "type:("}, {"q": "nope:1"}, {"q": "date:yesterday"}, {"q": "type:/s/"}, {"per_page": "101"},
    {"page": "-1"}, {"sort": "type:1"}, {"include_totals": "yes"}, {"page": "10", "per_page": "100"},
    {"from": "not a log id!"}, {"take": "1000"}, {"other": "1"}, {"q": "type:s", "search": "type:s"},
])
def test_malformed_queries_are_a_400(reader, stored, params):
    response = reader.get("/logs", **params)
    assert response.status_code == 400, response.text
    assert response.json["statusCode"] == 400 and response.json["errorCode"] == "invalid_query_string"


def test_tokens_and_scopes(app, reader, stored):
    assert reader.client.get("/api/v2/logs").status_code == 401
    assert reader.get("/logs", token="not-a-token").status_code == 401
    for path in ("/logs", f"/logs/{stored[0].log_id}", "/users/u-1/logs"):
        refused = reader.get(path, token=management_token(app, scope="read:users"))
        assert refused.status_code == 403 and refused.json["errorCode"] == "insufficient_scope"
    # read:logs_users reads a user's logs, not the whole log.
    users_only = management_token(app, scope="read:logs_users")
    assert reader.get("/users/u-1/logs", token=users_only).status_code == 200
    assert reader.get("/logs", token=users_only).status_code == 403


def test_old_events_are_pruned_at_most_once_an_hour(app):
    app.config["LOG_RETENTION_DAYS"] = 7
    old = add("s", 8 * 24 * 60)
    recent = add("s", 6 * 24 * 60)
    db.session.commit()
    old_id, recent_id = old.log_id, recent.log_id
    events.forget_pruning()
    events.record("s", "now")
    db.session.commit()
    assert [e.log_id for e in logs()][:1] == [recent_id] and len(logs()) == 2
    add("s", 9 * 24 * 60)  # pruned next hour, not with the next event
    db.session.commit()
    events.record("s", "again")
    db.session.commit()
    assert len(logs()) == 4
    assert old_id not in {e.log_id for e in logs()}
    events.forget_pruning()
