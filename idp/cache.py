"""Rows read on every request, kept per process for a moment: a change elsewhere shows that late."""

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from flask import current_app
from sqlalchemy import inspect

V = TypeVar("V")
R = TypeVar("R")
LIMIT = 10_000  # entries kept per cache at the most: a flood of unknown keys cannot grow it further
_forgetters: list[Callable[[], None]] = []


def on_forget(forget: Callable[[], None]) -> None:
    """Register how a per-process cache forgets everything (see forget_all)."""
    _forgetters.append(forget)


def forget_all() -> None:
    """Forget every per-process cache: the database was changed behind idp's back (a restore, a test)."""
    for forget in _forgetters:
        forget()


def detached(row: R) -> R:
    """Copy a row's columns out of its session: requests of every thread may share the copy, and no
    commit expires it."""
    kind = type(row)
    return kind(**{column.key: getattr(row, column.key) for column in inspect(kind).column_attrs})


class Recent(Generic[V]):
    """Values by key (and database), each reused for the number of seconds a setting names."""

    def __init__(self, max_age_setting: str) -> None:
        self.max_age_setting = max_age_setting
        self._entries: dict[tuple[str, Hashable], tuple[float, V]] = {}
        self._generation = 0  # how many times this cache was cleared
        on_forget(self.clear)

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """Return the value under key, loading it again when it is older than the setting allows."""
        full, now = (str(current_app.config["SQLALCHEMY_DATABASE_URI"]), key), time.monotonic()
        hit = self._entries.get(full)
        if hit is not None and now - hit[0] < current_app.config[self.max_age_setting]:
            return hit[1]
        generation = self._generation
        value = load()
        if generation != self._generation:
            return value  # changed while it was read: what was read may predate the change, keep none
        if len(self._entries) >= LIMIT:
            self._entries.clear()
        self._entries[full] = (now, value)
        return value

    def clear(self) -> None:
        """Forget every value: this process has just changed what they were read from."""
        self._generation += 1
        self._entries.clear()
