"""Authlib's authorization server, with our grants and endpoints plugged into its hooks."""

import secrets
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    grants,
    scope_to_list,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import grants as oidc_grants
from flask import Flask, current_app
from flask import request as flask_request
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from idp.actions import runner
from idp.connections.models import Connection
from idp.db import claim_once, db, utcnow
from idp.events import batch
from idp.events import log as events
from idp.oauth import apis, clients, tokens
from idp.oauth.models import AUTH_METHODS, SECRET_METHODS, AuthorizationCode, Client, Grant, Token, digest
from idp.users.accounts import credentials_changed
from idp.users.models import User


class InvalidTargetError(OAuth2Error):
    """RFC 8707: the requested audience is not one this client may ask for."""

    error = "invalid_target"


class ActionDeniedError(OAuth2Error):
    """A post-login action refused a refresh, or failed: `access_denied`, with 403 as Auth0 answers."""

    error = "access_denied"
    status_code = 403


ACTION_FAILED = "A post-login action failed"  # what the client learns of a failure: never its output


class UnsupportedResponseTypeError(OAuth2Error):
    """A response type we do not offer, described without quoting the client's value."""

    error = "unsupported_response_type"


def query_client(client_id: Any) -> Client | None:
    """Find a client by id."""
    if not isinstance(client_id, str) or len(client_id) > 64 or "\x00" in client_id:
        return None  # PostgreSQL refuses NUL in text: such an id can match no client anyway
    return clients.cached(client_id)


def revoke_grant(grant_id: str | None) -> None:
    """Revoke a grant and with it every token issued under it, and commit."""
    if grant_id:
        db.session.execute(
            update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None))
            .values(revoked_at=utcnow()).execution_options(synchronize_session=False)
        )
    db.session.commit()


def revoke_user_grants(user_id: str) -> None:
    """Revoke every grant (and so every refresh and access token) of a user; the caller commits."""
    db.session.execute(
        update(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    )


if TYPE_CHECKING:
    class GrantRequest(OAuth2Request):
        """Authlib's request as our hooks see it: our requests always carry a payload, and past client
        authentication the client is one query_client returned (typing only)."""

        payload: OAuth2Payload
        client: Client
        user: Any  # the SSO session when a code is issued, the User when tokens are
        authorization_code: AuthorizationCode
        refresh_token: Token
        post_login: dict[str, Any] | None  # what the actions add to the tokens, set by authorize


class IssuesTokens:
    """Mint tokens under a grant row instead of Authlib's random bearer strings."""

    request: OAuth2Request
    new_grant: Callable[[User | None, str], Grant]  # each grant says where its tokens belong

    def generate_token(
        self, user: User | None = None, scope: str | None = None, grant_type: str | None = None,
        expires_in: int | None = None, include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        grant = self.new_grant(user, scope or "")
        return tokens.issue(grant, scope or "", include_refresh_token)

    def create_token_response(self) -> Any:
        """Answer with the tokens; what they wrote is committed once the whole answer, ID token too, is made.

        Committing earlier (at save_token) would expire the code and the user the ID token reads next,
        which would then be read again; failing later would have spent the code for no answer.
        """
        answer = super().create_token_response()  # type: ignore[misc]
        db.session.commit()
        return answer


class AuthorizationCodeGrant(IssuesTokens, grants.AuthorizationCodeGrant):
    """The code flow; codes are stored as digests and a reused code revokes its grant."""

    request: "GrantRequest"
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    @staticmethod
    def validate_authorization_redirect_uri(request: OAuth2Request, client: ClientMixin) -> str:
        # Authlib quotes the URI in its error, and a `"`, `\` or non-ASCII character there is a 500.
        requested = cast("GrantRequest", request).payload.redirect_uri
        if requested and not client.check_redirect_uri(requested):
            raise InvalidRequestError("The redirect_uri is not registered for this client.")
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        request = cast("GrantRequest", request)
        data = request.payload.data
        session = request.user  # our authorize view passes the SSO session as the "user"
        db.session.add(AuthorizationCode(
            code_digest=digest(code), client_id=request.client.id, user_id=session.user_id,
            session_id=session.id, redirect_uri=request.payload.redirect_uri,
            scope=request.client.get_allowed_scope(request.scope),  # unknown scopes are ignored
            audience=data.get("audience"), nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"), auth_time=session.auth_time,
            actions=getattr(request, "post_login", None),
            expires_at=utcnow() + timedelta(seconds=current_app.config["AUTHORIZATION_CODE_LIFETIME"]),
        ))
        db.session.commit()

    def query_authorization_code(self, code: str, client: ClientMixin) -> AuthorizationCode | None:
        # Claimed and read in one statement; of concurrent exchanges, one gets the row.
        claimed = db.session.scalar(
            update(AuthorizationCode).where(AuthorizationCode.code_digest == digest(code),
                                            AuthorizationCode.client_id == client.get_client_id(),
                                            AuthorizationCode.used_at.is_(None))
            .values(used_at=utcnow()).returning(AuthorizationCode)
            .execution_options(synchronize_session=False, populate_existing=True))
        if claimed is None:
            row = db.session.get(AuthorizationCode, digest(code))
            if row is not None and row.client_id == client.get_client_id() and row.used_at is not None:
                # Second use: RFC 6749 §4.1.2 — refuse it and revoke what the first use issued.
                revoke_grant(row.grant_id)
            return None
        if claimed.expires_at <= utcnow():
            return None
        return claimed

    def new_grant(self, user: User | None, scope: str) -> Grant:
        code: AuthorizationCode = self.request.authorization_code
        grant = Grant(
            id=secrets.token_urlsafe(16), client_id=code.client_id, user_id=code.user_id,
            session_id=code.session_id, scope=code.scope, audience=code.audience,
            auth_time=code.auth_time, actions=code.actions,
        )
        db.session.add(grant)
        db.session.flush()  # the code's reference to the grant needs the grant's row first
        code.grant_id = grant.id
        return grant

    def generate_token(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # A third-party client gets a refresh token only when the user allowed offline_access.
        client: Client = self.request.client
        offline = "offline_access" in (kwargs.get("scope") or "").split()
        kwargs["include_refresh_token"] = kwargs.get("include_refresh_token", True) and (
            client.first_party or offline)
        return super().generate_token(*args, **kwargs)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Keep the used code: it must recognise its own reuse."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return db.session.get(User, authorization_code.user_id)


class RefreshTokenGrant(IssuesTokens, grants.RefreshTokenGrant):
    """Refresh with rotation: every use returns a new refresh token; reuse revokes the family."""

    request: "GrantRequest"
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    # Authlib's stubs want a TokenMixin, where its docs return None for an invalid token; our Token
    # has the mixin's hooks without deriving from it.
    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:  # type: ignore[override]
        row = db.session.scalar(select(Token).options(joinedload(Token.grant))  # one statement for both
                                .where(Token.refresh_digest == digest(refresh_token)))
        if row is None or row.grant.revoked_at is not None or not row.check_client(self.request.client):
            return None  # another client's token is refused without being spent
        if row.refresh_expires_at is None or row.refresh_expires_at <= utcnow():
            return None
        if row.rotated_at is None:  # before the token is spent: a refused refresh leaves it usable
            self._run_actions(row)
        if not claim_once(Token, Token.jti == row.jti, Token.rotated_at.is_(None), rotated_at=utcnow()):
            revoke_grant(row.grant_id)  # a rotated token came back: assume it was stolen
            return None
        return row

    def _user(self, row: Token) -> User | None:
        """Return the grant's user, read once per exchange (the session holds loaded rows only weakly)."""
        if not hasattr(self, "_grant_user"):
            self._grant_user = db.session.get(User, row.grant.user_id) if row.grant.user_id else None
        return self._grant_user

    def _run_actions(self, row: Token) -> None:
        """Run the post-login actions again; keep what they add for the new tokens, or refuse."""
        user = self._user(row)
        if user is None:
            return
        client = self.request.client
        requested = scope_to_list(self.request.payload.scope) or row.scope.split()
        transaction = runner.Transaction(client.id, client.name, runner.REFRESH, list(requested),
                                         audience=row.grant.audience,
                                         client_metadata=dict(client.client_metadata))
        try:
            changes = runner.run(user, transaction)
        except runner.Denied as denied:
            raise ActionDeniedError(denied.reason) from None
        except runner.ActionFailed:
            raise ActionDeniedError(ACTION_FAILED) from None
        row.grant.actions = changes.as_json()  # committed with the new token

    def new_grant(self, user: User | None, scope: str) -> Grant:
        return self.request.refresh_token.grant

    def authenticate_user(self, refresh_token: Token) -> User | None:
        return self._user(refresh_token)

    def revoke_old_credential(self, refresh_token: Token) -> None:  # type: ignore[override]  # as above
        """Nothing left to do: the old token was marked rotated when it was accepted."""

    def generate_token(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        token = super().generate_token(*args, **kwargs)
        # Committed with the rotation and the new token (IssuesTokens.create_token_response).
        client, grant, user = self.request.client, self.request.refresh_token.grant, self.request.user
        connection = db.session.get(Connection, user.connection_id) if user is not None else None
        events.record(events.SUCCESS_REFRESH, "Successful exchange of Refresh Token for Access Token",
                      client_id=client.id, client_name=client.name, user_id=grant.user_id,
                      user_name=user.email if user is not None else None,
                      connection=connection.name if connection else None,
                      connection_id=connection.id if connection else None, audience=grant.audience,
                      scope=token.get("scope"), database=connection is not None)
        return token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Machine-to-machine tokens for an API the client is allowed to call, issued without a write."""

    request: "GrantRequest"
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    scope = ""  # what the token carries: the granted scopes, narrowed to those requested

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client, audience = self.request.client, self.request.payload.data.get("audience")
        if not audience:
            raise InvalidRequestError("Missing 'audience': name the API the token is for.")
        granted = apis.granted_scopes(client.id, audience)  # a client grant (Auth0's), or None
        if granted is None and audience not in client.audiences:
            raise InvalidTargetError("This client may not request tokens for that audience.")
        if granted is None:
            return  # an audience the client lists, without a grant: no scope, whatever was asked, as before
        requested = list(dict.fromkeys(scope_to_list(self.request.payload.scope) or []))
        if any(s not in granted for s in requested):
            # The values stay out of the message: Authlib would quote them as they are.
            raise InvalidScopeError("A requested scope was not granted to this client for that audience.")
        self.scope = " ".join(s for s in granted if not requested or s in requested)

    def generate_token(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        client, audience = self.request.client, self.request.payload.data["audience"]
        token = tokens.issue_for_client(client, audience, self.scope)
        # Written off the request: this path writes nothing else.
        batch.record_soon(events.SUCCESS_CLIENT_CREDENTIALS, "Client Credentials for Access Token",
                          client_id=client.id, client_name=client.name, audience=audience,
                          scope=self.scope or None, database=False)
        return token


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only: `plain` offers no protection once the request leaks."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        if grant.request.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("Public clients must use PKCE (code_challenge with S256).")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDCode(oidc_grants.OpenIDCode):
    """Add the ID token to the code exchange; prompt and nonce are handled by our authorize view."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.process_token)

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        request = cast("GrantRequest", request)
        code = request.authorization_code
        return tokens.id_token(
            # The granted scope: the response's may carry the actions' changes to the access token's.
            request.client, request.user, code.scope, auth_time=code.auth_time,
            nonce=code.nonce, session_id=code.session_id, access_token=token["access_token"],
            actions=code.actions,
        )


Issued = Token | tokens.ClientToken  # a token we issued: stored, or a client-credentials JWT alone


def _lookup(token_string: str, hint: str | None) -> Issued | None:
    """Find an access or refresh token we issued: its stored row, or a client-credentials token's claims."""
    if hint != "refresh_token":
        try:
            claims = tokens.verify(token_string, typ="at+jwt", verify_exp=False)
        except tokens.InvalidToken:
            pass
        else:
            if claims.get("gty") == tokens.CLIENT_CREDENTIALS:
                return tokens.ClientToken(claims)
            return db.session.get(Token, str(claims.get("jti")), options=[joinedload(Token.grant)])
    return db.session.scalar(select(Token).options(joinedload(Token.grant))
                             .where(Token.refresh_digest == digest(token_string)))


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token revokes its grant; an access token, itself."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Issued | None:
        return _lookup(token_string, token_type_hint)

    def authenticate_token(self, request: OAuth2Request, client: Client) -> Issued | None:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        # RFC 7009 §2.2: an unknown token, or another client's, is answered 200 all the same.
        return token if token and token.check_client(client) else None

    def revoke_token(self, token: Issued, request: OAuth2Request) -> None:
        if isinstance(token, tokens.ClientToken):
            tokens.revoke_client_token(token)
            db.session.commit()
        elif token.refresh_digest and digest(request.form["token"]) == token.refresh_digest:
            revoke_grant(token.grant_id)
        else:
            token.access_revoked_at = utcnow()
            db.session.commit()


class Introspection(IntrospectionEndpoint):
    """RFC 7662, for the client the token was issued to."""

    CLIENT_AUTH_METHODS = SECRET_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> dict[str, Any] | None:
        row = _lookup(token_string, token_type_hint)
        if row is None:
            return None
        if isinstance(row, tokens.ClientToken):
            return {"row": row, "active": row.is_active(), "refresh": False, "exp": row.expires_at}
        is_refresh = row.refresh_digest == digest(token_string)
        expires = row.refresh_expires_at if is_refresh else row.access_expires_at
        active = (
            row.grant.revoked_at is None and expires is not None and expires > utcnow()
            and (row.rotated_at is None if is_refresh else row.access_revoked_at is None)
        )
        return {"row": row, "active": active, "refresh": is_refresh, "exp": expires}

    def check_permission(self, token: dict[str, Any], client: Client, request: Any) -> bool:
        return token["row"].check_client(client)

    def create_introspection_payload(self, token: dict[str, Any] | None) -> dict[str, Any]:
        if not token or not token["active"]:
            return {"active": False}
        return self.introspect_token(token)

    def introspect_token(self, token: dict[str, Any]) -> dict[str, Any]:
        if isinstance(token["row"], tokens.ClientToken):
            claims = token["row"].claims
            return {"active": True, "scope": claims.get("scope", ""), "token_type": "Bearer",
                    **{k: claims[k] for k in ("client_id", "sub", "iss", "iat", "exp", "jti", "aud", "gty")}}
        row: Token = token["row"]
        grant = row.grant
        payload: dict[str, Any] = {
            "active": True, "client_id": grant.client_id, "scope": row.scope,
            "sub": grant.user_id or grant.client_id, "iss": tokens.issuer(),
            "iat": int(row.issued_at.timestamp()), "exp": int(token["exp"].timestamp()),
            "token_type": "refresh_token" if token["refresh"] else "Bearer",
        }
        if not token["refresh"]:
            payload["jti"] = row.jti
        return payload


def json_parameters(request: Any) -> MultiDict[str, str] | None:
    """Return the parameters of a JSON body (as Auth0's older SDKs send them), or None for any other body.

    Only an object of strings, without NUL, has parameters: any other JSON body has none. A null member
    is a parameter not sent (auth0-python v4's client_credentials sends `"organization": null`).
    """
    if not request.is_json:
        return None
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return MultiDict()
    body = {k: v for k, v in body.items() if v is not None}
    if not all(isinstance(k, str) and isinstance(v, str) and "\x00" not in k + v for k, v in body.items()):
        return MultiDict()
    return MultiDict(body)


class IssuerPayload(FlaskOAuth2Payload):
    """The request's parameters: its query and its form, or its JSON object."""

    def __init__(self, request: Any, body: MultiDict[str, str] | None) -> None:
        super().__init__(request)
        self._flask, self._body = request, body

    @property
    def data(self) -> Any:
        if self._body is None:
            return self._flask.values
        return CombinedMultiDict([self._flask.args, self._body])


class IssuerRequest(FlaskOAuth2Request):
    """A request seen at its public URL under the issuer, not at the address a proxy used."""

    def __init__(self, request: Any) -> None:
        OAuth2Request.__init__(self, request.method, tokens.issuer() + request.path, headers=request.headers)
        self._request = request
        self._body = json_parameters(request)
        self.payload = IssuerPayload(request, self._body)

    @property
    def form(self) -> Any:
        """The body's parameters (client_secret_post reads its credentials here): form or JSON."""
        return self._request.form if self._body is None else self._body


def _error_redirect_uri(request: OAuth2Request) -> str | None:
    """Return where an authorization error may be sent: only a redirect URI the client registered."""
    payload = cast(OAuth2Payload, request.payload)  # set on every request our server builds
    client = query_client(payload.client_id)
    if client is None:
        return None
    requested = payload.redirect_uri
    if requested:
        return requested if client.check_redirect_uri(requested) else None
    return client.get_default_redirect_uri()


class Server(AuthorizationServer):
    """The authorization server."""

    def get_authorization_grant(self, request: OAuth2Request) -> Any:
        if AuthorizationCodeGrant.check_authorization_endpoint(request):
            return super().get_authorization_grant(request)
        # Authlib quotes the response type in its error (a 500 for `"`, `\` or non-ASCII), and calls
        # a missing one unsupported where RFC 6749 §4.1.2.1 says invalid_request.
        redirect_uri = _error_redirect_uri(request)
        if not cast(OAuth2Payload, request.payload).response_type:
            raise InvalidRequestError("Missing 'response_type'.", redirect_uri=redirect_uri)
        raise UnsupportedResponseTypeError("Only response_type=code is supported.", redirect_uri=redirect_uri)

    def authenticate_client(
        self, request: OAuth2Request, methods: Collection[str], endpoint: str = "token"
    ) -> ClientMixin:
        try:
            # The parser of Authlib's client_secret_basic (any headers mapping does, whatever its stubs say).
            extract_basic_authorization(request.headers)  # type: ignore[arg-type]
        except ValueError:
            # It lets these escape as a 500: credentials not base64 of UTF-8, or not even ASCII, and a
            # scheme followed only by whitespace (`"Basic \xa0"` splits into one part).
            raise InvalidClientError(
                status_code=401, description="The Authorization header's credentials are malformed."
            ) from None
        return super().authenticate_client(request, methods, endpoint)

    # Wider than the Flask server's FlaskOAuth2Request: Authlib's core takes any OAuth2Request.
    def create_oauth2_request(self, request: Any) -> OAuth2Request:  # type: ignore[override]
        if isinstance(request, OAuth2Request):
            return request  # an authorization request we stored while the user signed in
        return IssuerRequest(flask_request)


server = Server()


def _revoke_on_credentials_change(user_id: str) -> None:
    revoke_user_grants(user_id)


def init_app(app: Flask) -> None:
    """Register grants and endpoints, and revoke a user's grants whenever their credentials change."""
    credentials_changed.connect(_revoke_on_credentials_change)
    # Nothing to save apart: a grant's rows are written with its tokens and committed with its answer.
    server.init_app(app, query_client=query_client, save_token=lambda token, request: None)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCode()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
