"""This process's script sandboxes: a pool per connection, whose size bounds that connection's calls.

A connection runs at most SCRIPT_CONCURRENCY script calls at once in a process, each in a worker of
its own pool; a call that finds every slot busy waits at most SCRIPT_QUEUE_WAIT seconds, then gives
up (Busy) without running. A legacy store that hangs so holds a few server threads for the script
timeout and the others for a moment at most, and never the sandboxes of another connection.
"""

import ctypes
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import current_app

from idp.errors import Unavailable
from idp.migration.jail import Settings, settings_of
from idp.migration.sandbox import Outcome, Pool

PR_SET_DUMPABLE = 4
# Pools kept per process: beyond that the least recently used one that no call is using is closed
# (its workers stop), so that connections used once do not keep workers forever.
MAX_POOLS = 8
logger = logging.getLogger("idp.migration")


class Busy(Unavailable):
    """Every script slot of the connection stayed busy for SCRIPT_QUEUE_WAIT: the call did not run."""


@dataclass
class _Slots:
    """A connection's pool, the free places in it, and how many calls hold or wait for one."""

    pool: Pool
    free: threading.BoundedSemaphore
    callers: int = 0


_Key = tuple[str, int, float, int, int, Settings]  # connection id ("" outside connections), then the settings
_lock = threading.Lock()
_slots: "OrderedDict[_Key, _Slots]" = OrderedDict()
_hidden = [False]  # whether this process has made itself undumpable (inherited through fork)


@contextmanager
def _slots_of(owner: str) -> Iterator[_Slots]:
    """Hold the pool and slots for calls of one connection under the current configuration."""
    config = current_app.config
    jail = settings_of(config, instance_path=current_app.instance_path)  # validated by create_app
    key: _Key = (owner, config["SCRIPT_CONCURRENCY"], float(config["SCRIPT_TIMEOUT"]),
                 config["SCRIPT_MEMORY_MB"], config["SCRIPT_CPU_SECONDS"], jail)
    with _lock:
        if not _hidden[0]:
            _hide_this_process()
            _hidden[0] = True
        slots = _slots.get(key)
        if slots is None:
            _, size, timeout, memory_mb, cpu_seconds, _ = key
            pool = Pool(size=size, timeout=timeout, memory_mb=memory_mb, cpu_seconds=cpu_seconds, jail=jail)
            slots = _slots[key] = _Slots(pool, threading.BoundedSemaphore(size))
        _slots.move_to_end(key)
        slots.callers += 1
        idle = [k for k, s in _slots.items() if not s.callers][:max(0, len(_slots) - MAX_POOLS)]
        evicted = [_slots.pop(k) for k in idle]
    for old in evicted:  # outside the lock: stopping workers takes a moment
        old.pool.close()
    try:
        yield slots
    finally:
        with _lock:
            slots.callers -= 1


def pool() -> Pool:
    """Return this process's pool for calls made outside any connection's flow (the CLI's tests)."""
    with _slots_of("") as slots:
        return slots.pool


def call(connection_id: str, source: str, function: str, args: list[Any], *,
         timeout: float | None = None) -> Outcome:
    """Run a script function in one of the connection's slots; raise Busy if none comes free in time.

    `timeout` shortens the call's wall-clock limit below SCRIPT_TIMEOUT (a budget shared by several calls).
    """
    wait = float(current_app.config["SCRIPT_QUEUE_WAIT"])
    with _slots_of(connection_id) as slots:
        if not slots.free.acquire(timeout=wait):
            raise Busy(f"all {slots.pool.size} script slots of this process stayed busy for {wait:g} s")
        try:
            # The pool has a worker for each slot, so the call never waits for one.
            return slots.pool.call(source, function, args, timeout=timeout)
        finally:
            slots.free.release()


def _forget() -> None:
    """In a child after fork: start afresh (a parent's thread may have held the lock or a slot)."""
    global _lock
    _lock = threading.Lock()
    _slots.clear()


def _hide_this_process() -> None:
    """Make this process's /proc files, its environment above all, unreadable to its scripts."""
    # Workers run as the same user, who could otherwise read /proc/<parent>/environ and its
    # secrets. This does not stop root, nor hide files that user can read (keys/, instance/).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    except (OSError, AttributeError) as error:  # not Linux: nothing to hide this way
        logger.warning("could not hide the process from migration scripts: %s", error)


os.register_at_fork(after_in_child=_forget)
