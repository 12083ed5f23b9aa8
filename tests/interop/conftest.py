"""Fixtures for the independent-client tests."""

import pytest

from tests.conftest import require_service
from tests.interop import node_rp


@pytest.fixture
def openid_client() -> None:
    """Require node and the pinned openid-client (installed by `npm ci` in tests/interop)."""
    if not node_rp.available():
        require_service("node with openid-client", node_rp.HOW)
