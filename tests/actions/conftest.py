"""Post-login action helpers: signing in through the real code flow and reading the tokens as an RP does."""

from typing import Any

import jwt
import pytest
from sqlalchemy import select

from idp.db import db
from idp.events.models import LogEvent
from tests.conftest import PASSWORD
from tests.support import Browser, RegisteredClient, auth


def verified(browser: Browser, token: str, audience: str | None = None) -> dict[str, Any]:
    """Return a JWT's claims, checked against the keys idp publishes."""
    header = jwt.get_unverified_header(token)
    keys = {k["kid"]: k for k in browser.get("/.well-known/jwks.json").json["keys"]}
    return jwt.decode(token, jwt.PyJWK(keys[header["kid"]]).key, algorithms=["RS256"], audience=audience,
                      options={"verify_aud": audience is not None})


def callback(browser: Browser, rp: RegisteredClient, **params: Any) -> dict[str, str]:
    """Sign Ada in as a signed-out visitor; return what the client's callback receives."""
    browser.client.delete_cookie("idp_session")
    return browser.sign_in(rp, "ada@example.com", PASSWORD, **params)


def signed_in(browser: Browser, rp: RegisteredClient, **params: Any) -> dict[str, Any]:
    """Sign in and exchange the code; return the token response with the verified claims added."""
    answer = callback(browser, rp, **{"state": "st-1", **params})
    assert "code" in answer, answer
    body = browser.exchange(rp, answer["code"]).json
    body["id_claims"] = verified(browser, body["id_token"], audience=rp.id)
    body["access_claims"] = verified(browser, body["access_token"])
    return body


def refresh(browser: Browser, rp: RegisteredClient, refresh_token: str) -> Any:
    """Exchange a refresh token; return the response."""
    return browser.client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                     "refresh_token": refresh_token}, **auth(rp))


def events_of(type_: str) -> list[LogEvent]:
    """Return the log events of a type, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(LogEvent).where(LogEvent.type == type_).order_by(LogEvent.log_id)))


@pytest.fixture
def ada(user: Any) -> Any:
    """The signed-up native user the actions run for."""
    return user
