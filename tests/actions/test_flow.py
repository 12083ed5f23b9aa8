"""Post-login actions through the real authorization-code flow and refresh: claims, scopes, denial,
failures, order, metadata, secrets kept out of logs."""

from typing import Any

import pytest
from flask import Flask

from idp.actions import registry
from idp.db import db
from idp.events import log as events
from idp.oauth import clients
from idp.users.models import User
from tests.actions.conftest import callback, events_of, refresh, signed_in, verified
from tests.management.conftest import management_token
from tests.support import Browser, RegisteredClient, csrf_token, query

ROLES = '''
def on_execute_post_login(event, api):
    roles = event.user.app_metadata.get("roles", [])
    api.id_token.set_custom_claim("https://example.com/roles", roles)
    api.access_token.set_custom_claim("https://example.com/roles", roles)
    api.access_token.set_custom_claim("https://example.com/client", event.client.name)
    api.access_token.add_scope("read:reports")
    api.access_token.remove_scope("email")
'''


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_claims_reach_the_id_and_access_tokens(app: Flask, ada: User, rp: RegisteredClient, browser: Browser):
    ada.app_metadata = {"roles": ["admin", "editor"]}
    db.session.commit()
    registry.create("roles", ROLES)
    body = signed_in(browser, rp)
    assert body["id_claims"]["https://example.com/roles"] == ["admin", "editor"]
    assert body["id_claims"]["email"] == "ada@example.com"  # the ID token's own scope is untouched
    access = body["access_claims"]
    assert access["https://example.com/roles"] == ["admin", "editor"]
    assert access["https://example.com/client"] == "Example App"
    assert access["scope"] == "openid profile read:reports" == body["scope"]
    # The access token still calls /userinfo: the audience follows the granted scope.
    info = browser.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.json["sub"] == ada.id
    # /userinfo answers the ID token's custom claims too, as Auth0's does; the access token's stay its own.
    assert info.json["https://example.com/roles"] == ["admin", "editor"]
    assert "https://example.com/client" not in info.json


def test_a_registered_claim_refuses_the_login(app: Flask, ada: User, rp: RegisteredClient, browser: Browser):
    registry.create("sneaky", "def on_execute_post_login(event, api):\n"
                              "    api.id_token.set_custom_claim('sub', 'someone-else')\n")
    answer = callback(browser, rp, state="st-reg")
    assert answer == {"error": "access_denied", "error_description": "A post-login action failed",
                      "state": "st-reg", "iss": app.config["ISSUER"]}
    (failed,) = events_of(events.FAILED_LOGIN)
    assert failed.details["action"] == "sneaky" and "'sub' is registered" in failed.details["error"]


DENY = '''
def on_execute_post_login(event, api):
    api.user.set_app_metadata("denied_at_login", event.stats.logins_count)
    if "blocked-plan" == event.user.app_metadata.get("plan"):
        api.access.deny("Your plan has expired")
        api.user.set_app_metadata("after_deny", True)
'''

AFTER = '''
def on_execute_post_login(event, api):
    api.id_token.set_custom_claim("reached", True)
'''


def test_deny_sends_the_reason_and_state_and_stops_the_chain(app: Flask, ada: User, rp: RegisteredClient,
                                                             browser: Browser):
    ada.app_metadata = {"plan": "blocked-plan"}
    db.session.commit()
    registry.create("plan", DENY)
    registry.create("after", AFTER)
    answer = callback(browser, rp, state="st-deny")
    assert answer == {"error": "access_denied", "error_description": "Your plan has expired",
                      "state": "st-deny", "iss": app.config["ISSUER"]}
    (denied,) = events_of(events.FAILED_LOGIN)
    assert denied.details == {"action": "plan", "reason": "Your plan has expired"}
    assert denied.user_id == ada.id and denied.client_id == rp.id
    # Metadata set before the denial is kept (as Auth0 does); commands after it are not applied.
    db.session.expire_all()
    assert db.session.get(User, ada.id).app_metadata == {"plan": "blocked-plan", "denied_at_login": 1}


RAISES = '''
def on_execute_post_login(event, api):
    print("calling the CRM with", event.secrets.CRM_KEY)
    api.user.set_user_metadata("crm_checked", True)
    raise RuntimeError("CRM refused key " + event.secrets.CRM_KEY)
'''


def test_a_raising_action_stops_the_login_and_is_logged_without_its_secrets(
        app: Flask, ada: User, rp: RegisteredClient, browser: Browser, caplog: pytest.LogCaptureFixture):
    registry.create("earlier", "def on_execute_post_login(event, api):\n"
                               "    api.user.set_user_metadata('earlier_ran', True)\n")
    registry.create("crm", RAISES, {"CRM_KEY": "crm-key-5f1e9a"})
    answer = callback(browser, rp, state="st-raise")
    assert answer["error"] == "access_denied" and answer["state"] == "st-raise"
    assert answer["error_description"] == "A post-login action failed" and "code" not in answer
    (failed,) = events_of(events.FAILED_LOGIN)
    assert failed.details["action"] == "crm"
    assert "RuntimeError: CRM refused key [redacted]" in failed.details["error"]
    assert "calling the CRM with [redacted]" in failed.details["output"]
    logged = " ".join([failed.description or "", str(failed.details), caplog.text])
    assert "crm-key-5f1e9a" not in logged
    db.session.expire_all()
    # What the actions before it set is kept; the raising call gave no answer, so nothing of its own.
    assert db.session.get(User, ada.id).user_metadata == {"earlier_ran": True}


def test_a_hanging_action_times_out(app: Flask, ada: User, rp: RegisteredClient, browser: Browser):
    app.config["ACTIONS_TIMEOUT"] = 2
    registry.create("slow", "import time\n\ndef on_execute_post_login(event, api):\n"
                            "    print('waiting for the directory')\n    time.sleep(30)\n")
    answer = callback(browser, rp, state="st-slow")
    assert answer["error"] == "access_denied" and answer["error_description"] == "A post-login action failed"
    (failed,) = events_of(events.FAILED_LOGIN)
    assert failed.details["action"] == "slow" and "timeout" in failed.details["error"]


def test_actions_run_in_order_and_the_order_can_change(app: Flask, ada: User, rp: RegisteredClient,
                                                       browser: Browser):
    for name in ("first", "second"):
        registry.create(name, f"def on_execute_post_login(event, api):\n"
                              f"    api.id_token.set_custom_claim('winner', {name!r})\n")
    assert signed_in(browser, rp)["id_claims"]["winner"] == "second"
    registry.order(["second", "first"])
    assert signed_in(browser, rp)["id_claims"]["winner"] == "first"
    registry.set_enabled("first", False)
    assert signed_in(browser, rp)["id_claims"]["winner"] == "second"


METADATA = '''
def on_execute_post_login(event, api):
    api.user.set_app_metadata("tier", "gold")
    api.user.set_user_metadata("theme", "dark")
    api.user.set_user_metadata("obsolete", None)
'''


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_metadata_is_saved_and_served_by_the_management_api(app: Flask, ada: User, rp: RegisteredClient,
                                                            browser: Browser):
    ada.user_metadata = {"obsolete": 1, "language": "en"}
    db.session.commit()
    registry.create("metadata", METADATA)
    signed_in(browser, rp)
    token = management_token(app)
    shown = browser.get(f"/api/v2/users/{ada.id}", headers={"Authorization": f"Bearer {token}"}).json
    assert shown["app_metadata"] == {"tier": "gold"}
    assert shown["user_metadata"] == {"language": "en", "theme": "dark"}


CLIENT_METADATA = '''
def on_execute_post_login(event, api):
    api.id_token.set_custom_claim("https://example.com/client_metadata", dict(event.client.metadata))
    api.access_token.set_custom_claim("https://example.com/tenant", event.client.metadata.get("tenant"))
'''


def test_actions_see_the_clients_metadata_at_sign_in_and_refresh(app: Flask, ada: User, rp: RegisteredClient,
                                                                browser: Browser):
    clients.update_client(rp.id, client_metadata={"tenant": "acme", "plan-tier": "gold"})
    registry.create("client-metadata", CLIENT_METADATA)
    body = signed_in(browser, rp, scope="openid offline_access")
    assert body["id_claims"]["https://example.com/client_metadata"] == {"tenant": "acme", "plan-tier": "gold"}
    assert body["access_claims"]["https://example.com/tenant"] == "acme"
    # A refresh reads the metadata as it is then.
    clients.update_client(rp.id, client_metadata={"tenant": "globex"})
    again = refresh(browser, rp, body["refresh_token"])
    assert again.status_code == 200, again.text
    assert verified(browser, again.json["access_token"])["https://example.com/tenant"] == "globex"
    # Each client's sign-in sees its own metadata.
    made, secret = clients.create_client("Other App", ["https://other.example.com/cb"], first_party=True,
                                         client_metadata={"tenant": "initech"})
    other = signed_in(browser, RegisteredClient(made.id, secret, "https://other.example.com/cb"))
    assert other["id_claims"]["https://example.com/client_metadata"] == {"tenant": "initech"}


COUNTER = '''
def on_execute_post_login(event, api):
    runs = (event.user.app_metadata.get("runs") or 0) + 1
    api.user.set_app_metadata("runs", runs)
    api.access_token.set_custom_claim("runs", runs)
    api.id_token.set_custom_claim("runs", runs)
    api.access_token.set_custom_claim("protocol", event.transaction.protocol)
    if event.transaction.protocol == "oauth2-refresh-token" and event.secrets.REFRESH == "deny":
        api.access.deny("Refresh is paused")
'''


def test_a_refresh_runs_the_actions_again(app: Flask, ada: User, rp: RegisteredClient, browser: Browser):
    registry.create("counter", COUNTER, {"REFRESH": "allow"})
    body = signed_in(browser, rp)
    assert body["access_claims"]["runs"] == 1 and body["access_claims"]["protocol"] == "oidc-basic-profile"
    again = refresh(browser, rp, body["refresh_token"])
    assert again.status_code == 200, again.text
    claims = verified(browser, again.json["access_token"])
    assert claims["runs"] == 2 and claims["protocol"] == "oauth2-refresh-token"
    # /userinfo follows the grant: the refresh's run, for the old access token as for the new one.
    for token in (body["access_token"], again.json["access_token"]):
        info = browser.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200 and info.json["runs"] == 2


def test_a_denied_refresh_is_403_and_leaves_the_token_usable(app: Flask, ada: User, rp: RegisteredClient,
                                                             browser: Browser):
    registry.create("counter", COUNTER, {"REFRESH": "deny"})
    body = signed_in(browser, rp)
    denied = refresh(browser, rp, body["refresh_token"])
    assert denied.status_code == 403
    assert denied.json == {"error": "access_denied", "error_description": "Refresh is paused"}
    (event,) = events_of(events.FAILED_REFRESH)
    assert event.details == {"action": "counter", "reason": "Refresh is paused"}
    registry.set_enabled("counter", False)
    allowed = refresh(browser, rp, body["refresh_token"])
    assert allowed.status_code == 200, allowed.text
    assert "runs" not in verified(browser, allowed.json["access_token"])


def test_a_failing_refresh_issues_nothing(app: Flask, ada: User, rp: RegisteredClient, browser: Browser):
    body = signed_in(browser, rp)
    registry.create("broken", "def on_execute_post_login(event, api):\n    return 1 / 0\n")
    failed = refresh(browser, rp, body["refresh_token"])
    assert failed.status_code == 403
    assert failed.json == {"error": "access_denied", "error_description": "A post-login action failed"}
    assert "ZeroDivisionError" in events_of(events.FAILED_REFRESH)[0].details["error"]


def test_actions_run_after_a_sign_up(app: Flask, rp: RegisteredClient, browser: Browser, mailbox: Any):
    registry.create("welcome", "def on_execute_post_login(event, api):\n"
                               "    api.id_token.set_custom_claim('signed_up_as', event.user.email)\n")
    first = browser.authorize(rp, state="st-up")
    login = first.headers["Location"]
    signup = browser.get(login.replace("/u/login", "/u/signup"))
    assert signup.status_code == 200, signup.text
    response = browser.client.post(login.replace("/u/login", "/u/signup"), data={
        "csrf_token": csrf_token(signup.text), "email": "grace@example.com",
        "password": "a much longer passphrase 42",
    })
    response = browser.follow(response, rp.redirect_uri)
    answer = query(response.headers["Location"])
    assert "code" in answer, answer
    claims = verified(browser, browser.exchange(rp, answer["code"]).json["id_token"], audience=rp.id)
    assert claims["signed_up_as"] == "grace@example.com"
