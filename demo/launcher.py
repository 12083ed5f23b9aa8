"""Set up and run the demo: the provider and a relying party, ready to sign in."""

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import bcrypt
import requests

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ISSUER = "http://127.0.0.1:5000"
DEFAULT_PORT = "5001"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
DEMO_NAME = "Demo User"
CLIENT_NAME = "Demo app"
LEGACY_CONNECTION = "legacy-demo"
# Beside the instance folder, not in it: migration scripts may never read the provider's own files.
LEGACY_FILE = Path("legacy-demo") / "legacy-demo.sqlite3"
LEGACY_PASSWORD = "legacy-password"
# The users of the sample legacy store: (id, email, name, verified). They move over on first sign-in.
LEGACY_USERS = [
    (101, "alice@legacy.example", "Alice Legacy", 1),
    (102, "bob@legacy.example", "Bob Legacy", 1),
    (103, "carol@legacy.example", "Carol Legacy", 0),
]
CLIENT_FILE = "demo-client.json"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and how to fix it."""


def environment(env: Mapping[str, str]) -> dict[str, str]:
    """Return `env` with the demo's defaults filled in (instance folder, issuer, port)."""
    full = dict(env)
    # Pin the instance folder so the CLI, the provider and demo-client.json agree on it.
    full.setdefault("IDP_INSTANCE_PATH", str(REPO / "instance"))
    full.setdefault("IDP_ISSUER", DEFAULT_ISSUER)
    full.setdefault("DEMO_PORT", DEFAULT_PORT)
    full.setdefault("IDP_ADMIN_CONNECTION", LEGACY_CONNECTION)  # the demo user, an admin, signs in there
    full["IDP_ISSUER"] = full["IDP_ISSUER"].rstrip("/")
    port = full["DEMO_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DemoError(f"DEMO_PORT must be a port number, not {port!r}")
    return full


def rp_url(env: Mapping[str, str]) -> str:
    """Return the demo relying party's base URL."""
    return f"http://127.0.0.1:{env['DEMO_PORT']}"


def idp_port(env: Mapping[str, str]) -> int:
    """Return the local port the provider listens on: the issuer's."""
    parts = urlsplit(env["IDP_ISSUER"])
    try:
        port = parts.port
    except ValueError:
        raise DemoError(f"IDP_ISSUER has a bad port: {env['IDP_ISSUER']!r}") from None
    return port or (443 if parts.scheme == "https" else 80)


def idp(env: Mapping[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `idp` command of this virtualenv."""
    command = [str(Path(sys.executable).parent / "idp"), *args]
    result = subprocess.run(command, env=dict(env), cwd=REPO, capture_output=True, text=True,
                            check=False)
    if check and result.returncode != 0:
        raise DemoError(f"`idp {' '.join(args[:2])}` failed:\n{result.stderr or result.stdout}")
    return result


def _saved_client(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("client_id") and data.get("client_secret"):
        return data
    return None


def _ensure_client(env: Mapping[str, str]) -> dict[str, Any]:
    """Reuse the saved demo client if the provider still has it as saved, else register one."""
    path = Path(env["IDP_INSTANCE_PATH"]) / CLIENT_FILE
    callback = rp_url(env) + "/callback"
    saved = _saved_client(path)
    if saved is not None:
        known = json.loads(idp(env, "clients", "list", "--json").stdout)
        match = next((c for c in known if c["client_id"] == saved["client_id"]), None)
        if match is not None and callback in match["redirect_uris"]:
            idp(env, "clients", "set-connection", "--", saved["client_id"], LEGACY_CONNECTION)
            return saved
        if match is not None:  # registered for another DEMO_PORT: replace it
            idp(env, "clients", "delete", "--", saved["client_id"])
    created = idp(env, "clients", "create", "--name", CLIENT_NAME, "--redirect-uri", callback,
                  "--post-logout-redirect-uri", rp_url(env) + "/", "--first-party",
                  "--connection", LEGACY_CONNECTION, "--json")
    client = json.loads(created.stdout)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the secret
    with os.fdopen(fd, "w") as f:
        json.dump(client, f, indent=2)
    return client


def _legacy_store(env: Mapping[str, str]) -> Path:
    """Write the sample legacy database (bcrypt hashes, as PHP's password_hash makes them) once."""
    path = Path(env["IDP_INSTANCE_PATH"]).parent / LEGACY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(LEGACY_PASSWORD.encode(), bcrypt.gensalt(10)).decode()
        hashed = hashed.replace("$2b$", "$2y$", 1)  # as PHP writes them
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, password_hash TEXT, "
                       "email_verified INTEGER, name TEXT, given_name TEXT, family_name TEXT)")
            db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(i, email, hashed, verified, name, *name.split()) for i, email, name, verified
                            in LEGACY_USERS])
    return path


def prepare(env: Mapping[str, str]) -> dict[str, Any]:
    """Initialise the provider, the legacy store, the demo user and the demo client; return the client."""
    env = environment(env)
    idp(env, "init")
    made = idp(env, "connections", "create", "--name", LEGACY_CONNECTION, "--migrate", "--template", "sqlite",
               "--config", f"path={_legacy_store(env)}", check=False)
    if made.returncode != 0 and "already exists" not in made.stderr:
        raise DemoError(f"`idp connections create` failed:\n{made.stderr or made.stdout}")
    user = idp(env, "users", "create", "--email", DEMO_EMAIL, "--password", DEMO_PASSWORD,
               "--name", DEMO_NAME, "--verified", "--connection", LEGACY_CONNECTION, check=False)
    if user.returncode != 0 and "already exists" not in user.stderr:
        raise DemoError(f"`idp users create` failed:\n{user.stderr or user.stdout}")
    idp(env, "admins", "add", DEMO_EMAIL)
    return _ensure_client(env)


def _check_free(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: ignore TIME_WAIT
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise DemoError(
                f"port {port} is in use: stop what runs there, or choose other ports, e.g. "
                "IDP_ISSUER=http://127.0.0.1:5050 DEMO_PORT=5051 make demo"
            ) from None


def _start(env: Mapping[str, str], client: Mapping[str, Any]) -> list[subprocess.Popen[bytes]]:
    """Start the provider and the relying party; each in its own session, so we alone stop them."""
    provider = subprocess.Popen(
        [str(Path(sys.executable).parent / "idp"), "run", "--port", str(idp_port(env))],
        env=dict(env), cwd=REPO, start_new_session=True,
    )
    rp_env = {**env, "DEMO_CLIENT_ID": client["client_id"],
              "DEMO_CLIENT_SECRET": client["client_secret"]}
    rp = subprocess.Popen([sys.executable, "-m", "demo.rp"], env=rp_env, cwd=REPO,
                          start_new_session=True)
    return [provider, rp]


def _wait_ready(processes: list[subprocess.Popen[bytes]], urls: list[str]) -> None:
    """Wait until every URL answers, failing fast if a process exits first."""
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = list(urls)
    while waiting:
        for process in processes:
            if process.poll() is not None:
                raise DemoError(f"{process.args[0]} exited with status {process.returncode}; "
                                "its output is above")
        try:
            if requests.get(waiting[0], timeout=2).status_code == 200:
                waiting.pop(0)
                continue
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"{waiting[0]} did not answer within {READY_TIMEOUT:.0f} s")
        time.sleep(0.2)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _banner(env: Mapping[str, str]) -> str:
    issuer, rp = env["IDP_ISSUER"], rp_url(env)
    return "\n".join([
        "",
        "  idp demo is running",
        "",
        f"  Open the demo app:   {rp}/",
        f"  Provider (issuer):   {issuer}",
        f"  Discovery:           {issuer}/.well-known/openid-configuration",
        f"  Dashboard:           {issuer}/admin  (the demo user is an admin)",
        "",
        f"  Sign in as:          {DEMO_EMAIL}  /  {DEMO_PASSWORD}",
        f"  or a legacy user:    {LEGACY_USERS[0][1]}  /  {LEGACY_PASSWORD}",
        f"                       (moves over on first sign-in: `idp migration status {LEGACY_CONNECTION}`)",
        "",
        "  Press Ctrl-C to stop both servers.",
        "",
    ])


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def run(env: Mapping[str, str]) -> int:
    """Prepare, start both servers, and serve until Ctrl-C (or SIGTERM); return the exit status."""
    env = environment(env)
    _check_free(idp_port(env))
    _check_free(int(env["DEMO_PORT"]))
    print(f"preparing the provider (instance folder {env['IDP_INSTANCE_PATH']}) …", flush=True)
    client = prepare(env)
    # SIGINT too: a shell without job control starts background commands with it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    processes = _start(env, client)
    try:
        _wait_ready(processes, [f"http://127.0.0.1:{idp_port(env)}/healthz", rp_url(env) + "/"])
        print(_banner(env), flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        stopped = next(p for p in processes if p.poll() is not None)
        print(f"{stopped.args[0]} exited with status {stopped.returncode}; stopping the demo",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the demo …", flush=True)
        return 0
    finally:
        _stop(processes)


def main() -> int:
    """Run the demo with the process environment; report failures without a traceback."""
    try:
        return run(os.environ)
    except DemoError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
