"""Cross-cutting web concerns: CSRF, security headers, error pages and cacheable documents."""

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask.sansio.app import App
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date, parse_etags
from werkzeug.wrappers import Response as BaseResponse

from idp.edge import Edge, RefuseUnroutableHost
from idp.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:  # a Referer such as "http://[" (an unclosed IPv6 bracket) names no origin
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def sent_from_here() -> bool:
    """Say whether the browser says this request was sent from one of our own pages.

    Browsers send `Origin` with every form post (ours as our origin: pages are `Referrer-Policy:
    same-origin`); a cross-site page, or one that hides where it is, gets another origin or "null".
    A client that sends neither Origin nor Referer is no browser riding a user's cookies.
    """
    ours = {_origin(current_app.config["ISSUER"]), _origin(request.host_url)}
    if (origin := request.headers.get("Origin")) is not None:
        return origin.lower() in ours
    return request.referrer is None or _origin(request.referrer) in ours


class OriginCSRF(CSRFProtect):
    """Flask-WTF's CSRF tokens, plus the browser's word on where a form was sent from.

    Flask-WTF's own check under https wants a same-origin Referer, which browsers keep to
    themselves under a strict Referrer-Policy; the Origin header is the check that works.
    """

    def protect(self, apply_exemptions: bool = False) -> None:
        super().protect(apply_exemptions)
        if g.get("csrf_valid") and not sent_from_here():
            self._error_response("The form was sent from another site.")


csrf = OriginCSRF()
limiter = Limiter(key_func=get_remote_address)


def per_ip(setting: str, methods: tuple[str, ...] = ("POST",)) -> Callable:
    """Limit a view per client address by the limit string in config `setting`."""
    return limiter.limit(lambda: current_app.config[setting], methods=list(methods))

# Paths whose callers are programs: errors there are OAuth-style JSON, not HTML.
API_PREFIXES = ("/oauth/", "/userinfo", "/.well-known/", "/healthz", "/api/")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _refuse_nul() -> tuple[Response | str, int] | None:
    """Refuse NUL characters in any parameter: no protocol uses them and databases refuse them."""
    if request.endpoint == "oauth.authorize":
        return None  # it refuses them itself, at the client's redirect URI once that is known
    if any("\x00" in value for values in (request.args, request.form) for value in values.values()):
        return _error(400, "invalid_request", "The request contains a NUL character.")
    return None


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Our own pages learn where a form came from (see sent_from_here); no other site learns anything.
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        # Pages carry CSRF tokens, codes or personal data: never cache them.
        headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class Document:
    """A public JSON document that changes rarely (discovery, the JWKS), encoded once with its ETag."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, data: object) -> "Document":
        """Encode data (keys sorted, so that equal data has an equal ETag)."""
        body = json.dumps(data, sort_keys=True).encode()
        return cls(body, hashlib.sha256(body).hexdigest()[:32])

    def answer(self, max_age: int) -> BaseResponse:
        """Answer the request: 304 when the client's copy is current, cacheable by anyone for max_age."""
        response = Response(self.body, mimetype="application/json")
        response.set_etag(self.etag)
        response.cache_control.public = True
        response.cache_control.max_age = max_age
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response.make_conditional(request)


DOCUMENTS = "idp.documents"
# What _security_headers gives a JSON answer.
JSON_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin")]


def publish(app: App, path: str, source: Callable[[], Document]) -> None:
    """Answer a plain GET or HEAD of `path` with `source()` (run in an app context) from PublicDocuments."""
    app.extensions.setdefault(DOCUMENTS, {})[path] = source


class PublicDocuments:
    """WSGI middleware: answer the public documents (the JWKS, discovery) without Flask's request handling.

    They are the most requested paths and the same for every caller: all a request context would
    add is the headers written here. A query string, another method or an If-Match still goes through
    Flask and its checks, and so does a document its source cannot give now (its error answered
    there). What a process starts at its first request (the mail sender, unfinished jobs) waits for
    its first other request.
    """

    def __init__(self, app: Flask, wsgi_app: "WSGIApplication") -> None:
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        source = self.app.extensions.get(DOCUMENTS, {}).get(environ.get("PATH_INFO"))
        method = environ.get("REQUEST_METHOD")
        if source is None or method not in ("GET", "HEAD") or environ.get("QUERY_STRING") \
                or "HTTP_IF_MATCH" in environ:  # a precondition other than If-None-Match: Flask's to judge
            return self.wsgi_app(environ, start_response)
        try:
            with self.app.app_context():
                document: Document = source()
        except Exception:  # noqa: BLE001  (Flask answers it, with its error handling and logging)
            return self.wsgi_app(environ, start_response)
        headers = [("ETag", f'"{document.etag}"'),
                   ("Cache-Control", f"public, max-age={self.app.config['JWKS_MAX_AGE']}"),
                   ("Access-Control-Allow-Origin", "*"), ("Date", http_date()), *JSON_HEADERS]
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains_weak(document.etag):
            start_response("304 NOT MODIFIED", headers)
            return []
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(document.body))), *headers])
        return [] if method == "HEAD" else [document.body]


def error_page(error: str, description: str, status: int = 400) -> Response:
    """Return the HTML error page browsers see when we cannot send them back to the client."""
    return Response(render_template("error.html", error=error, description=description), status=status)


ErrorShape = Callable[[int, str, str], Response]
SHAPES = "idp.error_shapes"


def shape_errors(app: Flask, prefix: str, shape: ErrorShape) -> None:
    """Answer the errors under a path prefix with `shape(status, error, description)` of their own.

    For APIs that promise a shape other than OAuth's (the management API answers Auth0's).
    """
    app.extensions.setdefault(SHAPES, {})[prefix] = shape


def _error(status: int, error: str, description: str) -> tuple[Response | str, int]:
    for prefix, shape in current_app.extensions.get(SHAPES, {}).items():
        if request.path.startswith(prefix):
            return shape(status, error, description), status
    if request.path.startswith(API_PREFIXES):
        return jsonify(error=error, error_description=description), status
    return error_page(error, description, status), status


def init_app(app: Flask) -> None:
    """Install CSRF protection, headers and error handlers."""
    csrf.init_app(app)
    limiter.init_app(app)
    app.wsgi_app = PublicDocuments(app, app.wsgi_app)  # type: ignore[method-assign]
    # Around it: the Host checked as Flask would see it, after any proxy fix-up.
    app.wsgi_app = RefuseUnroutableHost(app, app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = Edge(  # type: ignore[method-assign]
        app.wsgi_app, app.config["PROXY_HOPS"], app.config["TRUSTED_PROXIES"])
    app.before_request(_refuse_nul)
    app.after_request(_security_headers)

    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError) -> tuple[Response | str, int]:
        return _error(400, "invalid_request",
                      "This form has expired or was not sent from this site. Go back and try again.")

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> tuple[Response | str, int]:
        code = e.code or 500
        name = {429: "too_many_requests"}.get(code, "invalid_request" if code < 500 else "server_error")
        if code == 429:
            return _error(code, name, "Too many requests. Wait a moment and try again.")
        return _error(code, name, e.description or "")

    # idp's own errors that no view turned into an answer of its own.
    @app.errorhandler(Unavailable)
    def unavailable(e: Unavailable) -> tuple[Response | str, int]:
        app.logger.error("%s on %s %s: %s", type(e).__name__, request.method, request.path, e)
        return _error(503, "temporarily_unavailable",
                      "A service we depend on is not answering. Try again in a few minutes.")

    @app.errorhandler(InvalidInput)
    def invalid(e: InvalidInput) -> tuple[Response | str, int]:
        return _error(400, "invalid_request", str(e))

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> tuple[Response | str, int]:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "server_error", "Something went wrong on our side. Try again shortly.")
