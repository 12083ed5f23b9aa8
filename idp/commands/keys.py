"""`idp keys …` commands."""

import math
from datetime import datetime

import click
from flask import Blueprint, current_app

from idp.db import utcnow
from idp.keys import store

bp = Blueprint("keys_cli", __name__, cli_group="keys")
bp.cli.help = "Signing keys: list, rotate, revoke."


@bp.cli.command("list")
def list_keys() -> None:
    """List signing keys and their states."""
    for key in store.all_keys():
        when = key.activated_at or key.created_at
        click.echo(f"{key.kid}  {key.state:<8}  since {when:%Y-%m-%d %H:%M:%S}Z")


def _seconds_until(moment: datetime) -> int:
    """Return the whole seconds from now until a moment, rounded up."""
    return max(0, math.ceil((moment - utcnow()).total_seconds()))


@bp.cli.command("rotate")
@click.option("--force", is_flag=True, help="Rotate even if cached JWKS may lack the next key.")
def rotate(force: bool) -> None:
    """Rotate: next becomes current, current previous; refused while next is younger than JWKS_MAX_AGE."""
    max_age = current_app.config["JWKS_MAX_AGE"]
    lag = int(store.cache_window().total_seconds()) - max_age  # until every process serves a new key
    try:
        key = store.rotate(force=force)
    except store.NextKeyTooNew as early:
        raise click.ClickException(
            f"not rotating: the next key {early.kid} has been published for less than the JWKS cache "
            f"lifetime (JWKS_MAX_AGE={max_age}s, plus {lag}s for every process to serve it), so relying "
            "parties may still hold a JWKS without it. "
            f"It becomes safe to sign in {_seconds_until(early.safe_at)}s, at "
            f"{early.safe_at:%Y-%m-%d %H:%M:%S}Z; `idp keys rotate --force` rotates anyway."
        ) from None
    if key is None:
        raise click.ClickException("another instance rotated at the same moment; run `idp keys list`")
    safe_at = store.unsafe_until(key)
    if safe_at is not None:
        click.echo(
            f"warning: {key.kid} was published less than JWKS_MAX_AGE={max_age}s ago. Tokens it signs fail "
            f"verification at relying parties whose cached JWKS predates its publication, until their cache "
            f"expires or they refetch the JWKS on an unknown kid: for up to {_seconds_until(safe_at)}s more, "
            f"until {safe_at:%Y-%m-%d %H:%M:%S}Z.",
            err=True,
        )
    click.echo(f"rotated: {key.kid} now signs")


@bp.cli.command("revoke")
@click.argument("kid")
def revoke(kid: str) -> None:
    """Remove a compromised key from the JWKS at once."""
    try:
        store.revoke(kid)
    except store.KeyNotFound:
        raise click.ClickException(f"no published key with kid {kid}") from None
    click.echo(f"revoked: {kid}")
