"""`idp actions …` commands: post-login actions, run in order after every sign-in."""

import json
from pathlib import Path

import click
from flask import Blueprint
from sqlalchemy import select

from idp.actions import registry, runner
from idp.actions.models import Action
from idp.actions.registry import InvalidAction
from idp.db import db
from idp.oauth.models import Client
from idp.users.models import User, normalize

bp = Blueprint("actions_cli", __name__, cli_group="actions")
bp.cli.help = "Post-login actions: Python run in the script sandbox after every sign-in, in order."
TEST_CLIENT = runner.TEST_CLIENT  # who `idp actions test` signs in to when --client is not given
FILE = click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                    help="Python source defining on_execute_post_login(event, api).")
SECRET = click.option("--secret", "secrets", multiple=True, metavar="KEY=VALUE",
                      help="A secret the action reads as event.secrets.KEY (repeatable; KEY= removes one).")


def _secrets(pairs: tuple[str, ...]) -> dict[str, str]:
    """Parse KEY=VALUE pairs."""
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter("write each secret as KEY=VALUE", param_hint="--secret")
        found[key] = value
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"cannot read {path}: {e}") from None


def _line(action: Action) -> str:
    state = "enabled " if action.enabled else "disabled"
    keys = ", ".join(sorted(action.secrets)) or "-"
    return f"{action.position:>3}  {state}  {action.name}  {action.id}  secrets: {keys}"


@bp.cli.command("create")
@click.option("--name", required=True, help="A unique name.")
@FILE
@SECRET
def create(name: str, file: Path | None, secrets: tuple[str, ...]) -> None:
    """Add an action; it is enabled and runs after the others."""
    if file is None:
        raise click.UsageError("--file is required")
    try:
        action = registry.create(name, _read(file), _secrets(secrets))
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"created {action.name} ({action.id}), run at position {action.position}")


@bp.cli.command("update")
@click.argument("name")
@FILE
@SECRET
def update(name: str, file: Path | None, secrets: tuple[str, ...]) -> None:
    """Replace an action's code, or add, change or remove its secrets."""
    try:
        action = registry.update(name, _read(file) if file else None, _secrets(secrets))
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"updated {action.name}")


@bp.cli.command("list")
def list_() -> None:
    """List the actions in run order (secrets by name only)."""
    for action in registry.in_order():
        click.echo(_line(action))


@bp.cli.command("order")
@click.argument("names", nargs=-1, required=True)
def order(names: tuple[str, ...]) -> None:
    """Run the named actions first, in this order; the others follow as they were."""
    try:
        for action in registry.order(list(names)):
            click.echo(_line(action))
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None


@bp.cli.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Run an action again after sign-ins."""
    try:
        registry.set_enabled(name, True)
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{name} is enabled")


@bp.cli.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Stop running an action, keeping it and its place."""
    try:
        registry.set_enabled(name, False)
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{name} is disabled")


@bp.cli.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete an action."""
    try:
        registry.delete(name)
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"deleted {name}")


@bp.cli.command("test")
@click.argument("name")
@click.option("--email", required=True, help="The user to run it for (in any connection).")
@click.option("--client", "client_id", default=None, help="The client signed in to (default: a test client).")
def test(name: str, email: str, client_id: str | None) -> None:
    """Run one action (even disabled) against a user and print what it would do, applying nothing."""
    try:
        action = registry.find(name)
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None
    user = db.session.scalar(select(User).where(User.email_normalized == normalize(email)).limit(1))
    if user is None:
        raise click.ClickException(f"no user {email} in idp's database")
    who = TEST_CLIENT
    if client_id is not None:
        client = db.session.get(Client, client_id) if len(client_id) <= 64 else None
        if client is None:
            raise click.ClickException(f"no client {client_id}")
        who = (client.id, client.name)
    transaction = runner.Transaction(*who, protocol=runner.CODE_FLOW, requested_scopes=["openid"])
    try:
        commands = runner.dry_run(action, user, transaction)
    except runner.ActionFailed as e:
        click.echo(e.output, err=True, nl=False)
        raise click.ClickException(str(e)) from None
    if not commands:
        click.echo("no commands: the sign-in would go on unchanged")
    for kind, *args in commands:
        click.echo(f"{kind}  " + "  ".join(json.dumps(a) for a in args))
