"""`idp users …` commands."""

import click
from email_validator import EmailNotValidError, validate_email
from flask import Blueprint

from idp.accounts.users import UserExists, create_user
from idp.migration import connections
from idp.migration.models import NATIVE_ID

bp = Blueprint("users_cli", __name__, cli_group="users")
bp.cli.help = "Users of the native database connection."

MIN_PASSWORD = 8


@bp.cli.command("create")
@click.option("--email", required=True)
@click.option("--password", help="Prompted for when not given (keeps it out of shell history).")
@click.option("--name")
@click.option("--verified", is_flag=True, help="Mark the email as verified.")
@click.option("--connection", "connection_name", help="The database connection (default: the native one).")
def create(email: str, password: str | None, name: str | None, verified: bool,
           connection_name: str | None) -> None:
    """Create a user in a database connection."""
    try:
        connection_id = connections.find(connection_name).id if connection_name else NATIVE_ID
    except connections.InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise click.ClickException(f"invalid email: {e}") from None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(f"the password must have at least {MIN_PASSWORD} characters")
    try:
        user = create_user(email, password, connection_id, name=name, email_verified=verified)
    except UserExists:
        raise click.ClickException(f"a user with email {email} already exists") from None
    click.echo(f"created user {user.id} <{user.email}>")
