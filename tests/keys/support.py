"""Helpers for the signing-key tests: key states, the published kids, ageing keys."""

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from idp.db import db
from idp.keys.models import SigningKey


def states() -> dict[str, list[str]]:
    """Return the kids by state."""
    found: dict[str, list[str]] = {}
    for key in db.session.scalars(select(SigningKey)):
        found.setdefault(key.state, []).append(key.kid)
    return found


def jwks_kids(app: Flask) -> set[str]:
    """Return the kids the JWKS endpoint publishes."""
    return {k["kid"] for k in app.test_client().get("/.well-known/jwks.json").json["keys"]}


def age(kid: str, **delta: float) -> None:
    """Move a key's timestamps into the past."""
    key = db.session.get(SigningKey, kid)
    assert key is not None
    past = timedelta(**delta)
    key.created_at -= past
    if key.activated_at:
        key.activated_at -= past
    if key.deactivated_at:
        key.deactivated_at -= past
    db.session.commit()
