"""A legacy user store (SQLite with bcrypt hashes) and a migrating connection in front of it."""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from flask import Flask

from idp.connections import registry as connections
from idp.connections.models import Connection
from idp.oauth.clients import create_client
from tests.support import RegisteredClient

LEGACY_PASSWORD = "legacy secret 42"

SCRIPT = '''
import sqlite3

import bcrypt


def _find(email, configuration):
    db = sqlite3.connect(configuration["path"])
    try:
        return db.execute(
            "SELECT id, email, password_hash, name, verified FROM users WHERE lower(email) = lower(?)",
            (email,),
        ).fetchone()
    finally:
        db.close()


def _profile(row):
    return {"user_id": row[0], "email": row[1], "name": row[3], "email_verified": bool(row[4]),
            "user_metadata": {"plan": "gold"}, "app_metadata": {"legacy_id": row[0]}}


def login(email, password, configuration):
    row = _find(email, configuration)
    if row is None or not bcrypt.checkpw(password.encode(), row[2].encode()):
        raise WrongUsernameOrPassword(email)
    return _profile(row)


def get_user(email, configuration):
    row = _find(email, configuration)
    return _profile(row) if row else None
'''


@dataclass
class Legacy:
    """The legacy database file and the connection that migrates from it."""

    path: Path
    connection: Connection
    rp: RegisteredClient


@pytest.fixture
def legacy(app: Flask, tmp_path: Path) -> Legacy:
    """A legacy store with two users, a migrating connection and a first-party client using it."""
    path = tmp_path / "legacy.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, password_hash TEXT, name TEXT, "
               "verified INTEGER)")
    hashed = bcrypt.hashpw(LEGACY_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", [
        (42, "Lin@Example.com", hashed, "Lin Legacy", 1), (43, "max@example.com", hashed, "Max Legacy", 0)])
    db.commit()
    db.close()
    app.config.update(SCRIPT_TIMEOUT=5)
    connection = connections.create("legacy-db", migrating=True, configuration={"path": str(path)})
    connections.configure(connection, login=SCRIPT, get_user=SCRIPT)
    client, secret = create_client("Legacy App", ["https://legacy-app.example.com/cb"], first_party=True,
                                   connection_id=connection.id)
    return Legacy(path, connection, RegisteredClient(client.id, secret, "https://legacy-app.example.com/cb"))
