"""Every hosted form in Chromium over https, as production runs: TLS in `idp serve`, or nginx in front."""

import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page
from playwright.sync_api import Error as PlaywrightError
from requests.adapters import HTTPAdapter
from werkzeug.serving import make_server

from demo.rp import create_rp
from idp.oauth.clients import create_client
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.pages import Screenshots, claim, follow, heading, output_root, sign_in, submit, visit
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, require_service
from tests.mailbox import Mailbox, make_certificates
from tests.served import Served, free_port, listen, serve, tls_proxy
from tests.support import csrf_token

EMAIL = "hedy@example.com"
PASSWORD = "frequency hopping 1942"
NEW_PASSWORD = "spread spectrum 1962"
EXPIRED = "This form has expired or was not sent from this site"
WRONG = "Wrong email or password."

# TLS in the server on SQLite, nginx in front on PostgreSQL: both databases, at the cost of two runs.
SERVER = pytest.param("server", "sqlite", id="server-sqlite")
PROXY = pytest.param("proxy", "postgresql", id="proxy-postgresql")
BOTH = pytest.mark.parametrize(("tls", "database_url"), [SERVER, PROXY], indirect=["database_url"])


@dataclass
class Deployment:
    """The provider over https, the test CA that signed its certificate, and a relying party."""

    url: str
    served: Served
    ca: Path
    rp_url: str
    rp_client_id: str
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
            yield Deployment(url, served, tmp_path / "ca.pem", rp_url, client.id, mailbox)
        finally:
            server.shutdown()
            thread.join(5)


def cross(page: Page, target: Locator, url: str) -> None:
    """Click through to another site (http and https are two): wait for its URL, not the navigation event."""
    target.click()
    page.wait_for_url(url + "**")
    assert heading(page) not in ("Something went wrong", "invalid_request"), page.content()


@pytest.fixture
def https_page(chromium: Browser, deployment: Deployment, tmp_path: Path) -> Iterator[Page]:
    """A Chromium tab that trusts the test CA as a user's would, JavaScript off: certificates are checked.

    Chromium reads the CAs a user added from NSS's database in its HOME; this Chromium's HOME holds one
    that trusts the test CA, and nothing else is waived (no ignored certificate errors).
    """
    if shutil.which("certutil") is None:
        require_service("NSS's certutil", "apt-get install -y libnss3-tools")
    nssdb = tmp_path / "chromium-home" / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    trust = ["-A", "-t", "C,,", "-n", "idp test CA", "-i", str(deployment.ca)]  # a CA for servers
    for args in (["-N", "--empty-password"], trust):
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", *args], check=True, capture_output=True)
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                           env={**os.environ, "HOME": str(nssdb.parent.parent)})
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    browser.close()


def signed_in_elsewhere(deployment: Deployment) -> requests.Session:
    """Sign in with requests as another device would; return its session, checked to be signed in."""
    session = requests.Session()
    session.verify = str(deployment.ca)
    page = session.get(deployment.url + "/u/login", timeout=10)
    answer = session.post(page.url, allow_redirects=False, timeout=30, data={
        "csrf_token": csrf_token(page.text), "email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 302, answer.text
    assert session.get(deployment.url + "/u/account", allow_redirects=False, timeout=10).status_code == 200
    return session


@BOTH
def test_every_hosted_form_works_over_https(tls: str, deployment: Deployment, https_page: Page,
                                            chromium: Browser) -> None:
    """Sign up, consent, verify, change the password, reset, sign in, sign out three ways: all posts."""
    page, idp, rp = https_page, deployment.url, deployment.rp_url
    shots = Screenshots(output_root() / "browser" / f"https-{tls}")
    # The certificate is really checked: a Chromium that does not trust the test CA refuses the provider.
    untrusting = chromium.new_page()
    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
        untrusting.goto(idp + "/u/login")
    untrusting.close()

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

    visit(page, idp + "/u/account")
    assert submit(page, "Send the verification link again").status == 200, page.content()
    assert page.get_by_role("status").inner_text() == f"We sent a new verification link to {EMAIL}."
    links = [Mailbox.link(deployment.mailbox.wait_for(EMAIL, timeout=10)) for _ in range(2)]
    assert len(set(links)) == 2 and all(link.startswith(idp + "/u/verify-email?token=") for link in links)
    assert visit(page, links[1]).status == 200 and heading(page) == "Email verified"

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

    # RP-initiated logout without an id_token_hint: anyone could have sent it, so idp asks first.
    visit(page, idp + "/oidc/logout?" + urlencode({
        "client_id": deployment.rp_client_id, "post_logout_redirect_uri": rp + "/"}))
    assert heading(page) == "Sign out?" and "Partner app asks to sign you out." in page.content()
    shots.take(page, "logout-confirmation")
    cross(page, page.get_by_role("button", name="Sign out", exact=True), rp + "/")
    visit(page, idp + "/u/account")
    assert page.url.startswith(idp + "/u/login"), page.url  # the confirmed form ended idp's session

    with signed_in_elsewhere(deployment) as other:
        visit(page, idp + "/u/login")
        assert sign_in(page, EMAIL, PASSWORD).status == 200 and heading(page) == "Your account"
        assert submit(page, "Sign out of every device").status == 200
        assert heading(page) == "Signed out everywhere"
        shots.take(page, "signed-out-everywhere")
        gone = other.get(idp + "/u/account", allow_redirects=False, timeout=10)
    assert gone.status_code == 302 and gone.headers["Location"].endswith("/u/login")  # that device too


@BOTH
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
            expired = EXPIRED in answer.text
            assert expired is (origin != deployment.url), origin  # ours: just a wrong password
        # Without Origin, the Referer says where the form was: only one of our own pages will do.
        for referer in ("https://evil.example/", deployment.rp_url + "/", page.url):
            answer = session.post(page.url, headers={"Referer": referer}, allow_redirects=False,
                                  data={"csrf_token": token, "email": EMAIL, "password": "wrong"})
            assert answer.status_code == 400
            ours = referer == page.url
            assert (EXPIRED in answer.text, WRONG in answer.text) == (not ours, ours), referer


class FromAddress(HTTPAdapter):
    """A transport adapter whose connections leave from a given local address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def scheme_seen(session: requests.Session, url: str, host: str, **headers: str) -> str:
    """Return the scheme idp believes a request came over: that of the one same-host Origin it accepts."""
    # idp takes a form whose Origin is its issuer or the request's own scheme://Host (idp.web):
    # with a Host other than the issuer's, the scheme idp sees alone decides.
    headers["Host"] = host
    page = session.get(url + "/u/login", headers=headers, timeout=10)
    # The cookie is Secure (the issuer is https): over plain http we hand it over ourselves.
    headers["Cookie"] = f"idp_session={page.cookies['idp_session']}"
    accepted = []
    for scheme in ("https", "http"):
        answer = session.post(url + "/u/login", allow_redirects=False, timeout=10,
                              headers={**headers, "Origin": f"{scheme}://{host}"},
                              data={"csrf_token": csrf_token(page.text), "password": "wrong",
                                    "email": f"{uuid.uuid4().hex}@example.com"})  # none gets throttled
        assert answer.status_code == 400
        if EXPIRED not in answer.text:
            assert WRONG in answer.text
            accepted.append(scheme)
    assert len(accepted) == 1, accepted
    return accepted[0]


@pytest.mark.parametrize(("tls", "database_url"), [PROXY], indirect=["database_url"])
def test_x_forwarded_proto_counts_only_from_the_proxy(deployment: Deployment) -> None:
    """Behind nginx idp sees https, as X-Forwarded-Proto says; from any other peer the header is ignored."""
    # The scheme matters to idp only in recognising its own forms' Origin: the session cookie's
    # Secure flag, mailed links and the issuer come from ISSUER, and redirects are relative.
    host = "localhost:" + deployment.url.rsplit(":", 1)[1]  # not the issuer's host, 127.0.0.1
    upstream = deployment.served.url  # idp serve itself, plain http, trusting 127.0.0.1 only
    with requests.Session() as through_nginx, requests.Session() as trusted, requests.Session() as stranger:
        through_nginx.verify = str(deployment.ca)
        stranger.mount("http://", FromAddress("127.0.0.2"))  # loopback, but not a trusted proxy
        assert scheme_seen(through_nginx, deployment.url, host) == "https"
        assert scheme_seen(trusted, upstream, host, **{"X-Forwarded-Proto": "https"}) == "https"
        assert scheme_seen(stranger, upstream, host, **{"X-Forwarded-Proto": "https"}) == "http"
        assert scheme_seen(trusted, upstream, host) == "http"  # and nothing else made it https
