"""APIs and client grants, as Auth0 has them: machine tokens carry the scopes a client was granted."""

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from werkzeug.test import TestResponse

from idp.db import db
from idp.oauth import apis, tokens
from idp.oauth.clients import create_client
from idp.oauth.models import Api, ClientGrant, Grant, Token
from tests.support import Browser, RegisteredClient, auth

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

ORDERS = "https://orders.example.com/"
LEGACY = "https://api.example.com"  # in the rp fixture's `audiences`, with no grant
MANAGEMENT = "http://localhost/api/v2/"  # the tests' issuer is http://localhost


def run(app: Flask, *args: str) -> Any:
    """Invoke the idp CLI in-process; the test then sees what it committed."""
    result = app.test_cli_runner().invoke(args=list(args))
    db.session.expire_all()
    return result


def ok(app: Flask, *args: str) -> str:
    result = run(app, *args)
    assert result.exit_code == 0, result.output
    return str(result.output)


def refused(app: Flask, *args: str) -> str:
    result = run(app, *args)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a message, not a crash
    return str(result.output)


def token(browser: Browser, client: RegisteredClient, audience: str, **data: str) -> TestResponse:
    return browser.client.post("/oauth/token", data={"grant_type": "client_credentials", "audience": audience,
                                                     **data}, **auth(client))


def claims_of(response: TestResponse, audience: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return tokens.verify(response.json["access_token"], typ="at+jwt", audience=audience)


def error_of(response: TestResponse) -> str:
    assert response.status_code in (400, 401), response.text
    assert "access_token" not in (response.json or {})
    return str(response.json["error"])


@pytest.fixture
def orders(app: Flask) -> Api:
    return apis.create_api(ORDERS, "Orders", [
        {"value": "read:orders", "description": "Read orders"}, {"value": "create:orders"},
        {"value": "delete:orders", "description": ""}])


@pytest.fixture
def machine(app: Flask) -> RegisteredClient:
    """A machine client made as an operator makes it: a name, nothing else."""
    made = json.loads(ok(app, "clients", "create", "--name", "Billing job", "--json"))
    return RegisteredClient(made["client_id"], made["client_secret"], "")


def stored() -> tuple[int, int]:
    return (db.session.scalar(select(func.count()).select_from(Grant)) or 0,
            db.session.scalar(select(func.count()).select_from(Token)) or 0)


# Tokens ---------------------------------------------------------------------------------------------


def test_a_granted_client_gets_exactly_its_scopes_without_a_write(app, browser, orders, machine):
    assert "granted" in ok(app, "clients", "grant", machine.id, "--api", ORDERS,
                           "--scope", "read:orders", "--scope", "create:orders")
    before = stored()
    response = token(browser, machine, ORDERS)
    claims = claims_of(response, ORDERS)
    assert stored() == before
    assert claims["scope"] == "read:orders create:orders" and response.json["scope"] == claims["scope"]
    assert claims["gty"] == "client-credentials" and claims["azp"] == machine.id
    assert claims["sub"] == f"{machine.id}@clients" and claims["client_id"] == machine.id
    assert claims["aud"] == ORDERS
    seen = browser.client.post("/oauth/introspect", data={"token": response.json["access_token"]},
                               **auth(machine)).json
    assert seen["active"] is True and seen["scope"] == "read:orders create:orders"


def test_the_scope_parameter_narrows_and_never_widens(app, browser, orders, machine):
    apis.grant(machine.id, ORDERS, ["read:orders", "create:orders"])
    narrowed = token(browser, machine, ORDERS, scope="create:orders")
    assert claims_of(narrowed, ORDERS)["scope"] == "create:orders"
    both = token(browser, machine, ORDERS, scope="create:orders read:orders create:orders")
    assert claims_of(both, ORDERS)["scope"] == "read:orders create:orders"
    for scope in ("delete:orders", "read:orders delete:orders", "read:users", "openid", "nonsense\"\\é"):
        assert error_of(token(browser, machine, ORDERS, scope=scope)) == "invalid_scope", scope


def test_granting_again_replaces_the_scopes(app, browser, orders, machine):
    apis.grant(machine.id, ORDERS, ["read:orders", "create:orders"])
    ok(app, "clients", "grant", machine.id, "--api", ORDERS, "--scope", "delete:orders")
    assert db.session.scalar(select(func.count()).select_from(ClientGrant)) == 1
    assert claims_of(token(browser, machine, ORDERS), ORDERS)["scope"] == "delete:orders"
    assert error_of(token(browser, machine, ORDERS, scope="read:orders")) == "invalid_scope"


def test_without_a_grant_or_the_audience_the_token_is_refused(app, browser, orders, machine):
    assert error_of(token(browser, machine, ORDERS)) == "invalid_target"
    other, secret = create_client("Other job", [])
    apis.grant(other.id, ORDERS, ["read:orders"])  # another client's grant is not this one's
    assert error_of(token(browser, machine, ORDERS)) == "invalid_target"
    assert error_of(token(browser, machine, ORDERS + "x")) == "invalid_target"
    assert error_of(token(browser, machine, ORDERS + "x" * 3000)) == "invalid_target"


def test_a_revoked_grant_is_refused_at_once_in_this_process(app, browser, orders, machine):
    apis.grant(machine.id, ORDERS, ["read:orders"])
    assert token(browser, machine, ORDERS).status_code == 200  # now cached
    assert "revoked" in ok(app, "clients", "revoke-grant", machine.id, "--api", ORDERS)
    assert error_of(token(browser, machine, ORDERS)) == "invalid_target"
    assert "has no grant" in refused(app, "clients", "revoke-grant", machine.id, "--api", ORDERS)


def test_a_grant_revoked_elsewhere_stops_within_the_cache_age(app, browser, orders, machine):
    app.config["CLIENT_CACHE_MAX_AGE"] = 60  # long enough for a slow machine
    apis.grant(machine.id, ORDERS, ["read:orders"])
    assert token(browser, machine, ORDERS).status_code == 200  # now cached
    db.session.execute(delete(ClientGrant))  # as another process would: this one's cache is not told
    db.session.commit()
    assert token(browser, machine, ORDERS).status_code == 200  # within CLIENT_CACHE_MAX_AGE
    app.config["CLIENT_CACHE_MAX_AGE"] = 0
    assert error_of(token(browser, machine, ORDERS)) == "invalid_target"


def test_deleting_an_api_takes_its_grants(app, browser, orders, machine):
    apis.grant(machine.id, ORDERS, ["read:orders"])
    assert f"deleted API {ORDERS}" in ok(app, "apis", "delete", ORDERS)
    assert db.session.scalar(select(func.count()).select_from(ClientGrant)) == 0
    assert error_of(token(browser, machine, ORDERS)) == "invalid_target"
    assert "no API" in refused(app, "apis", "delete", ORDERS)


def test_deleting_a_client_takes_its_grants(app, orders, machine):
    apis.grant(machine.id, ORDERS, ["read:orders"])
    ok(app, "clients", "delete", machine.id)
    assert db.session.scalar(select(func.count()).select_from(ClientGrant)) == 0


def test_an_audience_in_the_clients_list_without_a_grant_still_gives_a_token_without_scope(browser, rp):
    for data in ({}, {"scope": "read:anything"}):
        response = token(browser, rp, LEGACY, **data)
        claims = claims_of(response, LEGACY)
        assert "scope" not in claims and response.json["scope"] == ""
        assert claims["gty"] == "client-credentials" and claims["azp"] == rp.id


def test_a_grant_decides_the_scope_when_the_audience_is_also_listed(app, browser, rp):
    apis.create_api(LEGACY, "Legacy", [{"value": "read:a"}, {"value": "read:b"}])
    apis.grant(rp.id, LEGACY, ["read:b"])
    assert claims_of(token(browser, rp, LEGACY), LEGACY)["scope"] == "read:b"
    assert error_of(token(browser, rp, LEGACY, scope="read:a")) == "invalid_scope"


def test_a_json_body_as_auth0s_older_sdks_send_it(app, browser, orders, machine):
    apis.grant(machine.id, ORDERS, ["read:orders", "create:orders"])
    body = {"grant_type": "client_credentials", "client_id": machine.id, "client_secret": machine.secret,
            "audience": ORDERS}
    response = browser.client.post("/oauth/token", json=body)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert claims_of(response, ORDERS)["scope"] == "read:orders create:orders"
    narrowed = browser.client.post("/oauth/token", json={**body, "scope": "read:orders"})
    assert claims_of(narrowed, ORDERS)["scope"] == "read:orders"
    assert error_of(browser.client.post("/oauth/token", json={**body, "scope": "delete:orders"})) \
        == "invalid_scope"
    assert error_of(browser.client.post("/oauth/token", json={**body, "client_secret": "wrong"})) \
        == "invalid_client"
    assert error_of(browser.client.post("/oauth/token", json={**body, "audience": ORDERS + "\x00"})) \
        in ("invalid_request", "unsupported_grant_type")  # NUL: the body has no parameters at all
    assert error_of(browser.client.post("/oauth/token", json={**body, "client_secret": 1})) \
        in ("invalid_request", "unsupported_grant_type")
    # auth0-python v4 sends "organization": null: a null member is a parameter not sent.
    assert claims_of(browser.client.post("/oauth/token", json={**body, "organization": None}), ORDERS)


# The management API ---------------------------------------------------------------------------------


def test_the_management_api_is_built_in_under_the_issuer(app, browser, machine):
    assert apis.management_identifier() == MANAGEMENT
    listed = json.loads(ok(app, "apis", "list", "--json"))
    assert listed[0]["identifier"] == MANAGEMENT and listed[0]["built_in"] is True
    values = [s["value"] for s in listed[0]["scopes"]]
    for scope in ("read:users", "create:users", "update:users", "delete:users", "read:users_app_metadata",
                  "update:users_app_metadata", "read:connections", "create:connections", "read:logs",
                  "read:stats", "read:clients", "create:clients", "read:client_grants",
                  "create:client_grants", "delete:client_grants", "read:resource_servers"):
        assert scope in values, scope
    assert db.session.scalar(select(func.count()).select_from(Api)) == 0  # listed, not stored
    assert error_of(token(browser, machine, MANAGEMENT)) == "invalid_target"

    for _ in range(2):  # the row is made by the first grant only
        ok(app, "clients", "grant", machine.id, "--api", MANAGEMENT, "--scope", "read:users",
           "--scope", "read:clients")
    assert db.session.scalar(select(func.count()).select_from(Api)) == 1
    claims = claims_of(token(browser, machine, MANAGEMENT), MANAGEMENT)
    assert claims["scope"] == "read:users read:clients" and claims["azp"] == machine.id
    assert [a["identifier"] for a in json.loads(ok(app, "apis", "list", "--json"))] == [MANAGEMENT]

    assert "built in" in refused(app, "apis", "delete", MANAGEMENT)
    assert "built-in management API" in refused(app, "apis", "create", "--identifier", MANAGEMENT,
                                                "--name", "Mine")
    assert "not a scope of" in refused(app, "clients", "grant", machine.id, "--api", MANAGEMENT,
                                       "--scope", "read:orders")


# The command line -----------------------------------------------------------------------------------


def test_apis_create_and_list(app):
    made = json.loads(ok(app, "apis", "create", "--identifier", ORDERS, "--name", "Orders",
                         "--scope", "read:orders=Read the orders", "--scope", "create:orders", "--json"))
    assert made == {"identifier": ORDERS, "name": "Orders", "built_in": False, "scopes": [
        {"value": "read:orders", "description": "Read the orders"},
        {"value": "create:orders", "description": ""}]}
    inventory = "http://localhost:8080/inventory"
    unnamed = json.loads(ok(app, "apis", "create", "--identifier", inventory, "--scope", "read:stock",
                            "--json"))
    assert unnamed["name"] == inventory  # without --name, the identifier names it
    listed = json.loads(ok(app, "apis", "list", "--json"))
    assert [a["identifier"] for a in listed] == [MANAGEMENT, ORDERS, inventory]
    assert listed[1] == made
    human = ok(app, "apis", "list")
    assert f"{ORDERS}  Orders  (2 scopes)" in human and "read:orders  Read the orders" in human
    assert f"{MANAGEMENT}  idp Management API" in human


@pytest.mark.parametrize(("args", "reason"), [
    (("--identifier", ORDERS, "--name", "Again"), "already exists"),
    (("--identifier", "orders", "--name", "N"), "http(s) URL"),
    (("--identifier", "ftp://orders.example.com/", "--name", "N"), "http(s) URL"),
    (("--identifier", "https:///path", "--name", "N"), "http(s) URL"),
    (("--identifier", "https://orders.example.com/#x", "--name", "N"), "no fragment"),
    (("--identifier", "https://orders.example.com/a b", "--name", "N"), "printable ASCII"),
    (("--identifier", "https://ördérs.example.com/", "--name", "N"), "printable ASCII"),
    (("--identifier", "https://o.example.com/" + "x" * 2048, "--name", "N"), "at most 2048"),
    (("--identifier", "http://localhost/userinfo", "--name", "N"), "userinfo"),
    (("--identifier", "https://new.example.com/", "--name", " "), "needs a name"),
    (("--identifier", "https://new.example.com/", "--name", "N", "--scope", "a b"), "a scope is"),
    (("--identifier", "https://new.example.com/", "--name", "N", "--scope", "=x"), "a scope is"),
    (("--identifier", "https://new.example.com/", "--name", "N", "--scope", "a", "--scope", "a=again"),
     "given twice: a"),
])
def test_apis_create_refuses(app, orders, args, reason):
    before = json.loads(ok(app, "apis", "list", "--json"))
    assert reason in refused(app, "apis", "create", *args)
    assert json.loads(ok(app, "apis", "list", "--json")) == before


def test_a_machine_client_is_confidential_and_has_no_redirect_uri(app, machine):
    [row] = [c for c in json.loads(ok(app, "clients", "list", "--json")) if c["client_id"] == machine.id]
    assert row["public"] is False and row["redirect_uris"] == [] and machine.secret
    human = ok(app, "clients", "create", "--name", "Another job")
    assert "client_secret:" in human and "idp clients grant" in human
    assert "needs at least one redirect URI" in refused(app, "clients", "create", "--name", "SPA", "--public")


def test_clients_grant_refuses(app, orders, machine, public_rp):
    cases = [
        ((machine.id, "--api", "https://unknown.example.com/", "--scope", "read:orders"), "no API"),
        ((machine.id, "--api", ORDERS, "--scope", "read:orders", "--scope", "write:orders"),
         "not a scope of"),
        (("no-such-client", "--api", ORDERS, "--scope", "read:orders"), "no client"),
        ((public_rp.id, "--api", ORDERS, "--scope", "read:orders"), "public client"),
    ]
    for args, reason in cases:
        assert reason in refused(app, "clients", "grant", *args), args
    assert "Missing option '--scope'" in refused(app, "clients", "grant", machine.id, "--api", ORDERS)
    assert db.session.scalar(select(func.count()).select_from(ClientGrant)) == 0
