"""Abuse protection: per-account delays and lockout, per-IP limits in memory and in Redis."""

import functools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from idp import create_app
from tests.conftest import PASSWORD, require_service
from tests.support import Browser, csrf_token, in_threads

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def fast_lockout(app: Flask) -> None:
    """Throttle after 2 failures for at most 1 s; lock after 4 failures for 2 s."""
    app.config.update(THROTTLE_AFTER=2, THROTTLE_MAX_DELAY=1, LOCKOUT_THRESHOLD=4, LOCKOUT_SECONDS=2)


def attempt(browser: Browser, email: str, password: str) -> Any:
    """Post the login form once."""
    page = browser.get("/u/login")
    return browser.client.post("/u/login", data={
        "csrf_token": csrf_token(page.text), "email": email, "password": password})


def until_allowed(browser: Browser, email: str, password: str, seconds: float) -> Any:
    """Retry a login until it is no longer refused for waiting, within a bound."""
    deadline = time.monotonic() + seconds
    while True:
        response = attempt(browser, email, password)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_failures_slow_down_then_lock_then_lift(browser, user, fast_lockout, mailbox):
    assert attempt(browser, user.email, "wrong 1").status_code == 400
    assert attempt(browser, user.email, "wrong 2").status_code == 400
    throttled = attempt(browser, user.email, PASSWORD)
    assert throttled.status_code == 429 and "Wait 1 second and" in throttled.text
    assert throttled.headers["Retry-After"] == "1"
    assert until_allowed(browser, user.email, "wrong 3", 3).status_code == 400
    locking = until_allowed(browser, user.email, "wrong 4", 3)
    assert locking.status_code == 400  # the fourth failure locks the account
    locked = attempt(browser, user.email, PASSWORD)
    assert locked.status_code == 429 and "locked" in locked.text and "Reset your password" in locked.text
    assert mailbox.wait_for(user.email)["Subject"] == "Your account was locked after failed sign-ins"
    time.sleep(2.1)
    assert attempt(browser, user.email, PASSWORD).status_code == 302


def test_unknown_email_is_throttled_and_locked_alike(browser, user, fast_lockout, mailbox):
    answers = {}
    for email in (user.email, "nobody@example.com"):
        seen = []
        for n in range(4):
            seen.append(until_allowed(browser, email, f"wrong {n}", 3).status_code)
        locked = attempt(browser, email, "anything")
        seen.append((locked.status_code, locked.text.replace(email, "X").count("locked")))
        answers[email] = seen
    assert answers[user.email] == answers["nobody@example.com"]


def test_password_reset_lifts_the_lock(browser, user, fast_lockout, mailbox):
    for n in range(4):
        until_allowed(browser, user.email, f"wrong {n}", 3)
    assert attempt(browser, user.email, PASSWORD).status_code == 429
    mailbox.wait_for(user.email)  # the lock notice
    page = browser.get("/u/reset-password")
    browser.client.post("/u/reset-password", data={"csrf_token": csrf_token(page.text), "email": user.email})
    link = mailbox.link(mailbox.wait_for(user.email)).removeprefix("http://localhost")
    form = browser.get(link)
    browser.client.post(link, data={"csrf_token": csrf_token(form.text), "password": "a brand new passphrase",
                                    "confirm": "a brand new passphrase"})
    assert attempt(browser, user.email, "a brand new passphrase").status_code == 302


def test_per_ip_limit_answers_429_with_retry_after(app, browser, user):
    app.config.update(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    limited = Browser(create_app({**app.config, "RATELIMIT_ENABLED": True}).test_client())
    statuses = [attempt(limited, "x@example.com", "wrong").status_code for _ in range(4)]
    assert statuses[:3] == [400, 400, 400] and statuses[3] == 429
    response = attempt(limited, "x@example.com", "wrong")
    assert int(response.headers["Retry-After"]) > 0 and "Too many requests" in response.text
    assert limited.get("/u/login").status_code == 200  # only the POSTs count


def test_token_endpoint_limit_answers_json(app, rp):
    limited = {**app.config, "RATELIMIT_ENABLED": True, "RATELIMIT_TOKEN": "2 per minute"}
    client = create_app(limited).test_client()
    answers = [client.post("/oauth/token", data={"grant_type": "client_credentials"}) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [401, 401]
    assert answers[2].status_code == 429 and answers[2].json["error"] == "too_many_requests"
    assert "Retry-After" in answers[2].headers


def test_limits_can_be_switched_off(app, browser, user):
    quiet = Browser(create_app({**app.config, "RATELIMIT_ENABLED": False, "RATELIMIT_LOGIN": "1 per minute"})
                    .test_client())
    assert [attempt(quiet, f"x{n}@example.com", "wrong").status_code for n in range(3)] == [400, 400, 400]


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client of the Redis server on loopback."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        require_service("Redis", 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""')
    yield client
    client.close()


def test_workers_share_counters_through_redis(app, user, fast_lockout, redis_client):
    email = f"shared-{uuid.uuid4().hex[:8]}@example.com"  # fresh keys: nothing left from other runs
    config = {**app.config, "REDIS_URL": REDIS_URL}
    one, two = (Browser(create_app(dict(config)).test_client()) for _ in range(2))
    for n in range(4):
        until_allowed(one if n % 2 else two, email, f"wrong {n}", 3)
    locked = attempt(one, email, "anything")
    assert locked.status_code == 429 and "locked" in locked.text
    assert attempt(two, email, "anything").status_code == 429  # the other worker sees the lock


def test_workers_share_per_ip_limits_through_redis(app, redis_client):
    prefix = f"idp-test-{uuid.uuid4().hex[:8]}"  # fresh counters: nothing left from other runs
    config = {**app.config, "REDIS_URL": REDIS_URL, "RATELIMIT_ENABLED": True,
              "RATELIMIT_LOGIN": "3 per minute", "RATELIMIT_KEY_PREFIX": prefix}
    one, two = (Browser(create_app(dict(config)).test_client()) for _ in range(2))
    browsers = [one, two, one, two]
    statuses = [attempt(b, f"x{n}@example.com", "wrong").status_code for n, b in enumerate(browsers)]
    assert statuses == [400, 400, 400, 429]
    assert redis_client.keys(f"*{prefix}*")  # the counters really live in Redis


def test_parallel_attempts_cannot_slip_past_the_lockout(app, user, live_server):
    app.config.update(LOCKOUT_THRESHOLD=3, THROTTLE_AFTER=100)
    emails = [user.email] + [f"nobody{n}@example.com" for n in range(9)]  # unknown ones count alike

    def guess(email: str, n: int, barrier: threading.Barrier, statuses: list[int]) -> None:
        with requests.Session() as session:
            page = session.get(live_server.url + "/u/login", timeout=10)
            barrier.wait(10)
            answer = session.post(page.url, timeout=30, allow_redirects=False, data={
                "csrf_token": csrf_token(page.text), "email": email, "password": f"guess {n}"})
            statuses.append(answer.status_code)

    for email in emails:  # ten rounds of twelve at once
        barrier, statuses = threading.Barrier(12), []
        in_threads(*[functools.partial(guess, email, n, barrier, statuses) for n in range(12)])
        checked = statuses.count(400)
        assert 1 <= checked <= 3 and statuses.count(429) == 12 - checked  # never more than three
        with requests.Session() as session:  # and the account is locked now, for every password
            page = session.get(live_server.url + "/u/login", timeout=10)
            answer = session.post(page.url, timeout=30, allow_redirects=False, data={
                "csrf_token": csrf_token(page.text), "email": email, "password": PASSWORD})
            assert answer.status_code == 429 and "locked" in answer.text
