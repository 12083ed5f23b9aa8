"""Server-side SSO sessions behind the signed session cookie."""

import secrets
import time
from datetime import timedelta

from flask import current_app, g
from flask import session as cookie
from sqlalchemy import update

from idp.db import db, utcnow
from idp.users.models import Session, User

BROWSER = "bid"  # the cookie key naming this browser, so a waiting request works only where it began


def current_session() -> Session | None:
    """Return the browser's live SSO session, if any."""
    if "sso" not in g:
        row = db.session.get(Session, cookie["sid"]) if "sid" in cookie else None
        if row is not None and (row.ended_at is not None or row.expires_at <= utcnow()):
            row = None
        g.sso = row
    return g.sso


def start_session(user: User, ip: str | None = None) -> Session:
    """Sign a user in: a new session row and a new cookie (the session id rotates).

    Counts the sign-in (`logins_count`) and keeps the client's address (`last_ip`), as Auth0 does.
    """
    old = current_session()
    if old is not None:
        old.ended_at = utcnow()
    kept = {k: cookie[k] for k in (BROWSER,) if k in cookie}  # so waiting requests stay ours
    cookie.clear()  # drops the old sid and CSRF token with it
    cookie.update(kept)
    cookie.permanent = True
    lifetime = current_app.config["SESSION_LIFETIME"]
    row = Session(
        id=secrets.token_urlsafe(24), user_id=user.id, auth_time=int(time.time()),
        expires_at=utcnow() + timedelta(seconds=lifetime),
    )
    db.session.add(row)
    user.last_login_at = utcnow()
    user.last_ip = ip
    db.session.flush()
    # Counted in SQL, so that concurrent sign-ins all count; the commit below expires the stale value.
    db.session.execute(update(User).where(User.id == user.id).values(logins_count=User.logins_count + 1)
                       .execution_options(synchronize_session=False))
    db.session.commit()
    cookie["sid"] = row.id
    g.sso = row
    return row


def end_user_sessions(user_id: str, keep: str | None = None) -> None:
    """End every SSO session of a user except `keep`; the caller commits."""
    db.session.execute(
        update(Session)
        .where(Session.user_id == user_id, Session.ended_at.is_(None), Session.id != (keep or ""))
        .values(ended_at=utcnow()).execution_options(synchronize_session=False)
    )


def end_session() -> None:
    """Sign the browser out."""
    row = current_session()
    if row is not None:
        row.ended_at = utcnow()
        db.session.commit()
    browser = cookie.get(BROWSER)
    cookie.clear()
    if browser:
        cookie[BROWSER] = browser  # requests this browser started stay its own
    g.sso = None
