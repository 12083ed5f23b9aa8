"""The production layout's tests share the browser of the page tests."""

from tests.browser.conftest import chromium  # noqa: F401 - a fixture
