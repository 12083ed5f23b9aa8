"""Auth0's Python SDK v4 (auth0-python 4.13.0, requests): a JSON token request and the users classes."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from idp.connections.models import NATIVE_NAME
from tests.conftest import require_service
from tests.interop.auth0_tenant import (
    BULK,
    BULK_TAG,
    PASSWORD,
    Tenant,
)

HERE = Path(__file__).parent
V4 = Path(sys.executable).parent.parent / "auth0-v4"  # `make test` installs it beside the venv


@pytest.fixture(scope="module")
def v4(tenant: Tenant) -> dict[str, Any]:
    """Run tests/interop/auth0_v4.py once against the tenant; return what it printed."""
    if not (V4 / "auth0" / "__init__.py").exists():
        require_service("auth0-python 4.13.0", "run `make test` (it installs .venv/auth0-v4)")
    env = {**os.environ, "PYTHONPATH": str(V4), "REQUESTS_CA_BUNDLE": str(tenant.ca)}
    done = subprocess.run(
        [sys.executable, str(HERE / "auth0_v4.py"), tenant.domain, tenant.client_id, tenant.client_secret,
         NATIVE_NAME, PASSWORD, f"app_metadata.batch:{BULK_TAG}"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_it_is_v4(v4: dict[str, Any]) -> None:
    assert v4["version"] == "4.13.0"


def test_json_token_request(v4: dict[str, Any], tenant: Tenant) -> None:
    """GetToken.client_credentials posts JSON (with "organization": null): idp answers as to a form."""
    assert v4["token"]["token_type"].lower() == "bearer" and v4["token"]["expires_in"] > 0
    assert set(v4["token"]["scope"].split()) >= {"read:users", "create:users", "update:users"}
    assert v4["bad_client"]["status_code"] == 401 and v4["bad_client"]["error_code"] == "invalid_client"


def test_users(v4: dict[str, Any]) -> None:
    created = v4["created"]
    assert created["identities"][0]["connection"] == NATIVE_NAME and created["name"] == "Py Four"
    assert v4["got"] == {"user_id": created["user_id"], "email": created["email"],
                         "user_metadata": {"lang": "en"}}
    listed = v4["listed"]  # include_totals=true is v4's default
    assert listed["total"] == 1 and [u["user_id"] for u in listed["users"]] == [created["user_id"]]
    assert [u["user_id"] for u in v4["by_email"]] == [created["user_id"]]
    assert v4["updated"]["user_metadata"] == {"lang": "en", "theme": "dark"}
    assert v4["page_11"] == [{"user_id": f"bulk|{n:05d}"} for n in range(1000, BULK)]
    assert v4["deleted"] in ("", None)


def test_errors(v4: dict[str, Any]) -> None:
    """Auth0Error takes errorCode and message from Auth0's error shape."""
    assert v4["conflict"] == {"status_code": 409, "error_code": "auth0_idp_error",
                              "message": "The user already exists."}
    assert v4["missing"]["status_code"] == 404 and v4["missing"]["error_code"] == "inexistent_user"
    assert v4["unauthorized"]["status_code"] == 401
