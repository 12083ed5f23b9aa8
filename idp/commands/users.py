"""`idp users …` commands."""

import click
from email_validator import EmailNotValidError, validate_email
from flask import Blueprint

from idp.connections import stores
from idp.connections.legacy import LegacyUnavailable
from idp.connections.models import NATIVE_NAME
from idp.connections.registry import InvalidConnection
from idp.users.accounts import UserExists
from idp.users.passwords import policy_error

bp = Blueprint("users_cli", __name__, cli_group="users")
bp.cli.help = "Users of a database connection (the native one unless --connection names another)."


@bp.cli.command("create")
@click.option("--email", required=True)
@click.option("--password", help="Prompted for when not given (keeps it out of shell history).")
@click.option("--name")
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
