"""POST, PATCH and DELETE /api/v2/users: each behind its own scope, bodies checked, Auth0's answers."""

from typing import Any

import pytest
from sqlalchemy import func, select

from idp.connections.models import Connection
from idp.db import db, utcnow
from idp.events.models import LogEvent
from idp.users.models import Session, User
from idp.users.passwords import verify_password
from tests.conftest import PASSWORD
from tests.management.conftest import LEGACY_ID, LEGACY_NAME, Api, management_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NATIVE = "Username-Password-Authentication"
SCOPES = "read:users create:users update:users delete:users"


@pytest.fixture
def writer(app) -> Api:
    return Api(app.test_client(), management_token(app, scope=SCOPES))


def send(api: Api, method: str, path: str, body: Any = None, token: str | None = None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token or api.token}"}
    return api.client.open("/api/v2" + path, method=method, json=body, headers=headers, **kwargs)


def test_create_a_user(writer, people):
    response = send(writer, "POST", "/users", {
        "connection": NATIVE, "email": "New.Person@Example.com", "password": PASSWORD, "name": "New Person",
        "email_verified": True, "app_metadata": {"plan": "gold"}, "user_metadata": {"lang": "de"}})
    assert response.status_code == 201, response.text
    created = response.json
    assert created["email"] == "New.Person@example.com" and created["email_verified"] is True
    assert created["identities"][0]["connection"] == NATIVE and created["app_metadata"] == {"plan": "gold"}
    assert created["logins_count"] == 0 and "migration" not in created
    user = db.session.get(User, created["user_id"])
    assert verify_password(user.password_hash, PASSWORD)
    assert writer.ids("email:new.person@example.com") == {created["user_id"]}
    again = send(writer, "POST", "/users", {"connection": NATIVE, "email": "new.person@example.com",
                                            "password": PASSWORD})
    assert again.status_code == 409 and again.json == {
        "statusCode": 409, "error": "Conflict", "message": "The user already exists.",
        "errorCode": "auth0_idp_error"}
    # A migrating connection asks its legacy store first; this one's has no script: nothing is created.
    other = send(writer, "POST", "/users", {"connection": LEGACY_NAME, "email": "x@legacy.example",
                                            "password": PASSWORD})
    assert other.status_code == 503 and other.json["errorCode"] == "temporarily_unavailable"
    assert writer.ids("email:x@legacy.example") == set()


@pytest.mark.parametrize("body", [
    None, [], "text", {}, {"connection": NATIVE}, {"connection": NATIVE, "email": "a@example.com"},
    {"connection": NATIVE, "email": "not-an-email", "password": PASSWORD},
    {"connection": NATIVE, "email": "a@example.com", "password": "short"},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "blocked": True},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "email_verified": "yes"},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "name": "a\x00b"},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "name": "x" * 300},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "app_metadata": []},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "app_metadata": {"a.b": 1}},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "app_metadata": {"$x": 1}},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD, "user_metadata": {"a": "\ud800"}},
    {"connection": NATIVE, "email": "a@example.com", "password": PASSWORD,
     "user_metadata": {"x": "y" * 70000}},
])
def test_bodies_we_refuse_are_a_400(writer, people, body):
    response = send(writer, "POST", "/users", body)
    assert response.status_code == 400, response.text
    assert response.json["errorCode"] == "invalid_body" and response.json["statusCode"] == 400


def test_bodies_that_are_not_json_are_a_400(writer, people):
    headers = {"Authorization": f"Bearer {writer.token}"}
    for data, content_type in ((b"{", "application/json"), (b"[" * 100_000, "application/json"),
                               (b"NaN", "application/json"), (b'{"email": NaN}', "application/json"),
                               (b"email=a", "application/x-www-form-urlencoded")):
        response = writer.client.post("/api/v2/users", data=data, content_type=content_type, headers=headers)
        assert response.status_code == 400 and response.json["errorCode"] == "invalid_body", data[:20]
    unknown = send(writer, "POST", "/users", {"connection": "nope", "email": "a@example.com",
                                              "password": PASSWORD})
    assert unknown.status_code == 400 and unknown.json["errorCode"] == "inexistent_connection"


def test_update_a_user(writer, people):
    response = send(writer, "PATCH", "/users/u-ada", {
        "name": "Countess Lovelace", "nickname": None, "app_metadata": {"plan": "platinum", "beta": None},
        "user_metadata": {"theme": "dark"}})
    assert response.status_code == 200, response.text
    ada = response.json
    assert ada["name"] == "Countess Lovelace" and ada["nickname"] is None
    assert ada["app_metadata"] == {"plan": "platinum", "tier": 3, "org": {"id": "o1"}}  # merged, beta gone
    assert ada["user_metadata"] == {"lang": "en", "theme": "dark"}
    assert writer.ids("app_metadata.plan:platinum") == {"u-ada"}
    email = send(writer, "PATCH", "/users/u-ada", {"email": "countess@example.com"}).json
    assert email["email"] == "countess@example.com" and email["email_verified"] is False
    taken = send(writer, "PATCH", "/users/u-ada", {"email": "grace@navy.mil"})
    assert taken.status_code == 400 and taken.json["errorCode"] == "invalid_body"
    # A migrating connection asks its legacy store whether the email is taken; this one's cannot answer.
    unanswered = send(writer, "PATCH", "/users/u-ada2", {"email": "grace@navy.mil"})
    assert unanswered.status_code == 503 and unanswered.json["errorCode"] == "temporarily_unavailable"
    assert writer.get("/users/u-ada2").json["email"] == "ADA@example.com"
    # Disconnected, it has only its own users: the same email in another connection is no conflict.
    db.session.get(Connection, LEGACY_ID).disconnected_at = utcnow()
    db.session.commit()
    assert send(writer, "PATCH", "/users/u-ada2", {"email": "grace@navy.mil"}).status_code == 200
    missing = send(writer, "PATCH", "/users/u-nobody", {"name": "x"})
    assert missing.status_code == 404 and missing.json["errorCode"] == "inexistent_user"
    assert send(writer, "PATCH", "/users/u-ada", {"user_id": "u-other"}).status_code == 400


def test_changing_the_password_ends_sessions(writer, user, browser):
    assert browser.login("/u/login", user.email, PASSWORD).status_code == 302
    response = send(writer, "PATCH", f"/users/{user.id}", {"password": "a brand new passphrase 42"})
    assert response.status_code == 200, response.text
    assert db.session.query(Session).filter_by(user_id=user.id, ended_at=None).count() == 0
    assert verify_password(db.session.get(User, user.id).password_hash, "a brand new passphrase 42")
    weak = send(writer, "PATCH", f"/users/{user.id}", {"password": "123"})
    assert weak.status_code == 400 and weak.json["message"].startswith("PasswordStrengthError")


def test_delete_a_user(writer, people):
    assert send(writer, "DELETE", "/users/u-carol").status_code == 204
    assert writer.get("/users/u-carol").status_code == 404
    assert send(writer, "DELETE", "/users/u-carol").status_code == 204  # as Auth0: gone is gone


def test_each_write_needs_its_scope(app, writer, people):
    reader = management_token(app, scope="read:users")
    expected = {"POST": "create:users", "PATCH": "update:users,update:users_app_metadata",
                "DELETE": "delete:users"}
    for method, path in (("POST", "/users"), ("PATCH", "/users/u-ada"), ("DELETE", "/users/u-ada")):
        response = send(writer, method, path, {"name": "x"}, token=reader)
        assert response.status_code == 403 and response.json["errorCode"] == "insufficient_scope"
        assert response.json["message"] == f"Insufficient scope, expected any of: {expected[method]}"
        assert send(writer, method, path, {"name": "x"}, token="nope").status_code == 401
    assert writer.get("/users/u-ada").status_code == 200


def test_bodies_auth0s_documentation_sends(writer, people, app):
    # The password change as Auth0 documents it names the user's connection; another one is refused.
    body = {"password": "a brand new passphrase 42", "connection": "Username-Password-Authentication"}
    assert send(writer, "PATCH", "/users/u-carol", body).status_code == 200
    other = send(writer, "PATCH", "/users/u-carol", {**body, "connection": LEGACY_NAME})
    assert other.status_code == 400 and "own connection" in other.json["message"]
    created = send(writer, "POST", "/users", {"connection": NATIVE, "email": "v@example.com",
                                              "password": PASSWORD, "verify_email": False})
    assert created.status_code == 201
    assert send(writer, "POST", "/users", {"connection": NATIVE, "email": "w@example.com",
                                           "password": PASSWORD, "verify_email": "no"}).status_code == 400
    # null for a whole metadata object empties it.
    emptied = send(writer, "PATCH", "/users/u-ada", {"user_metadata": None})
    assert emptied.status_code == 200 and emptied.json["user_metadata"] == {}
    assert emptied.json["app_metadata"]["plan"] == "gold"


def test_a_metadata_scope_changes_metadata_only(app, writer, people):
    token = management_token(app, scope="update:users_app_metadata")
    changed = send(writer, "PATCH", "/users/u-ada", {"app_metadata": {"plan": "free"}, "user_metadata": {}},
                   token=token)
    assert changed.status_code == 200 and changed.json["app_metadata"]["plan"] == "free"
    refused = send(writer, "PATCH", "/users/u-ada", {"name": "Someone Else"}, token=token)
    assert refused.status_code == 403 and refused.json["errorCode"] == "insufficient_scope"
    assert writer.get("/users/u-ada").json["name"] == "Ada Lovelace"


def test_writes_log_what_they_did_and_failed_writes_log_no_success(writer, people):
    created = send(writer, "POST", "/users", {"connection": NATIVE, "email": "logged@example.com",
                                              "password": PASSWORD})
    user_id = created.json["user_id"]
    send(writer, "PATCH", f"/users/{user_id}", {"password": "a brand new passphrase 42"})
    kinds = {(e.type, e.user_id, (e.details or {}).get("via")) for e in db.session.scalars(select(LogEvent))}
    assert {("ss", user_id, "api"), ("scp", user_id, "api")} <= kinds
    # A write that fails after a legacy store's failure was recorded (and committed) logs no `sapi`.
    before = db.session.scalar(select(func.count()).where(LogEvent.type == "sapi"))
    failed = send(writer, "POST", "/users", {"connection": LEGACY_NAME, "email": "x@legacy.example",
                                             "password": PASSWORD})
    assert failed.status_code == 503
    assert db.session.scalar(select(func.count()).where(LogEvent.type == "sapi")) == before
