"""Auth0's Node SDK (npm `auth0` v4, ManagementClient) manages idp's users over https."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from idp.connections.models import NATIVE_NAME
from tests.conftest import require_service
from tests.interop.auth0_tenant import (
    BULK,
    BULK_TAG,
    LEGACY_NAME,
    PASSWORD,
    Tenant,
)

HERE = Path(__file__).parent
INSTALLED = HERE / "node_modules" / "auth0" / "package.json"


@pytest.fixture(scope="module")
def node(tenant: Tenant) -> dict[str, Any]:
    """Run tests/interop/node_auth0.mjs once against the tenant; return what it printed."""
    if shutil.which("node") is None or not INSTALLED.exists():
        require_service("node with the pinned auth0 SDK", "run `make test` (npm ci in tests/interop)")
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(tenant.ca)}
    done = subprocess.run(
        ["node", str(HERE / "node_auth0.mjs"), tenant.domain, tenant.client_id, tenant.client_secret,
         NATIVE_NAME, PASSWORD, f"app_metadata.batch:{BULK_TAG}"],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_it_is_the_pinned_version(node: dict[str, Any]) -> None:
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]["auth0"]
    assert node["version"] == pinned


def test_users(node: dict[str, Any], tenant: Tenant) -> None:
    created = node["created"]
    assert created["status"] == 201 and created["identities"][0]["connection"] == NATIVE_NAME
    assert node["got"]["user_id"] == created["user_id"] and node["got"]["email"] == created["email"]
    assert node["listed"]["total"] == 1
    assert [u["user_id"] for u in node["listed"]["users"]] == [created["user_id"]]
    assert [u["user_id"] for u in node["byEmail"]] == [created["user_id"]]
    assert node["updated"]["name"] == "Node Four Updated"
    assert node["updated"]["user_metadata"] == {"lang": "fr", "theme": "dark"}
    assert node["updated"]["app_metadata"] == {"plan": "gold"}
    assert node["deleted"] == 204
    # Its token came from a client_credentials request to /oauth/token.
    assert tenant.was_served("POST", "/oauth/token", 200)


def test_paging_past_1000_users(node: dict[str, Any]) -> None:
    assert node["paged"] == {"total": BULK, "count": BULK, "unique": BULK, "first": "bulk|00000",
                             "last": f"bulk|{BULK - 1:05d}"}


def test_errors(node: dict[str, Any]) -> None:
    """ManagementApiError takes statusCode, error, errorCode and message from Auth0's error shape."""
    assert node["conflict"] == {"statusCode": 409, "error": "Conflict", "errorCode": "auth0_idp_error",
                                "message": "The user already exists."}
    assert node["missing"]["statusCode"] == 404 and node["missing"]["errorCode"] == "inexistent_user"
    assert node["badQuery"]["statusCode"] == 400
    assert node["badQuery"]["errorCode"] == "invalid_query_string"
    assert node["unauthorized"]["statusCode"] == 401


def test_connections_and_logs(node: dict[str, Any], tenant: Tenant) -> None:
    assert node["connections"]["total"] == 2
    assert set(node["connections"]["names"]) == {NATIVE_NAME, LEGACY_NAME}
    assert node["connection"]["name"] == node["connections"]["names"][0]
    assert node["connection"]["strategy"] == "auth0"
    # The create, the update and the delete above: one `sapi` event each, this client's.
    logs = node["logs"]
    assert len(logs) >= 3 and {log["type"] for log in logs} == {"sapi"}
    assert {log["client_id"] for log in logs} == {tenant.client_id}
