"""Connections under /api/v2/ in Auth0's shapes, and idp's own migration statistics.

Every connection is a database connection (`strategy: "auth0"`). A migrating one is Auth0's custom
database with "Import Users to Auth0" on: `options.enabledDatabaseCustomization` and
`options.import_mode` true, its two scripts in `options.customScripts`, and its configuration in
`options.configuration`, every value masked (they are all secrets). A disconnected one is what Auth0
shows after disconnecting: the no-op scripts, `import_mode` still on.
"""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import Select, false, func, select

from idp import redact
from idp.connections import registry, status
from idp.connections.models import Connection
from idp.db import db
from idp.management.api import (
    ApiError,
    _clean,
    _number,
    _projection,
    _single,
    bp,
    flag,
    invalid_body,
    invalid_query,
    json_object,
    requires,
)
from idp.management.shapes import iso_time
from idp.oauth.models import Client

READ_CONNECTIONS, UPDATE_CONNECTIONS, READ_STATS = "read:connections", "update:connections", "read:stats"
STRATEGY = "auth0"  # every connection of ours is a database connection
DEFAULT_PER_PAGE, MAX_PER_PAGE, MAX_PAGE = 100, 100, 10**9  # Auth0: per_page 1 to 100, 100 by default
DEFAULT_TAKE = 50
MAX_BODY = 1_048_576  # Auth0's largest payload: room for two scripts of 100,000 characters
# What PATCH may change, and what it may only send back unchanged (or not at all).
OPTIONS = {"enabledDatabaseCustomization", "import_mode", "customScripts", "configuration"}
SCRIPTS = ("login", "get_user", *registry.OPTIONAL)  # idp's own two, count_users and export_users, too
READ_ONLY = {"id", "name", "strategy", "realms", "enabled_clients", "is_domain_connection"}
MAX_CONFIGURATION_KEYS, MAX_KEY, MAX_VALUE = 100, 255, 10_000
# What redact.mask makes of a value: sent back, it stands for the stored value, never for a new one.
MASKED = re.compile(r"…\(\d+ chars\)$")
MAX_WINDOW_DAYS, DEFAULT_WINDOW_DAYS = 366, 30
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
HAS_USERS = 'This database contains users. You cannot change "options.enabledDatabaseCustomization" setting.'


def _not_found() -> ApiError:
    return ApiError(404, "The connection does not exist.", "inexistent_connection")


def _clients() -> dict[str, list[str]]:
    """The ids of the clients signing in through each connection."""
    found: dict[str, list[str]] = {}
    for client_id, connection_id in db.session.execute(
            select(Client.id, Client.connection_id).order_by(Client.id)):
        found.setdefault(connection_id, []).append(client_id)
    return found


def connection_object(connection: Connection, clients: list[str]) -> dict[str, Any]:
    """Return a connection in Auth0's shape; configuration values masked, never in clear."""
    options: dict[str, Any] = {"enabledDatabaseCustomization": False, "import_mode": False}
    if connection.migrating:
        options = {
            "enabledDatabaseCustomization": True, "import_mode": True,
            "customScripts": {name: getattr(connection, f"{name}_script") or "" for name in SCRIPTS
                              if name not in registry.OPTIONAL or getattr(connection, f"{name}_script")},
            "configuration": connection.masked_configuration(),
        }
    return {"id": connection.id, "name": connection.name, "strategy": STRATEGY, "enabled_clients": clients,
            "options": options, "realms": [connection.name], "is_domain_connection": False}


def _find(connection_id: str) -> Connection:
    known = len(connection_id) <= 64 and "\x00" not in connection_id  # PostgreSQL refuses NUL in text
    connection = db.session.get(Connection, connection_id) if known else None
    if connection is None:
        raise _not_found()
    return connection


@bp.get("/connections")
@requires(READ_CONNECTIONS)
def list_connections() -> Response:
    """Every connection, oldest first, a page at a time; `strategy` (repeatable) and `name` filter."""
    strategies = request.args.getlist("strategy")
    args = request.args.copy()
    args.poplist("strategy")
    params = _single(args, {"name", "fields", "include_fields", "page", "per_page", "include_totals",
                            "from", "take"})
    if any(not s or len(s) > 128 for s in strategies):
        raise invalid_query("Query validation error: 'strategy' must be a connection strategy")
    page = _number(params, "page", 0, MAX_PAGE)
    per_page = _number(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    if per_page < 1:
        raise invalid_query(f"Query validation error: 'per_page' must be an integer from 1 to {MAX_PER_PAGE}")
    include_totals = flag(params, "include_totals", False)
    project = _projection(params)
    query = select(Connection)
    if "name" in params:
        query = query.where(Connection.name == params["name"])
    if strategies and STRATEGY not in strategies:
        query = query.where(false())  # idp has database connections only
    clients = _clients()
    if "from" in params or "take" in params:  # checkpoint paging, as the v5 SDKs page
        return _checkpoint(query, params, project, clients)
    rows = db.session.scalars(query.order_by(Connection.created_at, Connection.id)
                              .offset(page * per_page).limit(per_page))
    connections = [project(connection_object(c, clients.get(c.id, []))) for c in rows]
    if not include_totals:
        return jsonify(connections)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return jsonify(start=page * per_page, limit=per_page, total=total, connections=connections)


def _checkpoint(query: Select[Connection], params: dict[str, str],
                project: Callable[[dict[str, Any]], dict[str, Any]],
                clients: dict[str, list[str]]) -> Response:
    """A page after the connection `from` names, by id: `{"connections", "next"}`, no `next` at the end."""
    take = _number(params, "take", DEFAULT_TAKE, MAX_PER_PAGE)
    if take < 1:
        raise invalid_query(f"Query validation error: 'take' must be an integer from 1 to {MAX_PER_PAGE}")
    if params.get("from"):
        query = query.where(Connection.id > params["from"])
    rows = list(db.session.scalars(query.order_by(Connection.id).limit(take + 1)))
    body: dict[str, Any] = {"connections": [project(connection_object(c, clients.get(c.id, [])))
                                            for c in rows[:take]]}
    if len(rows) > take:
        body["next"] = rows[take - 1].id
    return jsonify(body)


@bp.get("/connections/<connection_id>")
@requires(READ_CONNECTIONS)
def get_connection(connection_id: str) -> Response:
    """One connection by id."""
    project = _projection(_single(request.args, {"fields", "include_fields"}))
    connection = _find(connection_id)
    return jsonify(project(connection_object(connection, _clients().get(connection.id, []))))


# Changing a connection


def _patch_body() -> dict[str, Any]:
    """The JSON object the PATCH carries: `options` only, cleaned as the users' bodies are."""
    body = json_object(MAX_BODY)
    for name in sorted(body):
        if name in READ_ONLY:
            raise invalid_body(f"'{name}' cannot be changed")
        if name != "options":
            raise invalid_body(f"'Additional properties not allowed: {str(name)[:64]}'")
    for name, value in body.items():
        _clean(value, name)
    return body


def _scripts(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise invalid_body("'options.customScripts' must be an object")
    for name in sorted(value):
        if name not in SCRIPTS:
            raise invalid_body(f"'options.customScripts.{str(name)[:64]}': idp runs only the login, "
                               "get_user, count_users and export_users scripts")
    for name, source in value.items():
        if not isinstance(source, str) or not (source or name in registry.OPTIONAL):
            raise invalid_body(f"'options.customScripts.{name}' must be a non-empty string")
    return dict(value)


def _configuration(value: Any, stored: dict[str, str]) -> dict[str, str]:
    """The new configuration; a value sent back masked, as GET shows it, keeps the stored one."""
    if not isinstance(value, dict):
        raise invalid_body("'options.configuration' must be an object of strings")
    if len(value) > MAX_CONFIGURATION_KEYS:
        raise invalid_body(f"'options.configuration' has more than {MAX_CONFIGURATION_KEYS} keys")
    new: dict[str, str] = {}
    for key, item in value.items():
        if not key or len(key) > MAX_KEY:
            raise invalid_body(f"'options.configuration' keys are 1 to {MAX_KEY} characters")
        if item is None:  # Auth0 allows null: no value
            continue
        where = f"'options.configuration.{key[:64]}'"
        if not isinstance(item, str) or len(item) > MAX_VALUE:
            raise invalid_body(f"{where} must be a string of at most {MAX_VALUE} characters")
        if key in stored and item == redact.mask(stored[key]):
            new[key] = stored[key]  # sent back as GET showed it: unchanged
        elif MASKED.search(item):
            raise invalid_body(f"{where} is a masked value that is not this key's: send the value itself, "
                               "or the masked value GET shows to keep it")
        else:
            new[key] = item
    return new


@bp.patch("/connections/<connection_id>")
@requires(UPDATE_CONNECTIONS)
def update_connection(connection_id: str) -> Response:
    """Change a connection's scripts, configuration or enabledDatabaseCustomization, all or nothing.

    The options sent are changed and the others kept (Auth0 replaces the whole `options` object,
    which would drop the scripts of a caller who sends only the configuration); `configuration`,
    when sent, replaces the whole configuration.
    """
    body = _patch_body()
    connection = _find(connection_id)
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise invalid_body("'options' must be an object")
    for name in sorted(options):
        if name not in OPTIONS:
            raise invalid_body(f"'options.{str(name)[:64]}' is not an option idp has, or cannot be changed")
    migrating = options.get("enabledDatabaseCustomization", connection.migrating)
    if not isinstance(migrating, bool):
        raise invalid_body("'options.enabledDatabaseCustomization' must be true or false")
    if "import_mode" in options and options["import_mode"] is not migrating:
        raise invalid_body("'options.import_mode' is always the same as enabledDatabaseCustomization: "
                           "idp's custom databases always import their users")
    scripts = _scripts(options["customScripts"]) if "customScripts" in options else {}
    configuration = (_configuration(options["configuration"], connection.configuration)
                     if "configuration" in options else None)
    try:
        registry.configure(connection, migrating=migrating, login=scripts.get("login"),
                           get_user=scripts.get("get_user"), count_users=scripts.get("count_users"),
                           export_users=scripts.get("export_users"), configuration=configuration)
    except registry.HasUsers:
        raise ApiError(400, HAS_USERS, "invalid_body") from None
    except registry.InvalidConnection as error:
        raise ApiError(400, str(error), "invalid_body") from None
    return jsonify(connection_object(connection, _clients().get(connection.id, [])))


# Migration statistics


def _day(params: dict[str, str], name: str, default: date) -> date:
    text = params.get(name)
    if text is None:
        return default
    try:
        if not ISO_DATE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise invalid_query(f"Query validation error: '{name}' must be a date, YYYY-MM-DD") from None


def _window() -> tuple[date, date]:
    params = _single(request.args, {"from", "to"})
    today = datetime.now(UTC).date()
    last = _day(params, "to", today)
    if last == date.max:  # the window ends at the start of the day after `to`, which must be a date
        raise invalid_query(f"Query validation error: 'to' must be before {date.max.isoformat()}")
    try:
        earliest = last - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    except OverflowError:  # `to` within the first days of year 1
        earliest = date.min
    first = _day(params, "from", earliest)
    if first > last:
        raise invalid_query("Query validation error: 'from' is after 'to'")
    if (last - first).days + 1 > MAX_WINDOW_DAYS:
        raise invalid_query(f"Query validation error: the window is at most {MAX_WINDOW_DAYS} days")
    return first, last


def _connection_stats(connection: Connection, first: date, last: date) -> dict[str, Any]:
    progress = status.status(connection)
    recent = status.window(connection, first, last)
    by_way = {way: progress["by_source"].get(way, 0) for way in status.WAYS}
    last_migrated = progress["last_migrated_at"]
    return {
        "connection_id": connection.id, "connection": connection.name,
        "migrated": {"total": progress["migrated"], **by_way},
        "daily": recent["daily"], "failures": recent["failures"],
        "last_migrated_at": iso_time(datetime.fromisoformat(last_migrated)) if last_migrated else None,
        "disconnected_at": iso_time(connection.disconnected_at),
    }


@bp.get("/stats/migration")
@requires(READ_STATS)
def migration_stats() -> Response:
    """idp's own: each migrating connection's users moved over, by way and by day, and its failures."""
    first, last = _window()
    rows = db.session.scalars(select(Connection).where(Connection.migrating.is_(True))
                              .order_by(Connection.created_at, Connection.id))
    stats = [_connection_stats(connection, first, last) for connection in rows]
    return jsonify({"from": first.isoformat(), "to": last.isoformat(), "connections": stats})
