"""Importing users in bulk on PostgreSQL: `idp migration finish` over a legacy PostgreSQL table
(export_users, the postgres template) and an Auth0 users file (`idp users import`), in users per
second, against the floor of the same rows copied into the users table with one COPY statement; and
how much the process grew while importing (the file is streamed, so it should not grow with it).

`python -m bench.imports [--users N]` makes its own databases and drops them at the end.
"""

import argparse
import json
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bcrypt
import psycopg

from bench.harness import provider
from bench.management import ADMIN_DSN, database
from idp.connections import imports, jobs
from idp.connections import registry as connections
from idp.connections.models import NATIVE_ID, Connection
from idp.db import db

USERS = 100_000
HASH = bcrypt.hashpw(b"a legacy password", bcrypt.gensalt(10)).decode()


@contextmanager
def legacy_store(count: int) -> Iterator[dict[str, str]]:
    """A legacy users table as the postgres template reads it; yield the connection's configuration."""
    name = f"idp_bench_legacy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
            conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, "
                         "password_hash text, email_verified boolean NOT NULL, name text, given_name text, "
                         "family_name text)")
            with conn.cursor().copy("COPY users FROM STDIN") as copy:
                for n in range(count):
                    copy.write_row((n + 1, f"user{n:06d}@legacy.example", HASH, n % 2 == 0,
                                    f"User {n}", "User", str(n)))
        yield {"host": "127.0.0.1", "port": "5432", "dbname": name, "user": "postgres"}
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def users_file(count: int, path: Path) -> None:
    """Write an Auth0 users file (bcrypt hashes, names, metadata) a user at a time."""
    with path.open("w") as file:
        file.write("[")
        for n in range(count):
            file.write(("," if n else "") + json.dumps({
                "email": f"file{n:06d}@file.example", "email_verified": True, "user_id": f"f{n}",
                "name": f"File User {n}", "password_hash": HASH, "app_metadata": {"plan": "pro"}}))
        file.write("]")


def rss_mb() -> float:
    """This process's peak resident size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def copy_floor(count: int) -> float:
    """Seconds to COPY `count` users (the rows an import writes) into a fresh idp database."""
    with database() as url:
        app = provider(DATABASE_URL=url)
        with app.app_context():
            db.engine.dispose()
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            columns = "id, connection_id, email, email_normalized, email_verified, password_hash, name, " \
                      "created_at, updated_at, user_metadata, app_metadata, logins_count, blocked"
            with conn.cursor().copy(f"COPY users ({columns}) FROM STDIN") as copy:
                for n in range(count):
                    email = f"copy{n:06d}@file.example"
                    copy.write_row((f"{NATIVE_ID}|c{n}", NATIVE_ID, email, email, True, HASH, f"User {n}",
                                    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "{}", '{"plan": "pro"}',
                                    0, False))
            return time.perf_counter() - started


def run(count: int = USERS) -> dict[str, Any]:
    """Time the three ways in; return seconds and the peak growth of the process."""
    figures: dict[str, Any] = {"users": count, "copy": copy_floor(count)}
    with database() as url, legacy_store(count) as configuration:
        app = provider(DATABASE_URL=url, SCRIPT_TIMEOUT=60)
        with app.app_context():
            connection = connections.create("legacy", migrating=True, template_name="postgres",
                                            configuration=configuration)
            before = rss_mb()
            started = time.perf_counter()
            summary = imports.finish(connection)
            figures["finish"] = time.perf_counter() - started
            figures["finish_growth"] = rss_mb() - before
            assert summary.inserted == count, summary.as_dict()

            path = Path(tempfile.mkdtemp()) / "users.json"
            users_file(count, path)
            figures["file_mb"] = path.stat().st_size / 2**20
            before = rss_mb()
            started = time.perf_counter()
            with path.open("rb") as upload:
                job = jobs.create(db.session.get(Connection, NATIVE_ID), upload, upsert=False)
            jobs.run(job.id)
            figures["file"] = time.perf_counter() - started
            figures["file_growth"] = rss_mb() - before
            done = db.session.get(jobs.ImportJob, job.id)
            assert done is not None and done.inserted == count, done.as_dict(None)
            db.engine.dispose()
    return figures


def main() -> list[tuple[str, float, float]]:
    """Rows of (benchmark, seconds per user, floor seconds per user) for `make bench`'s table."""
    figures = run(10_000)
    floor = figures["copy"] / figures["users"]
    return [("import: migration finish, per user", figures["finish"] / figures["users"], floor),
            ("import: Auth0 users file, per user", figures["file"] / figures["users"], floor)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    args = parser.parse_args()
    result = run(args.users)
    n, floor = result["users"], result["copy"]
    print(f"{'import of ' + format(n, ',') + ' users':<44} {'users/s':>10} {'× floor':>8}")
    print(f"{'floor: one COPY into users':<44} {n / floor:>10,.0f} {1:>8.2f}")
    print(f"{'idp migration finish (export_users, PG)':<44} {n / result['finish']:>10,.0f} "
          f"{result['finish'] / floor:>8.2f}")
    print(f"{'Auth0 users file (users-imports job)':<44} {n / result['file']:>10,.0f} "
          f"{result['file'] / floor:>8.2f}")
    print(f"# peak growth of the process: {result['finish_growth']:.0f} MiB during finish, "
          f"{result['file_growth']:.0f} MiB more during a {result['file_mb']:.0f} MiB file")
