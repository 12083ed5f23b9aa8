"""`idp actions …` commands: post-login actions, run in order after every sign-in."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Blueprint

from idp.actions import registry, runner
from idp.actions.models import Action
from idp.actions.registry import InvalidAction
from idp.db import db
from idp.oauth.models import Client


@contextmanager
def _refusals() -> Iterator[None]:
    """Say what the registry refused as the command's error, without a traceback."""
    try:
        yield
    except InvalidAction as e:
        raise click.ClickException(str(e)) from None


bp = Blueprint("actions_cli", __name__, cli_group="actions")
bp.cli.help = "Post-login actions: Python run in the script sandbox after every sign-in, in order."
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
    with _refusals():
        action = registry.create(name, _read(file), _secrets(secrets))
    click.echo(f"created {action.name} ({action.id}), run at position {action.position}")


@bp.cli.command("update")
@click.argument("name")
@FILE
@SECRET
def update(name: str, file: Path | None, secrets: tuple[str, ...]) -> None:
    """Replace an action's code, or add, change or remove its secrets."""
    with _refusals():
        action = registry.update(name, _read(file) if file else None, _secrets(secrets))
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
    with _refusals():
        for action in registry.order(list(names)):
            click.echo(_line(action))


@bp.cli.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Run an action again after sign-ins."""
    with _refusals():
        registry.set_enabled(name, True)
    click.echo(f"{name} is enabled")


@bp.cli.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Stop running an action, keeping it and its place."""
    with _refusals():
        registry.set_enabled(name, False)
    click.echo(f"{name} is disabled")


@bp.cli.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete an action."""
    with _refusals():
        registry.delete(registry.find(name))
    click.echo(f"deleted {name}")


@bp.cli.command("test")
@click.argument("name")
@click.option("--email", required=True, help="The user to run it for (in any connection).")
@click.option("--client", "client_id", default=None, help="The client signed in to (default: a test client).")
def test(name: str, email: str, client_id: str | None) -> None:
    """Run one action (even disabled) against a user and print what it would do, applying nothing."""
    with _refusals():
        action = registry.find(name)
    user = runner.user_for_test(email)
    if user is None:
        raise click.ClickException(f"no user {email} in idp's database")
    client = None
    if client_id is not None:
        client = db.session.get(Client, client_id) if len(client_id) <= 64 else None
        if client is None:
            raise click.ClickException(f"no client {client_id}")
    transaction = runner.sign_in_for_test(client)
    try:
        commands = runner.dry_run(action, user, transaction)
    except runner.ActionFailed as e:
        click.echo(e.output, err=True, nl=False)
        raise click.ClickException(str(e)) from None
    if not commands:
        click.echo("no commands: the sign-in would go on unchanged")
    for kind, *args in commands:
        click.echo(f"{kind}  " + "  ".join(json.dumps(a) for a in args))
