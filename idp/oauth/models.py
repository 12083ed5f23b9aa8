"""Clients, authorization codes, grants, the tokens issued under them, and consents."""

import hashlib
import hmac
import secrets
from collections.abc import Collection
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, scope_to_list
from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.connections.models import NATIVE_ID
from idp.db import Model, UTCDateTime, utcnow

SCOPES = ("openid", "profile", "email", "offline_access")
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]  # how confidential clients authenticate
AUTH_METHODS = [*SECRET_METHODS, "none"]  # and public ones (with PKCE)


def digest(secret: str) -> str:
    """Return the SHA-256 hex digest under which a random secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Client(Model, ClientMixin):
    """A relying party. Confidential clients hold a secret stored only as its digest."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    first_party: Mapped[bool] = mapped_column(default=False)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    # APIs (the `audience` parameter) this client may ask access tokens for.
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The database connection its users sign in through.
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"), default=NATIVE_ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # idp's own admin dashboard, a first-party public client (idp/admin/auth.py keeps it registered).
    dashboard: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Auth0's client_metadata: string values the post-login actions read as event.client.metadata.
    client_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")

    @property
    def public(self) -> bool:
        """Say whether the client has no secret (a browser or native app)."""
        return self.secret_digest is None

    @staticmethod
    def new_secret() -> str:
        """Return a fresh client secret (256 bits)."""
        return secrets.token_urlsafe(32)

    # Authlib's ClientMixin hooks.
    def get_client_id(self) -> str:
        return self.id

    # Or None when there are several: Authlib then requires a redirect_uri (its stubs leave None out).
    def get_default_redirect_uri(self) -> str | None:  # type: ignore[override]
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: Collection[str] | str | None) -> str:
        if not scope:
            return "openid"
        return " ".join(dict.fromkeys(s for s in scope_to_list(scope) if s in SCOPES))  # no repeats

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, never a prefix

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_digest is None:
            return False
        return hmac.compare_digest(digest(client_secret), self.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return not self.public
        return grant_type in ("authorization_code", "refresh_token")


class AuthorizationRequest(Model):
    """An authorization request waiting while its user signs in or consents.

    Its id travels in the login and consent URLs; it is honoured only in the browser that made it.
    """

    __tablename__ = "authorization_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    browser: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    consented: Mapped[bool] = mapped_column(default=False)
    denied: Mapped[bool] = mapped_column(default=False)

    @property
    def client_id(self) -> str | None:
        """Return the client that made the request."""
        return self.params.get("client_id")


class AuthorizationCode(Model):
    """A code handed to a client's redirect URI; stored as its digest and usable once."""

    __tablename__ = "authorization_codes"

    code_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(64))
    redirect_uri: Mapped[str | None] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(String(1024))
    audience: Mapped[str | None] = mapped_column(String(2048))
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    auth_time: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The grant the first exchange created: revoked if the code is presented again.
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("grants.id", ondelete="SET NULL"))
    # What the post-login actions add to the tokens (idp.actions.runner.Changes.as_json), if anything.
    actions: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # Authlib's AuthorizationCodeMixin hooks.
    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Grant(Model):
    """One authorization: a code exchange or client-credentials call and every token rotated from it."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(1024))
    audience: Mapped[str | None] = mapped_column(String(2048))
    auth_time: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the post-login actions add to its tokens: from the code, then from each refresh's run.
    actions: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    client: Mapped[Client] = relationship()


class Token(Model):
    """One token response: a JWT access token (by its jti) and, maybe, a refresh token digest."""

    __tablename__ = "tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    refresh_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(1024))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    access_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the refresh token was exchanged; presenting it again revokes the grant.
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    grant: Mapped[Grant] = relationship()

    # Authlib's TokenMixin hooks, as the refresh-token grant and endpoints use them.
    def check_client(self, client: Client) -> bool:
        return self.grant.client_id == client.id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at).total_seconds())

    def is_revoked(self) -> bool:
        return self.grant.revoked_at is not None

    def is_expired(self) -> bool:
        return self.access_expires_at <= utcnow()


class RevokedToken(Model):
    """A client-credentials access token revoked before it expired (they are not stored when issued)."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Consent(Model):
    """The scopes a user has allowed a third-party client."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(1024))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Api(Model):
    """An API (Auth0's resource server): the `audience` a client asks tokens for, and its scopes."""

    __tablename__ = "apis"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(2048), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    # [{"value": "read:things", "description": "Read things"}, …]
    scopes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def scope_values(self) -> list[str]:
        """Return the API's scope names."""
        return [s["value"] for s in self.scopes]


class ClientGrant(Model):
    """A machine client's permission to get client-credentials tokens for an API, with some of its scopes."""

    __tablename__ = "client_grants"
    __table_args__ = (UniqueConstraint("client_id", "api_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    api_id: Mapped[str] = mapped_column(ForeignKey("apis.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)

    api: Mapped[Api] = relationship()
