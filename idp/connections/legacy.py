"""Moving legacy users over: on login, and through a password reset; refusing duplicate sign-ups.

Failure semantics: a script that returns None or raises WrongUsernameOrPassword means "wrong email or
password". Anything else (an exception, a timeout, a crash, a bad profile, an open circuit
breaker, every script slot busy) raises LegacyUnavailable and creates nothing. A user is created
in one transaction with its migration event; concurrent first logins of one user create exactly
one. A profile whose `user_id` already belongs to a user with another email is refused: two
legacy users never share an account.
"""

import logging
import time
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from idp import redact
from idp.connections import breaker, runtime
from idp.connections.models import Connection, MigrationEvent
from idp.db import db, utcnow
from idp.errors import Unavailable
from idp.events import log as events
from idp.migration.profiles import Profile, ProfileInvalid, parse
from idp.migration.sandbox import BadResult, ScriptError, WrongCredentials
from idp.users import accounts as users
from idp.users.models import User, normalize
from idp.users.passwords import hash_password

logger = logging.getLogger("idp.migration")

MIGRATED, LOGIN_FAILED, SCRIPT_ERROR, PROFILE_REJECTED = (
    "migrated", "legacy_login_failed", "script_error", "profile_rejected")


class LegacyUnavailable(Unavailable):
    """The legacy store could not answer; nothing was created."""


class ProfileRefused(LegacyUnavailable):
    """The legacy store answered with a profile we refuse (logged and recorded); asking again would too."""


def imports(connection: Connection) -> bool:
    """Say whether users still move over from this connection's legacy store."""
    return connection.migrating and connection.disconnected_at is None


def record(connection: Connection, type_: str, *, source: str | None = None, user_id: str | None = None,
           email: str | None = None, duration: float = 0.0, detail: str | None = None) -> None:
    """Add a migration event to the session; the caller commits."""
    db.session.add(MigrationEvent(
        connection_id=connection.id, type=type_, source=source, user_id=user_id,
        email=normalize(email) if email else None, duration_ms=round(duration * 1000), detail=detail,
    ))


def _call(connection: Connection, function: str, args: list[Any], *, email: str, source: str) -> Any:
    """Run one of the connection's scripts; None means "no such user" (or a wrong password)."""
    if breaker.is_open(connection.id):
        raise LegacyUnavailable(f"the circuit breaker of {connection.name} is open")
    configuration = connection.configuration
    secrets = redact.secrets_in(configuration, *(a for a in args if isinstance(a, str) and a != email))
    script = connection.login_script if function == "login" else connection.get_user_script
    started = time.perf_counter()
    try:
        outcome = runtime.call(connection.id, script or "", function, [*args, configuration])
    except runtime.Busy as busy:
        # Not the store's failure (calls of ours are still waiting on it): the breaker counts those.
        logger.warning("connection %s: %s() not run: %s", connection.name, function, busy)
        raise LegacyUnavailable(str(busy)) from None
    except WrongCredentials:
        breaker.success(connection.id)
        record(connection, LOGIN_FAILED, source=source, email=email, duration=time.perf_counter() - started)
        db.session.commit()
        return None
    except BadResult as error:
        detail = redact.scrub(f"{function}: {error}", secrets)
        logger.error("connection %s: rejected a profile: %s", connection.name, detail)
        record(connection, PROFILE_REJECTED, source=source, email=email, detail=detail)
        db.session.commit()
        raise ProfileRefused(detail) from None
    except ScriptError as error:
        detail = redact.scrub(f"{function}: {type(error).__name__}: {error}", secrets)
        if error.output:  # what the script printed belongs in the connection's log
            detail += "\noutput:\n" + redact.scrub(error.output, secrets)
        opened = breaker.failure(connection.id, email)
        logger.error("connection %s: %s%s", connection.name, detail,
                     "; circuit breaker opened" if opened else "")
        record(connection, SCRIPT_ERROR, source=source, email=email, duration=time.perf_counter() - started,
               detail=detail)
        db.session.commit()
        raise LegacyUnavailable(detail) from None
    breaker.success(connection.id)
    if outcome.output:
        logger.info("connection %s: %s printed: %s", connection.name, function,
                    redact.scrub(outcome.output, secrets))
    if outcome.value is None and function == "login":
        record(connection, LOGIN_FAILED, source=source, email=email, duration=outcome.duration)
        db.session.commit()
    return outcome.value


def run(connection: Connection, function: str, *args: Any) -> Any:
    """Run count_users or export_users (its arguments before the configuration) and return its value.

    A failure is logged and recorded, and raises LegacyUnavailable; so does a script that is not set.
    """
    script = getattr(connection, f"{function}_script")
    if not imports(connection) or not script:
        raise LegacyUnavailable(f"{connection.name} has no {function} script")
    configuration = connection.configuration
    secrets = redact.secrets_in(configuration)
    try:
        return runtime.call(connection.id, script, function, [*args, configuration]).value
    except (runtime.Busy, ScriptError, WrongCredentials) as error:
        detail = redact.scrub(f"{function}: {type(error).__name__}: {error}", secrets)
        if isinstance(error, ScriptError) and error.output:
            detail += "\noutput:\n" + redact.scrub(error.output, secrets)
        logger.error("connection %s: %s", connection.name, detail)
        record(connection, SCRIPT_ERROR, source="import", detail=detail)
        db.session.commit()
        raise LegacyUnavailable(detail) from None


def _refuse(connection: Connection, email: str, source: str, reason: str) -> ProfileRefused:
    """Log and record a refused profile; return the error to raise (nothing is created)."""
    logger.error("connection %s: rejected a profile: %s", connection.name, reason)
    record(connection, PROFILE_REJECTED, source=source, email=email, detail=reason)
    db.session.commit()
    return ProfileRefused(reason)


def _taken(profile: Profile, owner: User | None) -> str | None:
    """Say why the profile cannot be stored beside the user holding its id or email, if it cannot."""
    if owner is None:
        return "the email belongs to another user of this connection"
    if owner.email_normalized != normalize(profile.email):
        # Its sub is someone else's: importing would hand that account (and its password) over.
        return (f"the profile's `user_id` {profile.user_id!r} already belongs to {owner.id}, a user "
                "with another email: two legacy users cannot share an account")
    return None


def _profile(connection: Connection, value: Any, email: str, source: str) -> Profile:
    """Check a returned profile; a bad one is logged and recorded, and nothing is created."""
    try:
        profile = parse(value)
        if normalize(profile.email) != normalize(email):
            raise ProfileInvalid("the profile's `email` is not the address that was asked for")
    except ProfileInvalid as error:
        raise _refuse(connection, email, source, str(error)) from None
    owner = db.session.get(User, profile.local_id(connection.id))
    if owner is not None and (reason := _taken(profile, owner)):
        raise _refuse(connection, email, source, reason)
    return profile


def import_profile(connection: Connection, profile: Profile, password: str, source: str,
                   started: float | None = None) -> User:
    """Create the local user with the profile and an argon2id hash of the password, exactly once."""
    user_id = profile.local_id(connection.id)
    user = User(
        id=user_id, connection_id=connection.id, email=profile.email,
        email_normalized=normalize(profile.email),
        email_verified=profile.email_verified, name=profile.name, given_name=profile.given_name,
        family_name=profile.family_name, nickname=profile.nickname, picture=profile.picture,
        user_metadata=profile.user_metadata, app_metadata=profile.app_metadata,
        password_hash=hash_password(password), migrated_at=utcnow(), legacy_id=profile.user_id,
        migrated_via=source,
    )
    db.session.add(user)
    record(connection, MIGRATED, source=source, user_id=user_id, email=profile.email,
           duration=time.perf_counter() - started if started else 0.0)
    events.record(events.MIGRATION, f"User moved over from the legacy store on {source}",
                  connection=connection.name, connection_id=connection.id, user_id=user_id,
                  user_name=profile.email, details={"via": source, "legacy_id": profile.user_id})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another request moved the same user over first: use theirs, if theirs
        existing = db.session.get(User, user_id)
        if reason := _taken(profile, existing):
            raise _refuse(connection, profile.email, source, reason) from None
        assert existing is not None
        return existing
    except SQLAlchemyError as error:  # a value the database refuses: nothing is created
        db.session.rollback()
        logger.error("connection %s: could not store a moved-over user: %s", connection.name,
                     type(error).__name__)
        raise LegacyUnavailable("the profile could not be stored") from None
    logger.info("connection %s: user %s moved over on %s", connection.name, user_id, source)
    return user


def authenticate(connection: Connection, email: str, password: str) -> users.Verified | None:
    """Check a user's password: locally, or, the first time, against the legacy store (then never again)."""
    user = users.find_by_email(email, connection.id)
    if user is not None or not imports(connection):
        return users.check_password(user, password)
    started = time.perf_counter()
    value = _call(connection, "login", [email, password], email=email, source="login")
    if value is None:
        return None
    user = import_profile(connection, _profile(connection, value, email, "login"), password, "login", started)
    # Checked against the password it was created with; if a reset has changed it since, the
    # sign-in notices (users.still_verified).
    return users.Verified(user, password_changed_at=None)


def legacy_profile(connection: Connection, email: str, source: str) -> Profile | None:
    """Return the legacy store's profile of a user not yet moved over, or None."""
    if not imports(connection) or users.find_by_email(email, connection.id) is not None:
        return None
    value = _call(connection, "get_user", [email], email=email, source=source)
    return None if value is None else _profile(connection, value, email, source)
