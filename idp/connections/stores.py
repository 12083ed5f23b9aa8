"""The user-store interface: what the hosted pages, the CLI and the management API ask of a connection.

In the manner of Keycloak's user storage providers, a connection is one of two stores. `NativeStore`
keeps its users in idp's database. `MigratingStore` is that and more: a user it does not have yet is
looked up in the connection's legacy store through its scripts, and moves over the first time they
sign in or reset their password. Callers never ask which one they hold.
"""

from dataclasses import dataclass

from idp.connections import legacy, registry
from idp.connections.models import NATIVE_ID, Connection
from idp.db import db
from idp.users import accounts
from idp.users.accounts import UserExists, Verified
from idp.users.models import User
from idp.users.passwords import hash_password


@dataclass(frozen=True)
class Recipient:
    """Who a mail about an account goes to; `user_id` is None for a legacy user not moved over yet."""

    email: str
    name: str | None
    user_id: str | None


class NativeStore:
    """Users kept in idp's own database, under one connection."""

    migrating = False  # whether users not in idp's database yet may still move over from a legacy store

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @property
    def id(self) -> str:
        """The connection's id: users' `connection_id`, and the throttle's key."""
        return self.connection.id

    def find(self, email: str) -> User | None:
        """Return the user with this email, whatever its case, if they are in idp's database."""
        return accounts.find_by_email(email, self.id)

    def authenticate(self, email: str, password: str) -> Verified | None:
        """Check an email and password; None for wrong ones (costing the same time either way)."""
        return accounts.check_password(self.find(email), password)

    def create(self, email: str, password: str | None, **profile: object) -> User:
        """Create a user with an argon2id-hashed password; UserExists if the email is taken."""
        # Hashed first, so that an email already taken costs the same time as a new one.
        password_hash = hash_password(password) if password else None
        self._refuse_taken(email)
        return accounts.add_user(email, password_hash, self.id, **profile)

    def _refuse_taken(self, email: str) -> None:
        """Raise UserExists if a user elsewhere has this email (add_user looks here)."""

    def taken(self, email: str) -> bool:
        """Say whether a user of this store has this email (for a user changing theirs to it)."""
        return self.find(email) is not None

    def recipient(self, email: str) -> Recipient | None:
        """Return who a password-reset mail for this email goes to, or None for nobody."""
        user = self.find(email)
        return Recipient(user.email, user.name, user.id) if user else None

    def reset_owner(self, email: str, password: str) -> User | None:
        """Return the user a password-reset link sent to this email sets the password of."""
        return self.find(email)


class MigratingStore(NativeStore):
    """idp's database first, then the legacy store; a legacy user moves over on sign-in or reset.

    Every method may raise legacy.LegacyUnavailable (legacy.ProfileRefused when the legacy store
    answered with a profile we refuse); nothing is created then.
    """

    migrating = True

    def authenticate(self, email: str, password: str) -> Verified | None:
        """Check the password here, or, the first time, against the legacy store (moving the user over)."""
        return legacy.authenticate(self.connection, email, password)

    def _refuse_taken(self, email: str) -> None:
        """Raise UserExists if the legacy store has a user with this email (who moves over instead)."""
        if legacy.legacy_profile(self.connection, email, "signup") is not None:
            raise UserExists(email)

    def taken(self, email: str) -> bool:
        """Say whether a user here, or a legacy user not moved over yet, has this email."""
        if super().taken(email):
            return True
        return legacy.legacy_profile(self.connection, email, "email_change") is not None

    def recipient(self, email: str) -> Recipient | None:
        """Return the user, or the legacy user not moved over yet, that a reset mail goes to."""
        if (found := super().recipient(email)) is not None:
            return found
        profile = legacy.legacy_profile(self.connection, email, "password_reset")
        return Recipient(profile.email, profile.name, None) if profile else None

    def reset_owner(self, email: str, password: str) -> User | None:
        """Return the user a reset link sets the password of; a legacy user moves over now, with it."""
        if (user := self.find(email)) is not None:
            return user
        profile = legacy.legacy_profile(self.connection, email, "password_reset")
        if profile is None:
            return None
        return legacy.import_profile(self.connection, profile, password, "password_reset")


UserStore = NativeStore | MigratingStore


def of(connection: Connection) -> UserStore:
    """Return a connection's store: migrating while it still imports from its legacy store."""
    return MigratingStore(connection) if legacy.imports(connection) else NativeStore(connection)


def by_id(connection_id: str | None) -> UserStore:
    """Return the store of a connection id (a client's), or the native one when it has none or is gone."""
    connection = db.session.get(Connection, connection_id or NATIVE_ID)
    if connection is None:
        connection = db.session.get(Connection, NATIVE_ID)
    assert connection is not None, "the native connection is made by the schema's first migration"
    return of(connection)


def named(name: str) -> UserStore:
    """Return the store of the connection with this name; registry.InvalidConnection if there is none."""
    return of(registry.find(name))
