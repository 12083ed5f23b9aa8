"""The mails the hosted pages send; links are built on the issuer, never on the Host header."""

from typing import Any

from flask import current_app, render_template, url_for

from idp import mail
from idp.connections import legacy, stores
from idp.connections.stores import Recipient
from idp.db import db
from idp.pages import links
from idp.users.models import User


def absolute(endpoint: str, **values: Any) -> str:
    """Return a URL under the issuer (a spoofed Host header must not poison emailed links)."""
    return current_app.config["ISSUER"] + url_for(endpoint, **values)


def _send(to: User | Recipient, subject: str, template: str, **context: object) -> None:
    """Queue a mail in the current transaction; the caller commits."""
    context = {"user": to, "subject": subject, **context}
    text = render_template(f"mail/{template}.txt", **context)
    html = render_template(f"mail/{template}.html", **context)
    mail.send_later(to.email, subject, text, html)


def verification(user: User) -> None:
    """Send the link that verifies a user's email address; the caller commits."""
    token = links.issue(links.VERIFY_EMAIL, user.email, user.connection_id, user.id)
    _send(user, "Verify your email address", "verify", link=absolute("pages.verify_email", token=token))


def password_reset(email: str, connection_id: str, state: str | None) -> None:
    """Send a password-reset link if the email has an account (here or in the legacy store)."""
    # The lookup runs in the mail sender after the answer has gone, so its time cannot tell whether
    # the account exists; the request is stored now, before the user is told to check their inbox.
    mail.in_background(_reset, email=email, connection_id=connection_id, state=state)
    db.session.commit()


@mail.task
def _reset(email: str, connection_id: str, state: str | None) -> None:
    """Look the account up and queue its reset mail; the mail sender runs it and commits token and mail."""
    store = stores.by_id(connection_id)
    try:
        recipient = store.recipient(email)
    except legacy.ProfileRefused:
        return  # refused for good (logged and recorded): asking again would meet the same refusal
    except legacy.LegacyUnavailable as error:
        # Busy, breaker open, store or sandbox down: the user was told to check their inbox, so the
        # sender tries again with its growing waits until MAIL_GIVE_UP_AFTER.
        raise mail.MailError(f"the legacy store of connection {store.connection.name} did not answer: "
                             f"{error}") from None
    if recipient is None:
        return
    token = links.issue(links.RESET_PASSWORD, recipient.email, store.id, recipient.user_id)
    params = {"token": token, **({"state": state} if state else {})}
    _send(recipient, "Reset your password", "reset", link=absolute("pages.reset_password", **params))


def locked(user: User) -> None:
    """Tell the owner that repeated failed sign-ins locked their account for a while."""
    minutes = -(-current_app.config["LOCKOUT_SECONDS"] // 60)
    _send(user, "Your account was locked after failed sign-ins", "locked",
          link=absolute("pages.reset_request", email=user.email),
          duration=f"{minutes} minute" + ("" if minutes == 1 else "s"))
    db.session.commit()  # the sign-in pages answer without committing
