"""The logs page: log events searched in the query language of GET /api/v2/logs, newest first, a page of
100 at a time, and one event's whole JSON as the management API returns it."""

import json
import re

from flask import Response, current_app, request
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from idp.admin.views import bp, render
from idp.db import db
from idp.events import batch
from idp.events.models import LogEvent
from idp.management import logs as api_logs
from idp.management import search

PER_PAGE = 100
MAX_PAGES = api_logs.MAX_SEARCH_RESULTS // PER_PAGE  # as far as the API lets one page
PAGE = re.compile(r"^[0-9]{1,3}$")
# Auth0's names of the event types idp writes (and idp's own `migration`), said next to each code.
TYPE_NAMES = {
    "s": "Success Login", "f": "Failed Login", "fp": "Incorrect Password", "fu": "Invalid Email or Username",
    "ss": "Success Signup", "fs": "Failed Signup", "scp": "Success Change Password",
    "fcp": "Failed Change Password", "scpr": "Success Change Password Request",
    "seccft": "Success Exchange (Client Credentials)", "feccft": "Failed Exchange (Client Credentials)",
    "sertft": "Success Exchange (Refresh Token)", "fertft": "Failed Exchange (Refresh Token)",
    "sapi": "Success API Operation", "sdu": "Success User Deletion", "sui": "Success Users Import",
    "fui": "Failed Users Import", "migration": "User Moved Over",
}


def _page_number(text: str | None) -> int | None:
    """Return the 1-based page asked for, or None when it is not one the search can reach."""
    if text is None:
        return 1
    number = int(text) if PAGE.match(text) else 0
    return number if 1 <= number <= MAX_PAGES else None


@bp.get("/logs")
def logs() -> Response:
    """Search log events (the management API's query language and time budget), newest first."""
    query = request.args.get("q", "")
    page = _page_number(request.args.get("page"))
    rows: list[LogEvent] = []
    more, error, status = False, None, 200
    if page is None:
        page, status = 1, 400
        error = f"Pages go from 1 to {MAX_PAGES}: the search reaches the newest " \
                f"{api_logs.MAX_SEARCH_RESULTS:,} events. Narrow the query to see older ones."
    else:
        batch.flush_current()  # what this process queued shows at once, as in the API
        try:
            where = search.condition(query, db.session.get_bind().dialect.name, api_logs.log_target,
                                     api_logs.DEFAULTS)
            with search.time_limit(float(current_app.config["SEARCH_TIMEOUT"])):
                found = db.session.scalars(
                    select(LogEvent).where(where).order_by(LogEvent.date.desc(), LogEvent.log_id.desc())
                    .offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)).all()
        except search.QueryError as refused:
            error, status = str(refused), 400
        except search.QueryTimeout:
            error, status = "The search took too long. Try refining the query.", 503
        else:
            rows, more = list(found[:PER_PAGE]), len(found) > PER_PAGE and page < MAX_PAGES
    return render("admin/logs.html", status=status, query=query, rows=rows, page=page, more=more, error=error,
                  names=TYPE_NAMES, per_page=PER_PAGE)


@bp.get("/logs/<log_id>")
def log_event(log_id: str) -> Response:
    """One log event: its fields, and its whole JSON as GET /api/v2/logs/{id} returns it."""
    batch.flush_current()
    row = db.session.get(LogEvent, log_id) if api_logs.LOG_ID.match(log_id) else None
    if row is None:
        raise NotFound("There is no log event with this id.")
    body = row.as_dict()
    return render("admin/log.html", event=row, name=TYPE_NAMES.get(row.type),
                  document=json.dumps(body, indent=2, ensure_ascii=False, sort_keys=False))
