"""The dashboard's Connections pages: the list, a connection's scripts and configuration, trying the
scripts on one user, and disconnecting. Changes go through the same registry calls as the management
API's PATCH and the CLI, each with a `sapi` log event naming the admin."""

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import redirect, request, url_for
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from idp import redact
from idp.admin import audit
from idp.admin.views import bp, render
from idp.connections import registry, status, trial
from idp.connections.legacy import imports
from idp.connections.models import NATIVE_ID, Connection
from idp.db import db
from idp.management.connections import MASKED, MAX_CONFIGURATION_KEYS, MAX_KEY, MAX_VALUE
from idp.oauth.models import Client
from idp.users.models import User

MAX_EMAIL, MAX_PASSWORD = 320, 1024  # a try's inputs: an address, and more than any real password
LINE = re.compile(r"\bline (\d+)\b")


def _record(connection: Connection, description: str, details: dict[str, Any]) -> None:
    """Add the change's `sapi` event to the session: it is committed with the change, or not at all."""
    audit.record(description, {"connection": {"id": connection.id, "name": connection.name}, **details},
                 connection=connection.name, connection_id=connection.id)


def _find(name: str) -> Connection:
    connection = db.session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        raise NotFound(f"There is no connection named {name}.")
    return connection


def state(connection: Connection) -> str:
    """Say how a connection stands: migrating, disconnected (it migrated) or native."""
    if connection.disconnected_at is not None:
        return "disconnected"
    return "migrating" if connection.migrating else "native"


def _clients(connection_id: str | None = None) -> dict[str, list[str]]:
    """The names of the clients signing in through each connection."""
    query = select(Client.connection_id, Client.name).order_by(Client.name)
    if connection_id is not None:
        query = query.where(Client.connection_id == connection_id)
    found: dict[str, list[str]] = {}
    for owner, name in db.session.execute(query):
        found.setdefault(owner, []).append(name)
    return found


def _users(*conditions: Any) -> dict[str, int]:
    """How many users each connection has (that meet the conditions)."""
    rows = db.session.execute(select(User.connection_id, func.count()).where(*conditions)
                              .group_by(User.connection_id))
    return {str(owner): int(count) for owner, count in rows}


@dataclass
class Listed:
    """A connection as the list shows it."""

    name: str
    state: str
    users: int
    clients: list[str]
    moved: int | None  # users who came from the legacy store; None for a connection that never migrated


@bp.get("/connections")
def connections() -> BaseResponse:
    """Every connection: its state, users, the clients signing in through it, its users moved over."""
    users, moved = _users(), _users(User.legacy_id.is_not(None))  # moved over as imports.moved counts
    clients = _clients()
    rows = [Listed(c.name, state(c), users.get(c.id, 0), clients.get(c.id, []),
                   moved.get(c.id, 0) if c.migrating else None) for c in registry.all_connections()]
    return render("admin/connections.html", rows=rows)


# One connection


@dataclass
class Script:
    """One script's editor: its source (as stored, or as just submitted) and what was wrong with it."""

    function: str
    source: str
    error: str | None = None

    @property
    def arguments(self) -> str:
        """The function's arguments, as the contract names them."""
        return ", ".join(registry.FUNCTIONS[self.function])

    @property
    def optional(self) -> bool:
        """Say whether a migrating connection may go without it."""
        return self.function in registry.OPTIONAL

    @property
    def error_line(self) -> int | None:
        """The line the error names, if any."""
        found = LINE.search(self.error or "")
        return int(found.group(1)) if found else None


def _scripts(connection: Connection, submitted: dict[str, str] | None = None,
             errors: dict[str, str] | None = None) -> list[Script]:
    sources = submitted or {}
    return [Script(function, sources.get(function, getattr(connection, f"{function}_script") or ""),
                   (errors or {}).get(function)) for function in registry.FUNCTIONS]


def _page(connection: Connection, status_code: int = 200, **context: Any) -> BaseResponse:
    """Render a connection's page; the context may carry a form's outcome (submitted text, errors, a try)."""
    context.setdefault("scripts", _scripts(connection))
    users = db.session.scalar(select(func.count()).where(User.connection_id == connection.id)) or 0
    moved = db.session.scalar(select(func.count()).where(User.connection_id == connection.id,
                                                         User.legacy_id.is_not(None))) or 0
    return render("admin/connection.html", status_code, connection=connection, state=state(connection),
                  native=connection.id == NATIVE_ID, users=users, moved=moved,
                  clients=_clients(connection.id).get(connection.id, []),
                  configuration=sorted(connection.masked_configuration().items()), **context)


@bp.get("/connections/<name>")
def connection(name: str) -> BaseResponse:
    """A connection: its facts, its scripts in an editor, its masked configuration, the try form."""
    found = _find(name)
    return _page(found, notice=_NOTICES.get(request.args.get("saved", "")))


# What a redirect after a change tells the admin (the page is reloaded with GET, so that reloading it
# does not send the form again).
_NOTICES = {"scripts": "The scripts are saved.", "configuration": "The configuration is saved.",
            "nothing": "Nothing changed.",
            "disconnected": "Disconnected: the scripts are no-ops and users sign in against idp only."}


def _refuse(connection: Connection, field: str, message: str, **context: Any) -> BaseResponse:
    """Render the page again with a form's error (`field` says which form's), status 400."""
    return _page(connection, 400, **{field: message}, **context)


@bp.post("/connections/<name>/scripts")
def save_scripts(name: str) -> BaseResponse:
    """Save the edited scripts in one transaction; any that does not compile refuses them all."""
    connection = _find(name)
    if not connection.migrating:
        return _refuse(connection, "scripts_error",
                       f"{connection.name} is not a migrating connection: it has no scripts.")
    # Browsers send a textarea's lines ending in CRLF; the scripts are stored as written, with LF.
    submitted = {function: request.form[function].replace("\r\n", "\n")
                 for function in registry.FUNCTIONS if function in request.form}
    changed = {function: source for function, source in submitted.items()
               if source != (getattr(connection, f"{function}_script") or "")}
    errors: dict[str, str] = {}
    for function, source in changed.items():
        if source or function not in registry.OPTIONAL:  # an empty optional script is removed
            try:
                registry.check_script(source, function)
            except registry.InvalidConnection as refused:
                errors[function] = str(refused)
    if errors:
        return _refuse(connection, "scripts_error", "Nothing was saved: " + "; ".join(errors.values()) + ".",
                       scripts=_scripts(connection, submitted, errors))
    if not changed:
        return redirect(url_for("admin.connection", name=connection.name, saved="nothing"), 303)
    _record(connection, "Update connection scripts",
            {"scripts": {f: "changed" if source else "removed" for f, source in sorted(changed.items())}})
    try:
        registry.configure(connection, login=changed.get("login"), get_user=changed.get("get_user"),
                           count_users=changed.get("count_users"), export_users=changed.get("export_users"))
    except registry.InvalidConnection as refused:
        db.session.rollback()  # the event goes with the change it tells of
        return _refuse(connection, "scripts_error", f"Nothing was saved: {refused}.",
                       scripts=_scripts(connection, submitted))
    return redirect(url_for("admin.connection", name=connection.name, saved="scripts"), 303)


class _Refused(Exception):
    """A configuration form we cannot save; the message says why."""


def _configuration(stored: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Return the configuration the form asks for, and the key names it replaces, adds and removes."""
    new: dict[str, str] = {}
    changes: dict[str, list[str]] = {"replaced": [], "added": [], "removed": []}
    for key, value in stored.items():
        if request.form.get(f"remove:{key}"):
            changes["removed"].append(key)
            continue
        replacement = request.form.get(f"replace:{key}", "")
        if not replacement or replacement == redact.mask(value):  # blank, or the mask sent back: kept
            new[key] = value
        elif MASKED.search(replacement):
            raise _Refused(f"the new value of {key} looks like a masked value: type the value itself")
        elif len(replacement) > MAX_VALUE:
            raise _Refused(f"the new value of {key} is longer than {MAX_VALUE} characters")
        else:
            new[key] = replacement
            if replacement != value:
                changes["replaced"].append(key)
    key, value = request.form.get("new_key", "").strip(), request.form.get("new_value", "")
    if value and not key:
        raise _Refused("the new value has no key: name it")
    if key:
        if len(key) > MAX_KEY:
            raise _Refused(f"a key is at most {MAX_KEY} characters")
        if key in new:
            raise _Refused(f"there is a key {key} already: replace its value in its own field")
        if len(value) > MAX_VALUE:
            raise _Refused(f"the new value of {key} is longer than {MAX_VALUE} characters")
        new[key] = value
        changes["added"].append(key)
    if len(new) > MAX_CONFIGURATION_KEYS:
        raise _Refused(f"a configuration has at most {MAX_CONFIGURATION_KEYS} keys")
    return new, {kind: sorted(keys) for kind, keys in changes.items() if keys}


@bp.post("/connections/<name>/configuration")
def save_configuration(name: str) -> BaseResponse:
    """Replace, add and remove configuration values, saved as PATCH saves them; blank fields keep theirs."""
    connection = _find(name)
    if not connection.migrating:
        return _refuse(connection, "configuration_error",
                       f"{connection.name} is not a migrating connection: it has no configuration.")
    try:
        new, changes = _configuration(connection.configuration)
    except _Refused as refused:
        # Nothing typed is shown again: the values are secrets.
        return _refuse(connection, "configuration_error",
                       f"Nothing was saved: {refused}. Type the new values again.")
    if not changes:
        return redirect(url_for("admin.connection", name=connection.name, saved="nothing"), 303)
    _record(connection, "Update connection configuration", {"configuration": changes})  # names, no values
    try:
        registry.configure(connection, configuration=new)
    except registry.InvalidConnection as refused:
        db.session.rollback()
        return _refuse(connection, "configuration_error", f"Nothing was saved: {refused}.")
    return redirect(url_for("admin.connection", name=connection.name, saved="configuration"), 303)


# Trying the scripts


@dataclass(frozen=True)
class Shown:
    """A profile field as the try's table shows it: each script's value, secrets scrubbed."""

    name: str
    get_user: str | None
    login: str | None
    differs: bool


def _show(value: Any, secrets: list[str]) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return redact.scrub(text, secrets)


def _table(result: trial.Trial, secrets: list[str]) -> list[Shown]:
    """Every profile field with what each script gave; the differences are the trial's own."""
    differing = {row.name for row in result.rows if row.differs}
    profiles = {answer.function: answer.profile for answer in result.answers}
    if not any(profiles.values()):
        return []
    get_user, login = profiles.get("get_user"), profiles.get("login")
    return [Shown(name, _show(getattr(get_user, name), secrets) if get_user else None,
                  _show(getattr(login, name), secrets) if login else None, name in differing)
            for name in trial.FIELDS]


@bp.post("/connections/<name>/try")
def try_scripts(name: str) -> BaseResponse:
    """Run get_user and login for an email and password and show both profiles side by side."""
    connection = _find(name)
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")  # never shown again, never stored
    if not imports(connection):
        return _refuse(connection, "try_error", f"{connection.name} does not migrate users: its scripts are "
                       "no-ops or it has none.", try_email=email)
    if not email or len(email) > MAX_EMAIL or "@" not in email:
        return _refuse(connection, "try_error", "Give the email address of a user of the legacy store.",
                       try_email=email[:MAX_EMAIL])
    if len(password) > MAX_PASSWORD:
        return _refuse(connection, "try_error", f"A password is at most {MAX_PASSWORD} characters.",
                       try_email=email)
    result = trial.run(connection, email, password or None)
    # A try checks a legacy password: the log says who tried which email (never the password).
    _record(connection, "Try connection scripts", {"email": email, "with_password": bool(password)})
    db.session.commit()
    secrets = redact.secrets_in(connection.configuration, password)
    return _page(connection, try_email=email, trial=result, table=_table(result, secrets))


# Disconnecting


@bp.route("/connections/<name>/disconnect", methods=["GET", "POST"])
def disconnect(name: str) -> BaseResponse:
    """Ask, spelling out what disconnecting does and how many legacy users are left; then do it."""
    connection = _find(name)
    if not imports(connection):
        return render("admin/disconnect.html", 400, connection=connection, report=None,
                      error=f"{connection.name} is not migrating users: there is nothing to disconnect.")
    if request.method == "POST":
        _record(connection, "Disconnect connection", {"disconnected": True})
        try:
            registry.disconnect(connection)
        except registry.InvalidConnection as refused:
            db.session.rollback()
            return render("admin/disconnect.html", 400, connection=connection, report=None,
                          error=str(refused))
        return redirect(url_for("admin.connection", name=connection.name, saved="disconnected"), 303)
    report = status.status(connection)  # counts the legacy store's users when it has count_users
    if report.get("count_error"):
        secrets = redact.secrets_in(connection.configuration)
        report["count_error"] = redact.scrub(report["count_error"], secrets)
    return render("admin/disconnect.html", connection=connection, report=report, error=None)
