"""The `idp` command as an operator runs it: a real process with the IDP_* environment."""

import json
import os
import socket
import stat
import subprocess
import sys
import time
from email import message_from_bytes, policy
from importlib.metadata import version
from pathlib import Path

import pytest
import requests

from tests.support import csrf_token

IDP = str(Path(sys.executable).parent / "idp")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment pointing idp at an empty deployment folder."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    return {
        **base, "IDP_INSTANCE_PATH": str(tmp_path / "instance"), "IDP_KEYS_DIR": str(tmp_path / "keys"),
        "IDP_ARGON2_TIME_COST": "1", "IDP_ARGON2_MEMORY_COST": "8", "IDP_ARGON2_PARALLELISM": "1",
    }


def idp(env: dict[str, str], *args: str, input: str | None = None, ok: bool = True) -> str:
    """Run the idp command; return its output."""
    done = subprocess.run([IDP, *args], env=env, input=input, capture_output=True, text=True, timeout=60)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_init_is_idempotent_and_keeps_secrets_private(env, tmp_path):
    idp(env, "init")
    config = tmp_path / "instance" / "config.py"
    kek = tmp_path / "keys" / "kek"
    first = config.read_text(), kek.read_bytes()
    assert "SECRET_KEY" in first[0]
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stat.S_IMODE(kek.stat().st_mode) == 0o600
    output = idp(env, "init")
    assert "wrote" not in output
    assert (config.read_text(), kek.read_bytes()) == first
    listing = idp(env, "keys", "list")
    assert listing.count(" current ") == 1 and listing.count(" next ") == 1


def test_clients_create_list_delete(env):
    idp(env, "init")
    made = json.loads(idp(env, "clients", "create", "--name", "Shop", "--redirect-uri",
                          "https://shop.example.com/cb", "--redirect-uri", "https://shop.example.com/cb2",
                          "--post-logout-redirect-uri", "https://shop.example.com/", "--json"))
    assert made["client_secret"] and made["redirect_uris"] == ["https://shop.example.com/cb",
                                                               "https://shop.example.com/cb2"]
    public = json.loads(idp(env, "clients", "create", "--name", "SPA", "--public", "--first-party",
                            "--redirect-uri", "http://127.0.0.1:3000/cb", "--json"))
    assert "client_secret" not in public
    listed = idp(env, "clients", "list", "--json")
    assert made["client_secret"] not in listed
    # `idp init` registered the dashboard's client.
    ours = {c["client_id"] for c in json.loads(listed) if c["name"] != "idp dashboard"}
    assert ours == {made["client_id"], public["client_id"]}
    human = idp(env, "clients", "create", "--name", "Other", "--redirect-uri", "https://o.example/cb")
    assert "client_secret:" in human and "cannot be shown again" in human
    idp(env, "clients", "delete", made["client_id"])
    assert made["client_id"] not in idp(env, "clients", "list")
    assert "no client" in idp(env, "clients", "delete", made["client_id"], ok=False)


def test_clients_create_refuses_unsafe_redirect_uris(env):
    idp(env, "init")
    for uri in ["http://evil.example.com/cb", "https://x.example/cb#frag", "https://*.example.com/cb",
                "javascript:alert(1)", "/relative"]:
        output = idp(env, "clients", "create", "--name", "Bad", "--redirect-uri", uri, ok=False)
        assert "Error" in output and "Traceback" not in output, uri


def test_users_create_prompts_for_the_password(env):
    idp(env, "init")
    output = idp(env, "users", "create", "--email", "Grace@Example.com", "--name", "Grace",
                 input="a long password\na long password\n")
    assert "created user" in output and "a long password" not in output
    again = idp(env, "users", "create", "--email", "grace@example.com", "--password", "another one", ok=False)
    assert "already exists" in again
    short = idp(env, "users", "create", "--email", "x@example.com", "--password", "short", ok=False)
    assert "at least 8" in short
    invalid = idp(env, "users", "create", "--email", "nope", "--password", "long enough", ok=False)
    assert "invalid email" in invalid


def test_keys_rotate_and_revoke(env):
    idp(env, "init")
    before = idp(env, "keys", "list")
    next_kid = next(line.split()[0] for line in before.splitlines() if " next " in line)
    refused = idp(env, "keys", "rotate", ok=False)  # the next key was published seconds ago
    assert f"the next key {next_kid} " in refused and "--force" in refused
    assert idp(env, "keys", "list") == before
    forced = idp(env, "keys", "rotate", "--force")
    assert f"rotated: {next_kid}" in forced and f"warning: {next_kid} " in forced
    after = idp(env, "keys", "list")
    assert after.count(" previous ") == 1
    assert f"revoked: {next_kid}" in idp(env, "keys", "revoke", next_kid)
    assert "no published key" in idp(env, "keys", "revoke", next_kid, ok=False)
    assert "no published key" in idp(env, "keys", "revoke", "unknown", ok=False)


def test_serving_without_init_says_how_to_fix_it(env):
    done = subprocess.run([sys.executable, "-c", "import wsgi"], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=60)
    assert done.returncode != 0 and "idp init" in done.stderr


def test_version_is_idps_own(env):
    assert idp(env, "--version").strip() == f"idp {version('idp')}"


def test_only_operator_commands_and_options_are_offered(env):
    shown = idp(env, "--help")
    for hidden in ("--app", "--env-file", "--debug", "limiter", "Flask"):
        assert hidden not in shown, hidden
    for command in ("init", "run", "serve", "db", "users", "admins", "clients", "apis", "connections",
                    "migration", "keys"):
        assert f"\n  {command} " in shown, command
    for refused in (["-A", "wsgi", "users", "list"], ["--env-file", ".env", "users", "list"],
                    ["--debug", "run"], ["limiter", "--help"], ["db", "migrate"], ["db", "downgrade"]):
        output = idp(env, *refused, ok=False)
        assert "No such" in output and "Traceback" not in output, refused
    db_help = idp(env, "db", "--help")
    assert "upgrade" in db_help
    for gone in ("init", "migrate", "downgrade", "revision", "stamp", "history"):
        assert f"\n  {gone} " not in db_help, gone


def test_db_upgrade_applies_idps_schema(env):
    failed = idp(env, "users", "list", ok=False)
    assert "database error" in failed and "idp init" in failed and "Traceback" not in failed
    assert "database schema up to date" in idp(env, "db", "upgrade")
    idp(env, "db", "upgrade")  # nothing left to apply
    assert idp(env, "users", "list") == ""
    assert "Username-Password-Authentication" in idp(env, "connections", "list")


def test_a_bad_configuration_is_a_message_not_a_traceback(env):
    output = idp({**env, "IDP_ISSUER": "http://idp.example.com"}, "users", "list", ok=False)
    assert "IDP_ISSUER must use https" in output and "Traceback" not in output


def test_the_development_server_logs_the_links_of_mails_it_cannot_send(env, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**env, "IDP_ISSUER": f"http://127.0.0.1:{port}"}
    idp(env, "init")
    idp(env, "users", "create", "--email", "bob@example.com", "--password", "a long password")
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        server = subprocess.Popen([IDP, "run", "--port", str(port)], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "Running on" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with requests.Session() as agent:
            page = agent.get(f"http://127.0.0.1:{port}/u/reset-password", timeout=10)
            answer = agent.post(page.url, data={"csrf_token": csrf_token(page.text),
                                                "email": "bob@example.com"}, timeout=10)
            assert answer.status_code == 200
        while "links: " not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(10)
    line = next(line for line in log.read_text().splitlines() if "links: " in line)
    assert "INFO idp.mail: mail to bob@example.com: 'Reset your password' written to" in line
    assert f"http://127.0.0.1:{port}/u/reset-password/new?token=" in line
    [mail] = (tmp_path / "instance" / "outbox").iterdir()
    text = message_from_bytes(mail.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    assert line.split("links: ")[1] in text
