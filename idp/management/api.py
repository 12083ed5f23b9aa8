"""The management API under /api/v2/, in Auth0's shapes: bearer tokens with scopes, errors, users.

A caller presents an access token idp issued for the API `<issuer>/api/v2/` (a client gets one through
client_credentials with that audience) whose `scope` names what the endpoint needs. Every error under
/api/v2/, 404 and 405 and 500 included, is Auth0's `{"statusCode", "error", "message", "errorCode"}`.
"""

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar, cast

from email_validator import EmailNotValidError, validate_email
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict
from werkzeug.http import HTTP_STATUS_CODES

from idp import web
from idp.connections import registry, stores
from idp.connections.legacy import LegacyUnavailable
from idp.connections.registry import InvalidConnection
from idp.db import db
from idp.errors import IdpError
from idp.events import log as events
from idp.management import search
from idp.management.shapes import user_object
from idp.oauth import apis, tokens
from idp.users import accounts
from idp.users.accounts import UserExists
from idp.users.models import User, normalize
from idp.users.passwords import policy_error

PREFIX = "/api/v2"
bp = Blueprint("management", __name__, url_prefix=PREFIX)

READ_USERS = "read:users"
MAX_TOKEN_LENGTH = 16_384
MAX_PAGE = 10**9
DEFAULT_PER_PAGE, MAX_PER_PAGE = 50, 100
DIGITS = re.compile(r"^[0-9]{1,10}$")
FIELD_NAME = re.compile(r"^[A-Za-z0-9_.]{1,64}$")
MAX_FIELDS = 50
# Fields `sort` accepts, and what they sort by.
SORTABLE: dict[str, Any] = {
    "user_id": User.id, "email": User.email_normalized, "email_verified": User.email_verified,
    "name": User.name, "given_name": User.given_name, "family_name": User.family_name,
    "nickname": User.nickname, "created_at": User.created_at, "updated_at": User.updated_at,
    "last_login": User.last_login_at, "logins_count": User.logins_count, "last_ip": User.last_ip,
    "migration.at": User.migrated_at, "migration.via": User.migrated_via,
}
TEXT_SORTS = {"user_id", "email", "name", "given_name", "family_name", "nickname", "last_ip", "migration.via"}

F = TypeVar("F", bound=Callable[..., Any])


class ApiError(IdpError):
    """An answer in Auth0's error shape."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


def invalid_query(message: str) -> ApiError:
    """A 400 for a query string we refuse."""
    return ApiError(400, message, "invalid_query_string")


def error_body(status: int, message: str, error_code: str | None = None) -> Response:
    """Return Auth0's error shape."""
    body: dict[str, Any] = {"statusCode": status, "error": HTTP_STATUS_CODES.get(status, "Error"),
                            "message": message}
    if error_code:
        body["errorCode"] = error_code
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="management"'
    return response


def _shaped(status: int, error: str, description: str) -> Response:
    """Errors idp's web layer answers on our paths (no route, wrong method, NUL, 500): Auth0's shape."""
    code = {400: "invalid_query_string", 429: "too_many_requests"}.get(status)
    return error_body(status, description or HTTP_STATUS_CODES.get(status, "Error"), code)


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return error_body(error.status, error.message, error.error_code)


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # users' personal data
    return response


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Missing authentication")
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise ApiError(401, "Invalid token")
    return token


def _claims(token: str) -> dict[str, Any]:
    """Verify the token: ours, for this API, unexpired, unrevoked."""
    try:
        claims = tokens.verify(token, typ="at+jwt", audience=apis.management_identifier(), verify_exp=False)
    except tokens.InvalidToken:
        raise ApiError(401, "Invalid token") from None
    expires, jti = claims.get("exp"), claims.get("jti")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not isinstance(jti, str):
        raise ApiError(401, "Invalid token")
    if expires <= time.time():
        raise ApiError(401, "Expired token")
    if claims.get("gty") == tokens.CLIENT_CREDENTIALS:
        active = tokens.ClientToken(claims).is_active()  # revoked, or its client deleted: refused
    else:  # a user's token, issued under a grant: stored, and revoked with it
        try:
            tokens.active_row(claims)
            active = True
        except tokens.InvalidToken:
            active = False
    if not active:
        raise ApiError(401, "Invalid token")
    return claims


def _user(user_id: str) -> User | None:
    """Return a user by id; an id no user can have (too long, NUL, which PostgreSQL refuses) is none."""
    return db.session.get(User, user_id) if len(user_id) <= 255 and "\x00" not in user_id else None


def _scopes() -> set[str]:
    """The scopes of the request's (verified) token."""
    granted = g.management_claims.get("scope")
    return set(granted.split()) if isinstance(granted, str) else set()


def requires(*scopes: str) -> Callable[[F], F]:
    """Let a view run only for a valid token with any of these scopes."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            g.management_claims = _claims(_bearer())
            if not _scopes() & set(scopes):
                raise ApiError(403, f"Insufficient scope, expected any of: {','.join(scopes)}",
                               "insufficient_scope")
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


# Query parameters


def _single(args: MultiDict[str, str], allowed: set[str]) -> dict[str, str]:
    """The query's parameters, each given once, all of them known."""
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise invalid_query(f"Query validation error: 'Additional properties not allowed: {unknown[0][:64]}'")
    values = {}
    for name in args:
        given = args.getlist(name)
        if len(given) != 1:
            raise invalid_query(f"Query validation error: '{name}' must be given once")
        values[name] = given[0]
    return values


def _number(params: dict[str, str], name: str, default: int, largest: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not DIGITS.match(text) or int(text) > largest:
        raise invalid_query(f"Query validation error: '{name}' must be an integer from 0 to {largest}")
    return int(text)


def flag(params: Mapping[str, str], name: str, default: bool, body: bool = False) -> bool:
    """A boolean as the SDKs send them in a query string (or a multipart body): "true" or "false"."""
    text = params.get(name)
    if text is None:
        return default
    if text not in ("true", "false"):
        if body:
            raise ApiError(400, f"Payload validation error: '{name}' must be true or false", "invalid_body")
        raise invalid_query(f"Query validation error: '{name}' must be true or false")
    return text == "true"


def _projection(params: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`fields` and `include_fields`: the user object's fields to keep (or to leave out)."""
    include = flag(params, "include_fields", True)
    text = params.get("fields")
    if text is None or not text.strip():
        return lambda user: user
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) > MAX_FIELDS or not all(FIELD_NAME.match(n) for n in names):
        raise invalid_query("Query validation error: 'fields' is a comma-separated list of field names")
    chosen = set(names)
    if include:
        return lambda user: {k: v for k, v in user.items() if k in chosen}
    return lambda user: {k: v for k, v in user.items() if k not in chosen}


def _order(params: dict[str, str], dialect: str) -> list[Any]:
    """`sort=field:1` (ascending) or `field:-1`; users without the field come last either way."""
    text = params.get("sort")
    if text is None:
        return [User.created_at.asc(), User.id.asc()]
    field, _, direction = text.partition(":")
    if field not in SORTABLE or direction not in ("1", "-1"):
        raise invalid_query("Query validation error: 'sort' must be field:1 or field:-1 with a sortable "
                            f"field ({', '.join(sorted(SORTABLE))})")
    column = SORTABLE[field]
    if dialect == "postgresql" and field in TEXT_SORTS:
        column = column.collate("C")  # code-point order, as SQLite's
    if direction == "1":
        return [column.asc().nulls_last(), User.id.asc()]
    return [column.desc().nulls_last(), User.id.desc()]


@contextmanager
def searching() -> Iterator[None]:
    """Run a search within SEARCH_TIMEOUT; past it, a 503 as Auth0 answers one (a query too costly)."""
    try:
        with search.time_limit(float(current_app.config["SEARCH_TIMEOUT"])):
            yield
    except search.QueryTimeout:
        raise ApiError(503, "The query exceeded the timeout. Please try refining your search criteria.",
                       "operation_timeout") from None


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _shapes() -> Callable[[User], dict[str, Any]]:
    names = {c.id: c.name for c in registry.all_connections()}
    return lambda user: user_object(user, names.get(user.connection_id, user.connection_id))


# Users


@bp.get("/users")
@requires(READ_USERS)
def list_users() -> Response:
    """Search users (Auth0's query syntax v3), a page at a time; every user is reachable by paging."""
    params = _single(request.args, {"q", "page", "per_page", "include_totals", "sort", "fields",
                                    "include_fields", "search_engine"})
    if params.get("search_engine", "v3") != "v3":
        raise invalid_query("Query validation error: only search_engine v3 is supported")
    page = _number(params, "page", 0, MAX_PAGE)
    per_page = _number(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    include_totals = flag(params, "include_totals", False)
    project = _projection(params)
    dialect = _dialect()
    order = _order(params, dialect)
    try:
        where: ColumnElement[bool] = search.condition(params.get("q", ""), dialect)
    except search.QueryError as error:
        raise invalid_query(str(error)) from None
    # The page's ids first, then their rows: the OFFSET skips index entries, not whole rows (a deep page
    # in the default order is then an index-only scan). `page` is a number, so there is no keyset to seek.
    ids = select(User.id).where(where).order_by(*order).offset(page * per_page).limit(per_page)
    total = None
    with searching():
        rows = db.session.scalars(select(User).where(User.id.in_(ids)).order_by(*order)).all()
        if include_totals:
            total = db.session.scalar(select(func.count()).select_from(User).where(where)) or 0
    shape = _shapes()
    users = [project(shape(user)) for user in rows]
    if total is None:
        return jsonify(users)
    return jsonify(start=page * per_page, limit=per_page, length=len(users), total=total, users=users)


@bp.get("/users/<user_id>")
@requires(READ_USERS)
def get_user(user_id: str) -> Response:
    """One user by id."""
    project = _projection(_single(request.args, {"fields", "include_fields"}))
    user = _user(user_id)
    if user is None:
        raise ApiError(404, "The user does not exist.", "inexistent_user")
    return jsonify(project(_shapes()(user)))


@bp.get("/users-by-email")
@requires(READ_USERS)
def users_by_email() -> Response:
    """Every user with this email, in any connection, whatever its case."""
    params = _single(request.args, {"email", "fields", "include_fields"})
    project = _projection(params)
    email = params.get("email")
    if email is None or not email.strip():
        raise invalid_query("Query validation error: 'Missing required property: email'")
    rows = db.session.scalars(select(User).where(User.email_normalized == normalize(email))
                              .order_by(User.created_at, User.id))
    shape = _shapes()
    return jsonify([project(shape(user)) for user in rows])


# Writing users

CREATE_USERS, UPDATE_USERS, DELETE_USERS = "create:users", "update:users", "delete:users"
UPDATE_METADATA = "update:users_app_metadata"  # Auth0's: a PATCH of the two metadata objects only
METADATA = {"user_metadata", "app_metadata"}
PROFILE = {"name": 255, "given_name": 255, "family_name": 255, "nickname": 255, "picture": 2048}
MAX_METADATA = 65_536  # characters of JSON, each of app_metadata and user_metadata
METADATA_DEPTH = 10
MAX_BODY = 262_144


def invalid_body(message: str) -> ApiError:
    """A 400 for a request body we refuse."""
    return ApiError(400, f"Payload validation error: {message}", "invalid_body")


def _clean(value: Any, where: str, depth: int = 0) -> None:
    """Refuse what no database stores: NUL, lone surrogates, NaN and infinities, absurd nesting."""
    if depth > METADATA_DEPTH:
        raise invalid_body(f"'{where}' is nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid_body(f"'{where}' contains a NUL character")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise invalid_body(f"'{where}' is not valid Unicode") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise invalid_body(f"'{where}' is not a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _clean(key, where, depth + 1)
            _clean(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _clean(item, where, depth + 1)


def json_object(limit: int = MAX_BODY) -> dict[str, Any]:
    """The JSON object the request carries, of at most `limit` bytes; a 400 for anything else."""
    if request.content_length is None or request.content_length > limit:
        raise invalid_body(f"the body must be JSON of at most {limit} bytes, with a Content-Length")
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # nested deeper than the JSON parser goes
        body = None
    if not isinstance(body, dict):
        raise invalid_body("the body must be a JSON object (Content-Type: application/json)")
    return body


def _body(allowed: set[str], limit: int = MAX_BODY) -> dict[str, Any]:
    """The JSON object the request carries, with only known properties, each cleaned."""
    body = json_object(limit)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid_body(f"'Additional properties not allowed: {str(unknown[0])[:64]}'")
    for name, value in body.items():
        _clean(value, name)
    return body


def _string(body: dict[str, Any], name: str, limit: int, nullable: bool = True) -> str | None:
    value = body.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise invalid_body(f"'{name}' must be a non-empty string of at most {limit} characters")
    return value.strip()


def _email(body: dict[str, Any]) -> str:
    text = _string(body, "email", 320, nullable=False) or ""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise invalid_body("'email' is not a valid email address") from None


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise invalid_body(f"'{name}' must be true or false")
    return value


def _metadata(value: Any, name: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metadata as Auth0 takes it: an object whose keys are merged into `current` (null removes one);
    null for the whole object empties it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_body(f"'{name}' must be an object")
    merged = dict(current or {})
    for key, item in value.items():
        if not key or "." in key or key.startswith("$") or len(key) > 255:
            raise invalid_body(f"'{name}' keys may not be empty, contain '.' or start with '$'")
        if item is None:
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(json.dumps(merged)) > MAX_METADATA:
        raise invalid_body(f"'{name}' is larger than {MAX_METADATA} characters of JSON")
    return merged


def _password(body: dict[str, Any], email: str) -> str:
    password = body.get("password")
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise invalid_body("'password' must be a string")
    if problem := policy_error(password, email):
        raise ApiError(400, f"PasswordStrengthError: {problem}", "invalid_body")
    return password


@bp.post("/users")
@requires(CREATE_USERS)
def create_user() -> tuple[Response, int]:
    """Create a user in a database connection, as a sign-up would (a migrating one asks its legacy store)."""
    # `verify_email` is accepted and ignored: idp mails a verification link only to users who sign up.
    body = _body({"connection", "email", "password", "email_verified", "verify_email", "user_metadata",
                  "app_metadata", *PROFILE})
    if "verify_email" in body:
        _boolean(body, "verify_email")
    connection = _string(body, "connection", 128, nullable=False) or ""
    email = _email(body)
    password = _password(body, email)
    profile: dict[str, Any] = {name: _string(body, name, limit) for name, limit in PROFILE.items()}
    profile["email_verified"] = _boolean(body, "email_verified") if "email_verified" in body else False
    for name in ("user_metadata", "app_metadata"):
        profile[name] = _metadata(body.get(name, {}), name)
    try:
        store = stores.named(connection)
    except InvalidConnection:
        raise ApiError(400, "The connection does not exist.", "inexistent_connection") from None
    try:
        user = store.create(email, password, **profile)
    except UserExists:
        raise ApiError(409, "The user already exists.", "auth0_idp_error") from None
    except LegacyUnavailable:
        raise _legacy_unavailable() from None
    events.record(events.SUCCESS_SIGNUP, "Successful signup", connection=store.connection.name,
                  connection_id=store.id, user_id=user.id, user_name=user.email, details={"via": "api"})
    db.session.commit()
    return jsonify(_shapes()(user)), 201


def _legacy_unavailable() -> ApiError:
    return ApiError(503, "The connection's legacy store is not answering. Try again later.",
                    "temporarily_unavailable")


@bp.patch("/users/<user_id>")
@requires(UPDATE_USERS, UPDATE_METADATA)
def update_user(user_id: str) -> Response:
    """Change a user's profile, email, password or metadata (metadata merges key by key)."""
    body = _body({"connection", "email", "password", "email_verified", "blocked", "user_metadata",
                  "app_metadata", *PROFILE})
    if not set(body) <= METADATA and UPDATE_USERS not in _scopes():
        raise ApiError(403, f"Insufficient scope, expected any of: {UPDATE_USERS}", "insufficient_scope")
    user = _user(user_id)
    if user is None:
        raise ApiError(404, "The user does not exist.", "inexistent_user")
    store = stores.by_id(user.connection_id)
    if "connection" in body and _string(body, "connection", 128, nullable=False) != store.connection.name:
        # Auth0's password change names the user's connection; a user never moves to another one.
        raise invalid_body("'connection' must be the user's own connection")
    changes: dict[str, Any] = {name: _string(body, name, PROFILE[name]) for name in PROFILE if name in body}
    for name in ("user_metadata", "app_metadata"):
        if name in body:
            changes[name] = _metadata(body[name], name, getattr(user, name))
    email = user.email
    if "email" in body:
        email = _email(body)
        if normalize(email) != user.email_normalized:
            # A legacy user not moved over yet owns their email too: taking it would merge them later.
            try:
                taken = store.taken(email)
            except LegacyUnavailable:
                raise _legacy_unavailable() from None
            if taken:
                raise ApiError(400, "The specified new email already exists", "invalid_body")
            changes.update(email=email, email_normalized=normalize(email), email_verified=False)
    if "email_verified" in body:
        changes["email_verified"] = _boolean(body, "email_verified")
    password = _password(body, email) if "password" in body else None
    for name, value in changes.items():
        setattr(user, name, value)
    if "blocked" in body:
        accounts.set_blocked(user, _boolean(body, "blocked"))  # committed below, with the rest
    try:
        if password is not None:
            events.record(events.SUCCESS_CHANGE_PASSWORD, "Password changed",
                          connection=store.connection.name, connection_id=store.id, user_id=user.id,
                          user_name=user.email, details={"via": "api"})
            accounts.set_password(user, password)  # commits, the event with it; sessions and tokens end
        else:
            db.session.commit()
    except IntegrityError:  # the same email taken at the same moment
        db.session.rollback()
        raise ApiError(400, "The specified new email already exists", "invalid_body") from None
    return jsonify(_shapes()(user))


@bp.delete("/users/<user_id>")
@requires(DELETE_USERS)
def delete_user(user_id: str) -> tuple[str, int]:
    """Delete a user with their sessions, grants, tokens and links; 204 whether or not they existed."""
    user = _user(user_id)
    if user is not None:
        accounts.delete_user(user, stores.by_id(user.connection_id).connection.name)
    return "", 204


def init_app(app: Flask) -> None:
    """Register the API: its blueprint, free of the pages' CSRF checks, and its error shape."""
    import idp.management.logs  # noqa: F401  (its routes, and the events of writes, join the blueprint)
    from idp.management import actions, connections, jobs  # noqa: F401  (their routes join the blueprint)
    app.register_blueprint(bp)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(bp.name + "."):
            # A doubled slash (`/users//logs`) is no path of ours: a 404 in Auth0's shape, never werkzeug's
            # redirect (an HTML page) to the path with the slashes merged, which would name another resource.
            rule.merge_slashes = False
    web.csrf.exempt(bp)  # bearer tokens, never cookies
    web.shape_errors(app, PREFIX, _shaped)
