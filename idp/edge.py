"""The WSGI edge: what a request may say about where it came from and where it was sent."""

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


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
