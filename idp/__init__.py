"""idp: an OpenID Connect provider with a migrating database connection."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from idp.errors import ConfigurationError

if TYPE_CHECKING:  # the package stays light: sandboxed scripts import idp.migration.hashes
    from flask import Flask

SCHEMA = str(Path(__file__).parent / "schema")  # the Alembic migrations of our own database


def _check_issuer(issuer: str) -> str:
    from idp.edge import is_loopback

    parts = urlsplit(issuer)
    if parts.query or parts.fragment or not parts.hostname:
        raise ConfigurationError(f"IDP_ISSUER must be a URL without query or fragment: {issuer!r}")
    if parts.scheme != "https" and (parts.scheme != "http" or not is_loopback(parts.hostname)):
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
    timeout = app.config["ACTIONS_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigurationError("ACTIONS_TIMEOUT must be a positive number of seconds")

    from idp import counters, mail, web
    from idp.admin import actions as admin_actions  # noqa: F401  (registers its views on the admin blueprint)
    from idp.admin import clients as admin_clients  # noqa: F401  (registers its views on the admin blueprint)
    from idp.admin import connections as admin_connections  # noqa: F401  (registers its views on the admin blueprint)
    from idp.admin import keys as admin_keys  # noqa: F401  (registers its views on the admin blueprint)
    from idp.admin import logs as admin_logs  # noqa: F401  (registers its views on the admin blueprint)
    from idp.admin import migration as admin_migration  # noqa: F401  (registers its views on the admin blueprint)
    from idp.admin import users as admin_users  # noqa: F401  (registers its views on the admin blueprint)
    from idp.admin import views as admin_views
    from idp.commands import actions as actions_cli
    from idp.commands import admins as admins_cli
    from idp.commands import apis as apis_cli
    from idp.commands import clients as clients_cli
    from idp.commands import connections as connections_cli
    from idp.commands import keys as keys_cli
    from idp.commands import setup as setup_cli
    from idp.commands import users as users_cli
    from idp.connections import jobs
    from idp.db import db, migrate
    from idp.keys import kek, store
    from idp.keys import views as keys_views
    from idp.management import api as management_api
    from idp.oauth import server
    from idp.oauth import views as oauth_views
    from idp.pages import views as pages_views

    db.init_app(app)
    migrate.init_app(app, db, directory=SCHEMA)
    counters.init_app(app)
    web.init_app(app)
    store.init_app(app)
    mail.init_app(app)
    jobs.init_app(app)
    server.init_app(app)
    management_api.init_app(app)
    for bp in (keys_views.bp, oauth_views.bp, pages_views.bp, admin_views.bp,
               keys_cli.bp, clients_cli.bp, apis_cli.bp, users_cli.bp, admins_cli.bp, connections_cli.bp,
               connections_cli.status_bp, actions_cli.bp, setup_cli.bp):
        app.register_blueprint(bp)

    if serving:
        with app.app_context():
            kek.check()
    return app
