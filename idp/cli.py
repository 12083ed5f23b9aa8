"""The `idp` command: Flask's CLI around our application factory, trimmed to what operators use.

FlaskGroup would also offer Flask's app-discovery options (`--app`, `--env-file`, `--debug`), its
version, the commands other installed packages register (Flask-Limiter's `limiter`) and every
command of Flask-Migrate's `db` group, most of which are for developing idp, not running it. None of
those belong to the operator's command line: it has idp's own commands and `idp db upgrade`.
"""

import logging
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from flask_migrate import upgrade as apply_migrations
from sqlalchemy.exc import OperationalError, ProgrammingError

from idp import SCHEMA, create_app
from idp.errors import ConfigurationError

# FlaskGroup's own options, by parameter name; the factory below is the only way to load the app.
FLASK_OPTIONS = {"app", "env_file", "debug"}
DEV_SERVER = "run"  # `idp run`, whose terminal shows idp's log (mail links without SMTP_URL)


def _cli_app() -> Flask:
    """Build the app the commands run in (before `idp init`, without the secrets it makes)."""
    try:
        return create_app(serving=False)
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None


def _log_to_terminal() -> None:
    """Show idp's INFO log, as the development server shows its requests.

    Python logs only warnings unless told otherwise, so the links of mails written to the outbox
    (no SMTP_URL: `make demo`) would never be seen. A logging set-up of the host process wins.
    """
    logger = logging.getLogger("idp")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def _database_error(error: OperationalError | ProgrammingError) -> click.ClickException:
    # The driver's message only: SQLAlchemy's would add the statement and its parameters.
    reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else type(error).__name__
    return click.ClickException(
        f"database error: {reason} (is the database reachable, and has `idp init` been run?)")


class OperatorGroup(FlaskGroup):
    """A FlaskGroup with idp's commands only: no plugin commands, no app-discovery options."""

    def __init__(self, **extra: object) -> None:
        super().__init__(add_default_commands=False, add_version_option=False, load_dotenv=False,
                         set_debug_flag=False, **extra)  # type: ignore[arg-type]
        self.params = [p for p in self.params if p.name not in FLASK_OPTIONS]
        self.context_settings["auto_envvar_prefix"] = None  # no FLASK_* variable sets an option
        self._loaded_plugin_commands = True  # commands of other packages (flask.commands) stay out

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # FlaskGroup's would read --app and --env-file from FLASK_APP and .env for `--help`.
        return click.Group.parse_args(self, ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(self.commands)
        try:
            names.update(ctx.ensure_object(ScriptInfo).load_app().cli.list_commands(ctx))
        except click.ClickException as e:  # `--help` still lists the commands that need no app
            click.secho(f"Error: {e.format_message()}\n", err=True, fg="red")
        return sorted(names)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as e:
            raise _database_error(e) from None


@click.group("db", cls=click.Group)
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply idp's schema migrations (`idp init` does this too)."""
    apply_migrations(directory=SCHEMA)
    click.echo("database schema up to date")


@click.pass_context
def _operator(ctx: click.Context) -> None:
    if ctx.invoked_subcommand == DEV_SERVER:
        _log_to_terminal()


main = OperatorGroup(name="idp", create_app=_cli_app, help="The idp identity provider.", callback=_operator)
main.add_command(db_group)  # found before the app's `db`, Flask-Migrate's full group
click.version_option(None, "--version", package_name="idp", prog_name="idp",
                     message="%(prog)s %(version)s", help="Show idp's version and exit.")(main)
