"""/api/v2/connections in Auth0's shapes, PATCH all or nothing, and /api/v2/stats/migration, on both DBs."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from idp.connections import legacy as legacy_store
from idp.connections import registry, stores
from idp.connections.legacy import LegacyUnavailable
from idp.connections.models import NATIVE_ID, NATIVE_NAME, Connection, MigrationEvent
from idp.db import db
from idp.keys import kek
from idp.management.connections import HAS_USERS
from idp.migration.profiles import parse
from idp.oauth.clients import create_client
from idp.oauth.models import Client
from idp.redact import mask
from tests.management.conftest import add_user, management_token
from tests.migration import conftest as migration_conftest
from tests.migration.conftest import LEGACY_PASSWORD

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
legacy = migration_conftest.legacy  # the legacy store and migrating connection the migration tests use

SCOPES = "read:connections update:connections read:stats"
DSN = "postgresql://legacy:s3cret-pass@db.internal/legacy"
NOOP = registry.template("noop")
GOOD_LOGIN = "def login(email, password, configuration):\n    return None\n"
GOOD_GET_USER = "def get_user(email, configuration):\n    return None\n"
BROKEN = "def login(email, password, configuration):\n    x = 1\n    return (\n"


class Caller:
    """A caller of /api/v2/ holding a token with every scope these endpoints need."""

    def __init__(self, app: Flask) -> None:
        self.app, self.client = app, app.test_client()
        self.token = management_token(app, SCOPES)

    def __call__(self, method: str, path: str, body: Any = None, *, scope: str | None = None,
                 headers: dict[str, str] | None = None, **params: Any) -> Any:
        token = management_token(self.app, scope) if scope else self.token
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        extra = {"json": body} if body is not None else {}
        return self.client.open("/api/v2" + path, method=method, query_string=params, headers=sent, **extra)

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self(method, path, body, **params)
        assert response.status_code == 200, response.text
        return response.json


@pytest.fixture
def call(app: Flask) -> Caller:
    return Caller(app)


@pytest.fixture
def migrating(app: Flask) -> Connection:
    """A migrating connection (no-op scripts, a secret configuration) with a client signing in through it."""
    connection = registry.create("legacy-db", migrating=True, configuration={"DSN": DSN, "port": "5432"})
    create_client("Legacy App", ["https://legacy.example.com/cb"], connection_id=connection.id)
    return connection


@pytest.fixture
def plain(app: Flask) -> Connection:
    """A database connection that does not migrate, without users."""
    return registry.create("plain-db", migrating=False)


def assert_error(response: Any, status: int, code: str | None, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json
    assert body["statusCode"] == status and body.get("errorCode") == code, body
    assert message is None or message in body["message"], body


def stored(connection_id: str) -> Connection:
    db.session.expire_all()
    connection = db.session.get(Connection, connection_id)
    assert connection is not None
    return connection


# Reading


def test_connections_are_auth0s_database_connections_with_masked_configuration(call, migrating):
    client_id = migrating_client_id(migrating)
    answer = call("GET", "/connections")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    native, legacy = answer.json
    # The caller's own machine client signs in through the native connection, as clients do by default.
    assert native == {"id": NATIVE_ID, "name": NATIVE_NAME, "strategy": "auth0",
                      "enabled_clients": ["mgmt-test-client"],
                      "options": {"enabledDatabaseCustomization": False, "import_mode": False},
                      "realms": [NATIVE_NAME], "is_domain_connection": False}
    assert legacy == {
        "id": migrating.id, "name": "legacy-db", "strategy": "auth0", "enabled_clients": [client_id],
        "options": {"enabledDatabaseCustomization": True, "import_mode": True,
                    "customScripts": {"login": NOOP, "get_user": NOOP},
                    "configuration": {"DSN": mask(DSN), "port": mask("5432")}},
        "realms": ["legacy-db"], "is_domain_connection": False,
    }
    assert "s3cret" not in answer.text and "5432" not in answer.text
    assert call.ok("GET", f"/connections/{migrating.id}") == legacy
    assert call.ok("GET", f"/connections/{migrating.id}", fields="id,options.x,name") == {
        "id": migrating.id, "name": "legacy-db"}


def migrating_client_id(connection: Connection) -> str:
    return db.session.scalar(select(Client.id).where(Client.connection_id == connection.id))


def test_filters_fields_and_paging_as_auth0_has_them(call, migrating, plain):
    names = lambda answer: [c["name"] for c in answer]  # noqa: E731
    assert names(call.ok("GET", "/connections")) == [NATIVE_NAME, "legacy-db", "plain-db"]
    assert names(call.ok("GET", "/connections", name="plain-db")) == ["plain-db"]
    assert call.ok("GET", "/connections", name="Plain-DB") == []
    assert len(call.ok("GET", "/connections", strategy="auth0")) == 3
    assert call.ok("GET", "/connections", strategy="google-oauth2") == []
    both = call.client.get("/api/v2/connections?strategy=google-oauth2&strategy=auth0&name=legacy-db",
                           headers={"Authorization": f"Bearer {call.token}"})
    assert names(both.json) == ["legacy-db"]
    assert call.ok("GET", "/connections", fields="name,strategy", name="legacy-db") == [
        {"name": "legacy-db", "strategy": "auth0"}]
    [left] = call.ok("GET", "/connections", fields="options,enabled_clients", include_fields="false",
                     name="plain-db")
    assert set(left) == {"id", "name", "strategy", "realms", "is_domain_connection"}
    assert names(call.ok("GET", "/connections", per_page=2)) == [NATIVE_NAME, "legacy-db"]
    assert names(call.ok("GET", "/connections", per_page=2, page=1)) == ["plain-db"]
    totals = call.ok("GET", "/connections", per_page=1, page=2, include_totals="true")
    assert totals == {"start": 2, "limit": 1, "total": 3, "connections": [totals["connections"][0]]}
    assert totals["connections"][0]["name"] == "plain-db"
    assert call.ok("GET", "/connections", include_totals="true", name="nope") == {
        "start": 0, "limit": 100, "total": 0, "connections": []}


def test_checkpoint_paging_walks_every_connection_once(call, migrating, plain):
    """`take`, then `from` = the previous answer's `next`, as Auth0's v5 SDKs page; no `next` at the end."""
    seen, answer = [], call.ok("GET", "/connections", take=2)
    while True:
        assert len(answer["connections"]) <= 2
        seen += [c["name"] for c in answer["connections"]]
        if "next" not in answer:
            break
        answer = call.ok("GET", "/connections", take=2, **{"from": answer["next"]})
    assert sorted(seen) == sorted([NATIVE_NAME, "legacy-db", "plain-db"])
    whole = call.ok("GET", "/connections", take=5)
    assert set(whole) == {"connections"} and len(whole["connections"]) == 3
    refused = call.client.get("/api/v2/connections?take=0", headers={"Authorization": f"Bearer {call.token}"})
    assert refused.status_code == 400


def test_bad_queries_and_unknown_ids(call, migrating):
    for params in ({"per_page": "0"}, {"per_page": "101"}, {"page": "-1"}, {"page": "x"},
                   {"include_totals": "yes"}, {"include_fields": "1"}, {"fields": "a b"}, {"unknown": "1"},
                   {"take": "101"}, {"take": "x"}, {"strategy": ""}):
        assert_error(call("GET", "/connections", **params), 400, "invalid_query_string")
    repeated = call.client.get("/api/v2/connections?name=a&name=b",
                               headers={"Authorization": f"Bearer {call.token}"})
    assert_error(repeated, 400, "invalid_query_string")
    assert_error(call("GET", f"/connections/{migrating.id}", q="x"), 400, "invalid_query_string")
    for connection_id in ("con_nope", "x" * 300):
        for method, body in (("GET", None), ("PATCH", {"options": {}})):
            assert_error(call(method, f"/connections/{connection_id}", body), 404, "inexistent_connection",
                         "The connection does not exist.")


def test_every_endpoint_wants_a_valid_token_with_its_scope(call, migrating):
    endpoints = [("GET", "/connections", None, "read:connections"),
                 ("GET", f"/connections/{migrating.id}", None, "read:connections"),
                 ("PATCH", f"/connections/{migrating.id}", {"options": {}}, "update:connections"),
                 ("GET", "/stats/migration", None, "read:stats")]
    for method, path, body, scope in endpoints:
        bare = call.client.open("/api/v2" + path, method=method, json=body)
        assert bare.status_code == 401 and bare.json["message"] == "Missing authentication", path
        forged = call(method, path, body, headers={"Authorization": "Bearer not.a.token"})
        assert forged.status_code == 401 and forged.json["message"] == "Invalid token", path
        wrong = "read:users update:users read:connections" if scope != "read:connections" else "read:users"
        assert_error(call(method, path, body, scope=wrong), 403, "insufficient_scope",
                     f"Insufficient scope, expected any of: {scope}")
        assert call(method, path, body, scope=scope).status_code == 200, path


def test_a_disconnected_connection_shows_as_auth0_shows_it(call, migrating):
    registry.configure(migrating, login=GOOD_LOGIN, get_user=GOOD_GET_USER)
    registry.disconnect(migrating)
    options = call.ok("GET", f"/connections/{migrating.id}")["options"]
    assert options["customScripts"] == {"login": NOOP, "get_user": NOOP}
    assert options["import_mode"] is True and options["enabledDatabaseCustomization"] is True
    # The configuration may still go (the legacy credentials with it); the scripts stay no-ops.
    assert call.ok("PATCH", f"/connections/{migrating.id}",
                   {"options": {"configuration": {}}})["options"]["configuration"] == {}
    assert call.ok("PATCH", f"/connections/{migrating.id}", {"options": options | {"configuration": {}}})
    assert_error(call("PATCH", f"/connections/{migrating.id}", {"options": {"customScripts": {
        "login": GOOD_LOGIN}}}), 400, "invalid_body", "disconnected")


# Changing


def test_patch_scripts_checks_each_and_names_the_line(call, migrating):
    path = f"/connections/{migrating.id}"
    answer = call.ok("PATCH", path, {"options": {"customScripts": {"login": GOOD_LOGIN}}})
    assert answer["options"]["customScripts"] == {"login": GOOD_LOGIN, "get_user": NOOP}
    assert stored(migrating.id).login_script == GOOD_LOGIN
    assert call.ok("PATCH", path, {"options": {"customScripts": {"get_user": GOOD_GET_USER}}})[
        "options"]["customScripts"] == {"login": GOOD_LOGIN, "get_user": GOOD_GET_USER}
    assert_error(call("PATCH", path, {"options": {"customScripts": {"login": BROKEN}}}), 400, "invalid_body",
                 "the login script does not compile: line 3")
    assert_error(call("PATCH", path, {"options": {"customScripts": {"get_user": GOOD_LOGIN}}}), 400,
                 "invalid_body", "defines no function `get_user`")
    wrong_arguments = "x = 1\n\ndef login(email):\n    return None\n"
    assert_error(call("PATCH", path, {"options": {"customScripts": {"login": wrong_arguments}}}), 400,
                 "invalid_body", "line 3: `login` must take")
    for scripts in ({"create": GOOD_LOGIN}, {"login": ""}, {"login": 3}, "def login(): pass"):
        assert_error(call("PATCH", path, {"options": {"customScripts": scripts}}), 400, "invalid_body")
    too_long = "def login(email, password, configuration):\n    return None\n" + "#" * 100_000
    assert_error(call("PATCH", path, {"options": {"customScripts": {"login": too_long}}}), 400,
                 "invalid_body", "longer than 100000")
    assert stored(migrating.id).login_script == GOOD_LOGIN
    # The optional count_users and export_users: shown once set, removed with "".
    count = "def count_users(configuration):\n    return 3\n"
    answer = call.ok("PATCH", path, {"options": {"customScripts": {"count_users": count}}})
    assert answer["options"]["customScripts"]["count_users"] == count
    assert_error(call("PATCH", path, {"options": {"customScripts": {"export_users": count}}}), 400,
                 "invalid_body", "no function `export_users`")
    answer = call.ok("PATCH", path, {"options": {"customScripts": {"count_users": ""}}})
    assert "count_users" not in answer["options"]["customScripts"]
    assert stored(migrating.id).count_users_script is None


def test_native_and_plain_connections_get_no_scripts(call, plain):
    for connection_id in (NATIVE_ID, plain.id):
        for options in ({"customScripts": {"login": GOOD_LOGIN}}, {"configuration": {"a": "bcde"}}):
            assert_error(call("PATCH", f"/connections/{connection_id}", {"options": options}), 400,
                         "invalid_body")
    assert_error(call("PATCH", f"/connections/{NATIVE_ID}", {"options": {"customScripts": {
        "login": GOOD_LOGIN}}}), 400, "invalid_body", "is the native connection and cannot get scripts")
    assert_error(call("PATCH", f"/connections/{NATIVE_ID}", {"options": {
        "enabledDatabaseCustomization": True}}), 400, "invalid_body", "native connection")
    assert stored(NATIVE_ID).migrating is False and stored(NATIVE_ID).login_script is None


def test_configuration_is_replaced_and_masked_values_keep_the_stored_ones(call, migrating):
    path = f"/connections/{migrating.id}"
    shown = call.ok("GET", path)["options"]["configuration"]
    answer = call("PATCH", path, {"options": {"configuration": {
        "DSN": shown["DSN"], "API_KEY": "new-api-key-123", "gone": None}}})
    assert answer.status_code == 200, answer.text
    assert answer.json["options"]["configuration"] == {"DSN": mask(DSN), "API_KEY": mask("new-api-key-123")}
    assert "new-api-key-123" not in answer.text and "s3cret" not in answer.text
    assert stored(migrating.id).configuration == {"DSN": DSN, "API_KEY": "new-api-key-123"}  # port gone
    # A masked value under another key, or another value's mask, is never stored as a secret.
    for configuration in ({"OTHER": shown["DSN"]}, {"DSN": mask("something else entirely")},
                          {"DSN": 42}, {"DSN": ["x"]}, {"": "x"}, {"k" * 300: "x"}, ["DSN"], "x",
                          {f"k{n}": "v" for n in range(101)}, {"DSN": "x" * 10_001}):
        assert_error(call("PATCH", path, {"options": {"configuration": configuration}}), 400, "invalid_body")
    assert stored(migrating.id).configuration == {"DSN": DSN, "API_KEY": "new-api-key-123"}
    # What GET shows, sent back whole, changes nothing.
    everything = call.ok("GET", path)
    assert call.ok("PATCH", path, {"options": everything["options"]}) == everything
    assert stored(migrating.id).configuration == {"DSN": DSN, "API_KEY": "new-api-key-123"}
    assert call.ok("PATCH", path, {"options": {"configuration": {}}})["options"]["configuration"] == {}
    assert stored(migrating.id).configuration == {}


def test_enabled_database_customization_changes_only_without_users(call, plain, migrating):
    path = f"/connections/{plain.id}"
    answer = call.ok("PATCH", path, {"options": {"enabledDatabaseCustomization": True, "import_mode": True,
                                                 "customScripts": {"login": GOOD_LOGIN},
                                                 "configuration": {"DSN": DSN}}})
    assert answer["options"] == {"enabledDatabaseCustomization": True, "import_mode": True,
                                 "customScripts": {"login": GOOD_LOGIN, "get_user": NOOP},
                                 "configuration": {"DSN": mask(DSN)}}
    assert stored(plain.id).configuration == {"DSN": DSN}
    mismatch = {"enabledDatabaseCustomization": True, "import_mode": False}
    assert_error(call("PATCH", path, {"options": mismatch}), 400, "invalid_body", "import_mode")
    scripts_off = {"enabledDatabaseCustomization": False, "customScripts": {"login": GOOD_LOGIN}}
    assert_error(call("PATCH", path, {"options": scripts_off}), 400, "invalid_body")
    not_boolean = {"enabledDatabaseCustomization": "no"}
    assert_error(call("PATCH", path, {"options": not_boolean}), 400, "invalid_body")
    back = call.ok("PATCH", path, {"options": {"enabledDatabaseCustomization": False}})
    assert back["options"] == {"enabledDatabaseCustomization": False, "import_mode": False}
    off = stored(plain.id)
    assert off.migrating is False and off.login_script is None and off.configuration == {}
    add_user("u-1", "one@example.com", migrating.id)
    db.session.commit()
    for value in (False, True):
        change = call("PATCH", f"/connections/{migrating.id}",
                      {"options": {"enabledDatabaseCustomization": value}})
        if value:  # unchanged: fine
            assert change.status_code == 200
        else:
            assert_error(change, 400, "invalid_body", HAS_USERS)
    assert stored(migrating.id).migrating is True


@pytest.mark.parametrize(("body", "content_type"), [
    (b"not json", "application/json"), (b'{"options": {}}', "text/plain"), (b"[]", "application/json"),
    (b'{"name": "x"}', "application/json"), (b'{"strategy": "auth0"}', "application/json"),
    (b'{"enabled_clients": []}', "application/json"), (b'{"display_name": "x"}', "application/json"),
    (b'{"options": []}', "application/json"),
    (b'{"options": {"passwordPolicy": "good"}}', "application/json"),
    (b'{"options": {"customScripts": {"login": "def login(a, b, c):\\u0000"}}}', "application/json"),
    (b'{"options": {"configuration": {"a": "\\ud800"}}}', "application/json"),
    (b'{"options": {"configuration": {"a": ' + b'{"b": ' * 12 + b'"c"' + b"}" * 13 + b"}}",
     "application/json"),
    (b'{"options": {"configuration": {"a": "' + b"x" * 1_048_577 + b'"}}}', "application/json"),
])
def test_bodies_we_refuse_are_a_400(call, migrating, body, content_type):
    response = call.client.patch(f"/api/v2/connections/{migrating.id}", data=body, headers={
        "Authorization": f"Bearer {call.token}", "Content-Type": content_type})
    assert_error(response, 400, "invalid_body")
    assert stored(migrating.id).configuration == {"DSN": DSN, "port": "5432"}


def test_a_patch_is_all_or_nothing(app, call, migrating, monkeypatch):
    path = f"/connections/{migrating.id}"
    before = call.ok("GET", path)
    bad = {"options": {"customScripts": {"login": GOOD_LOGIN, "get_user": "def get_user(:\n"},
                       "configuration": {"DSN": "changed-dsn"}}}
    assert_error(call("PATCH", path, bad), 400, "invalid_body", "line 1")
    assert call.ok("GET", path) == before
    # A failure while storing (here: encrypting the configuration, after the scripts were set) undoes all.
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(data: bytes) -> bytes:
        raise RuntimeError("the key-encryption key is gone")

    monkeypatch.setattr(kek, "encrypt", broken)
    good = {"options": {"customScripts": {"login": GOOD_LOGIN, "get_user": GOOD_GET_USER},
                        "configuration": {"DSN": "changed-dsn"}}}
    failed = call("PATCH", path, good)
    assert failed.status_code == 500 and failed.json["statusCode"] == 500
    monkeypatch.undo()
    assert call.ok("GET", path) == before
    assert stored(migrating.id).configuration == {"DSN": DSN, "port": "5432"}


# Migration statistics


def test_migration_stats_after_real_migrations(app, call, legacy, monkeypatch):
    connection = legacy.connection
    store = stores.of(connection)
    assert store.authenticate("lin@example.com", LEGACY_PASSWORD) is not None  # moves over on login
    assert store.reset_owner("max@example.com", "a brand new password") is not None  # through a reset
    assert store.authenticate("nobody@example.com", "whatever") is None  # a failed legacy login
    profile = parse({"user_id": "77", "email": "imported@example.com"})
    legacy_store.import_profile(connection, profile, "an imported password", "import")
    registry.configure(connection, login="def login(email, password, configuration):\n    raise "
                         "RuntimeError('down')\n\n\ndef get_user(email, configuration):\n    return None\n")
    with pytest.raises(LegacyUnavailable):
        stores.of(stored(connection.id)).authenticate("zed@example.com", "x")
    registry.create("another", migrating=False)  # not migrating: not in the statistics
    # The reset happened 40 days ago; the failed login 3 days ago.
    now = datetime.now(UTC)
    db.session.execute(update(MigrationEvent).where(MigrationEvent.source == "password_reset")
                       .values(at=now - timedelta(days=40)))
    db.session.execute(update(MigrationEvent).where(MigrationEvent.type == "legacy_login_failed")
                       .values(at=now - timedelta(days=3)))
    db.session.commit()
    today, old, failed_day = (now.date().isoformat(), (now - timedelta(days=40)).date().isoformat(),
                              (now - timedelta(days=3)).date().isoformat())

    answer = call.ok("GET", "/stats/migration")
    assert answer["to"] == today and answer["from"] == (now - timedelta(days=29)).date().isoformat()
    [stats] = answer["connections"]
    assert stats["connection_id"] == connection.id and stats["connection"] == "legacy-db"
    assert stats["migrated"] == {"total": 3, "login": 1, "password_reset": 1, "import": 1}
    assert stats["failures"] == {"script_error": 1, "profile_rejected": 0, "legacy_login_failed": 1}
    assert len(stats["daily"]) == 30 and stats["daily"][-1] == {
        "date": today, "login": 1, "password_reset": 0, "import": 1}
    assert sum(d["password_reset"] for d in stats["daily"]) == 0  # 40 days ago: outside the window
    assert stats["last_migrated_at"].startswith(today) and stats["last_migrated_at"].endswith("Z")
    assert stats["disconnected_at"] is None

    window = call.ok("GET", "/stats/migration", **{"from": old, "to": old})
    [stats] = window["connections"]
    assert stats["daily"] == [{"date": old, "login": 0, "password_reset": 1, "import": 0}]
    assert stats["failures"] == {"script_error": 0, "profile_rejected": 0, "legacy_login_failed": 0}
    assert stats["migrated"]["total"] == 3  # all-time, whatever the window
    [stats] = call.ok("GET", "/stats/migration", **{"from": failed_day, "to": failed_day})["connections"]
    assert stats["failures"]["legacy_login_failed"] == 1

    registry.disconnect(stored(connection.id))
    [stats] = call.ok("GET", "/stats/migration")["connections"]
    assert stats["disconnected_at"].startswith(today)

    for params in ({"from": "2026-13-01"}, {"to": "yesterday"}, {"from": "2026-01-02", "to": "2026-01-01"},
                   {"from": "2020-01-01", "to": "2021-12-31"}, {"from": "2026-1-1"}, {"from": "2026-W01-1"},
                   {"since": "2026-01-01"}):
        assert_error(call("GET", "/stats/migration", **params), 400, "invalid_query_string")


def test_stats_without_migrating_connections(call):
    answer = call.ok("GET", "/stats/migration", **{"from": "2024-02-28", "to": "2024-03-01"})
    assert answer == {"from": "2024-02-28", "to": "2024-03-01", "connections": []}



def test_scripts_nested_too_deeply_to_compile_are_a_400(call, migrating):
    # Python's parser and compiler give up on these with MemoryError or RecursionError: a 500 until the
    # fuzz of every route found it.
    for source in (GOOD_LOGIN.replace("None", "-" * 50_000 + "1"),
                   GOOD_LOGIN.replace("None", "+".join(["a"] * 30_000)),
                   GOOD_LOGIN.replace("None", "f" + "()" * 30_000)):
        body = {"options": {"customScripts": {"login": source}}}
        response = call("PATCH", f"/connections/{migrating.id}", body)
        assert_error(response, 400, "invalid_body", "the login script is nested too deeply to compile")
    assert call.ok("GET", f"/connections/{migrating.id}")["options"]["customScripts"]["login"] == NOOP


def test_stats_windows_at_the_ends_of_the_calendar(call, migrating):
    # `to` in the first days of year 1, and 9999-12-31, were an OverflowError (a 500) until the fuzz
    # found them.
    assert_error(call("GET", "/stats/migration", to="9999-12-31"), 400, "invalid_query_string",
                 "'to' must be before 9999-12-31")
    answer = call.ok("GET", "/stats/migration", to="0001-01-05")
    assert answer["from"] == "0001-01-01" and len(answer["connections"][0]["daily"]) == 5
    answer = call.ok("GET", "/stats/migration", **{"from": "9999-12-01", "to": "9999-12-30"})
    assert answer["to"] == "9999-12-30" and len(answer["connections"][0]["daily"]) == 30


def test_an_id_with_nul_is_a_clean_answer_on_every_route(call, migrating):
    """PostgreSQL refuses NUL in text: such an id names nothing, and never reaches the database."""
    for method, path, body in (("GET", "/connections/%00", None), ("PATCH", "/connections/%00", {}),
                               ("GET", "/users/%00", None), ("PATCH", "/users/%00", {}),
                               ("DELETE", "/users/a%00b", None), ("GET", "/users/%00/logs", None)):
        response = call(method, path, body, scope="read:users update:users delete:users read:logs "
                                                   "read:connections update:connections")
        assert response.status_code in (204, 400, 404), (method, path, response.status_code, response.text)
