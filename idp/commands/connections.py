"""`idp connections …`, `idp migration status` and `idp migration finish`."""

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import Blueprint
from sqlalchemy import func, select

from idp.connections import imports, trial
from idp.connections import registry as connections
from idp.connections.legacy import LegacyUnavailable
from idp.connections.models import NATIVE_ID, Connection
from idp.connections.registry import InvalidConnection
from idp.connections.status import status
from idp.db import db
from idp.oauth.models import Client
from idp.users.models import User

bp = Blueprint("connections_cli", __name__, cli_group="connections")
bp.cli.help = "Database connections: the native one and migrating ones; create, show, test, delete."
status_bp = Blueprint("migration_cli", __name__, cli_group="migration")
status_bp.cli.help = "Progress of migrating connections, and finishing them."


def _find(name: str) -> Connection:
    try:
        return connections.find(name)
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # Never echo the value: it is a secret.
            raise click.BadParameter("expected KEY=VALUE", param_hint="--config")
        pairs[key.strip()] = value
    return pairs


@bp.cli.command("create")
@click.option("--name", required=True, help="A unique name; clients name it with --connection.")
@click.option("--migrate", is_flag=True,
              help="Use my own database and import users (login and get_user scripts).")
@click.option("--template", help=f"Script template: {', '.join(connections.templates())}.")
@click.option("--config", "config", multiple=True, metavar="KEY=VALUE",
              help="A configuration value (treated as a secret).")
def create(name: str, migrate: bool, template: str | None, config: tuple[str, ...]) -> None:
    """Create a connection."""
    try:
        connection = connections.create(name, migrating=migrate, template_name=template,
                                        configuration=_pairs(config))
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    kind = "migrating connection" if connection.migrating else "connection"
    click.echo(f"created {kind} {connection.name} ({connection.id})")


@bp.cli.command("scripts")
@click.argument("name")
@click.option("--login", "login_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file defining login(email, password, configuration).")
@click.option("--get-user", "get_user_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file defining get_user(email, configuration).")
@click.option("--count-users", "count_users_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file defining count_users(configuration) (optional; '' removes it).")
@click.option("--export-users", "export_users_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file defining export_users(cursor, configuration) (optional; '' removes it).")
def scripts(name: str, login_file: Path | None, get_user_file: Path | None, count_users_file: Path | None,
            export_users_file: Path | None) -> None:
    """Set a migrating connection's scripts from files (each checked before it is stored)."""
    files = {"login": login_file, "get_user": get_user_file, "count_users": count_users_file,
             "export_users": export_users_file}
    if all(file is None for file in files.values()):
        raise click.UsageError("give at least one of --login, --get-user, --count-users, --export-users")
    sources: dict[str, str] = {}
    for function, file in files.items():
        if file is None:
            continue
        if function in connections.OPTIONAL and str(file) in ("", "."):
            sources[function] = ""
            continue
        try:
            sources[function] = file.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise click.BadParameter(f"{file}: {e}", param_hint=f"--{function.replace('_', '-')}") from None
    connection = _find(name)
    try:
        connections.configure(
            connection, login=sources.get("login"), get_user=sources.get("get_user"),
            count_users=sources.get("count_users"), export_users=sources.get("export_users"))
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"scripts of {connection.name} updated")


def _lines(script: str | None) -> str:
    return f"{len((script or '').splitlines())} lines"


def _describe(connection: Connection) -> dict[str, Any]:
    clients = db.session.scalars(db.select(Client.name).where(Client.connection_id == connection.id)).all()
    return {
        "name": connection.name, "id": connection.id, "migrating": connection.migrating,
        "disconnected_at": connection.disconnected_at.isoformat() if connection.disconnected_at else None,
        "configuration": connection.masked_configuration(),
        "scripts": {function: _lines(getattr(connection, f"{function}_script"))
                    for function in connections.FUNCTIONS
                    if connection.migrating and getattr(connection, f"{function}_script")},
        "clients": list(clients),
    }


@bp.cli.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str, as_json: bool) -> None:
    """Show a connection; configuration values are masked."""
    data = _describe(_find(name))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        click.echo(f"{key + ':':<17} {value if not isinstance(value, dict | list) else json.dumps(value)}")


@bp.cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List connections."""
    rows = [_describe(c) for c in connections.all_connections()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        kind = "migrating" if row["migrating"] else "native" if row["id"] == NATIVE_ID else "database"
        gone = ", disconnected" if row["disconnected_at"] else ""
        click.echo(f"{row['name']}  ({kind}{gone})  clients: {', '.join(row['clients']) or 'none'}")


@bp.cli.command("test")
@click.argument("name")
@click.option("--email", required=True, help="The email to look up in the legacy store.")
@click.option("--password", help="Also run login; give '' to be prompted for it.")
def test(name: str, email: str, password: str | None) -> None:
    """Run get_user (and, with a password, login) and show every difference between the profiles."""
    connection = _find(name)
    if not connection.migrating:
        raise click.ClickException(f"{connection.name} is not a migrating connection")
    if password == "":  # `--password ''`: asked for, so that it stays out of shell history
        password = click.prompt("Password", hide_input=True)
    result = trial.run(connection, email, password)
    for answer in result.answers:
        if answer.output:
            click.echo(f"{answer.function} printed:\n{answer.output.rstrip()}")
        if answer.wrong_password:
            click.echo(f"{answer.function}: wrong email or password")
        if answer.failure:
            raise click.ClickException(f"{answer.function} failed: {answer.failure}")
    for answer in result.answers:
        if answer.value is None:
            click.echo(f"{answer.function}: no user")
            continue
        if answer.refused:
            refused = f"{answer.function} returned a profile we would refuse: {answer.refused}"
            raise click.ClickException(refused)
        click.echo(f"{answer.function}: {json.dumps(answer.value, indent=2, sort_keys=True, default=str)}")
    if result.rows:
        if result.differences:
            click.echo("the profiles differ (users would be changed or duplicated):")
            for line in result.differences:
                click.echo(f"  {line}")
            raise SystemExit(1)
        click.echo("the profiles agree")


@bp.cli.command("disconnect")
@click.argument("name")
def disconnect(name: str) -> None:
    """Stop using the legacy store: the scripts become no-ops, import stays on."""
    connection = _find(name)
    try:
        connections.disconnect(connection)
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{connection.name} disconnected: users not moved over can no longer sign in through it")


@bp.cli.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete its users too (with their sessions, grants and tokens).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, force: bool, yes: bool) -> None:
    """Delete a connection: never the native one or one clients use; one with users only with --force."""
    connection = _find(name)
    if connection.id == NATIVE_ID:
        raise click.ClickException(f"{connection.name} is the native connection and cannot be deleted")
    clients = db.session.execute(select(Client.id, Client.name).where(Client.connection_id == connection.id)
                                 .order_by(Client.created_at)).all()
    if clients:
        named = ", ".join(f"{client_name} ({client_id})" for client_id, client_name in clients)
        raise click.ClickException(
            f"{connection.name} is used by {named}: move them to another connection first "
            "(`idp clients update --connection NAME -- CLIENT_ID`)")
    users = db.session.scalar(select(func.count()).where(User.connection_id == connection.id))
    if users and not force:
        raise click.ClickException(
            f"{connection.name} has {users} user{'s' if users != 1 else ''}: --force deletes them with it "
            "(`idp users list --connection NAME` lists them)")
    if not yes:
        also = f" and its {users} user{'s' if users != 1 else ''}" if users else ""
        click.confirm(f"Delete the connection {connection.name}{also}? This cannot be undone.", abort=True)
    try:
        deleted = connections.delete(connection, with_users=force)
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    also = f" with {deleted} user{'s' if deleted != 1 else ''}" if deleted else ""
    click.echo(f"deleted connection {name}{also}")


@status_bp.cli.command("status")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def migration_status(name: str | None, as_json: bool) -> None:
    """Show users migrated per connection and per way, the last migration, recent script failures."""
    chosen = [_find(name)] if name else [c for c in connections.all_connections() if c.migrating]
    reports = [status(c) for c in chosen]
    if as_json:
        click.echo(json.dumps(reports[0] if name else reports, indent=2))
        return
    for report in reports:
        ways = ", ".join(f"{k}: {v}" for k, v in report["by_source"].items()) or "none yet"
        click.echo(f"{report['connection']}: {report['migrated']} migrated ({ways}); "
                   f"last {report['last_migrated_at'] or 'never'}"
                   + (f"; disconnected {report['disconnected_at']}" if report["disconnected_at"] else ""))
        if report.get("legacy_total") is not None:
            click.echo(f"  {report['remaining']:,} of {report['legacy_total']:,} legacy users left")
        elif "count_error" in report:
            click.echo(f"  the legacy store could not count its users: {report['count_error']}")
        for failure in report["recent_failures"]:
            click.echo(f"  {failure['at']}  {failure['type']}  {failure['email'] or ''}  {failure['detail']}")


@status_bp.cli.command("finish")
@click.argument("name")
def finish(name: str) -> None:
    """Import every legacy user not moved over yet, with their password hashes (resumes if interrupted)."""
    connection = _find(name)
    try:
        total = imports.legacy_total(connection)
        remaining = None if total is None else max(0, total - imports.moved(connection))
        with click.progressbar(length=remaining or 0, label="importing", file=sys.stderr,
                               show_pos=True) as bar:
            # click draws the bar on a terminal only; elsewhere it prints nothing.
            summary = imports.finish(connection, progress=bar.update if remaining else lambda n: None)
    except LegacyUnavailable as e:
        raise click.ClickException(f"{e} (what was imported so far stays; run it again to go on)") from None
    click.echo(f"{connection.name}: {summary.inserted:,} imported, {summary.skipped:,} already in idp, "
               f"{summary.failed:,} refused, {summary.total:,} in all")
    for error in summary.errors:
        click.echo(f"  refused {error}")
    if summary.failed > len(summary.errors):
        click.echo(f"  … and {summary.failed - len(summary.errors):,} more (`idp migration status {name}`)")
