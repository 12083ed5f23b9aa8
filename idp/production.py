"""The production server behind `idp serve`: gunicorn with idp's settings."""

import logging
import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

# The path without its query string and no Referer: both may carry codes or tokens.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
THREADS = 8  # per worker
QUERY = re.compile(r"\?[^\s'\"]*")


def _without_queries(record: logging.LogRecord) -> bool:
    """Cut query strings from a log record (a refused request line is logged whole)."""
    record.msg, record.args = QUERY.sub("?[query removed]", record.getMessage()), ()
    return True


class RedactingLogger(glogging.Logger):
    """gunicorn's logger, whose error log never carries a query string and also carries idp's own lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.addFilter(_without_queries)
        # idp's loggers (users moved over, mail sent, script output, failures) write where gunicorn
        # writes its own messages; without a handler, Python would drop everything below WARNING.
        ours = logging.getLogger("idp")
        ours.handlers = list(self.error_log.handlers)
        ours.setLevel(logging.INFO)
        ours.propagate = False


def settings(binds: list[str], workers: int, certfile: str | None, keyfile: str | None) -> dict[str, Any]:
    """Return the gunicorn settings idp runs with."""
    return {
        "bind": binds,
        "workers": workers,
        # Threads, so that an idle keep-alive or a slow client holds a thread, never a whole worker
        # (browsers open connections ahead of need; a sync worker would wait on each).
        "worker_class": "gthread",
        "threads": THREADS,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": RedactingLogger,
        # The application reads X-Forwarded-* itself, from IDP_TRUSTED_PROXIES only (idp.web);
        # gunicorn trusts no header, and none may choose SCRIPT_NAME or PATH_INFO.
        "forwarded_allow_ips": "",
        "forwarder_headers": "",
        "control_socket_disable": True,  # one per user's home: two deployments on a host would collide
        "certfile": certfile,
        "keyfile": keyfile,
    }


class Server(BaseApplication):
    """gunicorn serving apps made by a factory, one per worker."""

    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.factory, self.options = factory, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)
        # Any other gunicorn setting, the way gunicorn itself reads it from the environment.
        parsed = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for key, value in vars(parsed).items():
            if value is not None and key != "args":
                self.cfg.set(key.lower(), value)

    # types-gunicorn spells start_response its own way, not as typeshed's WSGIApplication that Flask is.
    def load(self) -> Flask:  # type: ignore[override]
        return self.factory()
