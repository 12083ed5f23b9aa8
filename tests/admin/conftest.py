"""The dashboard's fixtures: an admin, Chromium tabs (the browser tests'), and signing in to /admin."""

from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Page, Response

from idp.admin.admins import COMMAND_LINE, set_admin
from tests.browser.conftest import new_page, page  # noqa: F401  (fixtures: Chromium tabs, JavaScript off)
from tests.browser.pages import Screenshots, output_root, sign_in, visit
from tests.conftest import LiveServer


@pytest.fixture
def admin(app: Flask, user: Any) -> Any:
    """The `user` fixture (ada@example.com), made an admin as `idp admins add` does."""
    set_admin(user, True, COMMAND_LINE)
    return user


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Screenshots:
    """Where this test saves its screenshots: <output>/admin/<test name without test_>/."""
    return Screenshots(output_root() / "admin" / request.node.originalname.removeprefix("test_"))


def path_of(tab: Page) -> str:
    """Return the path (and query) the tab is at."""
    url = urlsplit(tab.url)
    return url.path + (f"?{url.query}" if url.query else "")


def sign_in_admin(tab: Page, live_server: LiveServer, email: str, password: str,
                  path: str = "/admin") -> Response:
    """Open a dashboard path, get sent to the hosted login, sign in, and return the page it lands on."""
    visit(tab, live_server.url + path)
    assert path_of(tab).startswith("/u/login?state="), tab.url
    return sign_in(tab, email, password)
