"""`idp init` and `idp run`."""

import os
import secrets
from pathlib import Path

import click
from flask import Blueprint, current_app
from flask_migrate import upgrade
from werkzeug.serving import WSGIRequestHandler, run_simple

from idp import MIGRATIONS, create_app
from idp.keys import kek
from idp.keys.store import ensure_keys

bp = Blueprint("setup", __name__, cli_group=None)


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
    upgrade(directory=MIGRATIONS)
    ensure_keys()
    click.echo("database schema up to date; signing keys ready")


class PathOnlyLog(WSGIRequestHandler):
    """Log requests without their query strings, which may carry tokens (id_token_hint)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s %s" %s %s', self.command, self.path.split("?", 1)[0], code, size)


@bp.cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def run(host: str, port: int) -> None:
    """Serve the provider with the development server (use gunicorn in production)."""
    app = create_app()
    click.echo(f"idp {app.config['ISSUER']} listening on http://{host}:{port}")
    run_simple(host, port, app, threaded=True, request_handler=PathOnlyLog)
