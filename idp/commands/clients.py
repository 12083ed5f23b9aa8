"""`idp clients …` commands."""

import json
from typing import Any

import click
from flask import Blueprint

from idp.connections import registry as connections
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.oauth import apis, clients
from idp.oauth.models import Client

bp = Blueprint("clients_cli", __name__, cli_group="clients")
bp.cli.help = "Relying parties and machine clients: create, list, update, delete, grant APIs."


@bp.cli.command("create")
@click.option("--name", required=True, help="Shown to users on the login and consent pages.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Exact callback URL (repeatable); none for a machine client.")
@click.option("--public", is_flag=True, help="No secret: a browser or native app using PKCE.")
@click.option("--first-party", is_flag=True, help="Your own app: no consent page.")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True, help="Repeatable.")
@click.option("--audience", "audiences", multiple=True, help="An API it may get tokens for.")
@click.option("--connection", "connection_name", help="The database connection its users sign in through.")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE",
              help="client_metadata, which post-login actions read (repeatable; at most 10 keys).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create(name: str, redirect_uris: tuple[str, ...], public: bool, first_party: bool,
           logout_uris: tuple[str, ...], audiences: tuple[str, ...], connection_name: str | None,
           metadata: tuple[str, ...], as_json: bool) -> None:
    """Register a relying party (or, without redirect URIs, a machine client); its secret is shown once."""
    try:
        connection_id = connections.find(connection_name).id if connection_name else NATIVE_ID
        client, secret = clients.create_client(
            name, list(redirect_uris), public=public, first_party=first_party,
            post_logout_redirect_uris=list(logout_uris), audiences=list(audiences),
            connection_id=connection_id, client_metadata=_pairs(metadata),
        )
    except (clients.InvalidClientMetadata, connections.InvalidConnection) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        data: dict[str, Any] = {"client_id": client.id, "name": client.name,
                                "redirect_uris": client.redirect_uris,
                                "client_metadata": client.client_metadata}
        if secret:
            data["client_secret"] = secret
        click.echo(json.dumps(data))
        return
    click.echo(f"client_id:     {client.id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        click.echo("Store the secret now: it is kept only as a digest and cannot be shown again.")
    if not client.redirect_uris:
        click.echo(f"A machine client: let it call an API with `idp clients grant {client.id} --api …`.")


def _row(client: Client) -> dict[str, Any]:
    """Return a client's settings, never its secret."""
    return {"client_id": client.id, "name": client.name, "public": client.public,
            "first_party": client.first_party, "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris, "audiences": client.audiences,
            "connection_id": client.connection_id, "client_metadata": client.client_metadata}


@bp.cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List registered clients (never their secrets)."""
    rows = [_row(c) for c in clients.list_clients()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        kind = "public" if row["public"] else "confidential"
        party = ", first-party" if row["first_party"] else ""
        click.echo(f"{row['client_id']}  {row['name']}  ({kind}{party})  {' '.join(row['redirect_uris'])}")


def _replacement(values: tuple[str, ...]) -> list[str] | None:
    """Return a list option's new list: None if not given, empty for a single ''."""
    if not values:
        return None
    return [] if values == ("",) else list(values)


def _pairs(values: tuple[str, ...], current: dict[str, str] | None = None) -> dict[str, str]:
    """Return metadata with the KEY=VALUE pairs of --metadata options merged in; KEY= removes KEY."""
    pairs = dict(current or {})
    for value in values:
        key, equals, text = value.partition("=")
        if not equals:
            raise clients.InvalidClientMetadata(f"--metadata takes KEY=VALUE, not {value!r}")
        pairs[key] = text
    return {key: text for key, text in pairs.items() if text}


def _merged(client_id: str, values: tuple[str, ...]) -> dict[str, str] | None:
    """Return a client's metadata with the --metadata options merged in (KEY= removes KEY), or None."""
    if not values:
        return None
    client = db.session.get(Client, client_id) if len(client_id) <= 64 else None
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    return _pairs(values, client.client_metadata)


@bp.cli.command("update")
@click.argument("client_id")
@click.option("--name", help="Shown to users on the login and consent pages.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Exact callback URL (repeatable; replaces the list).")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True,
              help="Repeatable; replaces the list ('' empties it).")
@click.option("--first-party/--third-party", "first_party", default=None,
              help="Your own app (no consent page), or another's (users consent).")
@click.option("--audience", "audiences", multiple=True,
              help="An API it may get tokens for (repeatable; replaces the list, '' empties it).")
@click.option("--connection", "connection_name", help="The database connection its users sign in through.")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE",
              help="client_metadata to set (repeatable; merged into the old, KEY= removes KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def update(client_id: str, name: str | None, redirect_uris: tuple[str, ...], logout_uris: tuple[str, ...],
           first_party: bool | None, audiences: tuple[str, ...], connection_name: str | None,
           metadata: tuple[str, ...], as_json: bool) -> None:
    """Change a client's settings; a list option replaces the list (options first, then `-- CLIENT_ID`)."""
    try:
        connection_id = connections.find(connection_name).id if connection_name else None
        client = clients.update_client(
            client_id, name=name, redirect_uris=_replacement(redirect_uris),
            post_logout_redirect_uris=_replacement(logout_uris), first_party=first_party,
            audiences=_replacement(audiences), connection_id=connection_id,
            client_metadata=_merged(client_id, metadata),
        )
    except (clients.InvalidClientMetadata, connections.InvalidConnection) as e:
        raise click.ClickException(str(e)) from None
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    row = _row(client)
    if as_json:
        click.echo(json.dumps(row))
        return
    click.echo(f"updated {client.id}")
    for key, value in row.items():
        if isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, list):
            value = " ".join(value)
        if key != "client_id":
            click.echo(f"  {key + ':':<26} {value}")


@bp.cli.command("set-connection")
@click.argument("client_id")
@click.argument("connection_name")
def set_connection(client_id: str, connection_name: str) -> None:
    """Make a client sign its users in through another database connection."""
    try:
        connection = connections.find(connection_name)
    except connections.InvalidConnection as e:
        raise click.ClickException(str(e)) from None
    if not clients.set_connection(client_id, connection.id):
        raise click.ClickException(f"no client {client_id}")
    click.echo(f"{client_id} now signs users in through {connection.name}")


@bp.cli.command("delete")
@click.argument("client_id")
def delete(client_id: str) -> None:
    """Delete a client and every token issued to it."""
    if not clients.delete_client(client_id):
        raise click.ClickException(f"no client {client_id}")
    click.echo(f"deleted {client_id}")


@bp.cli.command("grant")
@click.argument("client_id")
@click.option("--api", "identifier", required=True, help="The API's identifier.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="A scope of the API (repeatable); granting again replaces the scopes.")
def grant(client_id: str, identifier: str, scopes: tuple[str, ...]) -> None:
    """Let a confidential client get client-credentials tokens for an API, with these of its scopes."""
    try:
        row = apis.grant(client_id, identifier, list(scopes))
    except apis.InvalidApi as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"granted {client_id} {identifier}: {' '.join(row.scopes)}")


@bp.cli.command("revoke-grant")
@click.argument("client_id")
@click.option("--api", "identifier", required=True, help="The API's identifier.")
def revoke_grant(client_id: str, identifier: str) -> None:
    """Withdraw a client's grant for an API (tokens already issued last until they expire)."""
    if not apis.revoke_grant(client_id, identifier):
        raise click.ClickException(f"{client_id} has no grant for {identifier}")
    click.echo(f"revoked the grant of {client_id} for {identifier}")
