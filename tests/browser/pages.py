"""Helpers for driving the hosted pages in Chromium: screenshots, form submission, what the page says."""

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Response

REPO = Path(__file__).resolve().parents[2]


def output_root() -> Path:
    """Return the test run's output folder: $IDP_TEST_OUTPUT, else <repo>/test-output."""
    return Path(os.environ.get("IDP_TEST_OUTPUT") or REPO / "test-output")


class Screenshots:
    """Numbered full-page screenshots of one test, in a folder of their own."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)  # only this run's pictures
        folder.mkdir(parents=True)
        self.folder = folder
        self.count = 0

    def take(self, page: Page, name: str) -> Path:
        """Save the whole page as NN-<name>.png and return the path."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        return path


def submit(page: Page, button: str) -> Response:
    """Click a button that submits a form; return the response of the page it lands on."""
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button, exact=True).click()
    response = navigation.value
    assert response is not None
    return response


def follow(page: Page, link: str, *, first: bool = False) -> Response:
    """Click a link (the first of several when `first`); return the response of the page it lands on."""
    links = page.get_by_role("link", name=link, exact=True)
    with page.expect_navigation() as navigation:
        (links.first if first else links).click()
    response = navigation.value
    assert response is not None
    return response


def visit(page: Page, url: str) -> Response:
    """Open a URL as if typed or clicked in a mail; return the response."""
    response = page.goto(url)
    assert response is not None
    return response


def sign_in(page: Page, email: str, password: str) -> Response:
    """Fill in the login form on the current page and submit it."""
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    return submit(page, "Continue")


def alert(page: Page) -> str:
    """Return the text of the page's error message."""
    return page.get_by_role("alert").inner_text().strip()


def heading(page: Page) -> str:
    """Return the page's main heading."""
    return page.get_by_role("heading", level=1).inner_text().strip()


def claim(page: Page, name: str) -> str:
    """Return the value the demo RP shows for an ID token claim."""
    row = page.locator("#claims tr", has=page.locator(f"th:text-is('{name}')"))
    return row.locator("td code").inner_text()


def userinfo(page: Page) -> dict[str, Any]:
    """Return the userinfo response the demo RP shows."""
    return json.loads(page.locator("#userinfo").inner_text())


def wait_out(response: Response) -> None:
    """Sleep for as long as a 429 answer's Retry-After asks."""
    assert response.status == 429
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 3600
    time.sleep(seconds)


def words(text: str) -> str:
    """Collapse whitespace, for comparing what two pages say."""
    return re.sub(r"\s+", " ", text).strip()
