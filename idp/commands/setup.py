"""`idp init`, `idp serve` and `idp run`."""

import multiprocessing
import os
import secrets
from pathlib import Path

import click
from flask import Blueprint, Flask, current_app
from flask_migrate import upgrade
from werkzeug.serving import WSGIRequestHandler, run_simple

from idp import SCHEMA, create_app, production
from idp.admin.auth import dashboard_client
from idp.connections.registry import InvalidConnection
from idp.errors import ConfigurationError
from idp.keys import kek
from idp.keys.store import ensure_keys

bp = Blueprint("setup", __name__, cli_group=None)
FILE = click.Path(exists=True, dir_okay=False)


@bp.cli.command("init")
def init() -> None:
    """Prepare this deployment; safe to run again (secret, schema, keys)."""
    config_file = Path(current_app.instance_path) / "config.py"
    if not config_file.exists() and "IDP_SECRET_KEY" not in os.environ:
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(f'SECRET_KEY = "{secrets.token_hex(32)}"\n')
        config_file.chmod(0o600)
        click.echo(f"wrote a new secret key to {config_file}")
    if kek.create_kek():
        click.echo(f"wrote a new key-encryption key to {kek.kek_path()}")
    upgrade(directory=SCHEMA)
    ensure_keys()
    click.echo("database schema up to date; signing keys ready")
    try:
        client = dashboard_client()
    except InvalidConnection:  # a connection made after init: the dashboard registers its client then
        click.echo(f"admin dashboard: {current_app.config['ISSUER']}/admin, once ADMIN_CONNECTION "
                   f"({current_app.config['ADMIN_CONNECTION']}) exists")
        return
    click.echo(f"admin dashboard: {current_app.config['ISSUER']}/admin (client {client.id}); "
               "`idp admins add EMAIL` lets a user in")


def _serving_app() -> Flask:
    """Build the app a server serves, or say what is wrong with the configuration."""
    try:
        return create_app()
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None


class PathOnlyLog(WSGIRequestHandler):
    """Log requests without their query strings, which may carry tokens (id_token_hint)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s %s" %s %s', self.command, self.path.split("?", 1)[0], code, size)


@bp.cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def run(host: str, port: int) -> None:
    """Serve the provider with the development server (`idp serve` in production)."""
    app = _serving_app()
    click.echo(f"idp {app.config['ISSUER']} listening on http://{host}:{port}")
    run_simple(host, port, app, threaded=True, request_handler=PathOnlyLog)


@bp.cli.command("serve")
@click.option("--bind", "binds", multiple=True, default=["127.0.0.1:8000"], show_default=True,
              envvar="IDP_BIND", help="HOST:PORT, unix:PATH or fd://N; repeatable.")
@click.option("--workers", default=multiprocessing.cpu_count() * 2 + 1, show_default="2 × cores + 1",
              envvar="IDP_WORKERS", help="Worker processes.")
@click.option("--certfile", type=FILE, help="Serve https with this certificate (PEM).")
@click.option("--keyfile", type=FILE, help="The certificate's private key (PEM).")
def serve(binds: list[str], workers: int, certfile: str | None, keyfile: str | None) -> None:
    """Serve the provider in production (gunicorn, one app per worker)."""
    if bool(certfile) != bool(keyfile):
        raise click.UsageError("--certfile and --keyfile go together")
    app = _serving_app()  # fails here, once, on a configuration no worker could serve
    click.echo(f"idp {app.config['ISSUER']} serving on {', '.join(binds)} with {workers} workers")
    production.Server(create_app, production.settings(list(binds), workers, certfile, keyfile)).run()
