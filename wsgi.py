"""The WSGI entry point for servers other than `idp serve` (which needs none): `server wsgi:app`."""

from idp import create_app

app = create_app()
