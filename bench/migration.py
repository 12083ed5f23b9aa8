"""Logins through a migrating connection: a local login, and a first login against legacy PostgreSQL."""

import statistics
import time
import uuid

import bcrypt
import psycopg

from bench.harness import measure, production_hasher, provider
from idp.connections import registry as connections
from idp.oauth.clients import create_client

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "legacy password 2024"
USERS = 20
BCRYPT_COST = 10


def _legacy_database() -> str:
    """Create a legacy database of bcrypt-hashed users; return its name."""
    name = f"idp_bench_legacy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as legacy:
        legacy.execute("CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE, password_hash text, "
                       "email_verified boolean, name text, given_name text, family_name text)")
        for n in range(USERS + 1):
            legacy.execute("INSERT INTO users (email, password_hash, email_verified, name) "
                           "VALUES (%s, %s, true, %s)", (f"user{n}@legacy.example", hashed, f"User {n}"))
    return name


def main() -> list[tuple[str, float, float]]:
    """Return rows of (benchmark, seconds, floor seconds)."""
    hasher = production_hasher()
    argon_hash = hasher.hash(PASSWORD)
    verify_floor = measure(lambda: hasher.verify(argon_hash, PASSWORD), 15)
    hash_floor = measure(lambda: hasher.hash(PASSWORD), 15)
    bcrypt_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(BCRYPT_COST))
    bcrypt_floor = measure(lambda: bcrypt.checkpw(PASSWORD.encode(), bcrypt_hash), 15)

    legacy = _legacy_database()
    app = provider()
    try:
        with app.app_context():
            connection = connections.create("legacy", migrating=True, template_name="postgres",
                                            configuration={"dsn": f"postgresql://postgres@127.0.0.1:5432/{legacy}"})
            client, _ = create_client("Bench", ["https://rp.example/cb"], first_party=True,
                                      connection_id=connection.id)
            client_id = client.id
        http = app.test_client()
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": "https://rp.example/cb",
                 "scope": "openid"}

        def login(email: str) -> None:
            http.delete_cookie("idp_session")
            location = http.get("/authorize", query_string=query).headers["Location"]
            response = http.post(location, data={"email": email, "password": PASSWORD})
            assert response.status_code == 302, response.text

        login(f"user{USERS}@legacy.example")  # warm: a sandbox worker and its legacy connection
        first = []
        for n in range(USERS):
            start = time.perf_counter()
            login(f"user{n}@legacy.example")
            first.append(time.perf_counter() - start)
        local = measure(lambda: login("user0@legacy.example"), 15)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{legacy}" WITH (FORCE)')
    migrating_floor = bcrypt_floor + hash_floor
    return [
        ("argon2id verify (floor)", verify_floor, verify_floor),
        ("local login of a migrated user (one argon2id verify)", local, verify_floor),
        (f"bcrypt verify, cost {BCRYPT_COST}, + argon2id hash (floor)", migrating_floor, migrating_floor),
        ("first login, migrating from legacy PostgreSQL", statistics.median(first), migrating_floor),
    ]
