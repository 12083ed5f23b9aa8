"""Registering and removing relying parties."""

import re
import secrets
import string
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from idp.cache import Recent, detached
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.edge import is_loopback
from idp.errors import InvalidInput
from idp.oauth.models import Client, digest

CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
# client_metadata as Auth0 bounds it.
MAX_METADATA_KEYS = 10
METADATA_KEY = re.compile(r"[A-Za-z0-9_-]{1,255}")
MAX_METADATA_VALUE = 255


# Every token request names its client: clients are read at most once per CLIENT_CACHE_MAX_AGE.
_recent: Recent[Client | None] = Recent("CLIENT_CACHE_MAX_AGE")


def cached(client_id: str) -> Client | None:
    """Return a client by id: a read-only copy, fresh from the database at most CLIENT_CACHE_MAX_AGE ago."""
    return _recent.get(client_id, lambda: _detached(db.session.get(Client, client_id)))


def _detached(row: Client | None) -> Client | None:
    return None if row is None else detached(row)


def _changed() -> None:
    """Commit a change to the clients; this process's cached copies go with it."""
    db.session.commit()
    _recent.clear()


def new_client_id() -> str:
    """A random client id, alphanumeric so that no command line reads it as an option."""
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(32))


class InvalidClientMetadata(InvalidInput):
    """A redirect URI or other client setting that we refuse to register."""


def check_uri(uri: str) -> str:
    """Accept an absolute redirect URI: https, http on loopback, or a native app's own scheme."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "*" in uri:
        raise InvalidClientMetadata(f"not an absolute URI without fragment or wildcard: {uri}")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise InvalidClientMetadata(f"no host in {uri}")
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise InvalidClientMetadata(f"http is allowed only on loopback: {uri}")
    if parts.scheme in ("javascript", "data", "file"):
        raise InvalidClientMetadata(f"scheme not allowed: {uri}")
    return uri


def check_metadata(metadata: Any) -> dict[str, str]:
    """Accept client metadata: an object of at most 10 keys of [A-Za-z0-9_-], string values of at most 255."""
    if not isinstance(metadata, dict):
        raise InvalidClientMetadata("client_metadata must be an object of string values")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidClientMetadata(f"client_metadata has at most {MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        if not isinstance(key, str) or not METADATA_KEY.fullmatch(key):
            raise InvalidClientMetadata(
                f"a client_metadata key is 1 to 255 letters, digits, '_' or '-': {str(key)[:300]!r}")
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE or not value.isprintable():
            raise InvalidClientMetadata(
                f"the client_metadata {key!r} must be printable text of at most {MAX_METADATA_VALUE} "
                "characters")
    return dict(metadata)


def create_client(
    name: str, redirect_uris: list[str], *, public: bool = False, first_party: bool = False,
    post_logout_redirect_uris: list[str] | None = None, audiences: list[str] | None = None,
    connection_id: str = NATIVE_ID, client_metadata: dict[str, str] | None = None,
) -> tuple[Client, str | None]:
    """Register a client; return it and its secret (None for public clients), shown only now."""
    if not name.strip():
        raise InvalidClientMetadata("a client needs a name")
    if public and not redirect_uris:
        raise InvalidClientMetadata("a public client needs at least one redirect URI")
    metadata = check_metadata(client_metadata or {})
    secret = None if public else Client.new_secret()
    client = Client(
        id=new_client_id(), name=name.strip(),
        secret_digest=digest(secret) if secret else None, first_party=first_party,
        redirect_uris=[check_uri(u) for u in redirect_uris],
        post_logout_redirect_uris=[check_uri(u) for u in post_logout_redirect_uris or []],
        audiences=list(audiences or []), connection_id=connection_id, client_metadata=metadata,
    )
    db.session.add(client)
    _changed()
    return client, secret


def set_connection(client_id: str, connection_id: str) -> bool:
    """Make a client sign its users in through another connection; say whether the client exists."""
    client = db.session.get(Client, client_id)
    if client is None:
        return False
    client.connection_id = connection_id
    _changed()
    return True


def update_client(
    client_id: str, *, name: str | None = None, redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None, first_party: bool | None = None,
    audiences: list[str] | None = None, connection_id: str | None = None,
    client_metadata: dict[str, str] | None = None,
) -> Client | None:
    """Change what is given (a list replaces the old one), checked as at creation; None if no such client.

    Metadata given replaces the old whole. The secret and the kind of client (public or confidential)
    stay as they are.
    """
    client = db.session.get(Client, client_id)
    if client is None:
        return None
    if name is not None and not name.strip():
        raise InvalidClientMetadata("a client needs a name")
    if redirect_uris is not None and client.public and not redirect_uris:
        raise InvalidClientMetadata("a public client needs at least one redirect URI")
    # Every value checked before any is set: a refused update changes nothing.
    checked_redirects = [check_uri(u) for u in redirect_uris] if redirect_uris is not None else None
    checked_logouts = ([check_uri(u) for u in post_logout_redirect_uris]
                       if post_logout_redirect_uris is not None else None)
    checked_metadata = check_metadata(client_metadata) if client_metadata is not None else None
    if name is not None:
        client.name = name.strip()
    if checked_redirects is not None:
        client.redirect_uris = checked_redirects
    if checked_logouts is not None:
        client.post_logout_redirect_uris = checked_logouts
    if first_party is not None:
        client.first_party = first_party
    if audiences is not None:
        client.audiences = list(audiences)
    if connection_id is not None:
        client.connection_id = connection_id
    if checked_metadata is not None:
        client.client_metadata = checked_metadata
    _changed()
    return client


def list_clients() -> list[Client]:
    """Return every client, oldest first."""
    return list(db.session.scalars(select(Client).order_by(Client.created_at)))


def delete_client(client_id: str) -> bool:
    """Delete a client with its codes, grants and tokens; say whether it existed."""
    client = db.session.get(Client, client_id)
    if client is None:
        return False
    db.session.delete(client)
    _changed()
    return True
