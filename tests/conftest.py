"""Fixtures layered app → db → user → client, on SQLite and (when reachable) PostgreSQL."""

import contextvars
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from playwright import sync_api as playwright
from sqlalchemy import create_engine, text
from werkzeug.serving import BaseWSGIServer, make_server

from demo.rp import create_rp
from idp import SCHEMA, cache, counters, create_app, mail
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.keys.store import ensure_keys
from idp.oauth.clients import create_client
from idp.users.accounts import create_user
from tests.mailbox import Mailbox
from tests.support import Browser, RegisteredClient

PG_ADMIN_URL = os.environ.get("IDP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_VERSION = "$(ls /etc/postgresql)"
KEK = Fernet.generate_key().decode()
PASSWORD = "correct horse battery staple"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_service(name: str, how: str) -> None:
    """Skip (or, in CI, fail) a test whose service is not running."""
    message = f"{name} is not reachable; start it with: {how}"
    if os.environ.get("IDP_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def base_config(database_url: str, tmp: Path) -> dict[str, Any]:
    """Return the test configuration: cheap argon2, a throwaway secret and key-encryption key."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "ISSUER": "http://localhost",
        "DATABASE_URL": database_url,
        "KEY_ENCRYPTION_KEY": KEK,
        "KEYS_DIR": str(tmp / "keys"),
        "INSTANCE_PATH": str(tmp / "instance"),
        "RATELIMIT_ENABLED": False,  # the tests of the per-IP limits turn them on
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8,
        "ARGON2_PARALLELISM": 1,
        "KEY_MAINTENANCE_INTERVAL": 0,
    }


def _migrated(url: str, tmp: Path) -> None:
    app = create_app(base_config(url, tmp))
    with app.app_context():
        upgrade(directory=SCHEMA)
        ensure_keys()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once, with signing keys, copied for each test."""
    tmp = tmp_path_factory.mktemp("template")
    path = tmp / "idp.sqlite3"
    _migrated(f"sqlite:///{path}", tmp)
    return path


# Rows the migrations and `idp init` make, restored after each test empties the tables.
SEEDED = ("connections", "signing_keys")


@dataclass
class PostgresDatabase:
    """A migrated PostgreSQL database and the seeded rows it started with."""

    url: str
    seed: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresDatabase]:
    """A PostgreSQL database of our own for this session, migrated once, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except Exception:
        admin.dispose()
        require_service("PostgreSQL", f"pg_ctlcluster --skip-systemctl-redirect {PG_VERSION} main start")
    name = f"idp_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    _migrated(url, tmp_path_factory.mktemp("pg"))
    engine = create_engine(url)
    with engine.connect() as conn:
        seed = {t: [dict(r) for r in conn.execute(text(f"SELECT * FROM {t}")).mappings()] for t in SEEDED}
    engine.dispose()
    yield PostgresDatabase(url, seed)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(pg: PostgresDatabase) -> None:
    """Empty every table and restore the seeded rows."""
    engine = create_engine(pg.url)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
        for table, rows in pg.seed.items():
            conn.execute(db.metadata.tables[table].insert(), rows)
    engine.dispose()


def fresh_database(request: pytest.FixtureRequest, kind: str, tmp: Path) -> str:
    """Return the URL of a fresh SQLite copy in `tmp`, or of the emptied PostgreSQL database."""
    if kind == "postgresql":
        pg: PostgresDatabase = request.getfixturevalue("postgres_database")
        _reset_postgres(pg)
        return pg.url
    template = request.getfixturevalue("sqlite_template")
    path = tmp / "idp.sqlite3"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL for one test: a fresh SQLite copy, or the emptied PostgreSQL database."""
    return fresh_database(request, request.param, tmp_path)


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    """The configuration a test's app is built with; tests may change it before `app`."""
    return base_config(database_url, tmp_path)


@pytest.fixture(scope="session")
def chromium() -> Iterator[playwright.Browser]:
    """One headless Chromium, Debian's, for the whole session (`playwright install` needs the internet)."""
    if not Path(CHROMIUM).exists():
        require_service("Chromium", "apt-get install -y chromium")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class IsolatedClient(FlaskClient):
    """A test client whose requests get their own app context, `g` and database session.

    The test's own app context stays pushed for its database work; without this, Flask would
    reuse it for every request, sharing `g` and the session across requests as production never does.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            db.session.expire_all()  # let the test see what the request wrote
        return response


@contextmanager
def app_for(config: dict[str, Any]) -> Iterator[Flask]:
    """Build the application with an app context pushed; close its connections afterwards."""
    app = create_app(config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
            counters.dispose()
            cache.forget_all()  # the next test's database may have the same URL and other rows


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    """The application, with an app context pushed for the test's own database work."""
    with app_for(config) as app:
        yield app


@pytest.fixture
def user(app: Flask) -> Any:
    """A native user with a known password."""
    return create_user("ada@example.com", PASSWORD, NATIVE_ID, name="Ada Lovelace", given_name="Ada",
                       family_name="Lovelace", email_verified=True)


@pytest.fixture
def rp(app: Flask) -> RegisteredClient:
    """A confidential, first-party relying party."""
    client, secret = create_client(
        "Example App", ["https://rp.example.com/callback"], first_party=True,
        post_logout_redirect_uris=["https://rp.example.com/bye"], audiences=["https://api.example.com"],
    )
    return RegisteredClient(client.id, secret, "https://rp.example.com/callback")


@pytest.fixture
def public_rp(app: Flask) -> RegisteredClient:
    """A public (PKCE) first-party relying party."""
    client, _ = create_client("Example SPA", ["http://127.0.0.1:8765/cb"], public=True, first_party=True)
    return RegisteredClient(client.id, None, "http://127.0.0.1:8765/cb")


@pytest.fixture
def third_party_rp(app: Flask) -> RegisteredClient:
    """A confidential relying party that is not ours: users are asked to consent."""
    client, secret = create_client("Partner App", ["https://partner.example.org/cb"])
    return RegisteredClient(client.id, secret, "https://partner.example.org/cb")


@pytest.fixture
def browser(app: Flask) -> Browser:
    """A cookie-keeping client that can walk through the hosted pages."""
    return Browser(app.test_client())


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd); the app sends its mail to it."""
    with Mailbox() as box:
        app.config["SMTP_URL"] = box.url
        yield box
        mail.wait_for_sent(5)  # queued mails reach the server before it stops


class LiveServer:
    """The app served over real HTTP on a free loopback port."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        app.config["ISSUER"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test's app on a real port; ISSUER is set to its URL."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def rp_url(live_server: LiveServer) -> Iterator[str]:
    """The demo RP on a free port, registered at the live provider as a first-party client."""
    # Bind first so the client is registered with the port the RP really has.
    server: BaseWSGIServer = make_server("127.0.0.1", 0, lambda e, s: [], threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    client, secret = create_client("Demo app", [url + "/callback"], first_party=True,
                                   post_logout_redirect_uris=[url + "/"])
    assert secret is not None
    server.app = create_rp(live_server.url, client.id, secret, url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(5)
