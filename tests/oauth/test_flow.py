"""The authorization-code flow end to end, on SQLite and PostgreSQL."""

import jwt
import pytest

from idp.oauth.tokens import half_hash
from tests.conftest import PASSWORD
from tests.support import auth, pkce

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_code_flow_issues_verifiable_tokens(browser, user, rp, app):
    verifier, challenge = pkce()
    callback = browser.sign_in(rp, user.email, PASSWORD, nonce="n-0S6", state="s-1",
                               code_challenge=challenge, code_challenge_method="S256")
    assert callback["state"] == "s-1"
    assert callback["iss"] == "http://localhost"
    response = browser.exchange(rp, callback["code"], code_verifier=verifier)
    assert response.status_code == 200, response.text
    body = response.json
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    jwks = browser.get("/.well-known/jwks.json").json
    header = jwt.get_unverified_header(body["id_token"])
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(body["id_token"], jwt.PyJWK(key).key, algorithms=["RS256"], audience=rp.id,
                        issuer="http://localhost")
    assert claims["sub"] == user.id
    assert claims["nonce"] == "n-0S6"
    assert claims["at_hash"] == half_hash(body["access_token"])
    assert claims["sid"] and claims["auth_time"] <= claims["iat"]
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is True

    info = browser.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.json["sub"] == user.id and info.json["name"] == "Ada Lovelace"

    refreshed = browser.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, **auth(rp))
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json["refresh_token"] != body["refresh_token"]
