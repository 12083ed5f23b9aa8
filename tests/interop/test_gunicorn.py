"""Two workers of `idp serve` on one PostgreSQL database pass the interop flow, requests on either."""

# DESIGN: nothing that several instances must share lives in process memory.

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.oauth.clients import create_client
from tests.conftest import PASSWORD
from tests.interop import node_rp
from tests.interop.browser import REDIRECT_URI, sign_in
from tests.served import Served, serve

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# Each worker serves this many requests, then is replaced by a fresh process: any three requests in
# a row span at least two processes, so the flow works only if nothing it needs stays in memory.
# --preload makes the replacements cheap forks of the master (a fresh import takes over a second);
# a fork starts from the master's state at import time, never from what a request left behind.
# Sync workers count requests exactly (threaded ones finish what their threads hold).
MAX_REQUESTS = 2


@pytest.fixture
def gunicorn(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """Serve two recycled workers against the test database."""
    with serve(database_url, tmp_path, gunicorn=f"--preload --max-requests {MAX_REQUESTS} "
               "--max-requests-jitter 0 --worker-class sync --threads 1", RATELIMIT_ENABLED="0") as server:
        yield server


@pytest.mark.usefixtures("openid_client")
def test_two_workers_share_nothing_in_memory(gunicorn: Served, user: Any) -> None:
    """Run openid-client's whole flow against gunicorn while its workers are recycled under it."""
    client, secret = create_client("openid-client", [REDIRECT_URI], first_party=True)
    assert secret is not None
    with requests.Session() as browser:
        result = node_rp.run(gunicorn.url, client.id, secret, REDIRECT_URI,
                             lambda url: sign_in(browser, url, user.email, PASSWORD))
    assert result["ok"] is True, (result, gunicorn.error_log.read_text())
    assert result["id_token_claims"]["sub"] == user.id
    assert result["userinfo"]["sub"] == user.id
    assert result["refresh_token_rotated"] is True
    assert result["reuse_error"]["error"] == "invalid_grant"
    assert result["family_error"]["error"] == "invalid_grant"

    served = gunicorn.served()
    assert all(status < 500 for *_, status in served), served
    # The sign-in (login form, login post, resume) and the token calls each span processes.
    login = {pid for pid, _, path, _ in served if path in ("/u/login", "/authorize/resume")}
    token = {pid for pid, _, path, _ in served if path in ("/oauth/token", "/userinfo")}
    assert len(login) > 1 and len(token) > 1, served
    assert len({pid for pid, *_ in served}) >= len(served) // MAX_REQUESTS, served
