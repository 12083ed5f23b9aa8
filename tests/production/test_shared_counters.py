"""Three workers agree on every counter: lockout, its reset, per-IP limits and the circuit breaker."""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from idp.connections import registry as connections
from idp.oauth.clients import create_client
from tests.conftest import PASSWORD
from tests.mailbox import Mailbox
from tests.served import Served, first_login, login_page, script_errors, serve
from tests.support import csrf_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

WORKERS = 3
ROUNDS = 30  # bound on the rounds it takes for every worker to answer at least once


def login(url: str, email: str, password: str) -> int:
    """Sign in through the hosted form in a fresh browser session; return the answer's status."""
    with requests.Session() as session:
        page = session.get(url + "/u/login", timeout=10)
        return session.post(page.url, allow_redirects=False, timeout=30, data={
            "csrf_token": csrf_token(page.text), "email": email, "password": password}).status_code


def at_once(count: int, call: Callable[[int], int]) -> list[int]:
    """Make `count` calls in parallel (so that the workers share them); return their results."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


def login_workers(served: Served, since: int) -> dict[int, list[int]]:
    """Return the statuses of the login posts each worker answered since access-log row `since`."""
    answered: dict[int, list[int]] = {}
    for pid, method, path, status in served.served()[since:]:
        if method == "POST" and path == "/u/login":
            answered.setdefault(pid, []).append(status)
    return answered


def settled(served: Served) -> int:
    """Return the access log's length once it stops growing (workers log just after answering)."""
    rows = -1
    while rows != (rows := len(served.served())):
        time.sleep(0.2)
    return rows


def on_every_worker(served: Served, call: Callable[[int], int]) -> dict[int, list[int]]:
    """Repeat parallel calls until every worker has answered one; return what each answered."""
    since = settled(served)
    for _ in range(ROUNDS):
        at_once(WORKERS, call)
        answered = login_workers(served, since)
        if len(answered) == WORKERS:
            return answered
    pytest.fail(f"not every worker answered in {ROUNDS} rounds: {answered}")


def test_ten_wrong_passwords_over_three_workers_lock_the_account_everywhere(
        app, user, database_url: str, tmp_path: Path) -> None:
    """The lock holds on every worker, and a reset lifts it on every worker."""
    email = user.email  # read here: the threads have no app context to load it in
    with Mailbox() as mailbox, serve(database_url, tmp_path, workers=WORKERS, RATELIMIT_ENABLED="0",
                                     THROTTLE_AFTER="100", SMTP_URL=mailbox.url) as served:
        wrong = at_once(2, lambda n: login(served.url, email, f"wrong {n}"))
        wrong += [status for _ in range(4) for status in at_once(2, lambda n: login(
            served.url, email, f"wrong {n}"))]
        assert wrong == [400] * 10
        assert len(login_workers(served, 0)) >= 2  # the ten were spread over the workers

        answered = on_every_worker(served, lambda n: login(served.url, email, PASSWORD))
        assert all(status == 429 for statuses in answered.values() for status in statuses), answered
        assert mailbox.wait_for(email, timeout=10)["Subject"].startswith("Your account was locked")

        with requests.Session() as session:  # a reset, served by one worker or another
            page = session.get(served.url + "/u/reset-password", timeout=10)
            session.post(page.url, timeout=10,
                         data={"csrf_token": csrf_token(page.text), "email": email})
            link = Mailbox.link(mailbox.wait_for(email, timeout=10))
            page = session.get(link, timeout=10)
            done = session.post(page.url, timeout=10, data={
                "csrf_token": csrf_token(page.text), "password": PASSWORD + "!", "confirm": PASSWORD + "!"})
            assert done.status_code == 200 and "Password changed" in done.text

        answered = on_every_worker(served, lambda n: login(served.url, email, PASSWORD + "!"))
        assert all(status == 302 for statuses in answered.values() for status in statuses), answered


def test_per_ip_limits_count_once_for_all_workers(app, user, database_url: str, tmp_path: Path) -> None:
    """Five sign-ins a minute from one address means five, whichever workers serve them."""
    with serve(database_url, tmp_path, workers=WORKERS, RATELIMIT_LOGIN="5 per minute") as served:
        statuses = [s for _ in range(4) for s in at_once(WORKERS, lambda n: login(
            served.url, f"someone{n}@example.com", "wrong password"))]
        assert sorted(statuses) == [400] * 5 + [429] * 7
        assert len(login_workers(served, 0)) >= 2


FAILING_LOGIN = '''
def login(email, password, configuration):
    raise ConnectionError("the legacy database is down")
'''


def test_the_circuit_breaker_opens_once_for_all_workers(app, database_url: str, tmp_path: Path) -> None:
    """Five failing calls open it for every worker: later first logins fail fast, calling nothing."""
    connection = connections.create("legacy", migrating=True)
    connections.configure(connection, login=FAILING_LOGIN)
    client, _ = create_client("Legacy app", ["https://legacy.example/cb"], first_party=True,
                              connection_id=connection.id)
    client_id = client.id  # read here: the threads have no app context to load it in

    def legacy_login(n: int) -> int:
        with requests.Session() as session:
            page = login_page(session, served.url, client_id, "https://legacy.example/cb")
            return first_login(session, page)

    with serve(database_url, tmp_path, workers=WORKERS, RATELIMIT_ENABLED="0") as served:
        statuses = [s for _ in range(3) for s in at_once(WORKERS, legacy_login)]
        assert statuses == [503] * 9
        opened = script_errors()
        # Five failures open it; calls already under way when it opened may add theirs.
        assert 5 <= opened <= 5 + WORKERS - 1
        answered = on_every_worker(served, legacy_login)
        assert all(status == 503 for statuses in answered.values() for status in statuses), answered
        assert script_errors() == opened  # open on every worker: no script was called again
