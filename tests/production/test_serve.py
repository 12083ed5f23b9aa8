"""`idp serve`: the production server's own settings, seen from outside as a client and an operator."""

import socket
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD
from tests.mailbox import Mailbox
from tests.served import IDP, Served, idp_env, serve
from tests.support import csrf_token, eventually

SECRET = "c0de-that-must-not-be-logged"


def raw(served: Served, request: bytes) -> bytes:
    """Send raw bytes as a request; return the start of the answer."""
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        return conn.recv(200)


def test_logs_carry_no_query_string(app, database_url: str, tmp_path: Path) -> None:
    """Neither the access log nor gunicorn's warnings about refused request lines show a query."""
    with serve(database_url, tmp_path, log_workers=False) as served:
        requests.get(served.url + f"/authorize?client_id=x&code_challenge={SECRET}", timeout=10)
        for line in (f"GET/?code={SECRET}\r\n\r\n", f"GET /?code={SECRET}\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
                     f"GET /a b?code={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n"):
            assert raw(served, line.encode()).startswith(b"HTTP/1.1 400")
    access, errors = served.access_log.read_text(), served.error_log.read_text()
    assert '"GET /authorize HTTP/1.1" 400' in access
    assert errors.count("Invalid request from ip=127.0.0.1") == 3
    assert SECRET not in access + errors


def test_no_request_header_chooses_the_path(app, user, database_url: str, tmp_path: Path) -> None:
    """A SCRIPT_NAME header neither breaks the request nor moves the links the provider mails.

    The provider's own log lines (here: the mail it sent) reach the server's log.
    """
    with Mailbox() as mailbox, serve(database_url, tmp_path, SMTP_URL=mailbox.url) as served:
        answer = raw(served, b"GET /u/login HTTP/1.1\r\nHost: 127.0.0.1\r\nSCRIPT_NAME: /elsewhere\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        with requests.Session() as session:
            page = session.get(served.url + "/u/reset-password", timeout=10)
            form = {"csrf_token": csrf_token(page.text), "email": user.email}
            session.post(page.url, timeout=10, data=form,
                         headers={"SCRIPT_NAME": "/evil", "X-Forwarded-Prefix": "/evil"})
        link = Mailbox.link(mailbox.wait_for(user.email, timeout=10))
        assert link.startswith(served.url + "/u/reset-password/new?token=")
        assert eventually(lambda: "Reset your password" in served.error_log.read_text()
                          and "sent through" in served.error_log.read_text())


@pytest.mark.parametrize("trusted", [True, False])
def test_forwarded_headers_count_only_from_trusted_proxies(app, database_url: str, tmp_path: Path,
                                                          trusted: bool) -> None:
    """X-Forwarded-For names the client only when a trusted proxy sends it: else per-IP limits bite."""
    proxies = "127.0.0.1" if trusted else "192.0.2.1"
    with serve(database_url, tmp_path, PROXY_HOPS="1", TRUSTED_PROXIES=proxies,
               RATELIMIT_LOGIN="2 per minute") as served:
        statuses = []
        for n in range(4):
            with requests.Session() as session:
                page = session.get(served.url + "/u/login", timeout=10)
                answer = session.post(page.url, allow_redirects=False, timeout=10,
                                      headers={"X-Forwarded-For": f"203.0.113.{n}"},
                                      data={"csrf_token": csrf_token(page.text),
                                            "email": f"x{n}@example.com", "password": PASSWORD})
                statuses.append(answer.status_code)
    assert statuses == ([400] * 4 if trusted else [400, 400, 429, 429])


def test_serve_refuses_a_configuration_it_cannot_serve(tmp_path: Path) -> None:
    """No secret key: one clear error, not a traceback from every worker."""
    env = idp_env("sqlite:///" + str(tmp_path / "idp.sqlite3"), tmp_path, "http://127.0.0.1:1")
    del env["IDP_SECRET_KEY"]
    result = subprocess.run([IDP, "serve", "--bind", "127.0.0.1:0"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: no secret key: run `idp init` (writes instance/config.py) or set IDP_SECRET_KEY")


def test_the_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """`idp init` makes the database (and SQLite its -wal and -shm files) mode 0600, whatever the umask."""
    env = idp_env("", tmp_path, "http://127.0.0.1:5000")
    for name in ("IDP_DATABASE_URL", "IDP_SECRET_KEY"):
        del env[name]
    subprocess.run(["sh", "-c", f"umask 022 && exec {IDP} init"], env=env, check=True, capture_output=True,
                   timeout=120)
    files = sorted((tmp_path / "instance").glob("idp.sqlite3*"))
    assert files and files[0].name == "idp.sqlite3"
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
