"""The process's pool of script sandboxes, sized from config and started on first use."""

import ctypes
import logging
import threading

from flask import current_app

from idp.migration.sandbox import Pool

PR_SET_DUMPABLE = 4
logger = logging.getLogger("idp.migration")
_lock = threading.Lock()
_pools: dict[tuple[int, float, int, int], Pool] = {}


def pool() -> Pool:
    """Return this process's sandbox pool for the current configuration."""
    config = current_app.config
    settings = (config["SCRIPT_POOL_SIZE"], float(config["SCRIPT_TIMEOUT"]), config["SCRIPT_MEMORY_MB"],
                config["SCRIPT_CPU_SECONDS"])
    with _lock:
        if not _pools:
            _hide_this_process()
        if settings not in _pools:
            size, timeout, memory_mb, cpu_seconds = settings
            _pools[settings] = Pool(size=size, timeout=timeout, memory_mb=memory_mb, cpu_seconds=cpu_seconds)
        return _pools[settings]


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
