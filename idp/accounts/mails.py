"""The mails the hosted pages send; links are built on the issuer, never on the Host header."""

from dataclasses import dataclass

from flask import current_app, render_template, url_for

from idp import mail
from idp.accounts import links
from idp.accounts.models import User
from idp.accounts.users import find_by_email
from idp.db import db
from idp.migration import flows
from idp.migration.models import Connection


def absolute(endpoint: str, **values: str) -> str:
    """Return a URL under the issuer (a spoofed Host header must not poison emailed links)."""
    return current_app.config["ISSUER"] + url_for(endpoint, **values)


@dataclass(frozen=True)
class Recipient:
    """Who a mail greets and goes to: a user, or a legacy user not moved over yet."""

    email: str
    name: str | None


def _send(to: User | Recipient, subject: str, template: str, **context: str) -> None:
    context = {"user": to, "subject": subject, **context}
    text = render_template(f"mail/{template}.txt", **context)
    html = render_template(f"mail/{template}.html", **context)
    mail.send_later(to.email, subject, text, html)


def verification(user: User) -> None:
    """Send the link that verifies a user's email address; the caller commits."""
    token = links.issue(links.VERIFY_EMAIL, user.email, user.connection_id, user.id)
    _send(user, "Verify your email address", "verify", link=absolute("accounts.verify_email", token=token))


def password_reset(email: str, connection_id: str, state: str | None) -> None:
    """Send a password-reset link if the email has an account (here or in the legacy store).

    The lookup runs after the answer has gone, so its time cannot tell whether the account exists.
    """

    def job() -> None:
        connection = db.session.get(Connection, connection_id)
        recipient: User | Recipient | None = find_by_email(email, connection_id)
        user_id = recipient.id if isinstance(recipient, User) else None
        if recipient is None and connection is not None:
            try:
                profile = flows.legacy_profile(connection, email, "password_reset")
            except flows.LegacyUnavailable:
                return  # logged and recorded; the user may ask again
            recipient = Recipient(profile.email, profile.name) if profile else None
        if recipient is None:
            return
        token = links.issue(links.RESET_PASSWORD, recipient.email, connection_id, user_id)
        db.session.commit()
        params = {"token": token, **({"state": state} if state else {})}
        _send(recipient, "Reset your password", "reset", link=absolute("accounts.reset_password", **params))

    mail.in_background(job)


def locked(user: User) -> None:
    """Tell the owner that repeated failed sign-ins locked their account for a while."""
    minutes = -(-current_app.config["LOCKOUT_SECONDS"] // 60)
    _send(user, "Your account was locked after failed sign-ins", "locked",
          link=absolute("accounts.reset_request", email=user.email),
          duration=f"{minutes} minute" + ("" if minutes == 1 else "s"))
