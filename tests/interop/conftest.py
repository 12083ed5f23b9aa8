"""Fixtures for the independent-client tests."""

from collections.abc import Iterator

import pytest

from tests.conftest import PostgresDatabase, require_service
from tests.interop import node_rp
from tests.interop.auth0_tenant import Tenant, served_tenant


@pytest.fixture
def openid_client() -> None:
    """Require node and the pinned openid-client (installed by `npm ci` in tests/interop)."""
    if not node_rp.available():
        require_service("node with openid-client", node_rp.HOW)


@pytest.fixture(scope="module")
def tenant(postgres_database: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    """idp as an Auth0 tenant for Auth0's SDKs: https, PostgreSQL, one served provider per module."""
    with served_tenant(postgres_database, tmp_path_factory.mktemp("auth0-tenant")) as served:
        yield served
