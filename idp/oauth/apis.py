"""APIs (Auth0's resource servers) and client grants: which machine client may call which API, how far.

The management API (`<issuer>/api/v2/`, Auth0's management scopes) is built in. It is listed whatever
the database holds, and becomes a row only when a client is first granted it, so that the grant has
a row to refer to: no start-up write, and its identifier always follows the configured issuer.
"""

import re
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.cache import Recent
from idp.db import db
from idp.errors import InvalidInput
from idp.oauth import tokens
from idp.oauth.models import Api, Client, ClientGrant

# Auth0's Management API v2 scopes that name what idp holds: users and their metadata, clients and
# their grants, connections, APIs, logs and statistics, user grants, signing keys, post-login actions.
MANAGEMENT_SCOPES = [
    {"value": value, "description": description} for value, description in (
        ("read:users", "Read Users"), ("update:users", "Update Users"), ("delete:users", "Delete Users"),
        ("create:users", "Create Users"),
        ("read:users_app_metadata", "Read Users App Metadata"),
        ("update:users_app_metadata", "Update Users App Metadata"),
        ("delete:users_app_metadata", "Delete Users App Metadata"),
        ("create:users_app_metadata", "Create Users App Metadata"),
        ("create:user_tickets", "Create User Tickets"),
        ("read:clients", "Read Clients"), ("update:clients", "Update Clients"),
        ("delete:clients", "Delete Clients"), ("create:clients", "Create Clients"),
        ("read:client_keys", "Read Client Keys"),
        ("read:connections", "Read Connections"), ("update:connections", "Update Connections"),
        ("delete:connections", "Delete Connections"), ("create:connections", "Create Connections"),
        ("read:resource_servers", "Read Resource Servers"),
        ("update:resource_servers", "Update Resource Servers"),
        ("delete:resource_servers", "Delete Resource Servers"),
        ("create:resource_servers", "Create Resource Servers"),
        ("read:client_grants", "Read Client Grants"), ("update:client_grants", "Update Client Grants"),
        ("delete:client_grants", "Delete Client Grants"), ("create:client_grants", "Create Client Grants"),
        ("read:grants", "Read Grants"), ("delete:grants", "Delete Grants"),
        ("read:logs", "Read Logs"), ("read:logs_users", "Read Logs Users"), ("read:stats", "Read Stats"),
        ("read:signing_keys", "Read Signing Keys"), ("create:signing_keys", "Create Signing Keys"),
        ("update:signing_keys", "Update Signing Keys"),
        ("read:actions", "Read Actions"), ("create:actions", "Create Actions"),
        ("update:actions", "Update Actions"), ("delete:actions", "Delete Actions"),
    )
]
MANAGEMENT_NAME = "idp Management API"
# RFC 6749 §3.3 scope-token characters, without `=` (which separates a description on the command line).
SCOPE_VALUE = re.compile(r"[\x21\x23-\x3c\x3e-\x5b\x5d-\x7e]{1,255}")
IDENTIFIER_MAX = 2048


class InvalidApi(InvalidInput):
    """An API or a grant we refuse: a bad identifier, an unknown scope, a duplicate, a missing one."""


def management_identifier() -> str:
    """Return the built-in management API's identifier (its `audience`): `<issuer>/api/v2/`."""
    return tokens.issuer() + "/api/v2/"


def _reserved() -> dict[str, str]:
    return {management_identifier(): "the built-in management API",
            tokens.userinfo_audience(): "the userinfo endpoint"}


def check_identifier(identifier: str) -> str:
    """Accept an API identifier: an absolute http(s) URL, printable ASCII, without fragment."""
    if len(identifier) > IDENTIFIER_MAX or not identifier.isascii() or not identifier.isprintable() \
            or any(c.isspace() for c in identifier):
        raise InvalidApi(f"an API identifier is a URL of at most {IDENTIFIER_MAX} printable ASCII "
                         f"characters: {identifier[:100]!r}")
    parts = urlsplit(identifier)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or "#" in identifier:
        raise InvalidApi(f"an API identifier is an http(s) URL with a host and no fragment: {identifier!r}")
    return identifier


def parse_scope(text: str) -> dict[str, str]:
    """Read a command line's `VALUE` or `VALUE=DESCRIPTION` into a scope."""
    value, _, description = text.partition("=")
    return {"value": value, "description": description.strip()}  # checked by create_api


# Grants are read on every client-credentials request: at most once per CLIENT_CACHE_MAX_AGE.
_recent: Recent[list[str] | None] = Recent("CLIENT_CACHE_MAX_AGE")


def _changed() -> None:
    """Commit a change to the APIs or grants; this process's cached grants go with it."""
    db.session.commit()
    _recent.clear()


def granted_scopes(client_id: str, audience: str) -> list[str] | None:
    """Return the scopes a client was granted for an API (by identifier), or None without a grant.

    A read (or none, within CLIENT_CACHE_MAX_AGE of the last): tokens are issued without a write.
    """
    if len(audience) > IDENTIFIER_MAX or "\x00" in audience:
        return None  # no API has such an identifier, and PostgreSQL refuses NUL in text

    def load() -> list[str] | None:
        scopes = db.session.scalar(select(ClientGrant.scopes).join(Api).where(
            ClientGrant.client_id == client_id, Api.identifier == audience))
        return list(scopes) if scopes is not None else None

    return _recent.get((client_id, audience), load)


def _management_api() -> Api:
    """Return the management API as it is built in (not added to the session)."""
    return Api(id="", identifier=management_identifier(), name=MANAGEMENT_NAME,
               scopes=[dict(s) for s in MANAGEMENT_SCOPES])


def _row(identifier: str) -> Api | None:
    return db.session.scalar(select(Api).where(Api.identifier == identifier))


def _stored(identifier: str) -> Api:
    """Return an API's row; the built-in management API's is made (or brought up to date) on first use."""
    row = _row(identifier)
    if identifier != management_identifier():
        if row is None:
            raise InvalidApi(f"no API {identifier}")
        return row
    if row is None:
        builtin = _management_api()
        builtin.id = secrets.token_hex(12)
        db.session.add(builtin)
        try:
            db.session.commit()
        except IntegrityError:  # another process made it first
            db.session.rollback()
        row = _row(identifier)
        assert row is not None
    if row.scopes != MANAGEMENT_SCOPES or row.name != MANAGEMENT_NAME:  # scopes added in a later version
        row.scopes, row.name = [dict(s) for s in MANAGEMENT_SCOPES], MANAGEMENT_NAME
        db.session.commit()
    return row


def create_api(identifier: str, name: str, scopes: list[dict[str, str]]) -> Api:
    """Register an API with its scopes (each {"value", "description"})."""
    check_identifier(identifier)
    if identifier in _reserved():
        raise InvalidApi(f"{identifier} is {_reserved()[identifier]}")
    if not name.strip() or len(name.strip()) > 255:
        raise InvalidApi("an API needs a name of at most 255 characters")
    for scope in scopes:
        if not SCOPE_VALUE.fullmatch(scope["value"]):
            raise InvalidApi(f"a scope is 1 to 255 printable ASCII characters without space, quote, "
                             f"backslash or '=': {scope['value']!r}")
        if len(scope.get("description", "")) > 500:
            raise InvalidApi(f"the description of {scope['value']} is longer than 500 characters")
    values = [s["value"] for s in scopes]
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise InvalidApi(f"scope given twice: {', '.join(repeated)}")
    if _row(identifier) is not None:
        raise InvalidApi(f"an API with identifier {identifier} already exists")
    api = Api(id=secrets.token_hex(12), identifier=identifier, name=name.strip(),
              scopes=[{"value": s["value"], "description": s.get("description", "")} for s in scopes])
    db.session.add(api)
    try:
        _changed()
    except IntegrityError:  # made meanwhile by another process
        db.session.rollback()
        raise InvalidApi(f"an API with identifier {identifier} already exists") from None
    return api


def list_apis() -> list[Api]:
    """Return the management API, then every other API, oldest first."""
    management = management_identifier()
    rows = db.session.scalars(select(Api).where(Api.identifier != management).order_by(Api.created_at))
    return [_management_api(), *rows]


def delete_api(identifier: str) -> bool:
    """Delete an API and every grant for it; say whether it existed. The management API stays."""
    if identifier == management_identifier():
        raise InvalidApi("the management API is built in and cannot be deleted")
    row = _row(identifier)
    if row is None:
        return False
    db.session.delete(row)
    _changed()
    return True


def grant(client_id: str, identifier: str, scopes: list[str]) -> ClientGrant:
    """Allow a confidential client client-credentials tokens for an API with some of its scopes.

    Granting again replaces the scopes.
    """
    client = db.session.get(Client, client_id)
    if client is None:
        raise InvalidApi(f"no client {client_id}")
    if client.public:
        raise InvalidApi(f"{client_id} is a public client: it has no secret for client credentials")
    api = _stored(identifier)
    wanted = list(dict.fromkeys(scopes))
    if not wanted:
        raise InvalidApi("grant at least one scope")
    unknown = [s for s in wanted if s not in api.scope_values]
    if unknown:
        raise InvalidApi(f"not a scope of {identifier}: {' '.join(unknown)}")
    row = db.session.scalar(select(ClientGrant).where(ClientGrant.client_id == client_id,
                                                      ClientGrant.api_id == api.id))
    if row is None:
        row = ClientGrant(id="cgr_" + secrets.token_hex(12), client_id=client_id, api_id=api.id)
        db.session.add(row)
    row.scopes = wanted
    try:
        _changed()
    except IntegrityError:  # granted meanwhile by another process
        db.session.rollback()
        raise InvalidApi("the grant changed meanwhile; try again") from None
    return row


def revoke_grant(client_id: str, identifier: str) -> bool:
    """Withdraw a client's grant for an API; say whether there was one.

    Tokens already issued stay valid until they expire; other processes stop issuing new ones within
    CLIENT_CACHE_MAX_AGE.
    """
    row = db.session.scalar(select(ClientGrant).join(Api).where(ClientGrant.client_id == client_id,
                                                                 Api.identifier == identifier))
    if row is None:
        return False
    db.session.delete(row)
    _changed()
    return True


def grants_of(client_id: str) -> list[ClientGrant]:
    """Return a client's grants."""
    return list(db.session.scalars(select(ClientGrant).where(ClientGrant.client_id == client_id)
                                   .order_by(ClientGrant.id)))
