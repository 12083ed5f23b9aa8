"""The server's floor: hello-world under idp's gunicorn settings (`python -m bench.peer.hello BIND`)."""

import sys

from flask import Flask

from idp import production


def app() -> Flask:
    """Return an app that answers GET / with a short text."""
    hello = Flask(__name__)
    hello.add_url_rule("/", "hello", lambda: "hello, world")
    return hello


if __name__ == "__main__":
    production.Server(app, production.settings([sys.argv[1]], 1, None, None)).run()
