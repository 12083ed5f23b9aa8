"""/api/v2/: bearer tokens and scopes, and every error in Auth0's shape (never HTML, never a trace)."""

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from idp.db import db
from idp.management import api as management
from idp.oauth import apis, tokens
from idp.oauth.clients import create_client, delete_client
from tests.management.conftest import management_audience, management_token

MISSING = {"statusCode": 401, "error": "Unauthorized", "message": "Missing authentication"}
INVALID = {"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"}


def test_without_a_token_is_a_401(api):
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer  "},
                    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Token abc"}):
        response = api.client.get("/api/v2/users", headers=headers)
        assert response.status_code == 401 and response.json == MISSING, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_that_are_not_good_for_the_api_are_a_401(app, api):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    kid = jwt.get_unverified_header(api.token)["kid"]
    forged = jwt.encode(jwt.decode(api.token, options={"verify_signature": False}), pem, algorithm="RS256",
                        headers={"kid": kid, "typ": "at+jwt"})
    bad = {
        "garbage": "not-a-jwt",
        "forged": forged,
        "other audience": management_token(app, audience="https://api.example.com"),
        "userinfo audience": management_token(app, audience=app.config["ISSUER"] + "/userinfo"),
        "an id token": management_token(app, typ="JWT"),
        "other issuer": management_token(app, iss="https://evil.example"),
        "no jti": management_token(app, jti=None),
        "a user's token that was never issued": management_token(app, gty=None),
        "too long": "a" * 20_000,
    }
    for name, token in bad.items():
        response = api.get("/users", token=token)
        assert response.status_code == 401 and response.json == INVALID, name
    expired = api.get("/users", token=management_token(app, expires_in=-10))
    assert expired.status_code == 401 and expired.json["message"] == "Expired token"
    several = management_token(app, audience=[management_audience(app), "https://api.example.com"])
    assert api.get("/users", token=several).status_code == 200


def test_a_revoked_client_credentials_token_is_refused(app, api, rp):
    token = management_token(app, client_id=rp.id)
    assert api.get("/users", token=token).status_code == 200
    tokens.revoke_client_token(tokens.ClientToken(tokens.verify(token, typ="at+jwt", verify_exp=False)))
    db.session.commit()
    response = api.get("/users", token=token)
    assert response.status_code == 401 and response.json == INVALID


def test_a_token_without_the_scope_is_a_403(app, api, people):
    expected = {"statusCode": 403, "error": "Forbidden", "errorCode": "insufficient_scope",
                "message": "Insufficient scope, expected any of: read:users"}
    for scope in (None, "", "openid profile", "read:user", "read:users:all", "update:users"):
        token = management_token(app, scope=scope)
        for path in ("/users", "/users/u-ada", "/users-by-email?email=ada@example.com"):
            response = api.client.get("/api/v2" + path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 403 and response.json == expected, (scope, path)
    assert api.get("/users", token=management_token(app, scope="read:clients read:users")).status_code == 200


@pytest.mark.parametrize("params", [
    {"page": "-1"}, {"page": "x"}, {"page": "1.5"}, {"page": ""}, {"page": "99999999999"}, {"page": "٣"},
    {"per_page": "101"}, {"per_page": "-5"}, {"per_page": "ten"}, {"include_totals": "yes"},
    {"include_fields": "1"}, {"sort": "name"}, {"sort": "name:2"}, {"sort": "password_hash:1"},
    {"sort": "app_metadata.x:1"}, {"fields": "a b"}, {"fields": ",".join(["a"] * 60)},
    {"search_engine": "v2"}, {"unknown": "1"}, {"q": "name:a\x00"}, {"q": "name:("},
])
def test_malformed_query_strings_are_a_400(api, people, params):
    response = api.get("/users", **params)
    assert response.status_code == 400, (params, response.text)
    assert response.json["statusCode"] == 400 and response.json["error"] == "Bad Request"
    assert response.json["errorCode"] == "invalid_query_string"


def test_repeated_parameters_and_missing_email_are_a_400(api, people):
    repeated = api.client.get("/api/v2/users?page=1&page=2", headers={"Authorization": f"Bearer {api.token}"})
    assert repeated.status_code == 400 and repeated.json["errorCode"] == "invalid_query_string"
    for params in ({}, {"email": ""}, {"email": "a@b", "q": "x"}):
        response = api.get("/users-by-email", **params)
        assert response.status_code == 400 and response.json["errorCode"] == "invalid_query_string", params
    assert api.get("/users/u-ada", page="1").status_code == 400


def test_no_route_and_wrong_method_answer_auth0s_shape(api):
    headers = {"Authorization": f"Bearer {api.token}"}
    for path in ("/api/v2/", "/api/v2", "/api/v2/nothing", "/api/v2/users/a/b", "/api/v2/users/"):
        response = api.client.get(path, headers=headers)
        assert response.status_code == 404 and response.mimetype == "application/json", path
        assert response.json["statusCode"] == 404 and response.json["error"] == "Not Found", path
    for method in ("put", "delete", "patch"):
        response = getattr(api.client, method)("/api/v2/users-by-email", headers=headers)
        assert response.status_code == 405 and response.json["statusCode"] == 405
        assert response.json["error"] == "Method Not Allowed"
    # Other /api/ paths keep OAuth's error shape.
    assert "error_description" in api.client.get("/api/other").json


def test_a_doubled_slash_is_a_404_in_auth0s_shape_not_a_redirect(api):
    # werkzeug would redirect these to the path with its slashes merged, with an HTML page (and
    # /users//logs to /users/logs, another resource); the fuzz of every route found it.
    headers = {"Authorization": f"Bearer {api.token}"}
    for path in ("/api/v2//users", "/api/v2/users//logs", "/api/v2/connections//x",
                 "/api/v2//stats/migration", "/api/v2/logs//1"):
        response = api.client.get(path, headers=headers)
        assert response.status_code == 404 and response.mimetype == "application/json", path
        assert response.json["statusCode"] == 404 and response.json["error"] == "Not Found", path
    assert api.client.get("/api/v2/users/u//x", headers=headers).status_code == 404


def test_an_unexpected_failure_is_a_500_in_auth0s_shape(app, api, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken() -> list:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(management.registry, "all_connections", broken)
    response = api.get("/users")
    assert response.status_code == 500 and response.mimetype == "application/json"
    assert response.json["statusCode"] == 500 and response.json["error"] == "Internal Server Error"
    assert "secret detail" not in response.text and "Traceback" not in response.text


def test_answers_are_not_cached(api, people):
    assert api.get("/users").headers["Cache-Control"] == "no-store"


def test_a_machine_client_granted_the_api_manages_users_with_its_token(app, api, people):
    """The way real callers come: a grant, a client_credentials token, the scopes it carries."""
    machine, secret = create_client("Migration checker", [])
    apis.grant(machine.id, apis.management_identifier(), ["read:users"])
    answer = api.client.post("/oauth/token", auth=(machine.id, secret), data={
        "grant_type": "client_credentials", "audience": apis.management_identifier()})
    assert answer.status_code == 200, answer.text
    token = answer.json["access_token"]
    listed = api.get("/users", token=token, q="_exists_:email")
    assert listed.status_code == 200 and len(listed.json) == len(people)
    created = api.client.post("/api/v2/users", headers={"Authorization": f"Bearer {token}"},
                              json={"connection": "Username-Password-Authentication",
                                    "email": "new@example.com", "password": "a long new password"})
    assert created.status_code == 403 and created.json["errorCode"] == "insufficient_scope"
    delete_client(machine.id)  # its tokens stop with it, though nothing stored them
    assert api.get("/users", token=token).status_code == 401
