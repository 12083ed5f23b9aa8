"""The database counters: atomic under concurrency, restarting when they expire, on SQLite and PostgreSQL."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask

from idp import counters

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_increments_from_many_threads_are_never_lost(app: Flask) -> None:
    storage = counters.storage()
    assert isinstance(storage, counters.DatabaseStorage)

    def hit(_: int) -> int:
        with app.app_context():
            return storage.incr("k", 60)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(hit, range(200)))
    assert sorted(results) == list(range(1, 201))  # each increment saw its own count
    assert storage.get("k") == 200


def test_a_count_restarts_with_a_new_expiry_once_expired(app: Flask) -> None:
    storage = counters.storage()
    assert storage.incr("k", 1) == 1 and storage.incr("k", 1, amount=2) == 3
    first = storage.get_expiry("k")
    assert time.time() < first <= time.time() + 1
    time.sleep(1.1)
    assert storage.get("k") == 0 and storage.get_expiry("k") <= time.time()
    assert storage.incr("k", 30) == 1 and storage.get_expiry("k") > first + 20


def test_clear_and_reset_forget(app: Flask) -> None:
    storage = counters.storage()
    storage.incr("a", 60)
    storage.incr("b", 60)
    storage.clear("a")
    assert (storage.get("a"), storage.get("b")) == (0, 1)
    storage.reset()
    assert storage.get("b") == 0 and storage.check()
