"""A key signs only once it has been published for a whole JWKS cache lifetime, unless forced."""

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
import requests
from click.testing import Result
from flask import Flask

from idp.db import db, utcnow
from idp.keys import store
from idp.keys.models import CURRENT, NEXT, PREVIOUS, SigningKey
from idp.oauth.clients import create_client
from idp.oauth.tokens import sign
from tests.interop.browser import TIMEOUT
from tests.keys.support import age, jwks_kids, states
from tests.served import serve
from tests.support import in_threads

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

IDP = str(Path(sys.executable).parent / "idp")
API = "https://api.example.com"


def publish_ago(kid: str, seconds: float) -> None:
    """Make a key look created, and so published, that many seconds ago."""
    key = db.session.get(SigningKey, kid)
    assert key is not None
    key.created_at = utcnow() - timedelta(seconds=seconds)
    db.session.commit()


def safe_at(app: Flask, kid: str) -> str:
    """Return when a key becomes safe to sign, as the CLI prints it."""
    key = db.session.get(SigningKey, kid)
    assert key is not None
    return f"{key.created_at + store.cache_window():%Y-%m-%d %H:%M:%S}Z"


def rotate_cli(app: Flask, *args: str) -> Result:
    """Run `idp keys rotate` in-process; the test's session then sees what it wrote."""
    result = app.test_cli_runner().invoke(args=["keys", "rotate", *args])
    db.session.expire_all()
    return result


def test_rotation_refuses_a_next_key_younger_than_the_jwks_cache_lifetime(app):
    keys = states()
    max_age = store.cache_window().total_seconds()
    publish_ago(keys[NEXT][0], max_age - 5)
    with pytest.raises(store.NextKeyTooNew) as refused:
        store.rotate()
    assert refused.value.kid == keys[NEXT][0]
    assert timedelta(0) < refused.value.safe_at - utcnow() <= timedelta(seconds=5)
    assert states() == keys
    # A JWKS lifetime after its creation is not enough: a process may have served a JWKS without it
    # for up to KEY_SET_MAX_AGE after that, and a relying party may hold such a JWKS that long longer.
    publish_ago(keys[NEXT][0], app.config["JWKS_MAX_AGE"] + app.config["KEY_SET_MAX_AGE"] / 2)
    with pytest.raises(store.NextKeyTooNew):
        store.rotate()
    publish_ago(keys[NEXT][0], max_age)
    rotated = store.rotate()
    assert rotated is not None and rotated.kid == keys[NEXT][0]
    assert states()[CURRENT] == keys[NEXT] and states()[PREVIOUS] == keys[CURRENT]


def test_a_second_rotation_in_a_row_is_refused(app):
    keys = states()
    age(keys[NEXT][0], seconds=store.cache_window().total_seconds())
    rotated = store.rotate()
    assert rotated is not None and rotated.kid == keys[NEXT][0]
    fresh = states()[NEXT]
    with pytest.raises(store.NextKeyTooNew) as refused:
        store.rotate()
    assert refused.value.kid == fresh[0]
    assert states()[CURRENT] == keys[NEXT] and states()[NEXT] == fresh
    assert jwt.get_unverified_header(sign({"x": 1}))["kid"] == keys[NEXT][0]


def test_forced_rotation_promotes_a_young_next_key(app):
    keys = states()
    publish_ago(keys[NEXT][0], 60)
    rotated = store.rotate(force=True)
    assert rotated is not None and rotated.kid == keys[NEXT][0]
    assert store.unsafe_until(rotated) is not None  # what the CLI warns about
    assert jwt.get_unverified_header(sign({"x": 1}))["kid"] == keys[NEXT][0]


def test_automatic_rotation_never_follows_a_rotation_at_once(app):
    app.config["KEY_ROTATION_PERIOD"] = 0  # always due, as far as the period goes
    keys = states()
    age(keys[NEXT][0], seconds=store.cache_window().total_seconds())
    store.maintain()
    after = states()
    assert after[CURRENT] == keys[NEXT]
    store.maintain()
    assert states() == after  # the new next key has not been published long enough


def test_a_next_key_is_published_from_its_creation(app):
    """A next key's created_at is when it was published: the JWKS serves it from that commit on."""
    before = utcnow()
    store.rotate(force=True)
    fresh = db.session.get(SigningKey, states()[NEXT][0])
    assert fresh is not None and before <= fresh.created_at <= utcnow()
    assert fresh.kid in jwks_kids(app)


def test_operators_rotating_at_once_rotate_exactly_once(app):
    keys = states()
    age(keys[NEXT][0], seconds=store.cache_window().total_seconds())
    db.session.remove()
    barrier = threading.Barrier(4)
    outcomes: list[str | None] = []
    errors: list[BaseException] = []

    def operator() -> None:
        with app.app_context():
            try:
                barrier.wait()
                rotated = store.rotate()
                outcomes.append(rotated.kid if rotated else None)
            except store.NextKeyTooNew:  # came after the winner: its fresh next key is too young
                outcomes.append("refused")
            except BaseException as e:  # surfaced by the assertion below
                errors.append(e)
            finally:
                db.session.remove()

    in_threads(*[operator] * 4, timeout=30)
    assert not errors
    assert outcomes.count(keys[NEXT][0]) == 1 and set(outcomes) <= {keys[NEXT][0], None, "refused"}
    after = states()
    assert after[CURRENT] == keys[NEXT] and after[PREVIOUS] == keys[CURRENT] and len(after[NEXT]) == 1


def test_cli_refuses_a_young_next_key_and_says_when_it_is_safe(app):
    keys = states()
    publish_ago(keys[NEXT][0], 60)
    result = rotate_cli(app)
    assert result.exit_code == 1, result.output
    message = result.stderr
    assert "not rotating" in message and keys[NEXT][0] in message
    assert safe_at(app, keys[NEXT][0]) in message
    wait = re.search(r"safe to sign in (\d+)s", message)
    assert wait and 0 < int(wait[1]) <= store.cache_window().total_seconds(), message
    assert "idp keys rotate --force" in message and "Traceback" not in result.output
    assert states() == keys


def test_cli_force_rotates_and_warns_what_relying_parties_will_see(app):
    keys = states()
    publish_ago(keys[NEXT][0], 60)
    result = rotate_cli(app, "--force")
    assert result.exit_code == 0, result.output
    assert f"rotated: {keys[NEXT][0]} now signs" in result.stdout
    warning = " ".join(result.stderr.split())
    assert warning.startswith(f"warning: {keys[NEXT][0]} was published less than JWKS_MAX_AGE=")
    assert "Tokens it signs fail verification at relying parties whose cached JWKS predates its publication" \
        in warning
    assert "until their cache expires or they refetch the JWKS on an unknown kid" in warning
    assert f"until {safe_at(app, keys[NEXT][0])}" in warning
    wait = re.search(r"for up to (\d+)s more", warning)
    assert wait and 0 < int(wait[1]) <= store.cache_window().total_seconds(), warning
    assert states()[CURRENT] == keys[NEXT]


def test_cli_rotates_a_next_key_published_long_enough_then_refuses_the_next(app):
    keys = states()
    age(keys[NEXT][0], seconds=store.cache_window().total_seconds())
    first = rotate_cli(app)
    assert first.exit_code == 0, first.output
    assert first.stdout == f"rotated: {keys[NEXT][0]} now signs\n" and not first.stderr  # no warning
    fresh = states()[NEXT][0]
    second = rotate_cli(app)
    assert second.exit_code == 1 and f"the next key {fresh} " in second.stderr
    assert states()[CURRENT] == keys[NEXT]


# End to end: two gunicorn workers, a relying party that cached the JWKS, an operator rotating twice.


def issue(url: str, client_id: str, secret: str) -> str:
    """Get a client_credentials access token."""
    response = requests.post(url + "/oauth/token", data={"grant_type": "client_credentials", "audience": API},
                             auth=(client_id, secret), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_rotating_twice_under_gunicorn_never_breaks_a_cached_jwks(app, database_url, tmp_path_factory):
    """Tokens issued by two workers while an operator rotates twice all verify against an old JWKS."""
    client, secret = create_client("Rotation RP", [], audiences=[API])
    assert secret is not None
    old = states()
    # The next key has been published for a whole JWKS cache lifetime: the first rotation is safe.
    age(old[NEXT][0], seconds=store.cache_window().total_seconds())
    with serve(database_url, tmp_path_factory.mktemp("gunicorn"), RATELIMIT_ENABLED="0") as server:
        # The relying party fetches the JWKS once and never again (not even for an unknown kid).
        response = requests.get(server.url + "/.well-known/jwks.json", timeout=TIMEOUT)
        assert f"max-age={app.config['JWKS_MAX_AGE']}" in response.headers["Cache-Control"]
        cached = jwt.PyJWKSet.from_dict(response.json())
        assert {key.key_id for key in cached.keys} == {*old[CURRENT], *old[NEXT]}

        deadline = time.monotonic() + 60
        tokens = [issue(server.url, client.id, secret) for _ in range(4)]  # before the rotations

        def operator() -> list[subprocess.CompletedProcess[str]]:
            return [subprocess.run([IDP, "keys", "rotate"], env=server.env, capture_output=True, text=True,
                                   timeout=60) for _ in range(2)]

        def relying_party(rotations: Future[list[subprocess.CompletedProcess[str]]]) -> list[str]:
            issued, after = [], 0
            while after < 5 and time.monotonic() < deadline:  # a few more once the operator is done
                done = rotations.done()
                issued.append(issue(server.url, client.id, secret))
                after += done
            return issued

        with ThreadPoolExecutor(3) as pool:
            rotations = pool.submit(operator)
            clients = [pool.submit(relying_party, rotations) for _ in range(2)]
            first, second = rotations.result()
            for issued in clients:
                tokens += issued.result()
        assert time.monotonic() < deadline, "the operator did not finish in time"
        served = server.served()

    db.session.expire_all()
    now = states()
    assert first.returncode == 0 and first.stdout == f"rotated: {old[NEXT][0]} now signs\n", first.stderr
    assert second.returncode != 0 and f"not rotating: the next key {now[NEXT][0]} " in second.stderr
    assert "--force" in second.stderr and "Traceback" not in second.stderr
    assert now[CURRENT] == old[NEXT] and now[PREVIOUS] == old[CURRENT]

    failures = []
    for token in tokens:
        kid = jwt.get_unverified_header(token)["kid"]
        try:
            jwt.decode(token, cached[kid].key, algorithms=["RS256"], audience=API, issuer=server.url)
        except (KeyError, jwt.PyJWTError) as e:
            failures.append(f"{kid}: {e!r}")
    assert not failures, failures
    signers = {jwt.get_unverified_header(t)["kid"] for t in tokens}
    assert signers == {*old[CURRENT], *old[NEXT]}  # both sides of the rotation were exercised

    token_pids = {pid for pid, _, path, _ in served if path == "/oauth/token"}
    assert len(token_pids) > 1 and all(status < 500 for *_, status in served), served
