"""idp: an OpenID Connect provider with a migrating database connection."""

import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the package stays light: sandboxed scripts import idp.migration.hashes
    from flask import Flask

MIGRATIONS = str(Path(__file__).parent / "migrations")


class ConfigurationError(RuntimeError):
    """The configuration cannot run a provider; the message says how to fix it."""


def _check_issuer(issuer: str) -> str:
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or not parts.hostname:
        raise ConfigurationError(f"IDP_ISSUER must be a URL without query or fragment: {issuer!r}")
    if parts.scheme != "https":
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if parts.scheme != "http" or not loopback:
            raise ConfigurationError("IDP_ISSUER must use https (plain http only on loopback)")
    return issuer.rstrip("/")


def create_app(config: dict[str, Any] | None = None, *, serving: bool = True) -> "Flask":
    """Build the application: config, extensions, blueprints and CLI commands.

    `serving=False` is for CLI commands that run before `idp init` has made the secrets.
    """
    from flask import Flask

    instance = (config or {}).get("INSTANCE_PATH") or os.environ.get("IDP_INSTANCE_PATH")
    app = Flask(__name__, instance_path=os.path.abspath(instance) if instance else None,
                instance_relative_config=True)
    app.config.from_object("idp.config")
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("IDP")
    app.config.update(config or {})

    app.config["ISSUER"] = _check_issuer(app.config["ISSUER"])
    app.config["SESSION_COOKIE_SECURE"] = app.config["ISSUER"].startswith("https://")
    app.config["PERMANENT_SESSION_LIFETIME"] = app.config["SESSION_LIFETIME"]
    url = app.config["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path) / 'idp.sqlite3'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    if not app.config["SECRET_KEY"]:
        if serving:
            raise ConfigurationError(
                "no secret key: run `idp init` (writes instance/config.py) or set IDP_SECRET_KEY"
            )
        app.config["SECRET_KEY"] = os.urandom(32)  # the CLI signs nothing that outlives it

    from idp.migration.jail import settings_of

    settings_of(app.config, instance_path=app.instance_path)  # a bad SCRIPT_* value stops start-up

    from idp import counters, mail, web
    from idp.accounts import cli as accounts_cli
    from idp.accounts import views as accounts_views
    from idp.db import db, migrate
    from idp.keys import cli as keys_cli
    from idp.keys import kek, store
    from idp.keys import views as keys_views
    from idp.migration import cli as migration_cli
    from idp.oauth import cli as oauth_cli
    from idp.oauth import server
    from idp.oauth import views as oauth_views
    from idp.setup import bp as setup_cli

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS)
    counters.init_app(app)
    web.init_app(app)
    store.init_app(app)
    mail.init_app(app)
    server.init_app(app)
    for bp in (keys_views.bp, oauth_views.bp, accounts_views.bp,
               keys_cli.bp, oauth_cli.bp, accounts_cli.bp, migration_cli.bp, migration_cli.status_bp,
               setup_cli):
        app.register_blueprint(bp)

    if serving:
        with app.app_context():
            kek.check()
    return app
