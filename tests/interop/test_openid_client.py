"""panva's openid-client (node) runs the code + PKCE + refresh flow against the live provider."""

from typing import Any

import pytest
import requests

from idp.oauth.clients import create_client
from tests.conftest import PASSWORD, LiveServer
from tests.interop import node_rp
from tests.interop.browser import REDIRECT_URI, sign_in

pytestmark = pytest.mark.usefixtures("openid_client")


def run_rp(server: LiveServer, email: str, *flags: str) -> dict[str, Any]:
    """Register a confidential client and run openid-client against the server, signing in as `email`."""
    client, secret = create_client("openid-client", [REDIRECT_URI], first_party=True)
    assert secret is not None
    with requests.Session() as browser:
        return node_rp.run(server.url, client.id, secret, REDIRECT_URI,
                           lambda url: sign_in(browser, url, email, PASSWORD), *flags)


def check_result(result: dict[str, Any], issuer: str, user_id: str) -> None:
    """Assert what openid-client reports after a full flow."""
    assert result["ok"] is True, result
    assert result["issuer"] == issuer
    claims = result["id_token_claims"]
    assert claims["sub"] == user_id and claims["iss"] == issuer
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["userinfo"]["email"] == "ada@example.com"
    assert result["userinfo"]["name"] == "Ada Lovelace"
    assert result["token_type"] == "bearer"
    assert result["refresh_token_rotated"] is True and result["refreshed_has_access_token"]
    assert result["reuse_error"] and result["reuse_error"]["error"] == "invalid_grant"
    assert result["family_error"] and result["family_error"]["error"] == "invalid_grant"
    # The ID token's signature was checked against the published keys.
    assert "GET /.well-known/jwks.json" in result["requests"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_openid_client_code_flow(live_server: LiveServer, user: Any) -> None:
    """Sign in, exchange the code, read userinfo, rotate the refresh token, refuse its reuse."""
    check_result(run_rp(live_server, user.email), live_server.url, user.id)


def test_openid_client_verifies_id_token_signature(live_server: LiveServer, user: Any) -> None:
    """Refuse an ID token whose signature was altered in transit: the JWKS check is really on."""
    result = run_rp(live_server, user.email, "--tamper-id-token")
    assert result["ok"] is False, result
    assert result["error"]["cause"] == "JWT signature verification failed", result["error"]
    assert "GET /.well-known/jwks.json" in result["requests"]
