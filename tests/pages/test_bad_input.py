"""Bad input on the hosted pages gets a clear message on the page, never a 500."""

import pytest

from tests.conftest import PASSWORD
from tests.support import Browser, csrf_token

FORMS = {
    "/u/login": {"email": "ada@example.com", "password": "x"},
    "/u/signup": {"email": "new@example.com", "password": "a fine long password", "name": "New"},
    "/u/reset-password": {"email": "ada@example.com"},
}


def post_form(browser: Browser, url: str, **fields: str):
    """Post a hosted form with a valid CSRF token."""
    page = browser.get(url)
    return browser.client.post(url, data={"csrf_token": csrf_token(page.text), **fields})


@pytest.mark.parametrize("url", list(FORMS))
def test_post_without_csrf_token_is_refused_clearly(browser, user, url):
    response = browser.client.post(url, data=FORMS[url])
    assert response.status_code == 400
    assert "This form has expired or was not sent from this site" in response.text


@pytest.mark.parametrize("url", list(FORMS))
def test_csrf_token_of_another_browser_is_refused(browser, app, user, url):
    stolen = csrf_token(Browser(app.test_client()).get(url).text)
    browser.get(url)
    response = browser.client.post(url, data={"csrf_token": stolen, **FORMS[url]})
    assert response.status_code == 400 and "form has expired" in response.text


@pytest.mark.parametrize("referer", ["http://[", "https://[::1/u/login", "http://]/"])
def test_unparsable_referer_is_refused_clearly(browser, user, referer):
    """Refuse a form whose Referer is no URL at all (an unclosed IPv6 bracket), not a 500."""
    page = browser.get("/u/login")
    response = browser.client.post("/u/login", headers={"Referer": referer}, data={
        "csrf_token": csrf_token(page.text), **FORMS["/u/login"]})
    assert response.status_code == 400 and "not sent from this site" in response.text


def test_csrf_token_replayed_after_sign_in_is_refused(browser, user):
    page = browser.get("/u/login")
    token = csrf_token(page.text)
    signed_in = browser.client.post("/u/login", data={"csrf_token": token, "email": user.email,
                                                      "password": PASSWORD})
    assert signed_in.status_code == 302
    replay = browser.client.post("/u/signup", data={"csrf_token": token, **FORMS["/u/signup"]})
    assert replay.status_code == 400 and "form has expired" in replay.text  # the session, and token, rotated


@pytest.mark.parametrize(("url", "field", "value", "message"), [
    ("/u/login", "email", "not-an-email", "Enter a valid email address."),
    ("/u/login", "email", "", "Enter your email address."),
    ("/u/login", "email", "a" * 400 + "@example.com", "at most 320 characters"),
    ("/u/login", "password", "x" * 5000, ""),
    ("/u/signup", "email", "two@@example.com", "Enter a valid email address."),
    ("/u/signup", "name", "n" * 300, "Use at most 255 characters."),
    ("/u/signup", "password", "p" * 2000, "Use at most 1024 characters."),
    ("/u/reset-password", "email", "x" * 10_000, "at most 320 characters"),
    ("/u/reset-password", "email", "ada@example.com\r\nBcc: x@example.com", "Enter a valid email address."),
])
def test_invalid_fields_get_an_inline_message(browser, user, url, field, value, message):
    response = post_form(browser, url, **{**FORMS[url], field: value})
    assert response.status_code == 400
    assert message in response.text
    assert "field-error" in response.text or "role=\"alert\"" in response.text


@pytest.mark.parametrize("url", ["/u/verify-email?token=garbage", "/u/reset-password/new?token=garbage",
                                 "/u/verify-email?token=" + "x" * 5000, "/u/reset-password/new?token=%00%ff",
                                 "/u/verify-email", "/u/reset-password/new"])
def test_garbage_links_get_a_clear_page(browser, url):
    response = browser.get(url)
    assert response.status_code == 400
    assert "not valid" in response.text or "NUL character" in response.text


def test_a_link_for_one_purpose_does_not_work_for_another(browser, user, mailbox):
    page = browser.get("/u/reset-password")
    browser.client.post("/u/reset-password", data={"csrf_token": csrf_token(page.text), "email": user.email})
    link = mailbox.link(mailbox.wait_for(user.email))
    token = link.split("token=", 1)[1].split("&", 1)[0]
    response = browser.get(f"/u/verify-email?token={token}")
    assert response.status_code == 400 and "not valid" in response.text


def test_unknown_state_on_hosted_pages_is_ignored(browser, user):
    page = browser.get("/u/login?state=" + "z" * 500)
    assert page.status_code == 200 and "to your account" in page.text
    assert browser.get("/authorize/resume?state=nope").status_code == 400
