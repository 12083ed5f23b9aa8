"""/api/v2/actions in Auth0's shapes: actions, the post-login bindings that run them, deploy and test."""

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.actions import registry
from idp.actions.models import Action
from idp.db import db
from idp.events import log as events
from idp.events.models import LogEvent
from idp.users.models import User
from tests.actions.conftest import callback, signed_in
from tests.management.conftest import management_token
from tests.support import Browser, RegisteredClient

SCOPES = "read:actions create:actions update:actions delete:actions read:users"
TRIGGERS = [{"id": "post-login", "version": "v3"}]
HEADER = "def on_execute_post_login(event, api):\n"


def claim(name: str) -> str:
    """An action that adds one ID-token claim naming itself."""
    return (f"{HEADER}    api.id_token.set_custom_claim('https://example.com/{name}', event.secrets.TAG)\n")


class Caller:
    """A caller of /api/v2/actions holding every actions scope."""

    def __init__(self, app: Flask) -> None:
        self.app, self.client = app, app.test_client()
        self.token = management_token(app, SCOPES)

    def __call__(self, method: str, path: str, body: Any = None, *, scope: str | None = None,
                 **params: Any) -> Any:
        token = management_token(self.app, scope) if scope else self.token
        extra = {"json": body} if body is not None else {}
        return self.client.open("/api/v2/actions" + path, method=method, query_string=params,
                                headers={"Authorization": f"Bearer {token}"}, **extra)

    def create(self, name: str, tag: str = "t") -> dict[str, Any]:
        response = self("POST", "/actions", {"name": name, "supported_triggers": TRIGGERS,
                                             "code": claim(name), "secrets": [{"name": "TAG", "value": tag}]})
        assert response.status_code == 201, response.text
        return dict(response.json)


@pytest.fixture
def call(app: Flask) -> Caller:
    return Caller(app)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_an_action_is_created_read_changed_and_deleted(app: Flask, call: Caller):
    created = call.create("roles", tag="first")
    assert created["name"] == "roles" and created["id"].startswith("act_")
    assert created["supported_triggers"] == TRIGGERS and created["all_changes_deployed"] is True
    assert created["secrets"] == [{"name": "TAG", "updated_at": created["updated_at"]}]  # never the value
    assert "first" not in str(created)
    # Created unbound, as in Auth0: it runs once the bindings name it.
    assert db.session.get(Action, created["id"]).enabled is False
    assert call("GET", "/triggers/post-login/bindings").json["bindings"] == []

    listed = call("GET", "/actions").json
    assert listed["total"] == 1 and listed["actions"][0]["id"] == created["id"]
    assert call("GET", "/actions", actionName="other").json["total"] == 0
    assert call("GET", "/actions", triggerId="credentials-exchange").json["actions"] == []
    assert call("GET", "/actions", deployed="false").json["total"] == 1  # a filter only when true
    assert call("GET", f"/actions/{created['id']}").json["code"] == claim("roles")

    # PATCH renames and replaces the secrets: one named alone keeps its value, one left out goes.
    call("PATCH", f"/actions/{created['id']}", {"secrets": [{"name": "TAG", "value": "x"},
                                                            {"name": "OTHER", "value": "y"}]})
    changed = call("PATCH", f"/actions/{created['id']}", {"name": "roles-v2", "secrets": [{"name": "TAG"}]})
    assert changed.status_code == 200, changed.text
    db.session.expire_all()
    stored = db.session.get(Action, created["id"])
    assert stored.name == "roles-v2" and stored.secrets == {"TAG": "x"}

    deployed = call("POST", f"/actions/{created['id']}/deploy")
    assert deployed.status_code == 202
    assert deployed.json["action_id"] == created["id"] and deployed.json["deployed"] is True
    assert deployed.json["code"] == stored.code

    assert call("DELETE", f"/actions/{created['id']}").status_code == 204
    assert call("GET", f"/actions/{created['id']}").json == {
        "statusCode": 404, "error": "Not Found", "message": "The action does not exist.",
        "errorCode": "inexistent_action"}
    assert call("DELETE", f"/actions/{created['id']}").status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_bindings_choose_which_actions_run_and_in_what_order(app: Flask, call: Caller, user: User,
                                                             rp: RegisteredClient, browser: Browser):
    first, second, third = call.create("first", "1"), call.create("second", "2"), call.create("third", "3")
    body = {"bindings": [{"ref": {"type": "action_name", "value": "third"}, "display_name": "third"},
                         {"ref": {"type": "action_id", "value": first["id"]}}]}
    bound = call("PATCH", "/triggers/post-login/bindings", body)
    assert bound.status_code == 200, bound.text
    assert [b["action"]["name"] for b in bound.json["bindings"]] == ["third", "first"]
    assert [a.name for a in registry.enabled_in_order()] == ["third", "first"]
    claims = signed_in(browser, rp)["id_claims"]
    assert claims["https://example.com/third"] == "3" and claims["https://example.com/first"] == "1"
    assert "https://example.com/second" not in claims

    listed = call("GET", "/triggers/post-login/bindings").json
    assert [b["id"] for b in listed["bindings"]] == [third["id"], first["id"]] and listed["total"] == 2
    # A binding's id names its action too; binding nothing stops every action.
    again = {"bindings": [{"ref": {"type": "binding_id", "value": second["id"]}}]}
    assert call("PATCH", "/triggers/post-login/bindings", again).status_code == 200
    assert [a.name for a in registry.enabled_in_order()] == ["second"]
    # A bound action is deleted only when forced.
    refused = call("DELETE", f"/actions/{second['id']}")
    assert refused.status_code == 400 and refused.json["errorCode"] == "action_bound"
    assert call("DELETE", f"/actions/{second['id']}", force="true").status_code == 204
    assert call("PATCH", "/triggers/post-login/bindings", {"bindings": []}).status_code == 200
    assert registry.enabled_in_order() == []
    assert "code" in callback(browser, rp)


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "x", "supported_triggers": TRIGGERS, "code": f"{HEADER}    x = (\n"}, "line 2"),
    ({"name": "x", "supported_triggers": TRIGGERS, "code": "def other(event, api):\n    pass\n"},
     "no top-level function"),
    ({"name": "x", "supported_triggers": TRIGGERS}, "'code' is required"),
    ({"name": "x", "code": claim("x")}, "'supported_triggers' are required"),
    ({"name": "x", "supported_triggers": [{"id": "credentials-exchange", "version": "v2"}],
      "code": claim("x")}, "after sign-in only"),
    ({"name": "x", "supported_triggers": TRIGGERS, "code": claim("x"), "runtime": "node22"}, "Python"),
    ({"name": "x", "supported_triggers": TRIGGERS, "code": claim("x"),
      "dependencies": [{"name": "lodash", "version": "4"}]}, "standard library"),
    ({"name": "x", "supported_triggers": TRIGGERS, "code": claim("x"), "secrets": [{"name": "NEW"}]},
     "needs a value"),
    ({"name": "x", "supported_triggers": TRIGGERS, "code": claim("x"),
      "secrets": [{"name": "not an identifier", "value": "v"}]}, "Python identifier"),
    ({"name": "x", "supported_triggers": TRIGGERS, "code": claim("x"), "deploy": "yes"}, "'deploy'"),
    ({"name": "", "supported_triggers": TRIGGERS, "code": claim("x")}, "1 to 128"),
    ({"name": "x", "supported_triggers": TRIGGERS, "code": claim("x"), "unknown": 1}, "unknown"),
])
def test_bad_actions_are_refused_and_nothing_is_made(app: Flask, call: Caller, body: dict[str, Any],
                                                     message: str):
    response = call("POST", "/actions", body)
    assert response.status_code == 400, response.text
    assert response.json["errorCode"] == "invalid_body" and message in response.json["message"]
    assert db.session.scalars(select(Action)).all() == []


def test_conflicts_and_bad_bindings_are_refused(app: Flask, call: Caller):
    first, second = call.create("first"), call.create("second")
    taken = call("POST", "/actions", {"name": "first", "supported_triggers": TRIGGERS, "code": claim("x")})
    assert taken.status_code == 409 and taken.json["errorCode"] == "action_conflict"
    renamed = call("PATCH", f"/actions/{second['id']}", {"name": "first"})
    assert renamed.status_code == 409
    # A rename with bad code is refused whole: neither is kept.
    broken = call("PATCH", f"/actions/{second['id']}", {"name": "renamed",
                                                         "code": HEADER.replace(", api", "") + "    pass\n"})
    assert broken.status_code == 400 and "must take (event, api)" in broken.json["message"]
    unnamed = call("PATCH", f"/actions/{second['id']}", {"name": "renamed", "secrets": [{"name": "NEW"}]})
    assert unnamed.status_code == 400 and "needs a value" in unnamed.json["message"]
    db.session.expire_all()
    kept = db.session.get(Action, second["id"])
    assert (kept.name, kept.code, kept.secrets) == ("second", claim("second"), {"TAG": "t"})

    path = "/triggers/post-login/bindings"
    registry.bind([db.session.get(Action, first["id"])])
    for bindings, message in [
        ([{"ref": {"type": "action_name", "value": "missing"}}], "no action is named"),
        ([{"ref": {"type": "action_id", "value": "act_nope"}}], "no action has the id"),
        ([{"ref": {"type": "action_url", "value": "x"}}], "'ref'"),
        ([{"ref": {"type": "action_name", "value": "first"}},
          {"ref": {"type": "action_id", "value": first["id"]}}], "once"),
        ([{"ref": {"type": "action_name", "value": "first"}, "secrets": [{"name": "A", "value": "b"}]}],
         "no secrets"),
        ("first", "must be a list"),
        ([{"ref": {"type": "action_name", "value": "first"}, "display_name": 7}], "display name"),
    ]:
        response = call("PATCH", path, {"bindings": bindings})
        assert response.status_code == 400 and message in response.json["message"], (bindings, response.text)
    assert [a.name for a in registry.enabled_in_order()] == ["first"]  # every refusal left them as they were
    assert call("GET", "/triggers/credentials-exchange/bindings").status_code == 404
    assert call("PATCH", "/triggers/credentials-exchange/bindings", {"bindings": []}).status_code == 404
    assert call("GET", "/actions", per_page="0").status_code == 400


def test_scopes_guard_every_endpoint(app: Flask, call: Caller):
    action = call.create("first")
    reader = "read:actions"
    assert call("GET", "/actions", scope=reader).status_code == 200
    assert call("GET", "/triggers", scope=reader).json["triggers"][0]["id"] == "post-login"
    for method, path, needed in [("POST", "/actions", "create:actions"),
                                 ("PATCH", f"/actions/{action['id']}", "update:actions"),
                                 ("PATCH", "/triggers/post-login/bindings", "update:actions"),
                                 ("POST", f"/actions/{action['id']}/deploy", "create:actions"),
                                 ("POST", f"/actions/{action['id']}/test", "create:actions"),
                                 ("DELETE", f"/actions/{action['id']}", "delete:actions")]:
        response = call(method, path, {}, scope=reader)
        assert response.status_code == 403, (method, path)
        assert response.json["message"] == f"Insufficient scope, expected any of: {needed}"
    assert call("GET", "/actions", scope="read:users").status_code == 403
    # A test run reads a user's profile: create:actions alone does not open it.
    alone = call("POST", f"/actions/{action['id']}/test", {"payload": {"user": {"email": "ada@example.com"}}},
                 scope="create:actions")
    assert alone.status_code == 403
    assert alone.json["message"] == "Insufficient scope, expected all of: create:actions,read:users"
    assert app.test_client().get("/api/v2/actions/actions").status_code == 401


def test_writes_are_logged_as_management_events(app: Flask, call: Caller):
    action = call.create("first")
    call("PATCH", "/triggers/post-login/bindings", {"bindings": [{"ref": {"type": "action_id",
                                                                         "value": action["id"]}}]})
    db.session.expire_all()
    logged = db.session.scalars(select(LogEvent).where(LogEvent.type == events.SUCCESS_API)).all()
    assert [(e.details["request"]["method"], e.details["response"]["statusCode"]) for e in logged] == [
        ("POST", 201), ("PATCH", 200)]


TEST_ACTION = '''
def on_execute_post_login(event, api):
    print("checking", event.user.email, event.secrets.API_KEY)
    if event.client.client_id != "test-client":
        api.id_token.set_custom_claim("client", event.client.name)
        api.access_token.set_custom_claim("key", {"value": event.secrets.API_KEY})
    api.user.set_app_metadata("plan", "gold")
    if event.user.email.startswith("boom"):
        raise RuntimeError("no plan for " + event.secrets.API_KEY)
'''


def test_a_test_run_says_what_the_action_would_do_and_applies_nothing(app: Flask, call: Caller, user: User,
                                                                     rp: RegisteredClient):
    created = call("POST", "/actions", {"name": "plan", "supported_triggers": TRIGGERS, "code": TEST_ACTION,
                                        "secrets": [{"name": "API_KEY", "value": "k-8d1f-secret"}]}).json
    path = f"/actions/{created['id']}/test"
    by_id = call("POST", path, {"payload": {"user": {"user_id": user.id}}})
    assert by_id.status_code == 200, by_id.text
    assert by_id.json == {"payload": {"commands": [["app_metadata", "plan", "gold"]]}}
    by_email = call("POST", path, {"payload": {"user": {"email": "ADA@example.com"},
                                               "client": {"client_id": rp.id}}})
    assert by_email.json["payload"]["commands"] == [["id_token_claim", "client", "Example App"],
                                                    ["access_token_claim", "key", {"value": "[redacted]"}],
                                                    ["app_metadata", "plan", "gold"]]
    db.session.expire_all()
    assert db.session.get(User, user.id).app_metadata in (None, {})  # nothing applied

    user.email, user.email_normalized = "boom@example.com", "boom@example.com"
    db.session.commit()
    failed = call("POST", path, {"payload": {"user": {"user_id": user.id}}}).json["payload"]
    assert "RuntimeError" in failed["error"] and "checking boom@example.com" in failed["logs"]
    assert "k-8d1f-secret" not in str(failed)  # the secret is redacted from the error and the output

    for payload, message in [({"user": {"user_id": "nobody"}}, "existing user"), ({}, "existing user"),
                             ({"user": "ada"}, "'payload.user' must be an object"),
                             ({"user": {"user_id": user.id}, "client": {"client_id": "nope"}},
                              "application")]:
        response = call("POST", path, {"payload": payload})
        assert response.status_code == 400 and message in response.json["message"], response.text
    assert call("POST", path, {"nothing": 1}).status_code == 400


def test_an_action_as_long_as_the_cli_takes_is_taken_in_any_script(app: Flask, call: Caller):
    code = claim("long") + "# " + "é" * 99_000 + "\n"  # each é is 6 bytes of JSON, \u00e9
    created = call("POST", "/actions", {"name": "long", "supported_triggers": TRIGGERS, "code": code,
                                        "secrets": [{"name": "TAG", "value": "t"}]})
    assert created.status_code == 201, created.text[:300]
    assert db.session.get(Action, created.json["id"]).code == code
