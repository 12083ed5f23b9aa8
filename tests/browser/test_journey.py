"""The whole journey in Chromium, JavaScript off: sign up, verify, sign in, reset, sign in again, sign out."""

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page

from tests.browser.pages import (
    Screenshots,
    alert,
    claim,
    follow,
    heading,
    sign_in,
    submit,
    userinfo,
    visit,
)
from tests.conftest import LiveServer
from tests.mailbox import Mailbox

EMAIL = "grace@example.com"
NAME = "Grace Hopper"
FIRST_PASSWORD = "cobol compilers 1959"
NEW_PASSWORD = "nanoseconds of wire 1985"


def at(page: Page, base: str, path: str) -> dict[str, list[str]]:
    """Assert the page is at base+path and return its query parameters."""
    url = urlsplit(page.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == base + path, page.url
    return parse_qs(url.query)


def test_journey(page: Page, shots: Screenshots, live_server: LiveServer, rp_url: str,
                 mailbox: Mailbox) -> None:
    """Sign up from the RP, verify the email, sign in, reset the password, sign in with it, sign out."""
    idp = live_server.url

    # The relying party, signed out.
    assert visit(page, rp_url + "/").status == 200
    shots.take(page, "rp-home")
    assert heading(page) == "A relying party"

    # Its sign-in link leads to the provider's login page, for this application.
    assert follow(page, "Sign in with idp").status == 200
    state = at(page, idp, "/u/login")["state"]
    shots.take(page, "login")
    assert heading(page) == "Sign in"
    assert "to continue to Demo app" in page.locator(".lead").inner_text()

    # No account yet: sign up, keeping the authorization request.
    assert follow(page, "Sign up").status == 200
    assert at(page, idp, "/u/signup")["state"] == state
    shots.take(page, "signup")
    assert heading(page) == "Create your account"
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(FIRST_PASSWORD)
    page.get_by_label("Name", exact=True).fill(NAME)
    shots.take(page, "signup-filled")
    landed = submit(page, "Sign up")

    # Signed up and signed in: back at the RP, whose ID token says the email is not verified yet.
    assert landed.status == 200 and landed.url == rp_url + "/"
    shots.take(page, "rp-signed-in-unverified")
    assert heading(page) == f"Hello, {NAME}"
    assert claim(page, "email") == EMAIL and claim(page, "email_verified") == "false"
    assert claim(page, "iss") == idp
    sub = claim(page, "sub")

    # The verification mail's link verifies the address.
    message = mailbox.wait_for(EMAIL)
    assert message["Subject"] == "Verify your email address"
    link = Mailbox.link(message)
    assert link.startswith(idp + "/u/verify-email?token=")
    assert visit(page, link).status == 200
    shots.take(page, "email-verified")
    assert heading(page) == "Email verified"
    assert page.get_by_role("status").inner_text() == f"Thank you: {EMAIL} is verified."
    assert follow(page, "Go to your account").status == 200
    at(page, idp, "/u/account")
    shots.take(page, "account")
    assert heading(page) == "Your account"
    assert page.get_by_text("Your email address is verified.").is_visible()

    # Back to the app, which still holds the ID token issued before: sign out of it.
    visit(page, rp_url + "/")
    assert claim(page, "email_verified") == "false"
    landed = follow(page, "Sign out", first=True)  # the one in the header (its twin is at the bottom)
    assert landed.status == 200 and at(page, rp_url, "/")["state"]
    shots.take(page, "rp-signed-out")
    assert page.get_by_role("status").inner_text() == "You are signed out, here and at the provider."

    # Sign in to the RP with the password: the new ID token says the email is verified.
    follow(page, "Sign in with idp")
    at(page, idp, "/u/login")
    shots.take(page, "login-again")
    landed = sign_in(page, EMAIL, FIRST_PASSWORD)
    assert landed.status == 200 and landed.url == rp_url + "/"
    shots.take(page, "rp-signed-in-verified")
    assert claim(page, "sub") == sub and claim(page, "email_verified") == "true"
    assert userinfo(page)["email_verified"] is True and userinfo(page)["name"] == NAME

    # Forgot the password: sign out, and ask for a reset link from the login page.
    follow(page, "Sign out", first=True)
    follow(page, "Sign in with idp")
    state = at(page, idp, "/u/login")["state"]
    assert follow(page, "Forgot your password?").status == 200
    assert at(page, idp, "/u/reset-password")["state"] == state
    shots.take(page, "reset-request")
    assert heading(page) == "Reset your password"
    page.get_by_label("Email", exact=True).fill(EMAIL)
    assert submit(page, "Send the link").status == 200
    shots.take(page, "reset-check-inbox")
    assert heading(page) == "Check your inbox"
    assert EMAIL in page.get_by_role("status").inner_text()

    # The reset mail's link: choose a new password.
    message = mailbox.wait_for(EMAIL)
    assert message["Subject"] == "Reset your password"
    link = Mailbox.link(message)
    assert link.startswith(idp + "/u/reset-password/new?token=")
    assert visit(page, link).status == 200
    assert at(page, idp, urlsplit(link).path)["state"] == state
    shots.take(page, "reset-new-password")
    assert heading(page) == "Choose a new password"
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password", exact=True).fill(NEW_PASSWORD)
    assert submit(page, "Set the new password").status == 200
    shots.take(page, "password-changed")
    assert heading(page) == "Password changed"

    # Its "Sign in" link returns to the login page of the same authorization request.
    assert follow(page, "Sign in").status == 200
    assert at(page, idp, "/u/login")["state"] == state
    assert "to continue to Demo app" in page.locator(".lead").inner_text()

    # The old password no longer works.
    refused = sign_in(page, EMAIL, FIRST_PASSWORD)
    assert refused.status == 400
    shots.take(page, "login-old-password-refused")
    assert alert(page) == "Wrong email or password."
    assert page.get_by_label("Password", exact=True).input_value() == ""  # never sent back

    # The new one does, and the RP is signed in again as the same user.
    landed = sign_in(page, EMAIL, NEW_PASSWORD)
    assert landed.status == 200 and landed.url == rp_url + "/"
    shots.take(page, "rp-signed-in-new-password")
    assert claim(page, "sub") == sub and claim(page, "email_verified") == "true"

    # Sign out: the RP says so, and a new sign-in asks for the password again.
    landed = follow(page, "Sign out", first=True)
    assert landed.status == 200 and at(page, rp_url, "/")["state"]
    shots.take(page, "rp-signed-out-final")
    assert page.get_by_role("status").inner_text() == "You are signed out, here and at the provider."
    assert page.locator("#claims").count() == 0
    follow(page, "Sign in with idp")
    at(page, idp, "/u/login")
    shots.take(page, "login-after-sign-out")
    assert heading(page) == "Sign in"
    assert page.get_by_label("Password", exact=True).input_value() == ""
