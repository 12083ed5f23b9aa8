"""Signed, single-use, expiring links for emailed actions."""

import secrets
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from idp.db import claim_once, db, utcnow
from idp.errors import InvalidInput
from idp.oauth.models import digest
from idp.pages.models import AccountToken
from idp.users.models import User, normalize

VERIFY_EMAIL, RESET_PASSWORD = "verify_email", "reset_password"
LIFETIMES = {VERIFY_EMAIL: "EMAIL_VERIFICATION_LIFETIME", RESET_PASSWORD: "PASSWORD_RESET_LIFETIME"}
USED = "This link has already been used. Ask for a new one if you need to."
# Seconds after its use during which a link's form may come again (a double click, a resubmission).
RESUBMIT_WINDOW = 60


class LinkError(InvalidInput):
    """A link that cannot be used; the message is fit to show the user."""


class LinkUsed(LinkError):
    """A link that was used already; `row` is its stored token."""

    def __init__(self, row: AccountToken) -> None:
        super().__init__(USED)
        self.row = row


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"idp.{purpose}")


def issue(purpose: str, email: str, connection_id: str, user_id: str | None) -> str:
    """Create a link token for an account (without user_id: a legacy user not moved over yet).

    The caller commits.
    """
    lifetime = current_app.config[LIFETIMES[purpose]]
    value = secrets.token_urlsafe(32)
    db.session.add(AccountToken(
        digest=digest(value), user_id=user_id, connection_id=connection_id, purpose=purpose, email=email,
        expires_at=utcnow() + timedelta(seconds=lifetime),
    ))
    return str(_serializer(purpose).dumps(value))


def peek(token: str, purpose: str) -> AccountToken:
    """Return the stored token behind a link, or say why the link cannot be used."""
    try:
        value = _serializer(purpose).loads(token, max_age=current_app.config[LIFETIMES[purpose]])
    except SignatureExpired:
        raise LinkError("This link has expired. Ask for a new one.") from None
    except BadSignature:
        raise LinkError("This link is not valid. Check that you copied all of it.") from None
    row = db.session.get(AccountToken, digest(str(value)))
    if row is None or row.purpose != purpose:
        raise LinkError("This link is not valid. Check that you copied all of it.")
    if row.used_at is not None:
        raise LinkUsed(row)
    if row.expires_at <= utcnow():
        raise LinkError("This link has expired. Ask for a new one.")
    return row


def redeem(token: str, purpose: str) -> AccountToken:
    """Use a link once; the caller commits together with the action it performs."""
    row = peek(token, purpose)
    if not claim_once(AccountToken, AccountToken.digest == row.digest, AccountToken.used_at.is_(None),
                      used_at=utcnow()):  # a concurrent click won
        db.session.rollback()
        raise LinkUsed(row)
    return row


def just_used(row: AccountToken) -> bool:
    """Say whether a used link was used within the last RESUBMIT_WINDOW seconds."""
    return row.used_at is not None and utcnow() - row.used_at < timedelta(seconds=RESUBMIT_WINDOW)


def user_of(row: AccountToken) -> User | None:
    """Return the local user a link belongs to, if they still use the address it was sent to."""
    user = db.session.get(User, row.user_id) if row.user_id else None
    if user is not None and user.email_normalized != normalize(row.email):
        raise LinkError("This link was sent to an address the account no longer uses.")
    return user
