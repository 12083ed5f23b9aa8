"""Management API fixtures: tokens for /api/v2/, a caller, and a small population of users."""

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.connections.models import NATIVE_ID, Connection
from idp.db import db
from idp.oauth import tokens
from idp.oauth.models import Client, digest
from idp.users.models import User

LEGACY_ID = "con_legacy"
LEGACY_NAME = "legacy-db"


def management_audience(app: Flask) -> str:
    """The management API's identifier: `<issuer>/api/v2/`."""
    return app.config["ISSUER"] + "/api/v2/"


def management_token(app: Flask, scope: str | None = "read:users", *, audience: str | None = None,
                     client_id: str = "mgmt-test-client", expires_in: int = 3600,
                     gty: str | None = tokens.CLIENT_CREDENTIALS, typ: str = "at+jwt", **extra: Any) -> str:
    """Sign a management API access token directly with idp's current key.

    Real clients get theirs from POST /oauth/token with grant_type=client_credentials and
    audience=<issuer>/api/v2/, carrying the scopes granted to the client (test_api.py walks that way
    once); signing the claims directly lets the other tests shape every claim. The client it names
    is registered, as a real caller's is: a deleted client's tokens are refused.
    """
    if db.session.get(Client, client_id) is None:
        db.session.add(Client(id=client_id, name=client_id, secret_digest=digest(secrets.token_urlsafe(32))))
        db.session.commit()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": app.config["ISSUER"], "sub": client_id, "aud": audience or management_audience(app),
        "client_id": client_id, "azp": client_id, "jti": secrets.token_urlsafe(16), "iat": now,
        "exp": now + expires_in, **({"scope": scope} if scope is not None else {}),
        **({"gty": gty} if gty else {}), **extra,
    }
    return tokens.sign(claims, typ=typ)


class Api:
    """A caller of /api/v2/ with a read:users token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token = client, token

    def get(self, path: str, token: str | None = None, **params: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.client.get("/api/v2" + path, query_string=params, headers=headers)

    def users(self, **params: Any) -> list[dict[str, Any]]:
        """GET /users and return the list, checking the answer is a 200."""
        response = self.get("/users", **params)
        assert response.status_code == 200, response.text
        return list(response.json or [])

    def ids(self, q: str, **params: Any) -> set[str]:
        """The ids of the users a query finds."""
        return {u["user_id"] for u in self.users(q=q, per_page=100, **params)}


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client(), management_token(app))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add_user(id: str, email: str, connection_id: str = NATIVE_ID, **fields: Any) -> User:
    """Store a user as is (no password hashing: the search never needs one)."""
    fields.setdefault("app_metadata", {})
    fields.setdefault("user_metadata", {})
    user = User(id=id, email=email, email_normalized=email.lower(), connection_id=connection_id, **fields)
    db.session.add(user)
    return user


@pytest.fixture
def people(app: Flask) -> dict[str, User]:
    """Six users in two connections, with metadata, migrations and sign-ins of every kind."""
    db.session.add(Connection(id=LEGACY_ID, name=LEGACY_NAME, migrating=True))
    users = {
        "ada": add_user(
            "u-ada", "Ada@Example.com", email_verified=True, name="Ada Lovelace", given_name="Ada",
            family_name="Lovelace", created_at=at("2020-01-15T00:00:00"),
            updated_at=at("2024-03-01T10:00:00"),
            last_login_at=at("2024-03-01T10:00:00"), logins_count=5, last_ip="192.0.2.1",
            app_metadata={"plan": "gold", "tier": 3, "beta": True, "org": {"id": "o1"}},
            user_metadata={"lang": "en"}),
        "grace": add_user(
            "u-grace", "grace@navy.mil", email_verified=True, name="Grace Hopper", given_name="Grace",
            family_name="Hopper", created_at=at("2021-06-01T00:00:00"), updated_at=at("2021-06-01T00:00:00"),
            app_metadata={"plan": "silver", "tier": 1, "beta": False}),
        "alan": add_user(
            "u-alan", "alan@legacy.example", LEGACY_ID, email_verified=True, name="Alan Turing",
            created_at=at("2023-02-02T12:00:00"), updated_at=at("2023-02-02T12:00:00"),
            migrated_at=at("2023-02-02T12:00:00"), migrated_via="login", legacy_id="17", logins_count=2,
            last_login_at=at("2023-03-03T09:30:00"), app_metadata={"plan": "Gold"},
            user_metadata={"lang": "fr"}),
        "bob": add_user(
            "u-bob", "bob@legacy.example", LEGACY_ID, created_at=at("2023-05-05T08:00:00"),
            updated_at=at("2023-05-05T08:00:00"), migrated_at=at("2023-05-05T08:00:00"),
            migrated_via="password_reset", legacy_id="18", app_metadata={"tier": "3"}),
        "carol": add_user(
            "u-carol", "carol@example.com", name="Carol O'Neil", nickname="caz",
            created_at=at("2024-01-01T00:00:00"), updated_at=at("2024-01-01T00:00:00"),
            user_metadata={"lang": "en"}),
        "ada2": add_user(
            "u-ada2", "ADA@example.com", LEGACY_ID, name="Ada L.", created_at=at("2024-02-02T00:00:00"),
            updated_at=at("2024-02-02T00:00:00")),
    }
    db.session.commit()
    return users
