"""The WSGI edge: what a request may say about where it came from, where it was sent and to which host."""

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def is_loopback(host: str) -> bool:
    """Say whether a host name or address is this machine's own (where plain http is acceptable)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def networks(value: str | list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse addresses and networks given as a list or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]


class Edge:
    """Trust X-Forwarded-* only from our proxies, and let no request choose the mount point.

    The provider lives at its issuer's root: a SCRIPT_NAME taken from a request header (gunicorn
    honours one from trusted addresses) would move every path and every link it builds.
    """

    def __init__(self, app: "WSGIApplication", hops: int, proxies: str | list[str]) -> None:
        self.app = app
        self.proxied = ProxyFix(app, x_for=hops, x_proto=hops, x_host=0) if hops else app
        self.proxies = networks(proxies)

    def _from_proxy(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)

    def __call__(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        environ["SCRIPT_NAME"] = ""
        app = self.proxied if self._from_proxy(environ.get("REMOTE_ADDR")) else self.app
        return app(environ, start_response)


class RefuseUnroutableHost:
    """WSGI middleware: answer a plain 400 to a Host Flask's URL map cannot be bound to."""

    def __init__(self, app: Flask, wsgi_app: "WSGIApplication") -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        try:
            # The very call Flask makes per request, so the two can never disagree.
            self.app.create_url_adapter(self.app.request_class(environ))
        except HTTPException as e:  # BadHost, or SecurityError for a Host outside TRUSTED_HOSTS
            response = Response("Bad Request: the Host header is not a host name this server answers to.\n",
                                e.code or 400, mimetype="text/plain")
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response(environ, start_response)
        return self.wsgi_app(environ, start_response)
