"""Every hosted form in Chromium over https, as production runs: TLS in `idp serve`, or nginx in front."""

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page
from werkzeug.serving import make_server

from demo.rp import create_rp
from idp.oauth.clients import create_client
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.pages import Screenshots, claim, follow, heading, output_root, submit, visit
from tests.mailbox import Mailbox, make_certificates
from tests.served import Served, free_port, listen, serve, tls_proxy
from tests.support import csrf_token

EMAIL = "hedy@example.com"
PASSWORD = "frequency hopping 1942"
NEW_PASSWORD = "spread spectrum 1962"

pytestmark = pytest.mark.parametrize("tls", ["server", "proxy"])


@dataclass
class Deployment:
    """The provider over https, the test CA that signed its certificate, and a relying party."""

    url: str
    served: Served
    ca: Path
    rp_url: str
    mailbox: Mailbox


@contextmanager
def https_provider(tls: str, database_url: str, tmp_path: Path,
                   mailbox: Mailbox) -> Iterator[tuple[str, Served]]:
    """Serve the provider over https with two workers, TLS in the server or in nginx in front."""
    certificates = make_certificates(tmp_path)
    with ExitStack() as stack:
        if tls == "server":
            served = stack.enter_context(serve(database_url, tmp_path, tls=certificates,
                                               SMTP_URL=mailbox.url, RATELIMIT_ENABLED="0"))
            yield served.url, served
            return
        port, upstream = free_port(), listen()
        served = stack.enter_context(serve(
            database_url, tmp_path, listener=upstream, issuer=f"https://127.0.0.1:{port}",
            SMTP_URL=mailbox.url, RATELIMIT_ENABLED="0", PROXY_HOPS="1"))
        upstream_port = int(served.url.rsplit(":", 1)[1])
        url = stack.enter_context(tls_proxy(port, upstream_port, certificates, tmp_path))
        served.verify = str(certificates[0])
        yield url, served


@pytest.fixture
def deployment(tls: str, app, database_url: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """The provider over https and the demo RP (third-party, so consent is asked) on plain loopback http."""
    with Mailbox() as mailbox, https_provider(tls, database_url, tmp_path, mailbox) as (url, served):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))  # the RP's calls to idp
        server = make_server("127.0.0.1", 0, lambda e, s: [], threaded=True)
        rp_url = f"http://127.0.0.1:{server.server_port}"
        client, secret = create_client("Partner app", [rp_url + "/callback"],
                                       post_logout_redirect_uris=[rp_url + "/"])
        assert secret is not None
        server.app = create_rp(url, client.id, secret, rp_url)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Deployment(url, served, tmp_path / "ca.pem", rp_url, mailbox)
        finally:
            server.shutdown()
            thread.join(5)


def cross(page: Page, target: Locator, url: str) -> None:
    """Click through to another site (http and https are two): wait for its URL, not the navigation event."""
    target.click()
    page.wait_for_url(url + "**")
    assert heading(page) not in ("Something went wrong", "invalid_request"), page.content()


@pytest.fixture
def https_page(chromium: Browser) -> Iterator[Page]:
    """A Chromium tab that trusts the test certificate, JavaScript off."""
    context = chromium.new_context(java_script_enabled=False, ignore_https_errors=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_every_hosted_form_works_over_https(tls: str, deployment: Deployment, https_page: Page) -> None:
    """Sign up, consent, verify, change the password, sign out, reset, sign in: every form posts."""
    page, idp, rp = https_page, deployment.url, deployment.rp_url
    shots = Screenshots(output_root() / "browser" / f"https-{tls}")

    visit(page, rp + "/")
    cross(page, page.get_by_role("link", name="Sign in with idp"), idp + "/u/login?")
    follow(page, "Sign up")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Name", exact=True).fill("Hedy Lamarr")
    assert submit(page, "Sign up").status == 200
    shots.take(page, "consent")
    assert heading(page) == "Authorize Partner app"
    cross(page, page.get_by_role("button", name="Allow"), rp + "/")
    assert claim(page, "email") == EMAIL and claim(page, "iss") == idp
    shots.take(page, "rp-signed-in")

    link = Mailbox.link(deployment.mailbox.wait_for(EMAIL, timeout=10))
    assert link.startswith(idp + "/u/verify-email?token=")
    assert visit(page, link).status == 200 and heading(page) == "Email verified"

    visit(page, idp + "/u/account")
    page.get_by_label("Current password", exact=True).fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password", exact=True).fill(NEW_PASSWORD)
    assert submit(page, "Change password").status == 200, page.content()
    shots.take(page, "password-changed")
    assert submit(page, "Sign out").status == 200

    visit(page, idp + "/u/reset-password")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    assert submit(page, "Send the link").status == 200 and heading(page) == "Check your inbox"
    link = Mailbox.link(deployment.mailbox.wait_for(EMAIL, timeout=10))
    visit(page, link)
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the new password", exact=True).fill(PASSWORD)
    assert submit(page, "Set the new password").status == 200 and heading(page) == "Password changed"

    page.goto(rp + "/login")  # the RP starts over; idp's session ended with the password change
    page.wait_for_url(idp + "/u/login?**")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    cross(page, page.get_by_role("button", name="Continue"), rp + "/")
    shots.take(page, "rp-signed-in-again")
    assert claim(page, "email_verified") == "true"


def test_a_form_posted_from_another_site_is_refused(deployment: Deployment) -> None:
    """A valid CSRF token is not enough: the browser's Origin must be ours (never "null")."""
    with requests.Session() as session:
        session.verify = str(deployment.ca)
        page = session.get(deployment.url + "/u/login")
        token = csrf_token(page.text)
        for origin, status in (("https://evil.example", 400), ("null", 400),
                               (deployment.rp_url, 400), (deployment.url, 400)):
            answer = session.post(page.url, headers={"Origin": origin}, allow_redirects=False,
                                  data={"csrf_token": token, "email": EMAIL, "password": "wrong"})
            assert answer.status_code == status
            expired = "This form has expired or was not sent from this site" in answer.text
            assert expired is (origin != deployment.url), origin  # ours: just a wrong password
        answer = session.post(page.url, headers={"Referer": "https://evil.example/"}, allow_redirects=False,
                              data={"csrf_token": token, "email": EMAIL, "password": "wrong"})
        assert "This form has expired or was not sent from this site" in answer.text
