"""Per-account protection in Chromium: failed sign-ins throttle, then lock; both lift, and reveal nothing."""

from collections.abc import Callable
from typing import Any

from flask import Flask
from playwright.sync_api import Page, Response

from idp import mail
from tests.browser.pages import Screenshots, alert, follow, heading, sign_in, submit, visit, wait_out, words
from tests.conftest import PASSWORD, LiveServer
from tests.mailbox import Mailbox

WRONG = "Wrong email or password."
THROTTLED = "Too many failed sign-ins. Wait 1 second and try again."
NEW_PASSWORD = "a fresh start after the lock"
UNKNOWN = "nobody@example.com"


def locked(minutes: int) -> str:
    """Return the message of a locked account."""
    unit = "minute" if minutes == 1 else "minutes"
    return (f"Too many failed sign-ins: this account is locked for {minutes} more {unit}. "
            "Reset your password to unlock it now.")


def protect(app: Flask, *, throttle_after: int, lockout_threshold: int, lockout_seconds: int) -> None:
    """Set small limits; every delay is one second."""
    app.config.update(THROTTLE_AFTER=throttle_after, THROTTLE_MAX_DELAY=1,
                      LOCKOUT_THRESHOLD=lockout_threshold, LOCKOUT_SECONDS=lockout_seconds)


def refused(response: Response, page: Page, status: int, message: str) -> None:
    """Assert the login page came back with this status and message, and is still the login page."""
    assert response.status == status, alert(page)
    assert alert(page) == message
    assert heading(page) == "Sign in"
    if status == 429:
        assert response.headers["retry-after"].isdigit()


def test_throttling_and_locking_lift(app: Flask, page: Page, shots: Screenshots, live_server: LiveServer,
                                     mailbox: Mailbox, user: Any) -> None:
    """Failures throttle, then lock (the owner is mailed); the lock refuses the right password, then lifts."""
    protect(app, throttle_after=2, lockout_threshold=3, lockout_seconds=3)
    visit(page, live_server.url + "/u/login")
    shots.take(page, "login")

    refused(sign_in(page, user.email, "wrong password 1"), page, 400, WRONG)
    shots.take(page, "wrong-password")
    refused(sign_in(page, user.email, "wrong password 2"), page, 400, WRONG)

    # Two failures: the next attempt must wait, whatever it is.
    throttled = sign_in(page, user.email, "wrong password 3")
    refused(throttled, page, 429, THROTTLED)
    shots.take(page, "throttled")
    wait_out(throttled)

    # The wait is over: the third failure is counted, and locks the account.
    refused(sign_in(page, user.email, "wrong password 3"), page, 400, WRONG)
    lock = sign_in(page, user.email, PASSWORD)  # even the right password
    refused(lock, page, 429, locked(1))
    assert int(lock.headers["retry-after"]) <= 3
    shots.take(page, "locked-right-password-refused")

    message = mailbox.wait_for(user.email)
    assert message["Subject"] == "Your account was locked after failed sign-ins"
    assert Mailbox.link(message) == live_server.url + "/u/reset-password?email=ada@example.com"

    # The lock lifts by itself.
    wait_out(lock)
    landed = sign_in(page, user.email, PASSWORD)
    assert landed.status == 200 and landed.url == live_server.url + "/u/account"
    shots.take(page, "signed-in-after-lock")
    assert heading(page) == "Your account"


def test_password_reset_unlocks_at_once(app: Flask, page: Page, shots: Screenshots, live_server: LiveServer,
                                        mailbox: Mailbox, user: Any) -> None:
    """A locked account is unlocked as soon as its password is reset through the mailed link."""
    protect(app, throttle_after=5, lockout_threshold=2, lockout_seconds=600)
    visit(page, live_server.url + "/u/login")
    refused(sign_in(page, user.email, "wrong password 1"), page, 400, WRONG)
    refused(sign_in(page, user.email, "wrong password 2"), page, 400, WRONG)
    refused(sign_in(page, user.email, PASSWORD), page, 429, locked(10))
    shots.take(page, "locked")
    assert mailbox.wait_for(user.email)["Subject"] == "Your account was locked after failed sign-ins"

    # Forgot your password? → the reset mail → a new password.
    follow(page, "Forgot your password?")
    shots.take(page, "reset-request")
    page.get_by_label("Email", exact=True).fill(user.email)
    assert submit(page, "Send the link").status == 200
    assert heading(page) == "Check your inbox"
    message = mailbox.wait_for(user.email)
    assert message["Subject"] == "Reset your password"
    visit(page, Mailbox.link(message))
    shots.take(page, "new-password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password", exact=True).fill(NEW_PASSWORD)
    assert submit(page, "Set the new password").status == 200
    assert heading(page) == "Password changed"

    # Unlocked at once: the new password signs in, minutes before the lock would have lifted.
    follow(page, "Sign in")
    landed = sign_in(page, user.email, NEW_PASSWORD)
    assert landed.status == 200 and landed.url == live_server.url + "/u/account"
    shots.take(page, "signed-in-after-reset")
    assert heading(page) == "Your account"


def test_unknown_email_gets_the_same_answers(app: Flask, new_page: Callable[[], Page], shots: Screenshots,
                                             live_server: LiveServer, mailbox: Mailbox, user: Any) -> None:
    """An address without an account is throttled and locked with the same pages as one with an account."""
    protect(app, throttle_after=2, lockout_threshold=3, lockout_seconds=60)
    emails = {"known": user.email, "unknown": UNKNOWN}
    pages = {who: new_page() for who in emails}
    seen: dict[str, list[tuple[int, str]]] = {who: [] for who in emails}
    for page in pages.values():
        visit(page, live_server.url + "/u/login")

    def one(who: str, step: str, password: str, screenshot: bool = True) -> Response:
        """Try one password for one address; return the answer."""
        answer = sign_in(pages[who], emails[who], password)
        seen[who].append((answer.status, words(pages[who].locator("main").inner_text())))
        if screenshot:
            shots.take(pages[who], f"{who}-{step}")
        return answer

    def attempt(step: str, password: str) -> list[Response]:
        """Try one password for both addresses, one right after the other; return the answers."""
        return [one(who, step, password) for who in pages]

    attempt("wrong-1", "wrong password 1")
    throttled = []
    for who in pages:  # each address's next attempt comes right after its second, within the 1 s wait
        one(who, "wrong-2", "wrong password 2", screenshot=False)
        throttled.append(one(who, "throttled", "wrong password 3"))
    assert [(a.status, a.headers["retry-after"]) for a in throttled] == [(429, "1")] * 2
    wait_out(throttled[-1])
    attempt("wrong-3-locks", "wrong password 3")
    attempt("locked", PASSWORD)

    assert [status for status, _ in seen["known"]] == [400, 400, 429, 400, 429]
    assert seen["known"] == seen["unknown"]
    assert locked(1) in seen["unknown"][-1][1]

    # The reset request answers alike too; only the owner of a real account gets mail.
    answers = {}
    for who, page in pages.items():
        follow(page, "Forgot your password?")
        page.get_by_label("Email", exact=True).fill(emails[who])
        assert submit(page, "Send the link").status == 200
        answers[who] = words(page.locator("main").inner_text()).replace(emails[who], "<email>")
    assert answers["known"] == answers["unknown"]
    mail.wait_for_sent(5)
    recipients = [str(m["X-RcptTo"]) for m in mailbox.messages]
    assert recipients == [user.email, user.email]  # the lock notice and the reset link
