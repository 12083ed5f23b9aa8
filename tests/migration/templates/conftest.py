"""Live legacy stores for the script templates: PostgreSQL, MariaDB, SQLite and a web service.

Every store holds the same people, each in the schema and hash format its template assumes, and
says which profile both scripts must return for each of them. Each test gets a store of its own
(a fresh database, file or server) and it is removed afterwards.
"""

import base64
import hashlib
import hmac
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import psycopg
import pymysql
import pytest
from flask import Flask, Response, jsonify, request
from passlib.hash import phpass
from psycopg import sql
from werkzeug.serving import make_server

from tests.conftest import PG_VERSION, require_service

STORES = ["postgres", "mysql", "sqlite", "webservice", "aspnet_membership"]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
API_USER, API_PASSWORD = "idp-migration", "api secret: 7f3c"


@dataclass(frozen=True)
class Person:
    """Someone with an account in the legacy store."""

    key: str
    id: int
    email: str  # as the legacy store keeps it
    password: str | None  # None: no password (signed in with Google, say)
    verified: bool
    given_name: str | None
    family_name: str | None
    scheme: str = "2y"  # how the SQL stores hash the password: 2y, 2b, 2a (bcrypt) or phpass

    @property
    def name(self) -> str:
        return " ".join(n for n in (self.given_name, self.family_name) if n)


PEOPLE = [
    Person("lin", 1001, "Lin.Chen@Example.com", "Lin's légacy pässword", True, "Lin", "Chen"),
    Person("max", 1002, "max@example.com", "max legacy 42", False, "Max", "Mustermann", "2b"),
    Person("ada", 1003, "ADA@EXAMPLE.ORG", "ada legacy password", True, "Ada", None, "2a"),
    Person("pat", 1004, "pat.wp@example.net", "an old WordPress password", True, "Pat", "Press", "phpass"),
    Person("sso", 1005, "sso.only@example.com", None, True, "Sam", "Single"),
]


@dataclass
class Store:
    """A live legacy store, the template that reads it, and what the template must find there."""

    template: str
    configuration: dict[str, str]
    people: list[Person]
    profile: Callable[[Person], dict[str, Any]]  # what login and get_user return for a person
    stop: Callable[[], None]  # take the store away (drop the database, stop the server)
    extra: dict[str, Any] = field(default_factory=dict)

    def person(self, key: str) -> Person:
        return next(p for p in self.people if p.key == key)


def bcrypt_hash(password: str, scheme: str = "2y") -> str:
    """Hash like the legacy application did: bcrypt (PHP's $2y$ is bcrypt's $2b$) or phpass."""
    if scheme == "phpass":
        return phpass.using(rounds=8).hash(password)
    prefix = b"2a" if scheme == "2a" else b"2b"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4, prefix=prefix)).decode()
    return hashed.replace("$2b$", "$2y$", 1) if scheme == "2y" else hashed


def sql_profile(person: Person) -> dict[str, Any]:
    """The profile the SQL templates make of a row of the people's users table."""
    return {"user_id": str(person.id), "email": person.email, "email_verified": person.verified,
            "name": person.name, "given_name": person.given_name, "family_name": person.family_name}


def unique_name() -> str:
    return f"legacy_{uuid.uuid4().hex[:12]}"


# -- PostgreSQL ------------------------------------------------------------------------------------


def pg_admin() -> psycopg.Connection:
    """Connect to the PostgreSQL server as its superuser."""
    try:
        return psycopg.connect(**PG, dbname="postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        require_service("PostgreSQL", f"pg_ctlcluster --skip-systemctl-redirect {PG_VERSION} main start")
        raise


def drop_pg(name: str) -> None:
    """Drop a legacy database, ending the sessions still in it."""
    with pg_admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pg_terminate(name: str) -> int:
    """End every session in a database, as a server restart would; return how many there were."""
    with pg_admin() as admin:
        rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
    return len(rows)


@pytest.fixture
def new_pg_database() -> Iterator[Callable[[], str]]:
    """Make fresh, empty PostgreSQL databases for this test, dropped after it."""
    names: list[str] = []

    def create() -> str:
        name = unique_name()
        with pg_admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        return name

    yield create
    for name in names:
        drop_pg(name)


@pytest.fixture
def pg_database(new_pg_database: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database of this test's own."""
    return new_pg_database()


@pytest.fixture
def postgres_store(pg_database: str) -> Store:
    """A PHP application's users table in PostgreSQL, with bcrypt ($2y$ …) and phpass hashes."""
    with psycopg.connect(**PG, dbname=pg_database, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE users (
                id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                email varchar(320) NOT NULL UNIQUE,
                password_hash varchar(255),
                email_verified boolean NOT NULL DEFAULT false,
                name text,
                given_name text,
                family_name text,
                locale varchar(16) NOT NULL DEFAULT 'en',
                phone varchar(32),
                is_active boolean NOT NULL DEFAULT true,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                last_login_at timestamptz
            )""")
        conn.execute("CREATE INDEX users_lower_email ON users (lower(email))")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO users (id, email, password_hash, email_verified, name, given_name, family_name, "
                "phone, last_login_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() - interval '3 days')",
                [(p.id, p.email, p.password and bcrypt_hash(p.password, p.scheme), p.verified, p.name,
                  p.given_name, p.family_name, "+49 30 1234567") for p in PEOPLE],
            )
    configuration = {"host": PG["host"], "port": str(PG["port"]), "dbname": pg_database, "user": PG["user"]}
    return Store("postgres", configuration, PEOPLE, sql_profile, lambda: drop_pg(pg_database),
                 {"database": pg_database})


# -- ASP.NET Membership (a PostgreSQL copy of aspnet_regsql's schema) --------------------------------


def membership_hash(password: str, salt: bytes, algorithm: str) -> str:
    """SqlMembershipProvider.EncodePassword for PasswordFormat 1 (Hashed), from .NET's reference source."""
    message = password.encode("utf-16-le")
    if algorithm == "SHA1":
        return base64.b64encode(hashlib.sha1(salt + message).digest()).decode()
    # HMACSHA256: the salt becomes the key, repeated to the 64 bytes of the algorithm's default key.
    key = (salt * (64 // len(salt) + 1))[:64]
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


MEMBERS = [p for p in PEOPLE if p.password is not None and p.key != "pat"] + [
    Person("locked", 2001, "Locked.Out@Example.com", "locked legacy password", True, None, None),
    Person("unapproved", 2002, "waiting@example.com", "unapproved legacy password", True, None, None),
    Person("clear", 2003, "clear.text@example.com", "stored in the clear", True, None, None),
    Person("encrypted", 2004, "encrypted@example.com", "needs the machineKey", True, None, None),
]


def member_id(person: Person) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://legacy.example.com/users/{person.id}")


def member_name(person: Person) -> str:
    return person.email.split("@")[0].lower()


def membership_profile(person: Person) -> dict[str, Any]:
    """The profile aspnet_membership.py makes of a member."""
    return {"user_id": str(member_id(person)), "email": person.email, "email_verified": False,
            "nickname": member_name(person),
            "app_metadata": {"aspnet_approved": person.key != "unapproved",
                             "aspnet_locked_out": person.key == "locked"}}


def create_membership_schema(conn: psycopg.Connection) -> None:
    """Create aspnet_regsql's three membership tables, names quoted as SQL Server spells them."""
    conn.execute("""
        CREATE TABLE "aspnet_Applications" (
            "ApplicationName" varchar(256) NOT NULL,
            "LoweredApplicationName" varchar(256) NOT NULL UNIQUE,
            "ApplicationId" uuid PRIMARY KEY,
            "Description" varchar(256)
        )""")
    conn.execute("""
        CREATE TABLE "aspnet_Users" (
            "ApplicationId" uuid NOT NULL REFERENCES "aspnet_Applications",
            "UserId" uuid PRIMARY KEY,
            "UserName" varchar(256) NOT NULL,
            "LoweredUserName" varchar(256) NOT NULL,
            "MobileAlias" varchar(16),
            "IsAnonymous" boolean NOT NULL DEFAULT false,
            "LastActivityDate" timestamp NOT NULL DEFAULT now()
        )""")
    conn.execute("""
        CREATE TABLE "aspnet_Membership" (
            "ApplicationId" uuid NOT NULL REFERENCES "aspnet_Applications",
            "UserId" uuid PRIMARY KEY REFERENCES "aspnet_Users",
            "Password" varchar(128) NOT NULL,
            "PasswordFormat" integer NOT NULL DEFAULT 0,
            "PasswordSalt" varchar(128) NOT NULL,
            "MobilePIN" varchar(16),
            "Email" varchar(256),
            "LoweredEmail" varchar(256),
            "PasswordQuestion" varchar(256),
            "PasswordAnswer" varchar(128),
            "IsApproved" boolean NOT NULL,
            "IsLockedOut" boolean NOT NULL,
            "CreateDate" timestamp NOT NULL DEFAULT now(),
            "LastLoginDate" timestamp NOT NULL DEFAULT now(),
            "LastPasswordChangedDate" timestamp NOT NULL DEFAULT now(),
            "LastLockoutDate" timestamp NOT NULL DEFAULT '1754-01-01',
            "FailedPasswordAttemptCount" integer NOT NULL DEFAULT 0,
            "FailedPasswordAttemptWindowStart" timestamp NOT NULL DEFAULT '1754-01-01',
            "FailedPasswordAnswerAttemptCount" integer NOT NULL DEFAULT 0,
            "FailedPasswordAnswerAttemptWindowStart" timestamp NOT NULL DEFAULT '1754-01-01',
            "Comment" text
        )""")
    conn.execute('CREATE INDEX "aspnet_Membership_index" ON "aspnet_Membership" '
                 '("ApplicationId", "LoweredEmail")')


def add_application(conn: psycopg.Connection, name: str) -> uuid.UUID:
    application = uuid.uuid4()
    conn.execute('INSERT INTO "aspnet_Applications" VALUES (%s, %s, %s, NULL)',
                 (name, name.lower(), application))
    return application


def add_member(conn: psycopg.Connection, application: uuid.UUID, person: Person, algorithm: str,
               user_id: uuid.UUID | None = None) -> None:
    """Add a user as SqlMembershipProvider.CreateUser would, then apply the person's peculiarity."""
    user_id = user_id or member_id(person)
    salt = os.urandom(16)
    password_format, password = 1, membership_hash(person.password or "", salt, algorithm)
    if person.key == "clear":
        password_format, password = 0, person.password or ""
    elif person.key == "encrypted":
        password_format, password = 2, base64.b64encode(os.urandom(48)).decode()  # machineKey-encrypted
    conn.execute('INSERT INTO "aspnet_Users" ("ApplicationId", "UserId", "UserName", "LoweredUserName") '
                 "VALUES (%s, %s, %s, %s)", (application, user_id, member_name(person), member_name(person)))
    conn.execute(
        'INSERT INTO "aspnet_Membership" ("ApplicationId", "UserId", "Password", "PasswordFormat", '
        '"PasswordSalt", "Email", "LoweredEmail", "IsApproved", "IsLockedOut", "FailedPasswordAttemptCount") '
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (application, user_id, password, password_format, base64.b64encode(salt).decode(), person.email,
         person.email.lower(), person.key != "unapproved", person.key == "locked",
         5 if person.key == "locked" else 0),
    )


def membership_store(database: str, algorithm: str) -> Store:
    """Fill a database with two applications' members, passwords hashed with `algorithm`."""
    with psycopg.connect(**PG, dbname=database, autocommit=True) as conn:
        create_membership_schema(conn)
        site = add_application(conn, "/")
        shop = add_application(conn, "/Shop")
        for person in MEMBERS:
            add_member(conn, site, person, algorithm)
        add_member(conn, shop, Person("shopper", 3001, "shopper@example.com", "shop pw", True, None, None),
                   algorithm)
    configuration = {"driver": "psycopg", "host": PG["host"], "port": str(PG["port"]), "database": database,
                     "user": PG["user"]}
    if algorithm != "SHA1":
        configuration["hash_algorithm"] = algorithm
    return Store("aspnet_membership", configuration, MEMBERS, membership_profile, lambda: drop_pg(database),
                 {"database": database, "shop": shop})


@pytest.fixture
def aspnet_membership_store(pg_database: str) -> Store:
    """An ASP.NET 2.0 site's membership database (SHA1 hashes, the default before .NET 4)."""
    return membership_store(pg_database, "SHA1")


# -- MariaDB -----------------------------------------------------------------------------------------


def mariadb_admin() -> pymysql.Connection:
    """Connect to the MariaDB server as root."""
    try:
        return pymysql.connect(**MARIADB, autocommit=True, connect_timeout=3)
    except pymysql.err.OperationalError:
        require_service("MariaDB",
                        "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd")
        raise


def drop_mariadb(name: str) -> None:
    admin = mariadb_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.close()


@pytest.fixture
def mysql_store() -> Iterator[Store]:
    """A PHP application's users table in MariaDB: first and last names, a BIT(1) flag, binary collation."""
    name = unique_name()
    admin = mariadb_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cursor.execute(f"USE `{name}`")
            # utf8mb4_bin: the lookup must ignore case without help from a *_ci collation.
            cursor.execute("""
                CREATE TABLE users (
                    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                    email VARCHAR(191) COLLATE utf8mb4_bin NOT NULL UNIQUE,
                    password_hash VARCHAR(255) NULL,
                    first_name VARCHAR(100) NULL,
                    last_name VARCHAR(100) NULL,
                    email_verified BIT(1) NOT NULL DEFAULT b'0',
                    status ENUM('active', 'suspended') NOT NULL DEFAULT 'active',
                    locale VARCHAR(16) NOT NULL DEFAULT 'en',
                    phone VARCHAR(32) NULL,
                    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
                    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
                    last_login_at DATETIME NULL
                ) ENGINE=InnoDB""")
            cursor.executemany(
                "INSERT INTO users (id, email, password_hash, first_name, last_name, email_verified, phone) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(p.id, p.email, p.password and bcrypt_hash(p.password, p.scheme), p.given_name,
                  p.family_name, int(p.verified), "+33 1 23 45 67 89") for p in PEOPLE],
            )
    finally:
        admin.close()
    configuration = {"host": MARIADB["host"], "port": str(MARIADB["port"]), "database": name,
                     "user": MARIADB["user"], "password": MARIADB["password"]}
    yield Store("mysql", configuration, PEOPLE, sql_profile, lambda: drop_mariadb(name), {"database": name})
    drop_mariadb(name)


# -- SQLite ------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    """A small application's SQLite database file."""
    path = tmp_path / "legacy users.sqlite3"  # a space: the path must be quoted in the URI
    db = sqlite3.connect(path)
    db.execute("""
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            email_verified INTEGER NOT NULL DEFAULT 0,
            name TEXT,
            given_name TEXT,
            family_name TEXT,
            locale TEXT NOT NULL DEFAULT 'en',
            phone TEXT,
            is_active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
            updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
            last_login_at TEXT
        )""")
    db.executemany(
        "INSERT INTO users (id, email, password_hash, email_verified, name, given_name, family_name) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(p.id, p.email, p.password and bcrypt_hash(p.password, p.scheme), int(p.verified), p.name,
          p.given_name, p.family_name) for p in PEOPLE],
    )
    db.commit()
    db.close()
    return Store("sqlite", {"path": str(path)}, PEOPLE, sql_profile, path.unlink, {"path": path})


# -- a web service -------------------------------------------------------------------------------------


def api_profile(person: Person) -> dict[str, Any]:
    """The profile the legacy API answers with (and so what webservice.py returns)."""
    return {"user_id": person.id, "email": person.email, "email_verified": person.verified,
            "name": person.name, "given_name": person.given_name, "family_name": person.family_name,
            "user_metadata": {"newsletter": person.key == "lin"}}


EXPORT_PAGE = 2  # users per page of the API's export: the five people take three pages


def legacy_api(people: list[Person]) -> Flask:
    """The legacy application's API for idp: Basic Auth, POST /api/login, GET /api/users (one, count, all)."""
    api = Flask("legacy_api")
    by_email = {p.email.lower(): p for p in people}
    hashes = {p.key: bcrypt_hash(p.password, "2b") for p in people if p.password}

    @api.before_request
    def authenticate() -> Response | None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or not (
                hmac.compare_digest(auth.username or "", API_USER)
                and hmac.compare_digest(auth.password or "", API_PASSWORD)):
            return Response("who are you?", 401, {"WWW-Authenticate": 'Basic realm="legacy api"'})
        return None

    @api.post("/api/login")
    def login() -> Any:
        data = request.get_json()
        person = by_email.get(str(data.get("email", "")).lower())
        if person is None or person.key not in hashes \
                or not bcrypt.checkpw(str(data.get("password", "")).encode(), hashes[person.key].encode()):
            return jsonify(error="invalid_credentials"), 401
        return jsonify(api_profile(person))

    @api.get("/api/users")
    def users() -> Any:
        email = request.args.get("email", "").lower()
        if email == "boom@example.com":
            return jsonify(error="database unavailable"), 500
        person = by_email.get(email)
        return (jsonify(api_profile(person)), 200) if person else (jsonify(error="not_found"), 404)

    @api.get("/api/users/count")
    def count() -> Any:
        return jsonify(count=len(people))

    @api.get("/api/users/export")
    def export() -> Any:
        after = int(request.args.get("after", 0))
        page = sorted((p for p in people if p.id > after), key=lambda p: p.id)[:EXPORT_PAGE]
        users = [{**api_profile(p), **({"password_hash": hashes[p.key]} if p.key in hashes else {})}
                 for p in page]
        return jsonify(users=users, next=page[-1].id if len(page) == EXPORT_PAGE else None)

    return api


@pytest.fixture
def webservice_store() -> Iterator[Store]:
    """The legacy application's HTTP API on a free loopback port."""
    server = make_server("127.0.0.1", 0, legacy_api(PEOPLE))  # one request at a time, no keep-alive
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.shutdown()
            server.server_close()
            thread.join(5)

    configuration = {"base_url": f"http://127.0.0.1:{server.server_port}/api", "username": API_USER,
                     "password": API_PASSWORD, "timeout": "5"}
    yield Store("webservice", configuration, PEOPLE, api_profile, stop)
    stop()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Store:
    """Each live store in turn."""
    return request.getfixturevalue(f"{request.param}_store")
