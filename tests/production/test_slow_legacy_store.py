"""A legacy store that hangs holds up nothing else: keys, tokens and local sign-ins answer meanwhile.

Under `idp serve` with three workers: ten first logins wait on a login script that never answers,
while JWKS, a client_credentials token and a native user's sign-in are measured; then the circuit
breaker, opened by the scripts' timeouts, makes later first logins fail at once on every worker.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from idp.connections import registry as connections
from idp.oauth.clients import create_client
from tests.conftest import PASSWORD
from tests.served import first_login, login_page, script_errors, serve
from tests.support import csrf_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

WORKERS = 3
FIRST_LOGINS = 10
SCRIPT_TIMEOUT = 4  # seconds: long enough to measure under, short enough for a test
QUICK = 2.0  # seconds: a generous bound for "answers at once" (correctness, not a benchmark)
MILLISECONDS = 0.25  # seconds: the median a request that needs no script stays under

HANGING_LOGIN = '''
import time


def login(email, password, configuration):
    time.sleep(30)  # a legacy database that took the connection and never answers
'''

LEGACY_CALLBACK = "https://legacy.example/cb"

def timed(call: Callable[[], int]) -> tuple[int, float]:
    """Return a call's status and how many seconds it took."""
    started = time.perf_counter()
    status = call()
    return status, time.perf_counter() - started


def test_a_hanging_legacy_store_holds_up_nothing_else(app, user, rp, database_url: str, tmp_path: Path):
    connection = connections.create("hanging", migrating=True)
    connections.configure(connection, login=HANGING_LOGIN)
    legacy_client, _ = create_client("Legacy app", [LEGACY_CALLBACK], first_party=True,
                                     connection_id=connection.id)
    # Read here: the threads have no app context to load them in.
    legacy_id, email, rp_id, rp_secret = legacy_client.id, user.email, rp.id, rp.secret or ""

    with serve(database_url, tmp_path, workers=WORKERS, RATELIMIT_ENABLED="0",
               SCRIPT_TIMEOUT=str(SCRIPT_TIMEOUT), BREAKER_FAILURES="2", BREAKER_COOLDOWN="60") as served:

        def jwks() -> int:
            return requests.get(served.url + "/.well-known/jwks.json", timeout=30).status_code

        def token() -> int:
            return requests.post(served.url + "/oauth/token", auth=(rp_id, rp_secret), timeout=30, data={
                "grant_type": "client_credentials", "audience": "https://api.example.com"}).status_code

        def local_login() -> int:
            with requests.Session() as session:
                page = session.get(served.url + "/u/login", timeout=30)
                return session.post(page.url, allow_redirects=False, timeout=30, data={
                    "csrf_token": csrf_token(page.text), "email": email, "password": PASSWORD}).status_code

        sessions = [requests.Session() for _ in range(FIRST_LOGINS)]
        # Loaded first: the posts leave together.
        pages = [login_page(session, served.url, legacy_id, LEGACY_CALLBACK) for session in sessions]
        measured: list[tuple[str, int, float]] = []
        with ThreadPoolExecutor(FIRST_LOGINS) as pool:
            waiting = [pool.submit(timed, lambda s=s, p=p: first_login(s, p))
                       for s, p in zip(sessions, pages, strict=True)]
            time.sleep(0.2)  # the posts have arrived
            while not all(future.done() for future in waiting):
                measured += [(name, *timed(call)) for name, call in
                             (("jwks", jwks), ("token", token), ("local login", local_login))]
            answered = [future.result() for future in waiting]
        for session in sessions:
            session.close()

        assert [status for status, _ in answered] == [503] * FIRST_LOGINS
        # Each waited for the script's timeout at most, never for its 30 s; those that found every
        # slot of their worker taken failed at once.
        assert max(seconds for _, seconds in answered) < SCRIPT_TIMEOUT + QUICK
        assert min(seconds for _, seconds in answered) < QUICK
        assert len(measured) >= 3 * 3, measured  # three rounds at least while the logins waited
        slow = [(name, status, seconds) for name, status, seconds in measured
                if seconds >= QUICK or status != {"local login": 302}.get(name, 200)]
        assert not slow, slow
        for name in ("jwks", "token"):  # typically milliseconds: the hanging store holds up nothing
            times = sorted(seconds for measured_name, _, seconds in measured if measured_name == name)
            assert times[len(times) // 2] < MILLISECONDS, (name, times)

        # The timeouts opened the breaker, for every worker: first logins now fail at once.
        opened = script_errors()
        assert opened >= 2
        with ThreadPoolExecutor(WORKERS) as pool:
            later = list(pool.map(lambda _: timed(lambda: first_login(
                session := requests.Session(), login_page(session, served.url, legacy_id, LEGACY_CALLBACK))),
                range(2 * WORKERS)))
        assert all(status == 503 and seconds < QUICK for status, seconds in later), later
        assert script_errors() == opened  # no script was called
