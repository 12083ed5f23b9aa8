"""Helpers that act like a browser and a relying party against the test client."""

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

T = TypeVar("T")

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


@dataclass
class RegisteredClient:
    """A client as its owner knows it."""

    id: str
    secret: str | None
    redirect_uri: str


def csrf_token(html: str) -> str:
    """Return the CSRF token of the first form on a page."""
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def pkce() -> tuple[str, str]:
    """Return a (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def query(location: str) -> dict[str, str]:
    """Return the query parameters of a redirect target."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """A user agent: keeps cookies, follows our redirects, fills in the hosted forms."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.client.get(url, **kwargs)

    def authorize(self, rp: RegisteredClient, **params: Any) -> TestResponse:
        """Send an authorization request; return the first response."""
        request = {
            "response_type": "code", "client_id": rp.id, "redirect_uri": rp.redirect_uri,
            "scope": "openid profile email", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), **params,
        }
        request = {k: v for k, v in request.items() if v is not None}
        return self.client.get("/authorize?" + urlencode(request))

    def login(self, login_page: str, email: str, password: str) -> TestResponse:
        """Fill in and submit the login form at a login-page URL."""
        page = self.client.get(login_page)
        assert page.status_code == 200, page.text
        return self.client.post(login_page, data={
            "csrf_token": csrf_token(page.text), "email": email, "password": password,
        })

    def follow(self, response: TestResponse, until: str) -> TestResponse:
        """Follow redirects on our own host until one leaves for `until` (a URL prefix)."""
        for _ in range(10):
            location = response.headers.get("Location", "")
            if response.status_code not in (301, 302, 303) or location.startswith(until):
                return response
            response = self.client.get(location)
        raise AssertionError("redirect loop")

    def sign_in(self, rp: RegisteredClient, email: str, password: str, **params: Any) -> dict[str, str]:
        """Run the whole front channel and return the parameters the client's callback receives."""
        response = self.authorize(rp, **params)
        assert response.status_code == 302, response.text
        if urlsplit(response.headers["Location"]).path == "/u/login":
            response = self.login(response.headers["Location"], email, password)
        response = self.follow(response, rp.redirect_uri)
        assert response.status_code == 302, response.text
        return query(response.headers["Location"])

    def exchange(self, rp: RegisteredClient, code: str, **extra: Any) -> TestResponse:
        """Exchange a code at the token endpoint, authenticating with client_secret_basic."""
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri, **extra}
        return self.client.post("/oauth/token", data=data, **auth(rp))


def auth(rp: RegisteredClient) -> dict[str, Any]:
    """Return test-client arguments that authenticate a client (basic for confidential ones)."""
    if rp.secret is None:
        return {}
    return {"auth": (rp.id, rp.secret)}


def in_threads(*targets: Callable[[], object], timeout: float = 60) -> None:
    """Run each callable in a thread of its own, all started together; wait for them (bounded)."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


def eventually(check: Callable[[], T], timeout: float = 10) -> T:
    """Return the first true value of `check()`, asking again until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.02)
    return value


def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every argon2id hash computed from now on (what sign-up's timing depends on)."""
    computed: list[str] = []
    original = PasswordHasher.hash

    def counting(self: PasswordHasher, password: str | bytes, **options: Any) -> str:
        computed.append(original(self, password, **options))
        return computed[-1]

    monkeypatch.setattr(PasswordHasher, "hash", counting)
    return computed
