"""The runtime: the web process hides its /proc files from scripts; each connection has its own slots."""

import ctypes
import threading
import time

import pytest

from idp.connections import runtime

PR_GET_DUMPABLE = 3

SLEEPER = '''
import time


def login(email, password, configuration):
    time.sleep(float(configuration["sleep"]))
    return {"user_id": email, "email": email}
'''


def test_starting_the_pool_makes_this_process_undumpable(app):
    runtime.pool()
    assert ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


def call(connection_id: str, sleep: float) -> float:
    """Run the sleeper in a connection's slots; return how long the call took."""
    started = time.perf_counter()
    runtime.call(connection_id, SLEEPER, "login", ["a@example.com", "pw", {"sleep": str(sleep)}])
    return time.perf_counter() - started


def test_a_busy_connection_fails_fast_and_leaves_the_others_alone(app):
    app.config.update(SCRIPT_CONCURRENCY=2, SCRIPT_QUEUE_WAIT=0.3, SCRIPT_TIMEOUT=10)
    for connection_id in ("con_slow", "con_other"):
        call(connection_id, 0)  # workers started, so that the timings below are the calls' own

    def hang() -> None:
        with app.app_context():
            call("con_slow", 3)

    hanging = [threading.Thread(target=hang) for _ in range(2)]
    for thread in hanging:
        thread.start()
    time.sleep(0.5)  # both slots of con_slow are taken
    started = time.perf_counter()
    with pytest.raises(runtime.Busy, match="2 script slots"):
        call("con_slow", 0)
    assert 0.3 <= time.perf_counter() - started < 1.5
    assert call("con_other", 0) < 1.5  # another connection has slots and workers of its own
    for thread in hanging:
        thread.join(10)
    assert call("con_slow", 0) < 1.5  # free again


def test_pools_beyond_the_limit_are_closed_but_never_under_a_call(app, monkeypatch):
    monkeypatch.setattr(runtime, "MAX_POOLS", 1)
    app.config.update(SCRIPT_TIMEOUT=10)
    outcome: list[float] = []

    def long_call() -> None:
        with app.app_context():
            outcome.append(call("con_long", 1.5))

    thread = threading.Thread(target=long_call)
    thread.start()
    time.sleep(0.5)
    for connection_id in ("con_b", "con_c", "con_b"):  # each closes the idle pools beyond the limit
        assert call(connection_id, 0) < 1.5
    thread.join(10)
    assert len(outcome) == 1  # its pool stayed open until its call ended
    assert call("con_long", 0) < 1.5  # and a new one serves the connection afterwards
