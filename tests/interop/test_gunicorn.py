"""Two gunicorn workers on one PostgreSQL database pass the interop flow, requests on either."""

# DESIGN: nothing that several instances must share lives in process memory.

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.oauth.clients import create_client
from tests.conftest import KEK, PASSWORD
from tests.interop import node_rp
from tests.interop.browser import REDIRECT_URI, sign_in

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
# Each worker serves this many requests, then is replaced by a fresh process: any three requests in
# a row span at least two processes, so the flow works only if nothing it needs stays in memory.
# --preload makes the replacements cheap forks of the master (a fresh import takes over a second);
# a fork starts from the master's state at import time, never from what a request left behind.
MAX_REQUESTS = 2
LINE = re.compile(r"^<(\d+)> (\S+) (\S+) (\d+)$")


@dataclass
class Gunicorn:
    """A running gunicorn master and where its workers log each request."""

    url: str
    access_log: Path
    error_log: Path
    env: dict[str, str]  # the IDP_* environment it serves with, for `idp` commands on the same deployment

    def served(self) -> list[tuple[int, str, str, int]]:
        """Return (worker pid, method, path, status) for every request served so far."""
        rows = []
        for line in self.access_log.read_text().splitlines():
            match = LINE.match(line)
            assert match, line
            pid, method, path, status = match.groups()
            rows.append((int(pid), method, path, int(status)))
        return rows


def _wait_ready(proc: subprocess.Popen[bytes], server: Gunicorn, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}: {server.error_log.read_text()}")
        try:
            if requests.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    pytest.fail(f"gunicorn did not answer in {timeout}s: {server.error_log.read_text()}")


@contextmanager
def serve(database_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    """Serve wsgi:app with two gunicorn workers on a socket we bound, against the given database."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    (tmp_path / "instance").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_DATABASE_URL=database_url, IDP_SECRET_KEY="gunicorn-test-secret", IDP_ISSUER=url,
        IDP_KEY_ENCRYPTION_KEY=KEK, IDP_INSTANCE_PATH=str(tmp_path / "instance"),
        IDP_ARGON2_TIME_COST="1", IDP_ARGON2_MEMORY_COST="8", IDP_ARGON2_PARALLELISM="1",
    )
    server = Gunicorn(url, tmp_path / "access.log", tmp_path / "error.log", env)
    proc = subprocess.Popen([
        str(GUNICORN), "--workers", "2", "--bind", f"fd://{listener.fileno()}",
        "--chdir", str(ROOT), "--preload", "--max-requests", str(MAX_REQUESTS), "--max-requests-jitter", "0",
        "--graceful-timeout", "5", "--no-control-socket", "--access-logfile", str(server.access_log),
        "--access-logformat", "%(p)s %(m)s %(U)s %(s)s", "--error-logfile", str(server.error_log),
        "wsgi:app",
    ], env=env, pass_fds=[listener.fileno()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(proc, server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        listener.close()


@pytest.fixture
def gunicorn(database_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    """Serve wsgi:app with two gunicorn workers against the test database."""
    with serve(database_url, tmp_path) as server:
        yield server


@pytest.mark.usefixtures("openid_client")
def test_two_workers_share_nothing_in_memory(gunicorn: Gunicorn, user: Any) -> None:
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
