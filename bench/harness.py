"""What every benchmark needs: a median timer, the production hasher, a provider and a code-flow request."""

import statistics
import tempfile
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import upgrade

from idp import SCHEMA, config, create_app
from idp.keys.store import ensure_keys


def measure(fn: Callable[[], object], rounds: int) -> float:
    """Return the median seconds of one call, after a warm-up call."""
    fn()  # warm up caches and lazy imports
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def production_hasher() -> PasswordHasher:
    """Return argon2id with the production parameters of idp/config.py."""
    return PasswordHasher(config.ARGON2_TIME_COST, config.ARGON2_MEMORY_COST, config.ARGON2_PARALLELISM)


def provider(**settings: Any) -> Flask:
    """Return a provider on a fresh, migrated SQLite database with keys; per-IP limits off."""
    tmp = Path(tempfile.mkdtemp())
    app = create_app({
        "SECRET_KEY": "bench", "ISSUER": "http://localhost", "DATABASE_URL": f"sqlite:///{tmp / 'idp.db'}",
        "KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(), "WTF_CSRF_ENABLED": False,
        "INSTANCE_PATH": str(tmp), "RATELIMIT_ENABLED": False, **settings,
    })
    with app.app_context():
        upgrade(directory=SCHEMA)
        ensure_keys()
    return app


def authorization(client_id: str) -> tuple[dict[str, str], str]:
    """Return the query of a code-flow authorization request with PKCE, and its code verifier."""
    verifier = "v" * 64
    challenge = urlsafe_b64encode(sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": "https://rp.example/cb",
             "scope": "openid profile email", "code_challenge": challenge, "code_challenge_method": "S256"}
    return query, verifier
