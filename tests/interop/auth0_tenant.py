"""A provider served over https as an Auth0 tenant would be, for Auth0's own SDKs to call.

Auth0's SDKs take a `domain` and hard-code `https://{domain}/oauth/token`, `https://{domain}/api/v2`
and the audience `https://{domain}/api/v2/`: idp serves TLS itself (`idp serve --certfile`) with the
issuer `https://127.0.0.1:PORT`, so that domain is `127.0.0.1:PORT` and the audience is idp's
management API. The database is PostgreSQL, the production layout.
"""

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
from sqlalchemy import insert

from idp.connections import registry as connections
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.oauth import apis
from idp.oauth.clients import create_client
from idp.users.models import User
from tests.conftest import PostgresDatabase, _reset_postgres, app_for, base_config
from tests.mailbox import make_certificates
from tests.migration.conftest import LEGACY_PASSWORD, SCRIPT
from tests.served import Served, listen, serve

SCOPES = ["read:users", "create:users", "update:users", "delete:users", "read:connections", "read:logs",
          "read:stats"]
BULK = 1_100  # more than Auth0's 1,000-result paging cap, which idp does not have
BULK_TAG = "bulk"  # app_metadata.batch of every bulk-inserted user
LEGACY_NAME = "legacy-db"
LEGACY_EMAIL = "Lin@Example.com"  # in the legacy store only: get_user finds it
PASSWORD = "Sdk-interop passphrase 2031"


@dataclass
class Tenant:
    """The served provider, what an SDK needs to reach it, and what the test database holds."""

    served: Served
    ca: Path
    client_id: str
    client_secret: str
    legacy_connection_id: str

    @property
    def url(self) -> str:
        return self.served.url

    def was_served(self, method: str, path: str, status: int, timeout: float = 5) -> bool:
        """Say whether the access log shows this request (gunicorn writes it a moment after answering)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(row[1:] == (method, path, status) for row in self.served.served()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    @property
    def domain(self) -> str:
        """What Auth0's SDKs take as `domain`: host and port, no scheme."""
        return self.url.removeprefix("https://")


def _legacy_store(path: Path) -> None:
    """A legacy user store with one user, as tests/migration/conftest.py's."""
    store = sqlite3.connect(path)
    store.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, password_hash TEXT, name TEXT, "
                  "verified INTEGER)")
    hashed = bcrypt.hashpw(LEGACY_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    store.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)", (42, LEGACY_EMAIL, hashed, "Lin Legacy", 1))
    store.commit()
    store.close()


def _bulk_users() -> None:
    """Insert BULK users straight into the database (one statement: no hashing, no requests)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    db.session.execute(insert(User), [
        {"id": f"bulk|{n:05d}", "connection_id": NATIVE_ID, "email": f"bulk{n:05d}@bulk.example",
         "email_normalized": f"bulk{n:05d}@bulk.example", "name": f"Bulk User {n}",
         "created_at": start + timedelta(seconds=n), "updated_at": start + timedelta(seconds=n),
         "app_metadata": {"batch": BULK_TAG, "n": n}, "user_metadata": {}}
        for n in range(BULK)])


@contextmanager
def served_tenant(pg: PostgresDatabase, tmp: Path) -> Iterator[Tenant]:
    """Reset the PostgreSQL database, fill it, and serve it over https with the test CA."""
    _reset_postgres(pg)
    certificates = make_certificates(tmp)
    listener = listen()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}"
    legacy = tmp / "legacy.sqlite3"
    _legacy_store(legacy)
    with app_for(base_config(pg.url, tmp) | {"ISSUER": url}):
        client, secret = create_client("Auth0 SDK", [])
        assert secret is not None
        apis.grant(client.id, apis.management_identifier(), SCOPES)
        connection = connections.create(LEGACY_NAME, migrating=True, configuration={"path": str(legacy)})
        connections.configure(connection, login=SCRIPT, get_user=SCRIPT)
        _bulk_users()
        db.session.commit()
        client_id, legacy_id = client.id, connection.id
    with serve(pg.url, tmp, tls=certificates, listener=listener, RATELIMIT_ENABLED="0",
               SCRIPT_TIMEOUT="5") as served:
        assert served.url == url
        yield Tenant(served, certificates[0], client_id, secret, legacy_id)

