"""Auth0's bulk-import users file: a JSON array of users, read as a stream (a file of any size takes
constant memory), each checked against Auth0's schema and turned into a user to import."""

import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

import ijson  # type: ignore[import-untyped]  # ships no type information

from idp.connections.imports import Incoming, Refusal
from idp.connections.models import Connection
from idp.migration.profiles import ProfileInvalid, exported
from idp.users.models import new_user_id

STRINGS = {"given_name": 150, "family_name": 150, "name": 300, "nickname": 300, "picture": 2048,
           "user_id": 200}
# Fields of Auth0's schema that idp's users do not have: refused rather than silently dropped.
NOT_KEPT = {"username", "phone_number", "phone_verified", "mfa_factors"}
KNOWN = {"email", "email_verified", "blocked", "password_hash", "custom_password_hash", "app_metadata",
         "user_metadata", *STRINGS, *NOT_KEPT}
# What an upsert changes on a user who is already here (Auth0's list).
UPSERTABLE = {"app_metadata", "email_verified", "family_name", "given_name", "name", "nickname", "picture",
              "user_metadata", "custom_password_hash"}
# app_metadata keys Auth0 keeps for itself.
RESERVED = {"__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
            "globalClientID", "global_client_id", "identities", "lastIP", "lastLogin", "loginsCount",
            "metadata", "multifactor_last_modified", "multifactor", "updated_at", "user_id"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class FileInvalid(ValueError):
    """The file is not a JSON array (a syntax error, or another kind of value)."""


class Checker:
    """Fed a file's bytes as they arrive: checks it is one JSON array and counts its users."""

    def __init__(self) -> None:
        self._events = ijson.sendable_list()
        self._parser = ijson.parse_coro(self._events, use_float=True)
        self._started = False
        self.users = 0

    def feed(self, data: bytes) -> None:
        """Check the next bytes of the file; FileInvalid if they break it."""
        try:
            self._parser.send(data)
        except ijson.JSONError as error:
            raise FileInvalid(f"the file is not valid JSON: {str(error).splitlines()[0]}") from None
        self._count()

    def close(self) -> None:
        """Check the file ended where its array does."""
        if not self._started:
            raise FileInvalid("the file is empty: it must be a JSON array of users")
        try:
            self._parser.close()
        except ijson.JSONError as error:
            raise FileInvalid(f"the file is not valid JSON: {str(error).splitlines()[0]}") from None
        self._count()

    def _count(self) -> None:
        for prefix, event, _ in self._events:
            if not self._started:
                if (prefix, event) != ("", "start_array"):
                    raise FileInvalid("the file must be a JSON array of users")
                self._started = True
            elif prefix == "item" and event not in ("end_map", "end_array", "map_key"):
                self.users += 1
        del self._events[:]


def users(stream: IO[bytes]) -> Iterator[Any]:
    """Yield the users of a file already checked (Checker), one at a time."""
    yield from ijson.items(stream, "item", use_float=True)


def incoming(connection: Connection, values: Iterable[Any]) -> Iterator[Incoming | Refusal]:
    """Turn each user of a file into a user to import, or a refusal saying what is wrong with it."""
    for value in values:
        try:
            yield _incoming(connection, value)
        except _Invalid as error:
            yield Refusal(value, error.code, error.message)


class _Invalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _incoming(connection: Connection, value: Any) -> Incoming:
    if not isinstance(value, dict):
        raise _Invalid("INVALID_TYPE", "Expected type object but found type " + _kind(value))
    extra = sorted(set(value) - KNOWN)
    if extra:
        raise _Invalid("NOT_PASSED", f"Additional properties not allowed: {str(extra[0])[:64]}")
    kept = sorted(set(value) & NOT_KEPT)
    if kept:
        raise _Invalid("NOT_PASSED", f"{kept[0]} is not supported: idp's users have no {kept[0]}")
    email = value.get("email")
    if not isinstance(email, str):
        raise _Invalid("OBJECT_REQUIRED" if email is None else "INVALID_TYPE", "email is required, a string")
    if not EMAIL.match(email) or len(email) > 320:
        raise _Invalid("FORMAT", "Object didn't pass validation for format email")
    for name, longest in STRINGS.items():
        text = value.get(name)
        if text is not None and not isinstance(text, str):
            raise _Invalid("INVALID_TYPE", f"{name}: expected type string but found type {_kind(text)}")
        if isinstance(text, str) and not 1 <= len(text) <= longest:
            code = "MAX_LENGTH" if text else "MIN_LENGTH"
            raise _Invalid(code, f"{name} must have 1 to {longest} characters")
    for names, kind, expected in ((("email_verified", "blocked"), bool, "boolean"),
                                  (("app_metadata", "user_metadata"), dict, "object")):
        for name in names:
            if name in value and not isinstance(value[name], kind):
                raise _Invalid("INVALID_TYPE", f"{name}: expected type {expected} but found type "
                                               f"{_kind(value[name])}")
    reserved = sorted(set(value.get("app_metadata") or {}) & RESERVED)
    if reserved:
        raise _Invalid("NOT_PASSED", f"app_metadata may not hold {reserved[0]}")
    user_id = value.get("user_id")
    profile = {**{k: v for k, v in value.items() if k not in ("user_id", "blocked")},
               "user_id": user_id or new_user_id()}
    try:
        user = exported(profile)
    except ProfileInvalid as error:
        raise _Invalid("NOT_PASSED", str(error)) from None
    updates = {name: value[name] for name in UPSERTABLE & set(value) if name != "custom_password_hash"}
    if "custom_password_hash" in value:
        updates["password_hash"] = user.password_hash
    # Without a user_id of its own, a user gets a new id, as every new user of idp does.
    blocked = bool(value.get("blocked", False))
    if user_id:
        return Incoming(value, user, user.profile.local_id(connection.id), user_id, updates, blocked)
    return Incoming(value, user, user.profile.user_id, None, updates, blocked)


def redacted(value: Any) -> Any:
    """A user as an error report shows it: hash values replaced by "*****", as Auth0's do."""
    if not isinstance(value, dict):
        return value
    shown = dict(value)
    if "password_hash" in shown:
        shown["password_hash"] = "*****"
    custom = shown.get("custom_password_hash")
    if isinstance(custom, dict):
        shown["custom_password_hash"] = {**custom, **{
            part: {**custom[part], "value": "*****"} for part in ("hash", "salt")
            if isinstance(custom.get(part), dict) and "value" in custom[part]}}
        if isinstance(custom.get("hash"), dict) and isinstance(custom["hash"].get("key"), dict):
            shown["custom_password_hash"]["hash"]["key"] = {**custom["hash"]["key"], "value": "*****"}
    return shown


def _kind(value: Any) -> str:
    """A JSON value's type, in JSON Schema's words."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), "unknown")
