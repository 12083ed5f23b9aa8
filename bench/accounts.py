"""No enumeration by timing: unknown emails against known ones, on the login and reset pages."""

import tempfile
from pathlib import Path

from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from flask_migrate import upgrade

from bench.tokens import PASSWORD, measure
from idp import MIGRATIONS, config, create_app
from idp.accounts.users import create_user
from idp.keys.store import ensure_keys


def main() -> list[tuple[str, float, float]]:
    """Return rows of (benchmark, seconds, floor seconds)."""
    hasher = PasswordHasher(config.ARGON2_TIME_COST, config.ARGON2_MEMORY_COST, config.ARGON2_PARALLELISM)
    hashed = hasher.hash(PASSWORD)
    floor = measure(lambda: hasher.verify(hashed, PASSWORD), 15)
    tmp = Path(tempfile.mkdtemp())
    app = create_app({
        "SECRET_KEY": "bench", "ISSUER": "http://localhost", "DATABASE_URL": f"sqlite:///{tmp / 'a.db'}",
        "KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(), "WTF_CSRF_ENABLED": False,
        "INSTANCE_PATH": str(tmp), "RATELIMIT_ENABLED": False,
        "THROTTLE_AFTER": 10**9, "LOCKOUT_THRESHOLD": 10**9,  # measure the password check, not the lock
    })
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        ensure_keys()
        create_user("known@example.com", PASSWORD)
    http = app.test_client()

    def login(email: str) -> None:
        assert http.post("/u/login", data={"email": email, "password": "wrong password"}).status_code == 400

    def reset(email: str) -> None:
        assert http.post("/u/reset-password", data={"email": email}).status_code == 200

    wrong = measure(lambda: login("known@example.com"), 15)
    unknown = measure(lambda: login("unknown@example.com"), 15)
    known_reset = measure(lambda: reset("known@example.com"), 50)
    unknown_reset = measure(lambda: reset("unknown@example.com"), 50)
    return [
        ("argon2id verify, production parameters (floor)", floor, floor),
        ("login, known email, wrong password", wrong, floor),
        ("login, unknown email (dummy verify)", unknown, floor),
        ("  unknown ÷ known (1.0 = indistinguishable)", unknown, wrong),
        ("reset request, known email (mail sent in background)", known_reset, unknown_reset),
        ("reset request, unknown email (floor: the same page)", unknown_reset, unknown_reset),
    ]
