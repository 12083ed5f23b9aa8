"""The signing-key lifecycle: next → current → previous → retired, safe with many instances."""

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, current_app
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from idp import cache
from idp.db import claim_once, db, utcnow
from idp.errors import IdpError, InvalidInput
from idp.keys import kek
from idp.keys.models import CURRENT, NEXT, PREVIOUS, PUBLISHED, RETIRED, REVOKED, SigningKey
from idp.web import Document

# Decrypted private keys by kid: immutable once made, so caching them per process is safe.
_private_keys: dict[str, rsa.RSAPrivateKey] = {}
# This process's view of the published keys, per database: when it was last checked, and what it was.
_key_sets: dict[str, tuple[float, "KeySet"]] = {}
cache.on_forget(_key_sets.clear)
# When this process last looked for due rotations and expired keys, per database.
_last_maintained: dict[str, float] = {}


class KeyNotFound(InvalidInput):
    """No published key has that kid."""


class NextKeyTooNew(IdpError):
    """The next key was published less than JWKS_MAX_AGE ago: cached JWKS may lack it."""

    def __init__(self, kid: str, safe_at: datetime) -> None:
        super().__init__(f"next key {kid} is not safe to sign before {safe_at:%Y-%m-%d %H:%M:%S}Z")
        self.kid, self.safe_at = kid, safe_at


@dataclass(frozen=True)
class KeySet:
    """The published keys as one process sees them, built once per change of the key set."""

    states: tuple[tuple[str, str], ...]  # (kid, state), oldest first: what a check compares
    current: str | None
    public: dict[str, Any]  # kid -> public key, for verifying
    jwks: Document

    @classmethod
    def of(cls, keys: list[SigningKey]) -> "KeySet":
        """Build the key set of the published keys given oldest first."""
        return cls(
            states=tuple((k.kid, k.state) for k in keys),
            current=next((k.kid for k in keys if k.state == CURRENT), None),
            public={k.kid: RSAAlgorithm.from_jwk(k.public_jwk) for k in keys},
            jwks=Document.of({"keys": [k.public_jwk for k in keys]}),
        )


def _database() -> str:
    return str(current_app.config["SQLALCHEMY_DATABASE_URI"])


def key_set(*, fresh: bool = False) -> KeySet:
    """Return the published keys; whether they changed is asked at most once per KEY_SET_MAX_AGE."""
    now = time.monotonic()
    seen = _key_sets.get(_database())
    if seen is not None and not fresh and now - seen[0] < current_app.config["KEY_SET_MAX_AGE"]:
        return seen[1]
    states = tuple((kid, state) for kid, state in db.session.execute(  # two short columns: cheap
        select(SigningKey.kid, SigningKey.state).where(SigningKey.state.in_(PUBLISHED))
        .order_by(SigningKey.created_at, SigningKey.kid)))
    known = seen[1] if seen is not None and seen[1].states == states else KeySet.of(published_keys())
    _key_sets[_database()] = (now, known)
    return known


def _thumbprint(jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 thumbprint of an RSA JWK, in hex."""
    # Not base64url: a kid starting with '-' would read as an option to `idp keys revoke`.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _generate(state: str) -> SigningKey:
    private = rsa.generate_private_key(65537, current_app.config["SIGNING_KEY_SIZE"])
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = _thumbprint(jwk)
    jwk.update(kid=kid, use="sig", alg="RS256")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = utcnow()
    return SigningKey(
        kid=kid, state=state, public_jwk=jwk, private_key=kek.encrypt(pem),
        created_at=now, activated_at=now if state == CURRENT else None,
    )


def _by_state(*states: str) -> dict[str, list[SigningKey]]:
    found: dict[str, list[SigningKey]] = {s: [] for s in states}
    for key in db.session.scalars(select(SigningKey).where(SigningKey.state.in_(states))):
        found[key.state].append(key)
    return found


def _commit_or_lose() -> bool:
    """Commit; if another instance changed the keys first, roll back and say so."""
    try:
        db.session.commit()
    except (IntegrityError, OperationalError):
        db.session.rollback()
        return False
    _key_sets.pop(_database(), None)  # this process sees its own change at once
    return True


def init_app(app: Flask) -> None:
    """Check the key set before each request (at most once per maintenance interval)."""
    app.before_request(maintain_now_and_then)


def ensure_keys() -> None:
    """Create a current and a next key where missing."""
    keys = _by_state(CURRENT, NEXT)
    for state in (CURRENT, NEXT):
        if not keys[state]:
            db.session.add(_generate(state))
    if db.session.new:
        _commit_or_lose()


def _swap(now_state: str, kid: str, **values: Any) -> bool:
    """Move one key out of `now_state`; False when another instance already moved it."""
    return claim_once(SigningKey, SigningKey.kid == kid, SigningKey.state == now_state, **values)


def cache_window() -> timedelta:
    """Return how long after a key's creation a relying party may still hold a JWKS without it."""
    # The key is in the database from the commit that creates it, milliseconds after created_at (a
    # second covers it), and in every process's JWKS within KEY_SET_MAX_AGE more.
    config = current_app.config
    return timedelta(seconds=1 + config["KEY_SET_MAX_AGE"] + config["JWKS_MAX_AGE"])


def unsafe_until(key: SigningKey) -> datetime | None:
    """Return when every JWKS cached before the key was published will have expired; None if all have."""
    safe_at = key.created_at + cache_window()
    return safe_at if utcnow() < safe_at else None


def _current_and_next() -> tuple[SigningKey, SigningKey]:
    """Return the current and the next key, making them first where missing."""
    ensure_keys()
    keys = _by_state(CURRENT, NEXT)
    return keys[CURRENT][0], keys[NEXT][0]


def _promote(current: SigningKey, upcoming: SigningKey) -> SigningKey | None:
    """Make `upcoming` current, `current` previous and a new key next; None if another instance won."""
    # Conditional updates: of several instances rotating at once, exactly one moves the keys.
    now = utcnow()
    try:
        moved = _swap(CURRENT, current.kid, state=PREVIOUS, deactivated_at=now) and _swap(
            NEXT, upcoming.kid, state=CURRENT, activated_at=now
        )
        if not moved:
            db.session.rollback()
            return None
        db.session.add(_generate(NEXT))
    except (IntegrityError, OperationalError):
        db.session.rollback()
        return None
    return upcoming if _commit_or_lose() else None


def rotate(force: bool = False, expected_next: str | None = None) -> SigningKey | None:
    """Rotate now; return the key that now signs, None if another instance rotated first (or the next key
    is not `expected_next`, the one the caller saw: a second click must not promote a key just made)."""
    current, upcoming = _current_and_next()
    if expected_next is not None and upcoming.kid != expected_next:
        return None
    # Unforced, never let a key sign that a relying party's cached JWKS may lack: it would
    # reject every token the key signs until its cache expires.
    safe_at = unsafe_until(upcoming)
    if safe_at is not None and not force:
        raise NextKeyTooNew(upcoming.kid, safe_at)
    return _promote(current, upcoming)


def rotate_if_due() -> SigningKey | None:
    """Rotate when the current key has served its period and the next key is safe to sign, else None."""
    current, upcoming = _current_and_next()
    since = current.activated_at or current.created_at
    period = timedelta(seconds=current_app.config["KEY_ROTATION_PERIOD"])
    if utcnow() - since < period or unsafe_until(upcoming) is not None:
        return None
    return _promote(current, upcoming)


def retire_expired() -> None:
    """Retire previous keys once every token they signed has expired, and wipe their secrets."""
    config = current_app.config
    longest = max(config["ACCESS_TOKEN_LIFETIME"], config["ID_TOKEN_LIFETIME"])
    cutoff = utcnow() - timedelta(seconds=longest + 60)  # a minute of leeway for clock skew
    expired = [k.kid for k in _by_state(PREVIOUS)[PREVIOUS] if k.deactivated_at and k.deactivated_at < cutoff]
    for kid in expired:
        _swap(PREVIOUS, kid, state=RETIRED, retired_at=utcnow(), private_key=None)
    if expired:
        _commit_or_lose()


def revoke(kid: str) -> None:
    """Withdraw a key at once; a revoked current or next key is replaced immediately."""
    key = db.session.get(SigningKey, kid)
    if key is None or key.state not in PUBLISHED:
        raise KeyNotFound(kid)
    was = key.state
    # Conditional updates: of two revocations at once (a double click), one revokes and the other finds
    # nothing to revoke, rather than both promoting a next key.
    if not _swap(was, kid, state=REVOKED, private_key=None, retired_at=utcnow()):
        db.session.rollback()
        raise KeyNotFound(kid)
    if was == CURRENT:
        upcoming = _by_state(NEXT)[NEXT]
        if upcoming and not _swap(NEXT, upcoming[0].kid, state=CURRENT, activated_at=utcnow()):
            db.session.rollback()
            raise KeyNotFound(kid)
    if not _commit_or_lose():
        raise KeyNotFound(kid)
    _private_keys.pop(kid, None)
    _key_sets.pop(_database(), None)
    ensure_keys()


def maintain() -> None:
    """Bring the key set up to date: keys present, rotation when due, expired keys retired."""
    rotate_if_due()
    retire_expired()


def maintain_now_and_then() -> None:
    """Maintain at most once per KEY_MAINTENANCE_INTERVAL in this process, before a request's work.

    It runs first because it commits or rolls back the session: inside a grant it would end
    the grant's own transaction (a spent code or refresh token would come back to life). The
    interval is only a throttle: what to do is decided from the database, so instances agree.
    """
    interval = current_app.config["KEY_MAINTENANCE_INTERVAL"]
    database = current_app.config["SQLALCHEMY_DATABASE_URI"]
    now = time.monotonic()
    if now - _last_maintained.get(database, -interval) < interval:
        return
    _last_maintained[database] = now
    try:
        maintain()
    except SQLAlchemyError:  # the request itself will meet (and report) a database that is down
        db.session.rollback()
        current_app.logger.warning("signing-key maintenance skipped: the database did not answer")


def signing_key() -> tuple[str, rsa.RSAPrivateKey]:
    """Return the kid and private key of the current key, decrypted once per process."""
    for fresh in (False, True):  # a key another process has just revoked has no private key left
        kid = key_set(fresh=fresh).current
        if kid in _private_keys:
            return kid, _private_keys[kid]
        key = db.session.get(SigningKey, kid) if kid else None
        if kid and key is not None and key.private_key is not None:
            loaded = serialization.load_pem_private_key(kek.decrypt(key.private_key), None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            _private_keys[kid] = loaded
            return kid, loaded
    raise KeyNotFound("no current signing key: `idp init` makes the first ones")


def published_keys() -> list[SigningKey]:
    """Return the keys the JWKS publishes: next, current and previous."""
    keys = db.session.scalars(
        select(SigningKey).where(SigningKey.state.in_(PUBLISHED))
        .order_by(SigningKey.created_at, SigningKey.kid)
    )
    return list(keys)


def public_key(kid: str) -> Any:
    """Return the public key object of a published key."""
    key = key_set().public.get(kid)
    if key is None:
        raise KeyNotFound(kid)
    return key


def all_keys() -> list[SigningKey]:
    """Return every key, newest first."""
    return list(db.session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))
