"""A Host header Flask cannot route gets a plain 400 on every path, never a 500."""

from typing import Any

import pytest

UNROUTABLE = ["a" * 64 + ".example", "a..b.example", ".", "x" * 300]
PATHS = [("GET", "/u/login"), ("GET", "/authorize"), ("POST", "/u/signup"), ("POST", "/oauth/token"),
         ("GET", "/.well-known/openid-configuration"), ("GET", "/.well-known/jwks.json"),
         ("GET", "/no-such-page"), ("GET", "/static/style.css")]


@pytest.mark.parametrize("host", UNROUTABLE)
@pytest.mark.parametrize(("method", "path"), PATHS)
def test_host_that_cannot_be_idna_encoded_is_a_400(app, method, path, host):
    """Refuse a Host whose DNS labels are too long or empty, where Werkzeug cannot bind URLs."""
    response = app.test_client().open(path, method=method, headers={"Host": host})
    assert response.status_code == 400, response.text
    assert response.mimetype == "text/plain" and "Traceback" not in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_ordinary_host_still_gets_its_page(app):
    """Serve the page to a long but valid host name (the control for the test above)."""
    response = app.test_client().get("/u/login", headers={"Host": "a" * 63 + ".example"})
    assert response.status_code == 200 and response.mimetype == "text/html"


def test_host_outside_trusted_hosts_is_a_400(config: dict[str, Any], request: pytest.FixtureRequest):
    """Refuse a Host outside TRUSTED_HOSTS with the same plain 400, not a failing error page."""
    config["TRUSTED_HOSTS"] = ["localhost"]
    app = request.getfixturevalue("app")
    assert app.test_client().get("/u/login", headers={"Host": "evil.example"}).status_code == 400
    assert app.test_client().get("/u/login", headers={"Host": "localhost"}).status_code == 200
