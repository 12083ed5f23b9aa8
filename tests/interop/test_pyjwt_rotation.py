"""PyJWT's PyJWKClient validates access tokens across a signing-key rotation."""

from typing import Any

import jwt
import pytest
import requests
from flask import Flask

from idp.keys import store
from idp.keys.models import NEXT
from idp.oauth.clients import create_client
from tests.conftest import PASSWORD, LiveServer
from tests.interop.browser import REDIRECT_URI, TIMEOUT, code_flow, refresh
from tests.keys.support import age, states

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def published_kids(issuer: str) -> list[str]:
    """Return the kids the JWKS publishes now."""
    response = requests.get(issuer + "/.well-known/jwks.json", timeout=TIMEOUT)
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


def validate(jwks: jwt.PyJWKClient, token: str, issuer: str) -> dict[str, Any]:
    """Validate an access token the way a resource server would, offline against the JWKS."""
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=issuer + "/userinfo",
                      issuer=issuer, options={"require": ["exp", "iat", "sub", "jti"]})


def test_access_tokens_validate_across_rotation(app: Flask, live_server: LiveServer, user: Any) -> None:
    """Tokens signed before and after `idp keys rotate` both validate, under different kids."""
    issuer = live_server.url
    client, secret = create_client("API caller", [REDIRECT_URI], first_party=True)
    assert secret is not None
    with requests.Session() as browser:
        before = code_flow(browser, issuer, client.id, secret, user.email, PASSWORD)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    kids_before = published_kids(issuer)
    cached = jwt.PyJWKClient(issuer + "/.well-known/jwks.json")
    assert validate(cached, before["access_token"], issuer)["sub"] == user.id

    # The next key has been published for a whole JWKS cache lifetime: the rotation is safe.
    age(states()[NEXT][0], seconds=store.cache_window().total_seconds())
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output

    refreshed = refresh(issuer, client.id, secret, before["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    after = refreshed.json()["access_token"]
    header = jwt.get_unverified_header(after)
    new_kid = header["kid"]
    assert header["typ"] == "at+jwt" and new_kid != old_kid
    # The new key was published (as next) before it signed, so caches already hold it...
    assert new_kid in kids_before
    assert validate(cached, after, issuer)["sub"] == user.id
    # ...and the old key stays published, so a service that fetches the JWKS afresh accepts both.
    assert {old_kid, new_kid} <= set(published_kids(issuer))
    fresh = jwt.PyJWKClient(issuer + "/.well-known/jwks.json", cache_keys=False, cache_jwk_set=False)
    assert validate(fresh, before["access_token"], issuer)["sub"] == user.id
    assert validate(fresh, after, issuer)["sub"] == user.id
