"""`idp apis …` commands: the APIs clients get access tokens for (Auth0's resource servers)."""

import json
from typing import Any

import click
from flask import Blueprint

from idp.oauth import apis
from idp.oauth.models import Api

bp = Blueprint("apis_cli", __name__, cli_group="apis")
bp.cli.help = "APIs (resource servers) and their scopes: create, list, delete."


def _row(api: Api) -> dict[str, Any]:
    return {"identifier": api.identifier, "name": api.name, "scopes": api.scopes,
            "built_in": api.identifier == apis.management_identifier()}


@bp.cli.command("create")
@click.option("--identifier", required=True, help="The API's URL: the `audience` clients ask tokens for.")
@click.option("--name", help="A name for people (default: the identifier).")
@click.option("--scope", "scopes", multiple=True, metavar="VALUE[=DESCRIPTION]",
              help="A scope (permission) of the API (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create(identifier: str, name: str | None, scopes: tuple[str, ...], as_json: bool) -> None:
    """Register an API with its scopes."""
    try:
        api = apis.create_api(identifier, name or identifier, [apis.parse_scope(s) for s in scopes])
    except apis.InvalidApi as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(_row(api)))
        return
    click.echo(f"created API {api.identifier} ({' '.join(api.scope_values) or 'no scopes'})")


@bp.cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List the APIs with their scopes, the built-in management API first."""
    rows = [_row(api) for api in apis.list_apis()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        built_in = ", built in" if row["built_in"] else ""
        click.echo(f"{row['identifier']}  {row['name']}  ({len(row['scopes'])} scopes{built_in})")
        if not row["built_in"]:
            for scope in row["scopes"]:
                click.echo(f"    {scope['value']}  {scope['description']}".rstrip())


@bp.cli.command("delete")
@click.argument("identifier")
def delete(identifier: str) -> None:
    """Delete an API and every client grant for it."""
    try:
        deleted = apis.delete_api(identifier)
    except apis.InvalidApi as e:
        raise click.ClickException(str(e)) from None
    if not deleted:
        raise click.ClickException(f"no API {identifier}")
    click.echo(f"deleted API {identifier}")
