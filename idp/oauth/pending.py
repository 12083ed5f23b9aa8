"""Authorization requests kept in the database while their user signs in or consents."""

import re
import secrets
from datetime import timedelta

from flask import current_app
from flask import session as cookie
from sqlalchemy import delete

from idp.db import db, utcnow
from idp.oauth.models import AuthorizationRequest, Client
from idp.users.sessions import BROWSER

HANDLE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what secrets.token_urlsafe(16) makes


def remember(params: dict[str, str]) -> str:
    """Store an authorization request for this browser; return the handle for the login URL."""
    now = utcnow()
    db.session.execute(delete(AuthorizationRequest).where(AuthorizationRequest.expires_at < now))
    cookie.setdefault(BROWSER, secrets.token_urlsafe(16))
    row = AuthorizationRequest(
        id=secrets.token_urlsafe(16), browser=cookie[BROWSER], params=params, created_at=now,
        expires_at=now + timedelta(seconds=current_app.config["LOGIN_TRANSACTION_LIFETIME"]),
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def find(handle: str | None) -> AuthorizationRequest | None:
    """Return this browser's waiting request by handle, unless unknown or expired."""
    if not handle or not HANDLE.fullmatch(handle) or BROWSER not in cookie:
        return None
    row = db.session.get(AuthorizationRequest, handle)
    if row is None or row.expires_at <= utcnow() or not secrets.compare_digest(row.browser, cookie[BROWSER]):
        return None
    return row


def decide(row: AuthorizationRequest, *, allowed: bool) -> None:
    """Record the user's consent decision on a waiting request."""
    row.consented, row.denied = allowed, not allowed
    db.session.commit()


def forget(row: AuthorizationRequest | None) -> None:
    """Drop a waiting request once it is answered."""
    if row is not None:
        db.session.delete(row)
        db.session.commit()


def client_of(row: AuthorizationRequest | None) -> Client | None:
    """Return the client a waiting request came from."""
    client_id = row.client_id if row else None
    return db.session.get(Client, client_id) if isinstance(client_id, str) and len(client_id) <= 64 else None
