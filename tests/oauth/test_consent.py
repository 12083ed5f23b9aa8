"""Third-party clients: consent covers their scopes and APIs; refresh tokens need offline_access."""

import pytest

from idp.oauth.clients import create_client
from tests.conftest import PASSWORD
from tests.support import RegisteredClient, csrf_token, query

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def partner(app) -> RegisteredClient:
    """A third-party client that may call one API."""
    client, secret = create_client("Partner", ["https://partner.example.org/cb"],
                                   audiences=["https://api.example.com"])
    return RegisteredClient(client.id, secret, "https://partner.example.org/cb")


def consent(browser, rp, **params) -> dict[str, str]:
    """Authorize, allow on the consent page if it is shown, and return the callback parameters."""
    response = browser.follow(browser.authorize(rp, **params), rp.redirect_uri)
    if response.status_code == 200:
        assert "/u/consent" in response.request.url
        response = browser.follow(browser.client.post(response.request.url, data={
            "csrf_token": csrf_token(response.text), "allow": "Allow"}), rp.redirect_uri)
    return query(response.headers["Location"])


def test_refresh_tokens_go_to_third_parties_only_with_offline_access(browser, user, partner):
    first = browser.authorize(partner)
    browser.login(first.headers["Location"], user.email, PASSWORD)
    plain = browser.exchange(partner, consent(browser, partner)["code"]).json
    assert "refresh_token" not in plain
    offline = browser.exchange(partner, consent(browser, partner, scope="openid offline_access")["code"]).json
    assert offline["refresh_token"]


def test_consent_names_the_api_and_covers_only_what_was_allowed(browser, user, partner):
    first = browser.authorize(partner)
    browser.login(first.headers["Location"], user.email, PASSWORD)
    consent(browser, partner)
    assert browser.authorize(partner).headers["Location"].startswith(partner.redirect_uri)  # remembered
    api = "https://api.example.com"
    asking = browser.follow(browser.authorize(partner, audience=api), partner.redirect_uri)
    assert asking.status_code == 200 and f"Use <strong>{api}</strong> on your behalf" in asking.text
    token = browser.exchange(partner, consent(browser, partner, audience=api)["code"]).json
    assert token["access_token"]
    again = browser.authorize(partner, audience=api)
    assert again.headers["Location"].startswith(partner.redirect_uri)
