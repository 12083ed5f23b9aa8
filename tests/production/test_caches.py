"""Workers serve keys and clients from memory, and still notice another process's change within seconds."""

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests

from idp.oauth.clients import create_client
from tests.served import IDP, Served, serve

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

API = "https://api.example.com"
NOTICED_WITHIN = 5.0  # seconds: KEY_SET_MAX_AGE and CLIENT_CACHE_MAX_AGE are one, plus slack for load


def tokens(served: Served, client: tuple[str, str], count: int = 8) -> list[requests.Response]:
    """Ask for `count` client-credentials tokens at once, so that every worker answers some."""
    def one(_: int) -> requests.Response:
        return requests.post(served.url + "/oauth/token", auth=client, timeout=10,
                             data={"grant_type": "client_credentials", "audience": API})
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def idp(served: Served, *args: str) -> str:
    """Run an `idp` command against the served provider's database, as an operator would."""
    return subprocess.run([str(IDP), *args], env=served.env, capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_every_worker_signs_with_the_new_key_soon_after_another_process_rotates(app, database_url: str,
                                                                              tmp_path: Path) -> None:
    made, secret = create_client("Machine", [], audiences=[API])
    client = (made.id, secret or "")
    with serve(database_url, tmp_path, workers=2) as served:
        before = {jwt.get_unverified_header(r.json()["access_token"])["kid"] for r in tokens(served, client)}
        assert len(before) == 1
        [new] = re.findall(r"rotated: ([0-9a-f]{64}) now signs", idp(served, "keys", "rotate", "--force"))
        deadline = time.monotonic() + NOTICED_WITHIN
        while True:
            answers = tokens(served, client)
            published = {k["kid"] for k in requests.get(served.url + "/.well-known/jwks.json", timeout=10)
                         .json()["keys"]}
            kids = {jwt.get_unverified_header(r.json()["access_token"])["kid"] for r in answers}
            assert kids <= published  # whichever key signs, relying parties can verify it
            if kids == {new}:
                break
            assert time.monotonic() < deadline, f"still signing with {kids - {new}}"
            time.sleep(0.2)
        assert before <= published  # the old key stays published while its tokens live


def test_every_worker_refuses_a_client_soon_after_another_process_deletes_it(app, database_url: str,
                                                                           tmp_path: Path) -> None:
    made, secret = create_client("Machine", [], audiences=[API])
    client = (made.id, secret or "")
    with serve(database_url, tmp_path, workers=2) as served:
        assert {r.status_code for r in tokens(served, client)} == {200}
        idp(served, "clients", "delete", "--", made.id)
        deadline = time.monotonic() + NOTICED_WITHIN
        while {r.status_code for r in tokens(served, client)} != {401}:
            assert time.monotonic() < deadline, "a worker still issues tokens to the deleted client"
            time.sleep(0.2)
