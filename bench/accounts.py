"""No enumeration by timing: unknown emails against known ones, on the login, sign-up and reset pages."""

import itertools

from bench.harness import measure, production_hasher, provider
from bench.tokens import PASSWORD
from idp.connections.models import NATIVE_ID
from idp.users.accounts import create_user


def main() -> list[tuple[str, float, float]]:
    """Return rows of (benchmark, seconds, floor seconds)."""
    hasher = production_hasher()
    hashed = hasher.hash(PASSWORD)
    floor = measure(lambda: hasher.verify(hashed, PASSWORD), 15)
    # Measure the password check, not the lock.
    app = provider(THROTTLE_AFTER=10**9, LOCKOUT_THRESHOLD=10**9)
    with app.app_context():
        create_user("known@example.com", PASSWORD, NATIVE_ID)
    http = app.test_client()

    def login(email: str) -> None:
        assert http.post("/u/login", data={"email": email, "password": "wrong password"}).status_code == 400

    def reset(email: str) -> None:
        assert http.post("/u/reset-password", data={"email": email}).status_code == 200

    def signup(email: str, status: int) -> None:
        answer = http.post("/u/signup", data={"email": email, "password": "a fine new passphrase"})
        assert answer.status_code == status

    fresh = itertools.count()
    hash_floor = measure(lambda: hasher.hash(PASSWORD), 15)
    taken = measure(lambda: signup("known@example.com", 400), 15)
    new = measure(lambda: signup(f"new{next(fresh)}@example.com", 302), 15)
    wrong = measure(lambda: login("known@example.com"), 15)
    unknown = measure(lambda: login("unknown@example.com"), 15)
    known_reset = measure(lambda: reset("known@example.com"), 50)
    unknown_reset = measure(lambda: reset("unknown@example.com"), 50)
    return [
        ("argon2id verify, production parameters (floor)", floor, floor),
        ("login, known email, wrong password", wrong, floor),
        ("login, unknown email (dummy verify)", unknown, floor),
        ("  unknown ÷ known (1.0 = indistinguishable)", unknown, wrong),
        ("argon2id hash, production parameters (floor)", hash_floor, hash_floor),
        ("sign-up, new email", new, hash_floor),
        ("sign-up, email taken (hashes all the same)", taken, hash_floor),
        ("  taken ÷ new (1.0 = indistinguishable)", taken, new),
        ("reset request, known email (mail sent in background)", known_reset, unknown_reset),
        ("reset request, unknown email (floor: the same page)", unknown_reset, unknown_reset),
    ]
