"""The management API's user search on PostgreSQL with 100,000 users: p50 and p95 of five queries.

`python -m bench.management` creates a database of its own (dropped at the end), migrates it, copies in
the users and times GET /api/v2/users through the Flask test client with a read:users token.
`--revision 0010` stops the schema at that revision (the figures before 0011's indexes); `--explain`
prints PostgreSQL's plan of every statement a query runs.
"""

import argparse
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade
from psycopg.types.json import Json
from sqlalchemy import event

from bench.harness import provider
from idp import SCHEMA
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.oauth import apis, tokens

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
USERS = 100_000
RUNS = 50
LEGACY_ID = "con_bench_legacy"
FIRST = ["John", "Joanna", "Jose", "Mary", "Ahmed", "Wei", "Priya", "Olga", "Lucas", "Fatima", "Kenji",
         "Chloe", "Diego", "Amara", "Noah", "Ingrid", "Ravi", "Sofia", "Tomasz", "Yuki", "Emma", "Jonas"]
LAST = ["Smith", "Garcia", "Nguyen", "Müller", "Okafor", "Kowalski", "Rossi", "Tanaka", "Silva", "Khan",
        "Johansson", "Dubois", "O'Brien", "Hernández", "Ivanova", "Cohen", "Patel", "Larsen"]
DOMAINS = ["example.com", "mail.example", "corp.example.org", "example.net", "inbox.example"]
PLANS = ["free", "free", "free", "pro", "team", "enterprise"]
VIA = ["login"] * 6 + ["password_reset"] * 2 + ["import"] * 2
START = datetime(2016, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)

# What is timed: (label, query parameters).
QUERIES: list[tuple[str, dict[str, str]]] = [
    ('exact email: email:"user12345@example.com"', {"q": 'email:"user12345@example.com"'}),
    ("wildcard and range: name:jo* AND created_at:[2021 TO 2022]",
     {"q": "name:jo* AND created_at:[2021-01-01 TO 2022-12-31]"}),
    ("_exists_:migration", {"q": "_exists_:migration"}),
    ("migration.via:login, include_totals", {"q": "migration.via:login", "include_totals": "true"}),
    ("deep page: page=900&per_page=100", {"page": "900", "per_page": "100"}),
    ("last_login:[2025-06-01 TO 2025-06-07]", {"q": "last_login:[2025-06-01 TO 2025-06-07]"}),
]


@contextmanager
def database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database of our own; yield its SQLAlchemy URL, drop it afterwards."""
    name = f"idp_bench_mgmt_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


COLUMNS = ("id", "connection_id", "email", "email_normalized", "email_verified", "password_hash", "name",
           "given_name", "family_name", "nickname", "created_at", "updated_at", "last_login_at",
           "user_metadata", "app_metadata", "migrated_at", "legacy_id", "migrated_via", "logins_count",
           "last_ip")


def users(count: int) -> Iterator[tuple[Any, ...]]:
    """Rows for COPY: ten years of sign-ups, most signed in since, two in five migrated."""
    rng = random.Random(12345)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("bench password")
    span = (NOW - START).total_seconds()
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"user{n}" if rng.random() < 0.9 else f"User{n}"  # some stored as typed, mixed case
        email = f"{local}@{DOMAINS[n % len(DOMAINS)]}"  # user12345 is at example.com
        created = START + timedelta(seconds=rng.random() * span)
        migrated = rng.random() < 0.4
        logins = 0 if rng.random() < 0.2 else rng.randint(1, 400)
        last_login = created + (NOW - created) * rng.random() if logins else None
        app_metadata: dict[str, Any] = {"plan": rng.choice(PLANS), "tier": rng.randint(0, 5),
                                        "beta": rng.random() < 0.1}
        if rng.random() < 0.3:
            app_metadata["org"] = {"id": f"org_{rng.randint(1, 500)}"}
        user_metadata = {"lang": rng.choice(["en", "fr", "de", "es", "ja"])} if rng.random() < 0.5 else {}
        yield (
            secrets.token_hex(12), LEGACY_ID if migrated else NATIVE_ID, email, email.lower(),
            rng.random() < 0.7, hashed, f"{first} {last}", first, last,
            first.lower() if rng.random() < 0.2 else None, created, last_login or created, last_login,
            Json(user_metadata), Json(app_metadata), created if migrated else None,
            str(100_000 + n) if migrated else None, rng.choice(VIA) if migrated else None, logins,
            f"198.51.100.{rng.randint(1, 254)}" if logins else None,
        )


def populate(url: str, count: int) -> None:
    """Copy the users in, then VACUUM ANALYZE as autovacuum would soon after."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO connections (id, name, migrating, created_at) VALUES (%s, %s, true, now())",
                     (LEGACY_ID, "legacy-db"))
        with conn.cursor() as cur, cur.copy(f"COPY users ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in users(count):
                copy.write_row(row)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE users")


def token(app: Flask) -> str:
    """A read:users client-credentials token for the management API, signed with idp's key."""
    with app.app_context():
        now = int(time.time())
        return tokens.sign({
            "iss": app.config["ISSUER"], "sub": "bench-mgmt", "aud": apis.management_identifier(),
            "client_id": "bench-mgmt", "azp": "bench-mgmt", "jti": secrets.token_urlsafe(16), "iat": now,
            "exp": now + 3600, "scope": "read:users", "gty": tokens.CLIENT_CREDENTIALS,
        }, typ="at+jwt")


def percentiles(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Return p50 and p95 seconds of one call over `runs`, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    cuts = statistics.quantiles(times, n=20, method="inclusive")
    return statistics.median(times), cuts[18]


def getter(http: FlaskClient, bearer: str, params: dict[str, str]) -> Callable[[], Any]:
    def get() -> Any:
        headers = {"Authorization": f"Bearer {bearer}"}
        response = http.get("/api/v2/users", query_string=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json
    return get


def explain(app: Flask, http: FlaskClient, bearer: str, params: dict[str, str]) -> None:
    """Print EXPLAIN ANALYZE of the statements on users that one request runs."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FROM users" in statement:
            statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        getter(http, bearer, params)()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        for statement, parameters in statements:
            print("   ", " ".join(statement.split())[:300], parameters)
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            for (line,) in plan:
                print("      ", line)


def run(count: int = USERS, runs: int = RUNS, revision: str = "head",
        show_plans: bool = False) -> list[tuple[str, float, float]]:
    """Return (label, p50, p95) for GET /users/<id> (the floor) and each query."""
    with database() as url:
        app = provider(DATABASE_URL=url)  # migrated to head: undo down to `revision` if asked
        if revision != "head":
            with app.app_context():
                downgrade(directory=SCHEMA, revision=revision)
                db.engine.dispose()
        start = time.perf_counter()
        populate(url, count)
        print(f"# {count:,} users copied in {time.perf_counter() - start:.1f} s; schema at {revision}")
        http, bearer = app.test_client(), token(app)
        some = getter(http, bearer, {"per_page": "1"})()[0]["user_id"]
        headers = {"Authorization": f"Bearer {bearer}"}
        floor = percentiles(lambda: http.get(f"/api/v2/users/{some}", headers=headers), runs)
        rows = [("GET /users/<id> (floor)", *floor)]
        for label, params in QUERIES:
            if show_plans:
                print(f"# {label}")
                explain(app, http, bearer, params)
            rows.append((label, *percentiles(getter(http, bearer, params), runs)))
        with app.app_context():
            db.engine.dispose()
        return rows


def main() -> list[tuple[str, float, float]]:
    """Return rows of (benchmark, p50 seconds, floor seconds) for `make bench`'s table."""
    rows = run()
    floor = rows[0][1]
    return [(f"users search: {label}", p50, floor) for label, p50, _ in rows]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--revision", default="head", help="migrate only this far (e.g. 0010)")
    parser.add_argument("--explain", action="store_true", help="print each query's plans")
    args = parser.parse_args()
    began = time.perf_counter()
    table = run(args.users, args.runs, args.revision, args.explain)
    print(f"{'GET /api/v2/users':<64} {'p50 ms':>8} {'p95 ms':>8}")
    for label, p50, p95 in table:
        print(f"{label:<64} {p50 * 1000:>8.2f} {p95 * 1000:>8.2f}")
    print(f"# {time.perf_counter() - began:.0f} s in all")
