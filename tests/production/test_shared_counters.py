"""Three workers agree on every counter: lockout, its reset, per-IP limits and the circuit breaker."""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import select

from idp.connections import registry as connections
from idp.counters import Counter
from idp.db import db
from idp.oauth.clients import create_client
from tests.conftest import PASSWORD, require_service
from tests.mailbox import Mailbox
from tests.served import Served, first_login, login_page, script_errors, serve
from tests.support import csrf_token

DATABASES = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
# The counters in either database, or in Redis (on SQLite only: with Redis the database holds none).
STORES = pytest.mark.parametrize(("database_url", "redis_url"), [
    pytest.param("sqlite", "", id="sqlite"), pytest.param("postgresql", "", id="postgresql"),
    pytest.param("sqlite", "redis", id="redis")], indirect=True)

WORKERS = 3
ROUNDS = 30  # bound on the rounds it takes for every worker to answer at least once
REDIS_URL = "redis://127.0.0.1:6379/3"  # a database of these tests' own, emptied before and after each


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """IDP_REDIS_URL for the served workers: "" (counters in the database), or an emptied Redis database."""
    if not request.param:
        yield ""
        return
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        require_service("Redis", 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""')
    client.flushdb()  # a lock left by an earlier, failed run would answer 429 from the start
    yield REDIS_URL
    client.flushdb()
    client.close()


def counted(redis_url: str, prefix: str) -> list[str]:
    """Return the keys of the live counters starting with `prefix`, wherever the workers keep them."""
    if redis_url:
        with redis.Redis.from_url(redis_url) as client:  # keys under the `limits` library's own prefix
            return [key.decode().split(":", 1)[1] for key in client.scan_iter(f"*:{prefix}*")]
    db.session.expire_all()
    return list(db.session.scalars(select(Counter.key).where(
        Counter.key.startswith(prefix), Counter.expires_at > time.time())))


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


@STORES
def test_ten_wrong_passwords_over_three_workers_lock_the_account_everywhere(
        app, user, database_url: str, redis_url: str, tmp_path: Path) -> None:
    """The lock holds on every worker, and a reset lifts it on every worker."""
    email = user.email  # read here: the threads have no app context to load it in
    with Mailbox() as mailbox, serve(database_url, tmp_path, workers=WORKERS, RATELIMIT_ENABLED="0",
                                     THROTTLE_AFTER="100", SMTP_URL=mailbox.url,
                                     REDIS_URL=redis_url) as served:
        wrong = at_once(2, lambda n: login(served.url, email, f"wrong {n}"))
        wrong += [status for _ in range(4) for status in at_once(2, lambda n: login(
            served.url, email, f"wrong {n}"))]
        assert wrong == [400] * 10
        # The ten were spread over the workers (not always all three: about one run in thirty, two).
        assert len(login_workers(served, 0)) >= 2

        answered = on_every_worker(served, lambda n: login(served.url, email, PASSWORD))
        assert all(status == 429 for statuses in answered.values() for status in statuses), answered
        assert mailbox.wait_for(email, timeout=10)["Subject"].startswith("Your account was locked")
        assert len(counted(redis_url, "idp:lock:")) == 1  # in Redis when it is configured, else the database

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


@DATABASES
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


@STORES
def test_the_circuit_breaker_opens_once_for_all_workers(app, database_url: str, redis_url: str,
                                                        tmp_path: Path) -> None:
    """Five failing calls open it for every worker: later first logins fail fast, calling nothing."""
    connection = connections.create("legacy", migrating=True)
    connections.configure(connection, login=FAILING_LOGIN)
    client, _ = create_client("Legacy app", ["https://legacy.example/cb"], first_party=True,
                              connection_id=connection.id)
    client_id = client.id  # read here: the threads have no app context to load it in
    opened_key = f"idp:breaker:open:{connection.id}"

    def legacy_login(n: int) -> int:
        with requests.Session() as session:
            page = login_page(session, served.url, client_id, "https://legacy.example/cb")
            return first_login(session, page)

    with serve(database_url, tmp_path, workers=WORKERS, RATELIMIT_ENABLED="0", REDIS_URL=redis_url) as served:
        statuses = [s for _ in range(3) for s in at_once(WORKERS, legacy_login)]
        assert statuses == [503] * 9
        assert counted(redis_url, "idp:breaker:open:") == [opened_key]  # in Redis when it is configured
        opened = script_errors()
        # Five failures open it; calls already under way when it opened may add theirs.
        assert 5 <= opened <= 5 + WORKERS - 1
        answered = on_every_worker(served, legacy_login)
        assert all(status == 503 for statuses in answered.values() for status in statuses), answered
        assert script_errors() == opened  # open on every worker: no script was called again
