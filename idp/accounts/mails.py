"""The mails the hosted pages send; links are built on the issuer, never on the Host header."""

from flask import current_app, render_template, url_for

from idp import mail
from idp.accounts import links
from idp.accounts.models import User
from idp.accounts.users import find_by_email
from idp.db import db


def absolute(endpoint: str, **values: str) -> str:
    """Return a URL under the issuer (a spoofed Host header must not poison emailed links)."""
    return current_app.config["ISSUER"] + url_for(endpoint, **values)


def _send(user: User, subject: str, template: str, **context: str) -> None:
    context = {"user": user, "subject": subject, **context}
    text = render_template(f"mail/{template}.txt", **context)
    html = render_template(f"mail/{template}.html", **context)
    mail.send_later(user.email, subject, text, html)


def verification(user: User) -> None:
    """Send the link that verifies a user's email address; the caller commits."""
    token = links.issue(user, links.VERIFY_EMAIL)
    _send(user, "Verify your email address", "verify", link=absolute("accounts.verify_email", token=token))


def password_reset(email: str, state: str | None) -> None:
    """Send a password-reset link if the email has an account, after the answer has gone."""

    def job() -> None:
        user = find_by_email(email)
        if user is None:
            return
        token = links.issue(user, links.RESET_PASSWORD)
        db.session.commit()
        params = {"token": token, **({"state": state} if state else {})}
        _send(user, "Reset your password", "reset", link=absolute("accounts.reset_password", **params))

    mail.in_background(job)


def locked(user: User) -> None:
    """Tell the owner that repeated failed sign-ins locked their account for a while."""
    minutes = str(current_app.config["LOCKOUT_SECONDS"] // 60)
    _send(user, "Your account was locked after failed sign-ins", "locked",
          link=absolute("accounts.reset_request"), minutes=minutes)
