"""Headless Chromium (Debian's package, driven by Playwright) against the live provider and the demo RP."""

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.pages import Screenshots, output_root

TIMEOUT_MS = 10_000  # any one step; a local page answers in milliseconds


@pytest.fixture
def new_page(chromium: Browser) -> Iterator[Callable[[], Page]]:
    """Open tabs in fresh browser profiles (no cookies), JavaScript off: the hosted pages are plain forms."""
    contexts: list[BrowserContext] = []

    def open_page() -> Page:
        context = chromium.new_context(java_script_enabled=False, viewport={"width": 800, "height": 720})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    """A tab in a browser profile of the test's own."""
    return new_page()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Screenshots:
    """Where this test saves its screenshots: <output>/browser/<test name without test_>/."""
    name = request.node.originalname.removeprefix("test_")
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.id != "sqlite":  # the default database needs no mention
        name += f"-{callspec.id}"
    return Screenshots(output_root() / "browser" / name)


