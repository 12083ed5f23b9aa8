"""The templates' scripts against live legacy stores, run in the real sandbox."""

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest

from idp.connections import registry as connections
from idp.migration.sandbox import Pool, ScriptError, ScriptFailed, WrongCredentials
from tests.migration.templates.conftest import (
    MARIADB,
    PG,
    STORES,
    Person,
    Store,
    add_member,
    drop_mariadb,
    membership_store,
    pg_terminate,
)


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Sandbox workers shared by the module's tests, as a provider process shares them between logins."""
    with Pool(size=1, timeout=10) as pool:
        yield pool


def call(pool: Pool, store: Store, function: str, *args: Any,
         configuration: dict[str, str] | None = None) -> Any:
    """Run one of the store's template scripts in the sandbox; return what it returned."""
    source = connections.template(store.template)
    return pool.call(source, function, [*args, configuration or store.configuration]).value


def can_sign_in(person: Person) -> bool:
    return person.password is not None and person.key not in ("locked", "unapproved", "encrypted")


def test_login_and_get_user_return_the_same_profile_for_any_case_of_the_email(pool, store):
    for person in filter(can_sign_in, store.people):
        expected = store.profile(person)
        for asked in {person.email, person.email.lower(), person.email.upper()}:
            assert call(pool, store, "login", asked, person.password) == expected, (person.key, asked)
            assert call(pool, store, "get_user", asked) == expected, (person.key, asked)


def test_a_wrong_password_or_an_unknown_user_is_wrong_credentials(pool, store):
    lin = store.person("lin")
    with pytest.raises(WrongCredentials):
        call(pool, store, "login", lin.email, lin.password.upper())
    with pytest.raises(WrongCredentials):
        call(pool, store, "login", lin.email, "")
    for unknown in ("nobody@example.com", "x' OR '1'='1", "%@example.com", "lin.chen@example.com' --"):
        with pytest.raises(WrongCredentials):
            call(pool, store, "login", unknown, lin.password)
        assert call(pool, store, "get_user", unknown) is None


@pytest.mark.parametrize("store", [s for s in STORES if s != "aspnet_membership"], indirect=True)
def test_a_user_without_a_password_exists_but_cannot_sign_in(pool, store):  # Membership requires one
    sso = store.person("sso")
    with pytest.raises(WrongCredentials):
        call(pool, store, "login", sso.email, "")
    assert call(pool, store, "get_user", sso.email) == store.profile(sso)


def test_a_store_that_is_gone_is_a_failure_not_a_missing_user(pool, store):
    lin = store.person("lin")
    assert call(pool, store, "get_user", lin.email)  # the worker keeps a connection
    store.stop()
    with pytest.raises(ScriptError) as failed:
        call(pool, store, "get_user", lin.email)
    assert not isinstance(failed.value, WrongCredentials)
    with pytest.raises(ScriptError) as failed:
        call(pool, store, "login", lin.email, lin.password)
    assert not isinstance(failed.value, WrongCredentials)


# -- PostgreSQL ------------------------------------------------------------------------------------


def test_postgres_reconnects_once_when_the_server_dropped_the_kept_connection(pool, postgres_store):
    lin = postgres_store.person("lin")
    assert call(pool, postgres_store, "get_user", lin.email) == postgres_store.profile(lin)
    assert pg_terminate(postgres_store.extra["database"]) >= 1  # as a restart or an idle timeout would
    assert call(pool, postgres_store, "login", lin.email, lin.password) == postgres_store.profile(lin)


def test_postgres_takes_a_dsn_and_keeps_each_configurations_connection(pool, postgres_store, new_pg_database):
    lin = postgres_store.person("lin")
    dsn = {"dsn": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{postgres_store.extra['database']}"}
    assert call(pool, postgres_store, "get_user", lin.email, configuration=dsn) == postgres_store.profile(lin)
    other_database = new_pg_database()  # the same schema, nobody in it
    with psycopg.connect(**PG, dbname=other_database, autocommit=True) as other:
        other.execute("CREATE TABLE users (id int, email text, password_hash text, email_verified bool, "
                      "name text, given_name text, family_name text)")
    elsewhere = {**postgres_store.configuration, "dbname": other_database}
    assert call(pool, postgres_store, "get_user", lin.email, configuration=elsewhere) is None
    assert call(pool, postgres_store, "get_user", lin.email) == postgres_store.profile(lin)


def test_postgres_refuses_to_choose_between_two_users_with_one_address(pool, postgres_store):
    lin = postgres_store.person("lin")
    with psycopg.connect(**PG, dbname=postgres_store.extra["database"], autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email) VALUES (9999, %s)", (lin.email.lower(),))
    for function, args in (("login", (lin.email, lin.password)), ("get_user", (lin.email,))):
        with pytest.raises(ScriptFailed, match="several legacy users"):
            call(pool, postgres_store, function, *args)


def test_postgres_reports_a_hash_it_cannot_check_as_a_failure(pool, postgres_store):
    with psycopg.connect(**PG, dbname=postgres_store.extra["database"], autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email, password_hash) VALUES (9998, 'md5@example.com', "
                     "'$1$saltsalt$qjXMvbEw8oaL.CzflDugX/')")
    with pytest.raises(ScriptFailed, match=r"md5-crypt"):
        call(pool, postgres_store, "login", "md5@example.com", "password")


# -- MariaDB ---------------------------------------------------------------------------------------


def test_mysql_reconnects_once_when_the_server_dropped_the_kept_connection(pool, mysql_store):
    lin = mysql_store.person("lin")
    assert call(pool, mysql_store, "get_user", lin.email) == mysql_store.profile(lin)
    admin = pymysql.connect(**MARIADB, autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST "
                           "WHERE DB = %s AND ID <> CONNECTION_ID()", (mysql_store.extra["database"],))
            sessions = [row[0] for row in cursor.fetchall()]
            for session in sessions:
                cursor.execute("KILL %s", (session,))
    finally:
        admin.close()
    assert sessions
    assert call(pool, mysql_store, "login", lin.email, lin.password) == mysql_store.profile(lin)


def test_mysql_database_gone_is_a_failure(pool, mysql_store):
    drop_mariadb(mysql_store.extra["database"])
    with pytest.raises(ScriptFailed):
        call(pool, mysql_store, "get_user", "max@example.com")


# -- SQLite ----------------------------------------------------------------------------------------


def test_sqlite_wants_an_absolute_path(pool, sqlite_store):
    with pytest.raises(ScriptFailed, match="absolute path"):
        call(pool, sqlite_store, "get_user", "max@example.com", configuration={"path": "legacy.sqlite3"})


def test_sqlite_never_creates_a_missing_database(pool, sqlite_store, tmp_path):
    missing = tmp_path / "missing.sqlite3"
    with pytest.raises(ScriptFailed, match="unable to open"):
        call(pool, sqlite_store, "get_user", "max@example.com", configuration={"path": str(missing)})
    assert not missing.exists()


# -- the web service -------------------------------------------------------------------------------


def test_webservice_refused_credentials_are_a_failure_not_a_wrong_password(pool, webservice_store):
    lin = webservice_store.person("lin")
    wrong = {**webservice_store.configuration, "password": "not the API password"}
    with pytest.raises(ScriptFailed, match="HTTP 401"):
        call(pool, webservice_store, "login", lin.email, lin.password, configuration=wrong)
    with pytest.raises(ScriptFailed, match="HTTP 401"):
        call(pool, webservice_store, "get_user", lin.email, configuration=wrong)


def test_webservice_a_wrong_base_url_is_a_failure_not_a_missing_user(pool, webservice_store):
    wrong = {**webservice_store.configuration,
             "base_url": webservice_store.configuration["base_url"].removesuffix("/api") + "/v2"}
    with pytest.raises(ScriptFailed, match="HTTP 40"):
        call(pool, webservice_store, "get_user", "max@example.com", configuration=wrong)


def test_webservice_other_statuses_are_failures(pool, webservice_store):
    with pytest.raises(ScriptFailed, match="HTTP 500"):
        call(pool, webservice_store, "get_user", "boom@example.com")


def test_webservice_sends_passwords_over_https_only(pool, webservice_store):
    plain = {**webservice_store.configuration, "base_url": "http://legacy.example.com/api"}
    with pytest.raises(ScriptFailed, match="https"):
        call(pool, webservice_store, "login", "max@example.com", "max legacy 42", configuration=plain)


# -- ASP.NET Membership ----------------------------------------------------------------------------


def test_membership_refuses_locked_out_and_unapproved_users_yet_finds_them(pool, aspnet_membership_store):
    store = aspnet_membership_store
    for key in ("locked", "unapproved"):
        person = store.person(key)
        with pytest.raises(WrongCredentials):
            call(pool, store, "login", person.email, person.password)
        assert call(pool, store, "get_user", person.email.upper()) == store.profile(person)


def test_membership_encrypted_passwords_are_a_failure_with_a_reason(pool, aspnet_membership_store):
    person = aspnet_membership_store.person("encrypted")
    with pytest.raises(ScriptFailed, match="PasswordFormat 2"):
        call(pool, aspnet_membership_store, "login", person.email, person.password)


def test_membership_hmacsha256_hashes_of_dotnet_4(pool, pg_database):
    store = membership_store(pg_database, "HMACSHA256")
    lin = store.person("lin")
    assert call(pool, store, "login", lin.email, lin.password) == store.profile(lin)
    sha1 = {**store.configuration, "hash_algorithm": "SHA1"}  # the wrong algorithm never matches
    with pytest.raises(WrongCredentials):
        call(pool, store, "login", lin.email, lin.password, configuration=sha1)


def test_membership_application_name_separates_applications_sharing_an_address(pool, aspnet_membership_store):
    store = aspnet_membership_store
    lin = store.person("lin")
    with psycopg.connect(**PG, dbname=store.extra["database"], autocommit=True) as conn:
        add_member(conn, store.extra["shop"], lin, "SHA1", user_id=uuid.uuid4())
    with pytest.raises(ScriptFailed, match="application_name"):
        call(pool, store, "get_user", lin.email)
    site = {**store.configuration, "application_name": "/"}
    assert call(pool, store, "login", lin.email, lin.password, configuration=site) == store.profile(lin)
    shop = {**store.configuration, "application_name": "/SHOP"}
    shopper = call(pool, store, "get_user", lin.email, configuration=shop)
    assert shopper["email"] == lin.email and shopper["user_id"] != store.profile(lin)["user_id"]
