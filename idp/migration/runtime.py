"""The process's pool of script sandboxes, sized from config and started on first use."""

import threading

from flask import current_app

from idp.migration.sandbox import Pool

_lock = threading.Lock()
_pools: dict[tuple[int, float, int, int], Pool] = {}


def pool() -> Pool:
    """Return this process's sandbox pool for the current configuration."""
    config = current_app.config
    settings = (config["SCRIPT_POOL_SIZE"], float(config["SCRIPT_TIMEOUT"]), config["SCRIPT_MEMORY_MB"],
                config["SCRIPT_CPU_SECONDS"])
    with _lock:
        if settings not in _pools:
            size, timeout, memory_mb, cpu_seconds = settings
            _pools[settings] = Pool(size=size, timeout=timeout, memory_mb=memory_mb, cpu_seconds=cpu_seconds)
        return _pools[settings]
