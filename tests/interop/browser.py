"""A user agent over real HTTP: follows the provider's redirects and fills in its login form."""

import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from tests.support import csrf_token, pkce

TIMEOUT = 10  # seconds for any one request
REDIRECT_URI = "http://127.0.0.1:9/callback"  # loopback discard port: never actually fetched


def sign_in(session: requests.Session, authorization_url: str, email: str, password: str,
            redirect_uri: str = REDIRECT_URI) -> str:
    """Open an authorization URL, sign in when asked, and return the callback URL (not fetched)."""
    response = session.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    signed_in = False
    for _ in range(10):
        if response.status_code == 200 and urlsplit(response.url).path == "/u/login" and not signed_in:
            response = session.post(response.url, allow_redirects=False, timeout=TIMEOUT, data={
                "csrf_token": csrf_token(response.text), "email": email, "password": password,
            })
            signed_in = True
            continue
        location = response.headers.get("Location")
        assert response.status_code in (302, 303) and location, (
            f"{response.request.method} {response.url} answered {response.status_code}: "
            f"{response.text[:500]}"
        )
        target = urljoin(response.url, location)
        if target.startswith(redirect_uri):
            return target
        response = session.get(target, allow_redirects=False, timeout=TIMEOUT)
    raise AssertionError("too many redirects before reaching the redirect URI")


def authorization_url(issuer: str, client_id: str, challenge: str, state: str,
                      redirect_uri: str = REDIRECT_URI) -> str:
    """Build an authorization request for the code flow with PKCE S256."""
    return issuer + "/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": "openid profile email", "state": state, "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
    })


def code_flow(session: requests.Session, issuer: str, client_id: str, secret: str, email: str,
              password: str, redirect_uri: str = REDIRECT_URI) -> dict[str, Any]:
    """Run the code flow over HTTP and return the token response (client_secret_basic)."""
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(8)
    callback = sign_in(session, authorization_url(issuer, client_id, challenge, state, redirect_uri),
                       email, password, redirect_uri)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert params["state"] == state and params["iss"] == issuer, params
    response = requests.post(issuer + "/oauth/token", auth=(client_id, secret), timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    })
    assert response.status_code == 200, response.text
    return response.json()


def refresh(issuer: str, client_id: str, secret: str, refresh_token: str) -> requests.Response:
    """Use a refresh token at the token endpoint (client_secret_basic)."""
    return requests.post(issuer + "/oauth/token", auth=(client_id, secret), timeout=TIMEOUT, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
    })
