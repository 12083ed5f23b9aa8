"""Signed JWTs: RFC 9068 access tokens and ID tokens, and their verification."""

import hashlib
import secrets
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import current_app
from sqlalchemy import delete
from sqlalchemy.orm import joinedload

from idp.actions.runner import REGISTERED
from idp.db import db, utcnow
from idp.errors import IdpError
from idp.keys.store import KeyNotFound, public_key, signing_key
from idp.oauth import clients
from idp.oauth.models import Client, Grant, RevokedToken, Token, digest
from idp.users.models import User

CLIENT_CREDENTIALS = "client-credentials"  # the `gty` claim of a machine's token, as Auth0 names it


class InvalidToken(IdpError):
    """A token that is malformed, wrongly signed, expired, or for someone else."""


def issuer() -> str:
    """Return the configured issuer URL."""
    return current_app.config["ISSUER"]


def sign(claims: dict[str, Any], typ: str = "JWT") -> str:
    """Sign claims with the current key, naming it by kid."""
    kid, key = signing_key()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": typ})


def verify(
    token: str, *, audience: str | None = None, typ: str | None = None, verify_exp: bool = True
) -> dict[str, Any]:
    """Verify a JWT we issued and return its claims."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "RS256" or (typ and header.get("typ") != typ):
            raise InvalidToken("unexpected token type")
        key = public_key(str(header.get("kid")))
        return jwt.decode(
            token, key, algorithms=["RS256"], issuer=issuer(), audience=audience,
            options={"verify_exp": verify_exp, "verify_aud": audience is not None},
        )
    except (jwt.PyJWTError, KeyNotFound) as e:
        raise InvalidToken(str(e)) from None


def half_hash(value: str) -> str:
    """Return the at_hash of a token: the left half of its SHA-256, base64url."""
    half = hashlib.sha256(value.encode()).digest()[:16]
    return urlsafe_b64encode(half).rstrip(b"=").decode()


def userinfo_audience() -> str:
    """Return the audience that lets an access token call /userinfo."""
    return issuer() + "/userinfo"


def _access_token(sub: str, client_id: str, audiences: list[str], scope: str,
                  custom: dict[str, Any] | None = None,
                  **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sign an RFC 9068 access token; return its claims and the token response carrying it."""
    now, lifetime = int(time.time()), current_app.config["ACCESS_TOKEN_LIFETIME"]
    claims: dict[str, Any] = {
        **(custom or {}),  # first: the token's own claims below win
        "iss": issuer(),
        "sub": sub,
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "client_id": client_id,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + lifetime,
        **({"scope": scope} if scope else {}),
        **{k: v for k, v in extra.items() if v is not None},
    }
    response = {"token_type": "Bearer", "access_token": sign(claims, typ="at+jwt"), "expires_in": lifetime,
                "scope": scope}
    return claims, response


def issue_for_client(client: Client, audience: str, scope: str = "") -> dict[str, Any]:
    """Mint a client-credentials access token: the JWT alone, stored nowhere (revoked by jti if asked).

    As Auth0's: `sub` "<client id>@clients", `scope` (the granted scopes, when any), `gty:
    client-credentials` and `azp` (the client).
    """
    return _access_token(f"{client.id}@clients", client.id, [audience], scope, gty=CLIENT_CREDENTIALS,
                         azp=client.id)[1]


def custom_claims(actions: dict[str, Any] | None, token: str) -> dict[str, Any]:
    """Return the claims the post-login actions set for a token ("id_token" or "access_token").

    The runner refused registered claims already; they are left out here too, so that no stored value
    can ever replace one.
    """
    claims = (actions or {}).get(token) or {}
    return {k: v for k, v in claims.items() if k not in REGISTERED}


def action_scope(scope: str, actions: dict[str, Any] | None) -> str:
    """Return an access token's scope after the actions' add_scope and remove_scope."""
    removed = set((actions or {}).get("remove_scopes") or [])
    added = (actions or {}).get("add_scopes") or []
    return " ".join(s for s in dict.fromkeys([*scope.split(), *added]) if s not in removed)


def issue(grant: Grant, scope: str, include_refresh_token: bool) -> dict[str, Any]:
    """Mint an access token (and maybe a refresh token) under a grant; the caller commits.

    The token carries what the grant's post-login actions set; the stored row keeps the granted scope,
    which a refresh is checked against.
    """
    config = current_app.config
    audiences = [a for a in (grant.audience,) if a]
    if "openid" in scope.split():
        audiences.append(userinfo_audience())
    custom = custom_claims(grant.actions, "access_token")
    claims, response = _access_token(grant.user_id or grant.client_id, grant.client_id, audiences,
                                     action_scope(scope, grant.actions), custom=custom,
                                     auth_time=grant.auth_time)
    jti, lifetime = claims["jti"], config["ACCESS_TOKEN_LIFETIME"]
    issued = utcnow()
    row = Token(
        jti=jti, grant=grant, scope=scope, issued_at=issued,
        access_expires_at=issued + timedelta(seconds=lifetime),
    )
    if include_refresh_token:
        refresh = secrets.token_urlsafe(32)
        row.refresh_digest = digest(refresh)
        row.refresh_expires_at = issued + timedelta(seconds=config["REFRESH_TOKEN_LIFETIME"])
        response["refresh_token"] = refresh
    db.session.add(row)
    return response


def user_claims(user: User, scope: str) -> dict[str, Any]:
    """Return the standard claims a scope releases about a user."""
    scopes = scope.split()
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        profile = {
            "name": user.name, "given_name": user.given_name, "family_name": user.family_name,
            "nickname": user.nickname, "picture": user.picture,
            "updated_at": int(user.updated_at.timestamp()),
        }
        claims.update({k: v for k, v in profile.items() if v is not None})
    if "email" in scopes:
        claims.update(email=user.email, email_verified=user.email_verified)
    return claims


def id_token(
    client: Client, user: User, scope: str, *, auth_time: int, nonce: str | None,
    session_id: str | None, access_token: str | None, actions: dict[str, Any] | None = None,
) -> str:
    """Sign an ID token for a client, with the claims its post-login actions set."""
    now = int(time.time())
    claims: dict[str, Any] = {
        **user_claims(user, scope),
        **custom_claims(actions, "id_token"),  # may replace a profile claim, never a registered one
        "iss": issuer(),
        "aud": client.id,
        "iat": now,
        "exp": now + current_app.config["ID_TOKEN_LIFETIME"],
        "auth_time": auth_time,
        "sub": user.id,
    }
    if nonce:
        claims["nonce"] = nonce
    if session_id:
        claims["sid"] = session_id
    if access_token:
        claims["at_hash"] = half_hash(access_token)
    return sign(claims)


def active_token(access_token: str) -> Token:
    """Return the stored row of a valid, unexpired, unrevoked access token."""
    return active_row(verify(access_token, typ="at+jwt"))


def active_row(claims: dict[str, Any]) -> Token:
    """Return the stored row of an access token whose claims were verified, unless it was revoked."""
    row = db.session.get(Token, str(claims.get("jti")), options=[joinedload(Token.grant)])  # one statement
    if row is None or row.access_revoked_at is not None or row.is_revoked():
        raise InvalidToken("token revoked")
    return row


@dataclass(frozen=True)
class ClientToken:
    """A client-credentials access token we issued, known by its claims alone."""

    claims: dict[str, Any]

    @property
    def jti(self) -> str:
        """The token's id, under which it is revoked."""
        return str(self.claims["jti"])

    @property
    def expires_at(self) -> datetime:
        """When the token expires."""
        return datetime.fromtimestamp(int(self.claims["exp"]), UTC)

    def check_client(self, client: Client) -> bool:
        """Say whether the token was issued to this client."""
        return self.claims.get("client_id") == client.id

    def is_revoked(self) -> bool:
        """Say whether the token was revoked."""
        return db.session.get(RevokedToken, self.jti) is not None

    def is_active(self) -> bool:
        """Say whether the token still counts: unexpired, unrevoked, and its client not deleted."""
        client_id = self.claims.get("client_id")
        return (self.expires_at > utcnow() and isinstance(client_id, str)
                and clients.cached(client_id) is not None and not self.is_revoked())


def revoke_client_token(token: ClientToken) -> None:
    """Record a client-credentials token as revoked until it expires; the caller commits."""
    now = utcnow()
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))  # expired: moot
    if token.expires_at > now and not token.is_revoked():
        db.session.add(RevokedToken(jti=token.jti, client_id=token.claims["client_id"],
                                    expires_at=token.expires_at))
