"""The provider as production runs it: `idp serve` (gunicorn, several workers), optionally behind nginx."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from idp.connections.legacy import SCRIPT_ERROR
from idp.connections.models import MigrationEvent
from idp.db import db
from tests.conftest import KEK, require_service
from tests.support import csrf_token

IDP = Path(sys.executable).parent / "idp"
NGINX = "/usr/sbin/nginx"
# Each access-log line names the worker that served the request: "<pid> METHOD PATH STATUS".
LINE = re.compile(r"^<(\d+)> (\S+) (\S+) (\d+)$")


@dataclass
class Served:
    """A running `idp serve` and where its workers log each request."""

    url: str
    access_log: Path
    error_log: Path
    env: dict[str, str]  # the IDP_* environment it serves with, for `idp` commands on the same deployment
    verify: str | bool = True  # what `requests` needs to trust it (the test CA under https)

    def served(self) -> list[tuple[int, str, str, int]]:
        """Return (worker pid, method, path, status) for every request served so far."""
        rows = []
        for line in self.access_log.read_text().splitlines():
            match = LINE.match(line)
            assert match, line
            pid, method, path, status = match.groups()
            rows.append((int(pid), method, path, int(status)))
        return rows


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, verify: str | bool,
                timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text()}")
        try:
            # A generous wait per probe: a worker's first request may be slow on a busy machine, and a
            # probe given up on still counts against a worker that --max-requests recycles.
            if requests.get(url + "/healthz", timeout=5, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not answer in {timeout}s: {log.read_text()}")


def listen() -> socket.socket:
    """Bind a listening socket on a free loopback port (handed to the server, so no port race)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener


def idp_env(database_url: str, tmp_path: Path, issuer: str, **settings: str) -> dict[str, str]:
    """Return the environment of a served provider: the test's database, cheap argon2, no IDP_* leaks."""
    (tmp_path / "instance").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "GUNICORN_"))}
    env.update(
        IDP_DATABASE_URL=database_url, IDP_SECRET_KEY="served-test-secret", IDP_ISSUER=issuer,
        IDP_KEY_ENCRYPTION_KEY=KEK, IDP_INSTANCE_PATH=str(tmp_path / "instance"),
        IDP_ARGON2_TIME_COST="1", IDP_ARGON2_MEMORY_COST="8", IDP_ARGON2_PARALLELISM="1",
    )
    env.update({f"IDP_{k}": v for k, v in settings.items()})
    return env


@contextmanager
def serve(database_url: str, tmp_path: Path, *, workers: int = 2, gunicorn: str = "",
          tls: tuple[Path, Path, Path] | None = None, issuer: str | None = None,
          listener: socket.socket | None = None, log_workers: bool = True,
          **settings: str) -> Iterator[Served]:
    """Run `idp serve --workers N` on a socket we bound, against the given database.

    `tls` is (ca, cert, key) to terminate https in the server; `gunicorn` adds gunicorn settings the
    way operators do (GUNICORN_CMD_ARGS); `settings` are IDP_* values without the prefix.
    """
    listener = listener or listen()
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}"
    env = idp_env(database_url, tmp_path, issuer or url, **settings)
    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    # By default the access log names each request's worker; without, it is the production format.
    access_format = "--access-logformat '%(p)s %(m)s %(U)s %(s)s'" if log_workers else ""
    env["GUNICORN_CMD_ARGS"] = (f"--access-logfile {access_log} {access_format} --error-logfile {error_log} "
                                f"--graceful-timeout 5 --no-control-socket {gunicorn}")
    command = [str(IDP), "serve", "--workers", str(workers), "--bind", f"fd://{listener.fileno()}"]
    if tls:
        command += ["--certfile", str(tls[1]), "--keyfile", str(tls[2])]
    verify: str | bool = str(tls[0]) if tls else True
    with error_log.open("a") as stderr:
        proc = subprocess.Popen(command, env=env, pass_fds=[listener.fileno()],
                                stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        _wait_ready(proc, url, error_log, verify)
        yield Served(url, access_log, error_log, env, verify)
    finally:
        _stop(proc)
        listener.close()


NGINX_CONF = """
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def free_port() -> int:
    """Return a loopback port that was free a moment ago (for servers that bind by themselves)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def tls_proxy(port: int, upstream: int, tls: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[str]:
    """Run nginx terminating https on `port` in front of `upstream`; yield its URL."""
    if not Path(NGINX).exists():
        require_service("nginx", "apt-get install -y nginx")
    folder = tmp_path / "nginx"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=folder, port=port, cert=tls[1], key=tls[2], upstream=upstream))
    log = folder / "nginx-error.log"
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-e", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"https://127.0.0.1:{port}"
    log.touch()
    try:
        _wait_ready(proc, url, log, str(tls[0]))
        yield url
    finally:
        _stop(proc)


def login_page(session: requests.Session, url: str, client_id: str, redirect_uri: str) -> requests.Response:
    """Open a client's login page at a served provider, as its authorization request leads there."""
    return session.get(url + "/authorize", timeout=10, params={
        "client_id": client_id, "response_type": "code", "scope": "openid", "redirect_uri": redirect_uri,
        "code_challenge": "x" * 43, "code_challenge_method": "S256"})


def first_login(session: requests.Session, page: requests.Response, password: str = "legacy password") -> int:
    """Sign in on a login page as an email never seen before (a first login); return the status."""
    return session.post(page.url, allow_redirects=False, timeout=30, data={
        "csrf_token": csrf_token(page.text), "email": f"{uuid.uuid4().hex}@example.com",
        "password": password}).status_code


def script_errors() -> int:
    """Count the script failures recorded so far in the test's database."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(MigrationEvent).where(
        MigrationEvent.type == SCRIPT_ERROR)) or 0
