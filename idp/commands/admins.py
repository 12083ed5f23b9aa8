"""`idp admins …` commands: who may sign in to the dashboard at <issuer>/admin."""

import click
from flask import Blueprint, current_app

from idp.admin import admins
from idp.admin.admins import COMMAND_LINE
from idp.connections import registry, stores
from idp.connections.registry import InvalidConnection
from idp.users.models import User

bp = Blueprint("admins_cli", __name__, cli_group="admins")
bp.cli.help = "Admins: the users who may sign in to the dashboard at <issuer>/admin."
CONNECTION = click.option("--connection", "connection_name", default=None,
                          help="The user's database connection (default: ADMIN_CONNECTION, whose users "
                               "sign in to the dashboard).")


def _user(email: str, connection_name: str | None) -> User:
    """Return the user with this email in idp's database, in the named connection."""
    connection_name = connection_name or current_app.config["ADMIN_CONNECTION"]
    try:
        store = stores.named(connection_name)
    except InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    user = store.find(email)  # idp's own database only: an admin is a user who is here
    if user is None:
        raise click.ClickException(f"no user {email} in {connection_name} (`idp users list` shows who is)")
    return user


@bp.cli.command("add")
@click.argument("email")
@CONNECTION
def add(email: str, connection_name: str) -> None:
    """Let a user sign in to the dashboard."""
    user = _user(email, connection_name)
    if admins.set_admin(user, True, COMMAND_LINE):
        click.echo(f"{user.email} ({user.id}) is now an admin")
    else:
        click.echo(f"{user.email} ({user.id}) was an admin already")
    if connection_name not in (None, current_app.config["ADMIN_CONNECTION"]):
        click.echo(f"note: the dashboard signs users in through {current_app.config['ADMIN_CONNECTION']} "
                   "(ADMIN_CONNECTION): this admin can sign in there only once it is theirs", err=True)


@bp.cli.command("remove")
@click.argument("email")
@CONNECTION
def remove(email: str, connection_name: str) -> None:
    """Stop a user from using the dashboard; their open dashboard session ends at its next request."""
    user = _user(email, connection_name)
    if admins.set_admin(user, False, COMMAND_LINE):
        click.echo(f"{user.email} ({user.id}) is no longer an admin")
    else:
        click.echo(f"{user.email} ({user.id}) was not an admin")


@bp.cli.command("list")
def list_() -> None:
    """List the admins: email, connection and user id."""
    names = {c.id: c.name for c in registry.all_connections()}
    for user in admins.list_admins():
        click.echo(f"{user.email}  {names.get(user.connection_id, user.connection_id)}  {user.id}")
