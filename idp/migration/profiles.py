"""The profile a migration script returns, checked before anything is stored."""

import json
from dataclasses import dataclass, field
from typing import Any

from idp.errors import InvalidInput
from idp.migration import auth0_hashes, hashes

STRINGS = {"name": 255, "given_name": 255, "family_name": 255, "nickname": 255, "picture": 2048}
MAX_HASH = 4096  # characters of a password hash kept for an imported user
MAX_DEPTH = 32  # dicts and lists within the profile, metadata included; JSON columns need no more


class ProfileInvalid(InvalidInput):
    """A script returned a profile we cannot store; the message says what is wrong."""


@dataclass(frozen=True)
class Profile:
    """A legacy user as the scripts describe them."""

    user_id: str
    email: str
    email_verified: bool = False
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    nickname: str | None = None
    picture: str | None = None
    user_metadata: dict[str, Any] = field(default_factory=dict)
    app_metadata: dict[str, Any] = field(default_factory=dict)

    def local_id(self, connection_id: str) -> str:
        """Return the user's `sub`: the same whichever script brought them over."""
        return f"{connection_id}|{self.user_id}"

    def differences(self, other: "Profile") -> list[str]:
        """Describe every field in which another profile of the same user differs."""
        return [f"{name}: {getattr(self, name)!r} ≠ {getattr(other, name)!r}"
                for name in self.__dataclass_fields__ if getattr(self, name) != getattr(other, name)]


def _check_values(value: object) -> None:
    """Refuse NUL characters (no database stores them) and nesting deeper than MAX_DEPTH."""
    # A loop, not recursion: a profile nested a thousand deep must be refused, not crash the request.
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ProfileInvalid("the profile contains a NUL character, which no database stores")
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise ProfileInvalid(f"the profile is nested more than {MAX_DEPTH} levels deep")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def parse(value: object) -> Profile:
    """Check a script's return value and turn it into a Profile."""
    if not isinstance(value, dict):
        raise ProfileInvalid(f"the profile must be a dict, not {type(value).__name__}")
    _check_values(value)
    user_id = value.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, str | int) or str(user_id).strip() == "":
        raise ProfileInvalid("the profile needs a `user_id` (a non-empty str or an int)")
    if len(str(user_id)) > 200:
        raise ProfileInvalid("`user_id` is longer than 200 characters")
    email = value.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise ProfileInvalid("the profile needs an `email` (a str with @, at most 320 characters)")
    verified = value.get("email_verified", False)
    if not isinstance(verified, bool):
        raise ProfileInvalid("`email_verified` must be true or false")
    strings: dict[str, str | None] = {}
    for name, longest in STRINGS.items():
        text = value.get(name)
        if text is not None and (not isinstance(text, str) or len(text) > longest):
            raise ProfileInvalid(f"`{name}` must be a str of at most {longest} characters")
        strings[name] = text
    metadata: dict[str, dict[str, Any]] = {}
    for name in ("user_metadata", "app_metadata"):
        data = value.get(name) or {}
        if not isinstance(data, dict):
            raise ProfileInvalid(f"`{name}` must be a dict")
        metadata[name] = data
    return Profile(user_id=str(user_id), email=email.strip(), email_verified=verified, **strings,
                   user_metadata=metadata["user_metadata"], app_metadata=metadata["app_metadata"])


@dataclass(frozen=True)
class Exported:
    """A legacy user from export_users (or an import file): their profile, and the hash to keep."""

    profile: Profile
    password_hash: str | None  # as idp keeps it (see stored_hash); None: they set one by a reset


def exported(value: object) -> Exported:
    """Check an exported user and turn it into a Profile and the password hash to keep."""
    profile = parse(value)
    assert isinstance(value, dict)  # parse refuses anything else
    return Exported(profile, stored_hash(value))


def stored_hash(value: dict[str, Any]) -> str | None:
    """Return a user's `password_hash` or `custom_password_hash` as idp keeps it, or None without one."""
    plain, custom = value.get("password_hash"), value.get("custom_password_hash")
    if plain is not None and custom is not None:
        raise ProfileInvalid("give `password_hash` or `custom_password_hash`, not both")
    if plain is not None:
        if not isinstance(plain, str) or len(plain) > MAX_HASH or not hashes.recognised(plain):
            raise ProfileInvalid("`password_hash` is not in a format idp verifies (bcrypt, $wp$, phpass, "
                                 "Django, SHA-crypt, argon2…); give `custom_password_hash` for others")
        return plain
    if custom is None:
        return None
    try:
        auth0_hashes.check(custom)
    except auth0_hashes.InvalidSpec as error:
        raise ProfileInvalid(f"`{error.path}`: {error}") from None
    stored = hashes.AUTH0_CUSTOM + json.dumps(custom, sort_keys=True, separators=(",", ":"))
    if len(stored) > MAX_HASH:
        raise ProfileInvalid(f"`custom_password_hash` is longer than {MAX_HASH} characters of JSON")
    return stored
