"""Signing in to the dashboard: idp's own first-party client, the code flow with PKCE through the hosted
login, and the check every dashboard request passes (still an admin, still signed in)."""

import hashlib
import hmac
import json
import secrets
import time
from base64 import urlsafe_b64encode
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Response, current_app, g, url_for
from flask import session as cookie
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select

from idp.connections import registry
from idp.db import db
from idp.oauth import clients, tokens
from idp.oauth.models import Client, Token
from idp.oauth.server import revoke_grant, server
from idp.users.models import Session, User
from idp.users.sessions import current_session

NAME = "idp dashboard"
SCOPE = "openid email"
# A sign-in on its way: in a cookie of its own, because signing in on the hosted page starts a new SSO
# session and clears Flask's session cookie of everything but the browser's id.
SIGN_IN_COOKIE = "idp_admin_sign_in"
SIGN_IN_LIFETIME = 900  # seconds to get through the hosted login
# Flask's session keys of a signed-in admin: who, since when (epoch seconds), in which SSO session.
ADMIN_USER, ADMIN_SINCE, ADMIN_SID = "admin_user", "admin_since", "admin_sid"
HOME = "/admin"


class SignInFailed(Exception):
    """A callback that does not complete a sign-in this browser started; the message says why."""


def _uris() -> tuple[list[str], list[str]]:
    """Return the dashboard's redirect URIs and post-logout redirect URIs under the current issuer."""
    issuer = tokens.issuer()
    return [issuer + HOME + "/callback"], [issuer + HOME]


def dashboard_client() -> Client:
    """Return idp's dashboard client: registered if missing, its URIs and connection following a changed
    issuer or ADMIN_CONNECTION."""
    redirects, logouts = _uris()
    connection = registry.find(current_app.config["ADMIN_CONNECTION"]).id
    # Of two made at the same moment by two processes, the oldest is the one every process uses.
    client = db.session.scalar(select(Client).where(Client.dashboard.is_(True))
                               .order_by(Client.created_at, Client.id).limit(1))
    if client is None:
        # Never made, or deleted with `idp clients delete`: it is a real client and may be deleted, and
        # the dashboard simply registers it again (codes and tokens of the old one went with it).
        client, _ = clients.create_client(NAME, redirects, public=True, first_party=True,
                                          post_logout_redirect_uris=logouts, connection_id=connection)
        client.dashboard = True
        db.session.commit()
    elif (client.redirect_uris, client.post_logout_redirect_uris, client.connection_id) \
            != (redirects, logouts, connection):
        moved = clients.update_client(client.id, redirect_uris=redirects, post_logout_redirect_uris=logouts,
                                      connection_id=connection)
        assert moved is not None
        client = moved
    return client


def safe_next(value: str | None) -> str:
    """Return where to go after signing in: a path under /admin on this site, else the overview."""
    if not value or not value.isprintable() or "\\" in value:
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not (parts.path == HOME or parts.path.startswith(HOME + "/")):
        return HOME
    # Dot segments and empty ones would lead the browser out of /admin (`/admin/../x`, `/admin/..//x`).
    segments = unquote(parts.path).split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments[1:-1]) or segments[-1] in (".", ".."):
        return HOME
    return value


@dataclass(frozen=True)
class SignIn:
    """What the callback checks a sign-in against: sent to /authorize, kept in the browser's cookie."""

    state: str
    nonce: str
    verifier: str  # PKCE's code_verifier
    next: str


def _sealer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="idp.admin.sign-in")


def begin(next_path: str) -> tuple[str, str]:
    """Start a sign-in: return the authorization request's URL and the cookie value that remembers it."""
    client = dashboard_client()
    sign_in = SignIn(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48),
                     safe_next(next_path))
    challenge = urlsafe_b64encode(hashlib.sha256(sign_in.verifier.encode()).digest()).rstrip(b"=").decode()
    url = url_for("oauth.authorize", response_type="code", client_id=client.id,
                  redirect_uri=client.redirect_uris[0], scope=SCOPE, state=sign_in.state,
                  nonce=sign_in.nonce, code_challenge=challenge, code_challenge_method="S256",
                  max_age=current_app.config["ADMIN_REAUTHENTICATE_AFTER"])
    return url, _sealer().dumps(asdict(sign_in))


def pending(sealed: str | None) -> SignIn | None:
    """Return the sign-in a cookie value remembers, unless it is forged or older than SIGN_IN_LIFETIME."""
    if not sealed:
        return None
    try:
        data = _sealer().loads(sealed, max_age=SIGN_IN_LIFETIME)
        return SignIn(**data)
    except (BadData, TypeError):
        return None


class TokenRequest(OAuth2Request):
    """A token request made in-process: Authlib's grant, as /oauth/token runs it, without a network hop."""

    payload: BasicOAuth2Payload

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__("POST", tokens.issuer() + "/oauth/token", headers={})
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self) -> dict[str, str]:  # type: ignore[override]  # the stubs' dict[str, str | None] is invariant
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data


def _exchange(client: Client, code: str, verifier: str) -> dict[str, Any]:
    """Exchange a code at idp's own token endpoint and return the token response."""
    # Authlib's stubs give the framework-neutral (status, body, headers); its Flask server makes a Response.
    answer: Response = server.create_token_response(TokenRequest({  # type: ignore[assignment]
        "grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uris[0],
        "client_id": client.id, "code_verifier": verifier,
    }))
    body = json.loads(answer.get_data()) if answer.status_code == 200 else {}
    if not isinstance(body.get("id_token"), str) or not isinstance(body.get("access_token"), str):
        raise SignInFailed("The sign-in code was refused: it was used already, has expired, or is not ours.")
    # The dashboard keeps no tokens: what the exchange issued is revoked at once.
    try:
        row = tokens.active_token(body["access_token"])
    except tokens.InvalidToken:
        row = None
    if isinstance(row, Token):
        revoke_grant(row.grant_id)
    return body


def finish(sign_in: SignIn, args: Mapping[str, str]) -> tuple[User, Session]:
    """Complete a sign-in from the callback's parameters: the user and the SSO session they signed in with."""
    if not hmac.compare_digest(args.get("state", "").encode(), sign_in.state.encode()):
        raise SignInFailed("This sign-in was not started in this browser.")
    if args.get("iss") != tokens.issuer():
        raise SignInFailed("The sign-in answer does not come from this idp.")
    if "error" in args or not args.get("code"):
        raise SignInFailed("The sign-in was not completed.")
    client = dashboard_client()
    body = _exchange(client, args["code"], sign_in.verifier)
    try:
        claims = tokens.verify(body["id_token"], audience=client.id, typ="JWT")
    except tokens.InvalidToken:
        raise SignInFailed("The ID token is not valid.") from None
    if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), sign_in.nonce.encode()):
        raise SignInFailed("The ID token was issued for another sign-in.")
    typed, window = claims.get("auth_time"), current_app.config["ADMIN_REAUTHENTICATE_AFTER"]
    if not isinstance(typed, int) or time.time() - typed > window + 60:  # a minute for the hosted login
        raise SignInFailed("The password was not typed for this sign-in. Sign in again.")
    user = db.session.get(User, str(claims.get("sub")))
    sso = current_session()
    if user is None or sso is None or claims.get("sid") != sso.id:
        raise SignInFailed("This browser is no longer signed in. Sign in again.")
    return user, sso


def admits(user: User) -> bool:
    """Say whether a user may use the dashboard."""
    return user.admin and not user.blocked


def admit(user: User, sso: Session) -> None:
    """Remember in Flask's session that this browser's SSO session belongs to an admin."""
    cookie[ADMIN_USER], cookie[ADMIN_SID], cookie[ADMIN_SINCE] = user.id, sso.id, int(time.time())
    g.admin = user


def dismiss() -> None:
    """Forget the admin sign-in of this browser (its SSO session stays)."""
    for key in (ADMIN_USER, ADMIN_SID, ADMIN_SINCE):
        cookie.pop(key, None)
    g.admin = None


def current_admin() -> User | None:
    """Return the signed-in admin, checked anew: the user still exists, is an admin, is not blocked, the
    SSO session they signed in with is still live in this browser, and ADMIN_SESSION_LIFETIME has not
    passed since they signed in to the dashboard."""
    if "admin" not in g:
        user = None
        user_id, sso, since = cookie.get(ADMIN_USER), current_session(), cookie.get(ADMIN_SINCE)
        fresh = isinstance(since, int) and time.time() - since < current_app.config["ADMIN_SESSION_LIFETIME"]
        if isinstance(user_id, str) and fresh and sso is not None and sso.id == cookie.get(ADMIN_SID) \
                and sso.user_id == user_id:
            found = db.session.get(User, user_id)
            user = found if found is not None and admits(found) else None
        g.admin = user
    return g.admin
