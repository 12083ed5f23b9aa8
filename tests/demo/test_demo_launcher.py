"""`python -m demo`: its setup against a temporary instance folder, and a real run."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from demo.launcher import (
    CLIENT_FILE,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    LEGACY_CONNECTION,
    LEGACY_PASSWORD,
    LEGACY_USERS,
    REPO,
    idp,
    prepare,
)
from tests.support import csrf_token


def isolated_env(base: Path) -> dict[str, str]:
    """Return an environment with instance and keys folders under `base` and cheap hashing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "DEMO_"))}
    return {
        **env,
        "IDP_INSTANCE_PATH": str(base / "instance"),
        "IDP_KEYS_DIR": str(base / "keys"),
        "IDP_ARGON2_TIME_COST": "1",
        "IDP_ARGON2_MEMORY_COST": "8",
        "IDP_ARGON2_PARALLELISM": "1",
    }


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose instance folder is still empty."""
    return isolated_env(tmp_path)


@pytest.fixture(scope="module")
def prepared_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A folder prepared once (the CLI takes seconds a call), and the demo client it holds."""
    base = tmp_path_factory.mktemp("prepared")
    return base, prepare(isolated_env(base))


@pytest.fixture
def prepared(prepared_template: tuple[Path, dict], tmp_path: Path) -> tuple[dict[str, str], dict]:
    """A copy of the prepared folder for one test: its environment and its demo client."""
    base, client = prepared_template
    shutil.copytree(base, tmp_path / "copy")
    return isolated_env(tmp_path / "copy"), client


def demo_clients(env: dict[str, str]) -> list[dict]:
    """Return the clients called "Demo app" that the provider knows."""
    known = json.loads(idp(env, "clients", "list", "--json").stdout)
    return [c for c in known if c["name"] == "Demo app"]


def test_prepare_twice_reuses_the_client(demo_env, tmp_path):
    first = prepare(demo_env)
    second = prepare(demo_env)

    assert first["client_id"] and first["client_secret"]
    assert second == first
    saved = tmp_path / "instance" / CLIENT_FILE
    assert json.loads(saved.read_text()) == first
    assert saved.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "instance" / "config.py").exists() and (tmp_path / "keys" / "kek").exists()
    [client] = demo_clients(demo_env)
    assert client["client_id"] == first["client_id"] and client["first_party"]
    assert client["redirect_uris"] == ["http://127.0.0.1:5001/callback"]
    assert client["connection_id"] != "con_native"  # the demo app signs in through the legacy store
    again = idp(demo_env, "users", "create", "--email", DEMO_EMAIL, "--password", DEMO_PASSWORD,
                "--connection", LEGACY_CONNECTION, check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    status = json.loads(idp(demo_env, "migration", "status", LEGACY_CONNECTION, "--json").stdout)
    assert status["migrated"] == 0


def test_prepare_replaces_a_deleted_client(prepared):
    env, first = prepared
    idp(env, "clients", "delete", "--", first["client_id"])

    second = prepare(env)

    assert second["client_id"] != first["client_id"]
    assert [c["client_id"] for c in demo_clients(env)] == [second["client_id"]]
    assert json.loads((Path(env["IDP_INSTANCE_PATH"]) / CLIENT_FILE).read_text()) == second


def test_prepare_follows_demo_port(prepared):
    env, first = prepared

    second = prepare({**env, "DEMO_PORT": "5999"})

    assert second["client_id"] != first["client_id"]
    [client] = demo_clients(env)
    assert client["client_id"] == second["client_id"]
    assert client["redirect_uris"] == ["http://127.0.0.1:5999/callback"]


def free_port() -> int:
    """Return a loopback port that nothing listens on just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_banner(process: subprocess.Popen[bytes], log: Path) -> str:
    """Wait until the demo says both servers answer; fail with its output if it exits or hangs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        output = log.read_text()
        if "Press Ctrl-C" in output:
            return output
        assert process.poll() is None, output
        time.sleep(0.2)
    pytest.fail(f"the demo did not start:\n{log.read_text()}")


def test_demo_runs_signs_in_and_stops_on_ctrl_c(demo_env, tmp_path):
    issuer, rp = f"http://127.0.0.1:{free_port()}", free_port()
    env = {**demo_env, "IDP_ISSUER": issuer, "DEMO_PORT": str(rp)}
    rp_url = f"http://127.0.0.1:{rp}"
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "demo"], env=env, cwd=REPO, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        output = wait_for_banner(process, log)
        assert f"Open the demo app:   {rp_url}/" in output and DEMO_PASSWORD in output
        assert requests.get(issuer + "/healthz", timeout=5).status_code == 200
        with requests.Session() as agent:
            page = agent.get(rp_url + "/login")
            assert urlsplit(page.url).path == "/u/login", page.text
            home = agent.post(page.url, data={
                "csrf_token": csrf_token(page.text), "email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert home.url == rp_url + "/" and "Demo User" in home.text, home.text
        with requests.Session() as agent:  # a user of the sample legacy store moves over
            page = agent.get(rp_url + "/login")
            home = agent.post(page.url, data={"csrf_token": csrf_token(page.text),
                                              "email": LEGACY_USERS[0][1], "password": LEGACY_PASSWORD})
        assert home.url == rp_url + "/" and "Alice Legacy" in home.text, home.text
        report = json.loads(idp(env, "migration", "status", LEGACY_CONNECTION, "--json").stdout)
        assert report["migrated"] == 1 and report["by_source"] == {"login": 1}
        assert f"Dashboard:           {issuer}/admin" in output
        with requests.Session() as agent:  # the demo user is an admin
            page = agent.get(issuer + "/admin")
            assert urlsplit(page.url).path == "/u/login", page.text
            overview = agent.post(page.url, data={
                "csrf_token": csrf_token(page.text), "email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert overview.url == issuer + "/admin" and "<h1>Overview</h1>" in overview.text, overview.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            status = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert status == 0, log.read_text()
    for port in (urlsplit(issuer).port, rp):
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
