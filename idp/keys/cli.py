"""`idp keys …` commands."""

import click
from flask import Blueprint

from idp.keys import store

bp = Blueprint("keys_cli", __name__, cli_group="keys")
bp.cli.help = "Signing keys: list, rotate, revoke."


@bp.cli.command("list")
def list_keys() -> None:
    """List signing keys and their states."""
    for key in store.all_keys():
        when = key.activated_at or key.created_at
        click.echo(f"{key.kid}  {key.state:<8}  since {when:%Y-%m-%d %H:%M:%S}Z")


@bp.cli.command("rotate")
def rotate() -> None:
    """Rotate now: next becomes current, current becomes previous, a new next is made."""
    kid = store.rotate(force=True)
    if kid is None:
        raise click.ClickException("another instance rotated at the same moment; run `idp keys list`")
    click.echo(f"rotated: {kid} now signs")


@bp.cli.command("revoke")
@click.argument("kid")
def revoke(kid: str) -> None:
    """Remove a compromised key from the JWKS at once."""
    try:
        store.revoke(kid)
    except store.KeyNotFound:
        raise click.ClickException(f"no published key with kid {kid}") from None
    click.echo(f"revoked: {kid}")
