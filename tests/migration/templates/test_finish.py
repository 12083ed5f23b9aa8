"""Finishing a migration over a live legacy store of 2,500 users: count who is left, move them all over
with their legacy hashes (`idp migration finish`), resume after an outage, import nothing twice; the
moved users sign in with their old passwords, which are then re-hashed with argon2id."""

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from sqlalchemy import func, select

from idp.connections import imports
from idp.connections import registry as connections
from idp.connections.legacy import LegacyUnavailable
from idp.connections.models import Connection
from idp.db import db
from idp.oauth.clients import create_client
from idp.users.models import User
from tests.migration.templates.conftest import MARIADB, PG, Store, bcrypt_hash, membership_store
from tests.migration.templates.test_flows import Migrating, post_login, signed_in_sub
from tests.support import RegisteredClient

BULK = 2495  # with the store's five people: 2,500 legacy users, three pages of export_users
BULK_PASSWORD = "a bulk user's password"


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def store(request: pytest.FixtureRequest) -> Store:
    """A live SQL legacy store holding the five people and BULK more users."""
    store: Store = request.getfixturevalue(f"{request.param}_store")
    hashed = bcrypt_hash(BULK_PASSWORD, "2b")  # one hash for all: 2,495 bcrypt hashes would be slow
    rows = [(10_000 + n, f"bulk{n:05d}@legacy.example", hashed) for n in range(BULK)]
    with legacy_cursor(store) as (cursor, mark):
        cursor.executemany(f"INSERT INTO users (id, email, password_hash) VALUES ({mark}, {mark}, {mark})",
                           rows)
    return store


@contextlib.contextmanager
def legacy_cursor(store: Store) -> Iterator[tuple[Any, str]]:
    """A cursor on the legacy database, committed afterwards, and its parameter mark."""
    if store.template == "sqlite":
        with contextlib.closing(sqlite3.connect(store.extra["path"])) as conn:
            yield conn.cursor(), "?"
            conn.commit()
    elif store.template == "postgres":
        with psycopg.connect(**PG, dbname=store.extra["database"], autocommit=True) as conn:
            yield conn.cursor(), "%s"
    else:
        conn = pymysql.connect(**MARIADB, database=store.extra["database"], autocommit=True)
        try:
            yield conn.cursor(), "%s"
        finally:
            conn.close()


@pytest.fixture
def migrating(app, store: Store) -> Migrating:
    app.config.update(SCRIPT_TIMEOUT=20)
    connection = connections.create("legacy", migrating=True, template_name=store.template,
                                    configuration=store.configuration)
    assert connection.count_users_script == connection.export_users_script == connections.template(
        store.template)
    client, secret = create_client("Legacy App", ["https://legacy-app.example.com/cb"], first_party=True,
                                   connection_id=connection.id)
    return Migrating(store, connection, RegisteredClient(client.id, secret, "https://legacy-app.example.com/cb"))


def status(app) -> dict[str, Any]:
    result = app.test_cli_runner().invoke(args=["migration", "status", "legacy", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def local_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def test_finish_moves_everyone_left_with_their_hashes(app, browser, migrating):
    store, connection = migrating.store, migrating.connection
    lin, max_, pat, sso = (store.person(key) for key in ("lin", "max", "pat", "sso"))
    report = status(app)
    assert (report["legacy_total"], report["remaining"]) == (2500, 2500)
    # One user moves over lazily first: the others are left.
    assert signed_in_sub(browser, migrating.rp, lin.email, lin.password) == migrating.sub(lin)
    assert status(app)["remaining"] == 2499

    finished = app.test_cli_runner().invoke(args=["migration", "finish", "legacy"])
    assert finished.exit_code == 0, finished.output
    assert "legacy: 2,499 imported, 1 already in idp, 0 refused, 2,500 in all" in finished.output
    report = status(app)
    assert report["remaining"] == 0 and report["by_source"] == {"import": 2499, "login": 1}
    assert local_users() == 2500 and db.session.get(Connection, connection.id).export_cursor is None

    # Twice: nothing new, nobody duplicated.
    again = app.test_cli_runner().invoke(args=["migration", "finish", "legacy"])
    assert "legacy: 0 imported, 2,500 already in idp, 0 refused" in again.output and local_users() == 2500

    # The imported keep their legacy hash until they sign in with their old password; then argon2id.
    user = db.session.get(User, migrating.sub(max_))
    assert user.migrated_via == "import" and user.legacy_id == "1002"
    assert user.password_hash.startswith("$2b$")
    assert user.email == max_.email and user.given_name == "Max" and user.email_verified is False
    refused = post_login(browser, migrating.rp, max_.email, "not the password")
    assert refused.status_code == 400 and db.session.get(User, user.id).password_hash.startswith("$2b$")
    assert signed_in_sub(browser, migrating.rp, max_.email, max_.password) == migrating.sub(max_)
    assert db.session.get(User, user.id).password_hash.startswith("$argon2id$")
    assert signed_in_sub(browser, migrating.rp, max_.email, max_.password) == migrating.sub(max_)
    assert signed_in_sub(browser, migrating.rp, pat.email, pat.password) == migrating.sub(pat)  # phpass
    bulk = "bulk02494@legacy.example"
    assert signed_in_sub(browser, migrating.rp, bulk, BULK_PASSWORD) == f"{connection.id}|12494"
    # Without a legacy password (Google only, say), a user is imported and can set one by a reset.
    assert db.session.get(User, migrating.sub(sso)).password_hash is None

    # Disconnected, the legacy store is no longer asked and everyone still signs in.
    store.stop()
    assert app.test_cli_runner().invoke(args=["connections", "disconnect", "legacy"]).exit_code == 0
    assert signed_in_sub(browser, migrating.rp, bulk, BULK_PASSWORD) == f"{connection.id}|12494"


def test_an_interrupted_finish_resumes_where_it_stopped(app, migrating):
    store, connection = migrating.store, migrating.connection
    pages: list[int] = []

    def outage_after_the_first_page(count: int) -> None:
        pages.append(count)
        if len(pages) == 1:
            with legacy_cursor(store) as (cursor, _):
                cursor.execute("ALTER TABLE users RENAME TO users_away")

    with pytest.raises(LegacyUnavailable):
        imports.finish(connection, progress=outage_after_the_first_page)
    assert pages == [1000] and local_users() == 1000
    assert json.loads(db.session.get(Connection, connection.id).export_cursor) == 10_994  # the 1,000th id
    failed = app.test_cli_runner().invoke(args=["migration", "finish", "legacy"])
    assert failed.exit_code == 1 and "run it again to go on" in failed.output and local_users() == 1000

    with legacy_cursor(store) as (cursor, _):
        cursor.execute("ALTER TABLE users_away RENAME TO users")
    summary = imports.finish(db.session.get(Connection, connection.id), progress=pages.append)
    assert (summary.inserted, summary.skipped, summary.failed) == (1500, 0, 0)
    assert pages == [1000, 1000, 500] and local_users() == 2500
    assert status(app)["remaining"] == 0


@pytest.fixture(params=["webservice", "aspnet_membership SHA1", "aspnet_membership HMACSHA256"])
def small(request: pytest.FixtureRequest, app) -> Migrating:
    """A migrating connection over the web service or a membership database, made from its template."""
    template, _, algorithm = request.param.partition(" ")
    if algorithm:
        store = membership_store(request.getfixturevalue("pg_database"), algorithm)
    else:
        store = request.getfixturevalue("webservice_store")
    connection = connections.create("legacy", migrating=True, template_name=template,
                                    configuration=store.configuration)
    client, secret = create_client("Legacy App", ["https://legacy-app.example.com/cb"], first_party=True,
                                   connection_id=connection.id)
    return Migrating(store, connection, RegisteredClient(client.id, secret, "https://legacy-app.example.com/cb"))


def test_finish_from_a_web_service_or_a_membership_database(app, browser, small):
    store = small.store
    # Without application_name the membership template searches every application: the shop's member too.
    total = len(store.people) + (store.template == "aspnet_membership")
    assert (status(app)["legacy_total"], status(app)["remaining"]) == (total, total)
    finished = app.test_cli_runner().invoke(args=["migration", "finish", "legacy"])
    assert finished.exit_code == 0, finished.output
    assert f"legacy: {total} imported, 0 already in idp, 0 refused, {total} in all" in finished.output
    assert status(app)["remaining"] == 0 and local_users() == total
    again = app.test_cli_runner().invoke(args=["migration", "finish", "legacy"])
    assert f"legacy: 0 imported, {total} already in idp" in again.output and local_users() == total

    # Taken away, the legacy store is never asked: who signs in does so with the hash that moved over.
    store.stop()
    assert app.test_cli_runner().invoke(args=["connections", "disconnect", "legacy"]).exit_code == 0
    cannot = {"sso", "locked", "unapproved", "encrypted"}  # as lazily, these come in through a reset
    for person in store.people:
        user = db.session.get(User, small.sub(person))
        assert user.migrated_via == "import" and user.email == person.email
        if person.key in cannot:
            assert user.password_hash is None, person.key
            continue
        assert post_login(browser, small.rp, person.email, "not the password").status_code == 400
        assert signed_in_sub(browser, small.rp, person.email, person.password or "") == small.sub(person)
        assert db.session.get(User, user.id).password_hash.startswith("$argon2id$"), person.key
