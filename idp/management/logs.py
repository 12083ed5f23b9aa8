"""Log events under /api/v2/: GET /logs (Auth0's log search), /logs/{id} and /users/{id}/logs; and the
event the management API itself writes: `sapi` for every successful write (POST, PATCH, PUT, DELETE).

It is added to the session just before the write commits, so that it exists exactly when the write
does, and then gets its response's status. A write that commits nothing still gets its `sapi`.
"""

import re
from typing import Any

from flask import Response, g, has_request_context, jsonify, request
from sqlalchemy import ColumnElement, event, func, inspect, select
from sqlalchemy.orm import Session

from idp.db import db
from idp.events import batch
from idp.events import log as events
from idp.events.models import LogEvent
from idp.management import search
from idp.management.api import (
    DEFAULT_PER_PAGE,
    MAX_PAGE,
    MAX_PER_PAGE,
    PREFIX,
    ApiError,
    _number,
    _projection,
    _single,
    bp,
    flag,
    invalid_query,
    requires,
    searching,
)
from idp.oauth import clients

READ_LOGS, READ_LOGS_USERS = "read:logs", "read:logs_users"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
MAX_SEARCH_RESULTS = 1000  # "you may paginate only through 1,000 search results", as in Auth0
LOG_ID = re.compile(r"^[0-9a-z]{1,64}$")

# The fields Auth0's log search names, and the columns they search.
TEXT_FIELDS: dict[str, Any] = {
    "client_id": LogEvent.client_id, "client_name": LogEvent.client_name, "connection": LogEvent.connection,
    "connection_id": LogEvent.connection_id, "description": LogEvent.description,
    "hostname": LogEvent.hostname, "ip": LogEvent.ip, "log_id": LogEvent.log_id,
    "user_id": LogEvent.user_id, "user_name": LogEvent.user_name, "user_agent": LogEvent.user_agent,
    "strategy": LogEvent.strategy, "strategy_type": LogEvent.strategy_type, "type": LogEvent.type,
}
FOLDED = {"user_name", "description", "client_name"}  # matched case-insensitively
DEFAULTS = ("description", "user_name", "client_name", "connection")  # a term without a field


def log_target(name: str, dialect: str) -> search.Target:
    """Return the log field a query names, or refuse it."""
    if name == "date":
        return search.DateTarget(name, LogEvent.date)
    if name in TEXT_FIELDS:
        return search.TextTarget(name, TEXT_FIELDS[name], dialect, folded=name in FOLDED)
    raise search.QueryError(f"Unsupported field in log search: {name[:100]}")


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _order(params: dict[str, str]) -> list[Any]:
    """`sort=date:1` or `date:-1` (the default); log ids break ties in the same order."""
    text = params.get("sort", "date:-1")
    if text not in ("date:1", "date:-1"):
        raise invalid_query("Query validation error: 'sort' must be date:1 or date:-1")
    if text == "date:1":
        return [LogEvent.date.asc(), LogEvent.log_id.asc()]
    return [LogEvent.date.desc(), LogEvent.log_id.desc()]


def _page(where: ColumnElement[bool], params: dict[str, str]) -> Response:
    """A page of the events matching `where` (page, per_page, sort, include_totals, fields)."""
    batch.flush_current()  # what this process queued shows at once; other processes' within a second
    page = _number(params, "page", 0, MAX_PAGE)
    per_page = _number(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    if (page + 1) * per_page > MAX_SEARCH_RESULTS:
        raise invalid_query(f"You can only page through the first {MAX_SEARCH_RESULTS} results; use "
                            "checkpoint paging (from and take) to read further")
    include_totals = flag(params, "include_totals", False)
    project = _projection(params)
    total = None
    with searching():
        rows = db.session.scalars(select(LogEvent).where(where).order_by(*_order(params))
                                  .offset(page * per_page).limit(per_page)).all()
        if include_totals:
            total = db.session.scalar(select(func.count()).select_from(LogEvent).where(where)) or 0
    logs = [project(row.as_dict()) for row in rows]
    if total is None:
        return jsonify(logs)
    return jsonify(start=page * per_page, limit=per_page, length=len(logs), total=total, logs=logs)


def _checkpoint(params: dict[str, str]) -> Response:
    """`from`/`take`: the `take` events after the log id `from`, oldest first; without `from`, the latest
    `take`, newest first. Every other parameter is ignored, as in Auth0."""
    take = _number(params, "take", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    batch.flush_current()
    start = params.get("from")
    if start is None:
        query = select(LogEvent).order_by(LogEvent.log_id.desc())
    else:
        if not LOG_ID.match(start):
            raise invalid_query("Query validation error: 'from' must be a log id")
        query = select(LogEvent).where(LogEvent.log_id > start).order_by(LogEvent.log_id.asc())
    return jsonify([row.as_dict() for row in db.session.scalars(query.limit(take))])


@bp.get("/logs")
@requires(READ_LOGS)
def list_logs() -> Response:
    """Search log events (Lucene, as Auth0's log search), a page at a time, or from a checkpoint."""
    params = _single(request.args, {"q", "search", "page", "per_page", "include_totals", "sort", "fields",
                                    "include_fields", "from", "take"})
    if "from" in params or "take" in params:
        return _checkpoint(params)
    if "q" in params and "search" in params:
        raise invalid_query("Query validation error: give 'q' or 'search', not both")
    try:
        where = search.condition(params.get("q", params.get("search", "")), _dialect(), log_target, DEFAULTS)
    except search.QueryError as error:
        raise invalid_query(str(error)) from None
    return _page(where, params)


@bp.get("/logs/<log_id>")
@requires(READ_LOGS)
def get_log(log_id: str) -> Response:
    """One log event by id."""
    _single(request.args, set())
    batch.flush_current()
    row = db.session.get(LogEvent, log_id) if LOG_ID.match(log_id) else None
    if row is None:
        raise ApiError(404, "The log event does not exist.", "inexistent_log")
    return jsonify(row.as_dict())


@bp.get("/users/<user_id>/logs")
@requires(READ_LOGS_USERS, READ_LOGS)
def user_logs(user_id: str) -> Response:
    """A user's log events, newest first unless `sort=date:1`."""
    params = _single(request.args, {"page", "per_page", "sort", "include_totals"})
    if len(user_id) > 255 or "\x00" in user_id:  # PostgreSQL refuses NUL in text
        raise invalid_query("Query validation error: 'id' is not a user id")
    return _page(LogEvent.user_id == user_id, params)


# Events of management writes


def _management_write() -> bool:
    """Say whether this is an authorized write under /api/v2/ (the token checked, the view running)."""
    return (has_request_context() and request.method in WRITES and request.path.startswith(PREFIX + "/")
            and "management_claims" in g)


def _api_event(status: int | None) -> LogEvent:
    claims: dict[str, Any] = g.management_claims
    client_id = claims.get("client_id") or claims.get("azp")
    client = clients.cached(client_id) if isinstance(client_id, str) and len(client_id) <= 64 else None
    scope = claims.get("scope")
    path = request.path.replace("\x00", "\ufffd")  # PostgreSQL refuses NUL, even inside JSON
    details: dict[str, Any] = {"request": {"method": request.method, "path": path,
                                           "auth": {"strategy": "jwt", "credentials": {
                                               "scopes": scope.split() if isinstance(scope, str) else []}}}}
    if status is not None:
        details["response"] = {"statusCode": status}
    return events.build(events.SUCCESS_API, "Success API Operation",
                        client_id=client_id if isinstance(client_id, str) else None,
                        client_name=client.name if client else None, details=details, database=False)


@event.listens_for(Session, "before_commit")
def _log_api_write(session: Session) -> None:
    """Add the `sapi` of a management write to the transaction that commits it (once per request)."""
    if not _management_write():
        return
    logged = g.get("sapi_event")
    if logged is not None and (inspect(logged).persistent or inspect(logged).pending):
        return  # committed already, or about to be with this commit
    g.sapi_event = _api_event(None)
    session.add(g.sapi_event)


@bp.after_request
def _log_api_answer(response: Response) -> Response:
    """Give the write's `sapi` its status; a successful write that committed nothing gets its own."""
    if not _management_write():
        return response
    logged = g.get("sapi_event")
    state = inspect(logged) if logged is not None else None
    if response.status_code >= 400:
        if state is not None and state.persistent:
            # Committed with a failure recorded on the way (a legacy store's): the write did not happen.
            db.session.delete(logged)
            db.session.commit()
        return response
    if state is not None and state.persistent:
        logged.details = {**logged.details, "response": {"statusCode": response.status_code}}
    elif state is None or not state.pending:  # nothing committed (or it was rolled back)
        g.sapi_event = _api_event(response.status_code)
        db.session.add(g.sapi_event)
    db.session.commit()
    return response
