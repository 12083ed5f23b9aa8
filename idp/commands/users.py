"""`idp users …` commands."""

import json
import sys
from typing import IO, Any

import click
from email_validator import EmailNotValidError, validate_email
from flask import Blueprint
from sqlalchemy import select

from idp.connections import jobs, registry, stores, users_file
from idp.connections.legacy import LegacyUnavailable
from idp.connections.models import NATIVE_NAME, Connection
from idp.connections.registry import InvalidConnection
from idp.db import db
from idp.management.shapes import iso_time, user_object
from idp.users import accounts
from idp.users.accounts import UserExists
from idp.users.models import User
from idp.users.passwords import policy_error

bp = Blueprint("users_cli", __name__, cli_group="users")
bp.cli.help = "Users kept in idp's database: create, list, show, delete, import."
CONNECTION_HELP = "Only users of this database connection."


@bp.cli.command("create")
@click.option("--email", required=True, help="The user's email address (their login).")
@click.option("--password", help="Prompted for when not given (keeps it out of shell history).")
@click.option("--name", help="Full name, as in the `name` claim.")
@click.option("--verified", is_flag=True, help="Mark the email as verified.")
@click.option("--connection", "connection_name", help=f"The database connection (default: {NATIVE_NAME}).")
def create(email: str, password: str | None, name: str | None, verified: bool,
           connection_name: str | None) -> None:
    """Create a user in a database connection."""
    try:
        store = stores.named(connection_name) if connection_name else stores.by_id(None)
        email = validate_email(email, check_deliverability=False).normalized
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    except EmailNotValidError as e:
        raise click.ClickException(f"invalid email: {e}") from None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if problem := policy_error(password, email):
        raise click.ClickException(problem)
    try:
        user = store.create(email, password, name=name, email_verified=verified)
    except UserExists:
        raise click.ClickException(f"a user with email {email} already exists") from None
    except LegacyUnavailable as e:
        message = f"the legacy store of {store.connection.name} did not answer: {e}"
        raise click.ClickException(message) from None
    click.echo(f"created user {user.id} <{user.email}>")


def _store(connection_name: str | None) -> stores.UserStore | None:
    """Return the store --connection names, or None for all of them."""
    if connection_name is None:
        return None
    try:
        return stores.named(connection_name)
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None


def _describe(user: User, connections: dict[str, Connection]) -> dict[str, Any]:
    """Return a user as the management API does (Auth0's user object), with idp's own history fields."""
    connection = connections.get(user.connection_id)
    name = connection.name if connection else user.connection_id
    return {
        **user_object(user, name), "connection": name,
        "last_password_change": iso_time(user.password_changed_at),
        "migrated_at": iso_time(user.migrated_at), "legacy_id": user.legacy_id,
    }


def _connections() -> dict[str, Connection]:
    return {c.id: c for c in registry.all_connections()}


def _find(user_id_or_email: str, store: stores.UserStore | None) -> User:
    """Return a user by id, or by email in one connection (or in the only one that has it)."""
    user = db.session.get(User, user_id_or_email)
    if user is not None and store is not None and user.connection_id != store.id:
        user = None
    if user is None and "@" in user_id_or_email:
        # idp's own database only: looking a user up never asks a legacy store.
        chosen = [store] if store else [stores.of(c) for c in registry.all_connections()]
        found = [u for u in (s.find(user_id_or_email) for s in chosen) if u is not None]
        if len(found) > 1:
            names = ", ".join(sorted(_connections()[u.connection_id].name for u in found))
            raise click.ClickException(
                f"{user_id_or_email} has a user in each of {names}: name one with --connection")
        user = found[0] if found else None
    if user is None:
        where = f" in {store.connection.name}" if store else ""
        raise click.ClickException(f"no user {user_id_or_email}{where}")
    return user


@bp.cli.command("list")
@click.option("--connection", "connection_name", help=CONNECTION_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (Auth0's user fields).")
def list_(connection_name: str | None, as_json: bool) -> None:
    """List users kept in idp's database, oldest first (legacy users not moved over are not listed)."""
    store = _store(connection_name)
    connections = _connections()
    rows = [_describe(user, connections) for user in accounts.list_users(store.id if store else None)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        verified = "verified" if row["email_verified"] else "unverified"
        click.echo(f"{row['user_id']}  {row['email']}  ({row['connection']}, {verified})  "
                   f"last login {row['last_login'] or 'never'}")


@bp.cli.command("show")
@click.argument("user_id_or_email")
@click.option("--connection", "connection_name", help="The user's database connection (for an email).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (Auth0's user fields).")
def show(user_id_or_email: str, connection_name: str | None, as_json: bool) -> None:
    """Show a user's profile, connection and history (never their password)."""
    data = _describe(_find(user_id_or_email, _store(connection_name)), _connections())
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | bool) else value
        click.echo(f"{key + ':':<21} {'' if value is None else shown}")


@bp.cli.command("delete")
@click.argument("user_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(user_id: str, yes: bool) -> None:
    """Delete a user with their sessions, grants, tokens, consents and emailed links."""
    user = db.session.get(User, user_id)
    if user is None:
        raise click.ClickException(f"no user with id {user_id} (`idp users show EMAIL` gives the id)")
    store = stores.by_id(user.connection_id)
    email, label = user.email, f"{user.id} <{user.email}> of {store.connection.name}"
    if not yes:
        click.confirm(f"Delete user {label}, signing them out everywhere?", abort=True)
    accounts.delete_user(user, store.connection.name)
    click.echo(f"deleted user {label}")
    if store.migrating:
        click.echo(f"note: if the legacy store of {store.connection.name} still has {email}, they move "
                   "over again at their next sign-in (`idp connections disconnect` stops that)")


@bp.cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--connection", "connection_name", required=True, help="The connection to import into.")
@click.option("--upsert", is_flag=True, help="Update users already here (matched by email) from the file.")
def import_(file: IO[bytes], connection_name: str, upsert: bool) -> None:
    """Import an Auth0 users file (a JSON array, any size): users already here are skipped or updated."""
    try:
        connection = registry.find(connection_name)
        job = jobs.create(connection, file, upsert=upsert)
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    except users_file.FileInvalid as e:
        raise click.ClickException(f"{file.name}: {e}") from None
    with click.progressbar(length=job.total, label="importing", file=sys.stderr, show_pos=True) as bar:
        jobs.run(job.id, progress=bar.update)  # a new job: free to take
    db.session.expire_all()
    ended = db.session.get(jobs.ImportJob, job.id)
    assert ended is not None
    click.echo(f"{connection.name}: {ended.inserted:,} imported, {ended.updated:,} updated, "
               f"{ended.failed:,} failed, {ended.position:,} in all ({ended.id})")
    failures = db.session.scalars(select(jobs.ImportFailure).where(jobs.ImportFailure.job_id == job.id)
                                  .order_by(jobs.ImportFailure.id).limit(20))
    for failure in failures:
        email = failure.user.get("email") if isinstance(failure.user, dict) else None
        reasons = "; ".join(f"{error['code']} {error['message']}" for error in failure.errors)
        click.echo(f"  {email or '(no email)'}: {reasons}")
    if ended.status == jobs.FAILED:
        raise click.ClickException(ended.status_details or "the import failed")
