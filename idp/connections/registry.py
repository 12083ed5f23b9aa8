"""Creating and changing connections and their scripts."""

import ast
import re
import secrets
from importlib import resources
from typing import Any, cast

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from idp.connections.models import NATIVE_ID, Connection
from idp.db import db, utcnow
from idp.errors import InvalidInput
from idp.users.models import User

FUNCTIONS = {"login": ("email", "password", "configuration"), "get_user": ("email", "configuration"),
             "count_users": ("configuration",), "export_users": ("cursor", "configuration")}
OPTIONAL = ("count_users", "export_users")  # a migrating connection may go without these ("" removes one)
MAX_SCRIPT = 100_000  # characters, as Auth0 allows
NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,126}[A-Za-z0-9])?")


class InvalidConnection(InvalidInput):
    """A connection or script we refuse; the message says why (and where, for scripts)."""


class HasUsers(InvalidConnection):
    """Whether a connection migrates cannot change once it has users."""


def templates() -> list[str]:
    """Return the names of the shipped script templates."""
    folder = resources.files("idp.migration.script_templates")
    return sorted(p.name.removesuffix(".py") for p in folder.iterdir()
                  if p.name.endswith(".py") and not p.name.startswith("_"))


def template(name: str) -> str:
    """Return a template's source."""
    if name not in templates():
        raise InvalidConnection(f"no template {name!r}; choose one of: {', '.join(templates())}")
    return (resources.files("idp.migration.script_templates") / f"{name}.py").read_text()


def check_script(source: str, function: str) -> None:
    """Refuse a script that does not compile or does not define its function with the right arguments."""
    if len(source) > MAX_SCRIPT:
        raise InvalidConnection(f"the {function} script is longer than {MAX_SCRIPT} characters")
    try:
        tree = ast.parse(source, filename=f"<{function} script>")
        compile(tree, f"<{function} script>", "exec")
    except SyntaxError as e:
        raise InvalidConnection(f"the {function} script does not compile: line {e.lineno}: {e.msg}") from None
    except (RecursionError, MemoryError):  # nested deeper than Python's parser or compiler goes
        raise InvalidConnection(f"the {function} script is nested too deeply to compile") from None
    found = _definitions(tree, function)
    if not found:
        raise InvalidConnection(f"the {function} script defines no function `{function}`")
    arguments = [a.arg for a in found[-1].args.args]
    if len(arguments) != len(FUNCTIONS[function]):
        expected = ", ".join(FUNCTIONS[function])
        raise InvalidConnection(f"line {found[-1].lineno}: `{function}` must take ({expected})")


def _definitions(tree: ast.Module, function: str) -> list[ast.FunctionDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]


def _defines(source: str, function: str) -> bool:
    """Say whether a template defines a function (templates for stores that cannot count have none)."""
    return bool(_definitions(ast.parse(source), function))


def find(name: str) -> Connection:
    """Return a connection by name."""
    connection = db.session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        raise InvalidConnection(f"no connection named {name!r}")
    return connection


def all_connections() -> list[Connection]:
    """Return every connection, oldest first."""
    return list(db.session.scalars(select(Connection).order_by(Connection.created_at)))


def create(name: str, *, migrating: bool, template_name: str | None = None,
           configuration: dict[str, str] | None = None) -> Connection:
    """Create a connection; a migrating one starts with a template's scripts (no-op by default)."""
    name = name.strip()
    if not NAME.fullmatch(name):
        # Auth0's rule, which also keeps every name usable in a URL path (the dashboard's).
        raise InvalidConnection("a connection's name is 1 to 128 letters, digits and '-', starting and "
                                f"ending with a letter or digit: {name[:128]!r}")
    if db.session.scalar(select(Connection).where(Connection.name == name)) is not None:
        raise InvalidConnection(f"a connection named {name!r} already exists")
    if not migrating and (template_name or configuration):
        raise InvalidConnection("scripts and configuration belong to migrating connections (--migrate)")
    connection = Connection(id="con_" + secrets.token_hex(8), name=name, migrating=migrating)
    if migrating:
        source = template(template_name or "noop")
        for function in FUNCTIONS:
            setattr(connection, f"{function}_script", source if _defines(source, function) else None)
        connection.configuration = configuration or {}
    db.session.add(connection)
    db.session.commit()
    return connection


def configure(connection: Connection, *, migrating: bool | None = None, login: str | None = None,
              get_user: str | None = None, count_users: str | None = None, export_users: str | None = None,
              configuration: dict[str, str] | None = None) -> None:
    """Change whether a connection migrates, its scripts and its configuration, in one transaction.

    Everything is checked before anything changes, and a failure leaves the connection as it was.
    A connection starting to migrate gets the no-op scripts and an empty configuration (unless given);
    one that stops loses them. Only a connection without users may start or stop migrating, and never
    the native one. A disconnected connection keeps its no-op scripts (its configuration may change).
    An optional script (OPTIONAL) given as "" is removed.
    """
    scripts = {"login": login, "get_user": get_user, "count_users": count_users, "export_users": export_users}
    given = {function: source for function, source in scripts.items() if source is not None}
    becomes = connection.migrating if migrating is None else migrating
    changes = bool(given) or configuration is not None
    if connection.id == NATIVE_ID and (becomes or changes):
        raise InvalidConnection(f"{connection.name} is the native connection and cannot get scripts")
    users = select(User.id).where(User.connection_id == connection.id).limit(1)
    if becomes != connection.migrating and db.session.scalar(users) is not None:
        raise HasUsers(f"{connection.name} has users: whether it migrates cannot change")
    if not becomes and changes:
        raise InvalidConnection("scripts and configuration belong to migrating connections")
    for function, source in given.items():
        current = getattr(connection, f"{function}_script")
        if connection.disconnected_at is not None and (source or None) != current:
            raise InvalidConnection(f"{connection.name} is disconnected: its scripts stay the no-op ones")
        if source or function not in OPTIONAL:
            check_script(source, function)
    try:
        if becomes != connection.migrating:
            connection.migrating, connection.disconnected_at = becomes, None
            noop = template("noop") if becomes else None
            connection.login_script = connection.get_user_script = noop
            connection.count_users_script = connection.export_users_script = connection.export_cursor = None
            connection.configuration_encrypted = None
            if becomes:
                connection.configuration = {}
        for function, source in given.items():
            setattr(connection, f"{function}_script", source or None)
        if "export_users" in given:
            connection.export_cursor = None  # another script's cursor means nothing to this one
        if configuration is not None:
            connection.configuration = configuration
        db.session.commit()
    except Exception:
        db.session.rollback()  # nothing half-changed
        raise


def disconnect(connection: Connection) -> None:
    """Stop asking the legacy store: the scripts become no-ops and import stays on."""
    if not connection.migrating:
        raise InvalidConnection(f"{connection.name} is not a migrating connection")
    connection.login_script = connection.get_user_script = template("noop")
    connection.count_users_script = connection.export_users_script = connection.export_cursor = None
    connection.disconnected_at = utcnow()
    db.session.commit()


def delete(connection: Connection, *, with_users: bool = False) -> int:
    """Delete a connection in one transaction, and with `with_users` its users; return how many went.

    Its migration records and emailed links go with it, and its users' sessions, grants, tokens and
    consents with them (ON DELETE CASCADE). The native connection is never deleted, nor one that has
    users without `with_users`, nor one a client signs in through: the database refuses that (a
    client's connection has no cascade), also for a client or user that arrives meanwhile, and then
    nothing is deleted.
    """
    if connection.id == NATIVE_ID:
        raise InvalidConnection(f"{connection.name} is the native connection and cannot be deleted")
    name = connection.name
    users = select(User.id).where(User.connection_id == connection.id)
    if not with_users and db.session.scalar(users.limit(1)) is not None:
        raise InvalidConnection(f"{name} still has users")
    try:
        deleted = 0
        if with_users:
            result = db.session.execute(delete_rows(User).where(User.connection_id == connection.id))
            deleted = cast(CursorResult[Any], result).rowcount  # a DELETE gives a CursorResult
        db.session.delete(connection)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise InvalidConnection(f"{name} is still used by a client (or gained a user meanwhile); "
                                "nothing was deleted") from None
    return deleted
