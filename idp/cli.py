"""The `idp` command: Flask's CLI around our application factory."""

from flask.cli import FlaskGroup

from idp import create_app


def _cli_app():  # noqa: ANN202 - FlaskGroup's factory signature
    return create_app(serving=False)


main = FlaskGroup(create_app=_cli_app, add_default_commands=False, help="The idp identity provider.")
