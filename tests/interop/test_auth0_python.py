"""Auth0's Python SDK v5 (auth0-python, httpx) manages idp's users, unchanged apart from its domain."""

import json
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from auth0.management import ManagementClient
from auth0.management.core.api_error import ApiError

from idp.connections.models import NATIVE_ID, NATIVE_NAME
from tests.interop.auth0_tenant import (
    BULK,
    BULK_TAG,
    LEGACY_EMAIL,
    LEGACY_NAME,
    PASSWORD,
    Tenant,
)


@contextmanager
def management_client(tenant: Tenant, **credentials: Any) -> Iterator[ManagementClient]:
    """A ManagementClient for the tenant, trusting the test CA the way httpx is told to (SSL_CERT_FILE:
    the SDK's token request goes through a bare `httpx.Client()`); its API client is closed afterwards."""
    trusted = ssl.create_default_context(cafile=tenant.ca)
    with pytest.MonkeyPatch.context() as env, httpx.Client(timeout=30, verify=trusted) as http:
        env.setenv("SSL_CERT_FILE", str(tenant.ca))
        yield ManagementClient(domain=tenant.domain, httpx_client=http, **credentials)


@pytest.fixture(scope="module")
def sdk(tenant: Tenant) -> Iterator[ManagementClient]:
    """A ManagementClient with client credentials, as Auth0's README shows it."""
    with management_client(tenant, client_id=tenant.client_id, client_secret=tenant.client_secret) as client:
        yield client


def new_email() -> str:
    return f"py5-{uuid.uuid4().hex[:10]}@sdk.example"


def test_token_is_a_client_credentials_form_post(tenant: Tenant) -> None:
    """The SDK's token request, as it makes it: a form with the audience https://{domain}/api/v2/."""
    from auth0.management.token_provider import TokenProvider

    with pytest.MonkeyPatch.context() as env:
        env.setenv("SSL_CERT_FILE", str(tenant.ca))
        provider = TokenProvider(domain=tenant.domain, client_id=tenant.client_id,
                                 client_secret=tenant.client_secret)
        token = provider.get_token()
    assert token.count(".") == 2
    assert provider.get_token() == token  # cached: expires_in was a number of seconds
    assert tenant.was_served("POST", "/oauth/token", 200)


def test_create_get_update_delete(sdk: ManagementClient) -> None:
    email = new_email()
    created = sdk.users.create(connection=NATIVE_NAME, email=email, password=PASSWORD, name="Py Five",
                               user_metadata={"lang": "en", "theme": "dark"}, app_metadata={"plan": "gold"})
    assert created.user_id and created.email == email and created.name == "Py Five"
    assert created.identities and created.identities[0].connection == NATIVE_NAME
    assert created.identities[0].provider == "auth0"

    fetched = sdk.users.get(created.user_id)
    assert fetched.email == email and fetched.user_metadata == {"lang": "en", "theme": "dark"}

    updated = sdk.users.update(created.user_id, name="Py Five Updated", user_metadata={"lang": "fr"},
                               app_metadata={"tier": 2})
    assert updated.name == "Py Five Updated"
    assert updated.user_metadata == {"lang": "fr", "theme": "dark"}  # merged at the first level
    assert updated.app_metadata == {"plan": "gold", "tier": 2}

    sdk.users.delete(created.user_id)
    with pytest.raises(ApiError) as missing:
        sdk.users.get(created.user_id)
    assert missing.value.status_code == 404


def test_list_with_q(sdk: ManagementClient) -> None:
    email = new_email()
    created = sdk.users.create(connection=NATIVE_NAME, email=email, password=PASSWORD, name="Searchable Py")
    pager = sdk.users.list(q=f'email:"{email}"')
    assert [u.user_id for u in pager] == [created.user_id]
    assert pager.response.total == 1 and pager.response.start == 0
    page = sdk.users.list(q="app_metadata.n:7", per_page=5, fields="user_id,email", include_fields=True)
    assert [(u.user_id, u.email) for u in page.items or []] == [("bulk|00007", "bulk00007@bulk.example")]


def test_pager_walks_past_1000_users(sdk: ManagementClient) -> None:
    """The SDK asks page after page until one is empty: all 1,100 come back, none twice."""
    pager = sdk.users.list(q=f"app_metadata.batch:{BULK_TAG}", per_page=100, sort="created_at:1")
    assert pager.response.total == BULK
    ids = [user.user_id for user in pager]
    assert len(ids) == BULK and len(set(ids)) == BULK
    assert ids[0] == "bulk|00000" and ids[-1] == f"bulk|{BULK - 1:05d}"


def test_users_by_email(sdk: ManagementClient) -> None:
    email = new_email()
    created = sdk.users.create(connection=NATIVE_NAME, email=email, password=PASSWORD)
    found = sdk.users.list_users_by_email(email=email.upper())
    assert [u.user_id for u in found] == [created.user_id]
    assert sdk.users.list_users_by_email(email=new_email()) == []


def test_existing_user_is_a_409(sdk: ManagementClient) -> None:
    email = new_email()
    sdk.users.create(connection=NATIVE_NAME, email=email, password=PASSWORD)
    with pytest.raises(ApiError) as conflict:
        sdk.users.create(connection=NATIVE_NAME, email=email, password=PASSWORD)
    assert conflict.value.status_code == 409
    assert isinstance(conflict.value.body, dict)
    assert conflict.value.body["statusCode"] == 409 and conflict.value.body["error"] == "Conflict"


def test_user_in_the_legacy_store_is_a_409_and_nothing_is_created(sdk: ManagementClient) -> None:
    """On a migrating connection, get_user finding the email means the user exists (as Auth0 does)."""
    with pytest.raises(ApiError) as conflict:
        sdk.users.create(connection=LEGACY_NAME, email=LEGACY_EMAIL.lower(), password=PASSWORD)
    assert conflict.value.status_code == 409
    assert sdk.users.list_users_by_email(email=LEGACY_EMAIL) == []
    # An email the legacy store does not know is created in the migrating connection.
    email = new_email()
    created = sdk.users.create(connection=LEGACY_NAME, email=email, password=PASSWORD)
    assert created.identities and created.identities[0].connection == LEGACY_NAME
    # Nor may a user take a legacy user's email: the two would merge when the legacy one signs in.
    with pytest.raises(ApiError) as taken:
        sdk.users.update(created.user_id, email=LEGACY_EMAIL)
    assert taken.value.status_code == 400 and sdk.users.get(created.user_id).email == email


def test_errors_reach_the_sdk_in_auth0s_shape(tenant: Tenant, sdk: ManagementClient) -> None:
    with pytest.raises(ApiError) as bad:
        sdk.users.list(q="no_such_field:1")
    assert bad.value.status_code == 400 and isinstance(bad.value.body, dict)
    assert bad.value.body["errorCode"] == "invalid_query_string"
    with management_client(tenant, token="not-a-token") as anonymous, pytest.raises(ApiError) as unauthorized:
        anonymous.users.get("bulk|00001")
    assert unauthorized.value.status_code == 401
    assert isinstance(unauthorized.value.body, dict) and unauthorized.value.body["statusCode"] == 401
    with management_client(tenant, client_id=tenant.client_id, client_secret="wrong") as wrong, \
            pytest.raises(httpx.HTTPStatusError) as refused:
        wrong.users.get("bulk|00001")
    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["error"] == "invalid_client"



def test_connections_list(sdk: ManagementClient) -> None:
    """The SDK lists connections by checkpoint (`take`, then `from` = the answer's `next`)."""
    names = {c.name for c in sdk.connections.list()}
    assert {NATIVE_NAME, LEGACY_NAME} <= names


def test_connections_get(tenant: Tenant, sdk: ManagementClient) -> None:
    legacy = sdk.connections.get(tenant.legacy_connection_id)
    assert legacy.id == tenant.legacy_connection_id and legacy.name == LEGACY_NAME
    assert legacy.strategy == "auth0" and legacy.options is not None
    assert legacy.options["import_mode"] is True and legacy.options["enabledDatabaseCustomization"] is True
    assert sdk.connections.get(NATIVE_ID).name == NATIVE_NAME
    with pytest.raises(ApiError) as missing:
        sdk.connections.get("con_nonexistent")
    assert missing.value.status_code == 404


def test_logs(tenant: Tenant, sdk: ManagementClient) -> None:
    """Every management write is a `sapi` log event; the SDK searches them and reads one by id."""
    sdk.users.create(connection=NATIVE_NAME, email=new_email(), password=PASSWORD)
    pager = sdk.logs.list(search=f'type:sapi AND client_id:"{tenant.client_id}"', per_page=100)
    logs = list(pager.items or [])
    assert logs and all(log.type == "sapi" and log.client_id == tenant.client_id for log in logs)
    assert pager.response.total == len(logs)
    assert logs[0].log_id is not None
    one = sdk.logs.get(logs[0].log_id)
    assert one.log_id == logs[0].log_id and one.type == "sapi"


def test_bulk_import_job_and_its_errors(tenant: Tenant, sdk: ManagementClient) -> None:
    """A users file of 1,100 users through the SDK's jobs client: the job runs in the served provider's
    background, its errors come back redacted, and the pager walks every imported user."""
    tag = uuid.uuid4().hex[:8]
    users = [{"email": f"imp{n:05d}-{tag}@jobs.example", "user_id": f"{tag}-{n:05d}",
              "app_metadata": {"batch": tag}} for n in range(1_100)]
    users.append({"email": "not-an-email", "password_hash": "$2b$10$" + "a" * 53})
    job = sdk.jobs.users_imports.create(users=("users.json", json.dumps(users).encode(), "application/json"),
                                        connection_id=NATIVE_ID, upsert=False, external_id=tag)
    assert job.status == "pending" and job.type == "users_import" and job.external_id == tag
    deadline = time.monotonic() + 60
    while (status := sdk.jobs.get(job.id)).status not in ("completed", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status.status == "completed" and status.summary is not None
    assert (status.summary.inserted, status.summary.failed, status.summary.total) == (1_100, 1, 1_101)
    errors = sdk.jobs.errors.get(job.id)
    assert isinstance(errors, list) and len(errors) == 1
    assert errors[0].errors is not None and errors[0].errors[0].code == "FORMAT"
    assert errors[0].user is not None and errors[0].user["password_hash"] == "*****"
    pager = sdk.users.list(q=f"app_metadata.batch:{tag}", per_page=100, sort="email:1")
    emails = [user.email for user in pager]
    assert len(emails) == 1_100 and emails[0] == f"imp00000-{tag}@jobs.example"
