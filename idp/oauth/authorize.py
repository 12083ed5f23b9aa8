"""The authorization endpoint's decisions: validate, sign in, ask consent, issue a code."""

import json
import secrets
import time
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Response, current_app, redirect, render_template, url_for
from flask import session as cookie
from sqlalchemy import select

from idp.accounts.models import Consent, Session
from idp.accounts.sessions import current_session
from idp.db import db
from idp.oauth import tokens
from idp.oauth.models import Client
from idp.oauth.server import InvalidTargetError, server

PENDING = "authz"
MAX_PENDING = 5  # authorization requests one browser may have waiting at once
RESPONSE_MODES = ("query", "form_post")
MAX_NONCE = 512  # the authorization code's nonce column
# Waiting requests ride in the session cookie, and browsers drop cookies over 4 kB.
MAX_REQUEST_CHARS = 3000  # one authorization request's parameters, as JSON
MAX_PENDING_CHARS = 3200  # every waiting request together, as JSON


class StoredRequest(OAuth2Request):
    """An authorization request rebuilt from its parameters (kept while the user signs in)."""

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__("GET", tokens.issuer() + "/authorize", headers={})
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        return {}


def remember(params: dict[str, str]) -> str:
    """Keep an authorization request in the cookie while the user signs in; return its handle."""
    pending: dict[str, Any] = dict(cookie.get(PENDING, {}))
    handle = secrets.token_urlsafe(16)
    entry = {"params": params, "at": time.time()}
    for old in sorted(pending, key=lambda k: pending[k]["at"]):  # drop the oldest until it fits
        if len(pending) < MAX_PENDING and len(json.dumps({**pending, handle: entry})) <= MAX_PENDING_CHARS:
            break
        del pending[old]
    pending[handle] = entry
    cookie[PENDING] = pending
    return handle


def pending(handle: str | None) -> dict[str, Any] | None:
    """Return a waiting authorization request, unless it is unknown or too old."""
    entry = cookie.get(PENDING, {}).get(handle or "")
    if entry is None or time.time() - entry["at"] > current_app.config["LOGIN_TRANSACTION_LIFETIME"]:
        return None
    return entry


def update_pending(handle: str, **values: Any) -> None:
    """Record a decision (consent given or refused) on a waiting request."""
    stored = dict(cookie.get(PENDING, {}))
    stored[handle] = {**stored[handle], **values}
    cookie[PENDING] = stored


def forget(handle: str | None) -> None:
    """Drop a waiting request once it is answered."""
    stored = dict(cookie.get(PENDING, {}))
    if stored.pop(handle or "", None) is not None:
        cookie[PENDING] = stored


def client_of(entry: dict[str, Any] | None) -> Client | None:
    """Return the client a waiting request came from."""
    client_id = entry["params"].get("client_id") if entry else None
    return db.session.get(Client, client_id) if isinstance(client_id, str) else None


def respond(redirect_uri: str, params: list[tuple[str, str]], mode: str | None) -> Response:
    """Deliver an authorization response to the client by its response mode."""
    params = [*params, ("iss", tokens.issuer())]  # RFC 9207 mix-up defence
    if mode == "form_post":
        nonce = secrets.token_urlsafe(16)
        page = render_template("form_post.html", action=redirect_uri, params=params, nonce=nonce)
        response = Response(page)
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'"
        )
        return response
    return redirect(add_params_to_uri(redirect_uri, params), 302)


def error_response(error: OAuth2Error, mode: str | None) -> Response:
    """Send an error to the client's redirect URI, or show it when there is none to trust."""
    if error.redirect_uri:
        return respond(error.redirect_uri, error.get_body(), mode)
    return Response(
        render_template("error.html", error=error.error, description=error.get_error_description()),
        status=400,
    )


def _has_consent(user_id: str, client: Client, scope: str) -> bool:
    row = db.session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client.id)
    )
    return row is not None and set(scope.split()) <= set(row.scope.split())


def _needs_login(sso: Session | None, params: dict[str, str], fresh_since: float | None) -> bool:
    if sso is None:
        return True
    if fresh_since is not None and sso.auth_time >= int(fresh_since):
        return False  # the user signed in after this request arrived
    if "login" in params.get("prompt", "").split():
        return True
    max_age = params.get("max_age")
    return max_age is not None and time.time() - sso.auth_time > int(max_age)


def _check(params: dict[str, str], client: Client, scope: str) -> None:
    """Refuse what Authlib does not check for us."""
    if any("\x00" in value for value in params.values()):
        raise InvalidRequestError("Parameters must not contain NUL characters.")
    if len(json.dumps(params)) > MAX_REQUEST_CHARS:
        raise InvalidRequestError("The authorization request is too large.")
    if len(params.get("nonce", "")) > MAX_NONCE:
        raise InvalidRequestError(f"'nonce' must be at most {MAX_NONCE} characters.")
    if "request" in params:
        raise RequestNotSupportedError("Request objects are not supported.")
    if "request_uri" in params:
        raise RequestURINotSupportedError("Request URIs are not supported.")
    if params.get("response_mode", "query") not in RESPONSE_MODES:
        raise InvalidRequestError("'response_mode' must be query or form_post.")
    prompts = params.get("prompt", "").split()
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("'prompt=none' cannot be combined with other values.")
    max_age = params.get("max_age")
    if max_age is not None and not (max_age.isdigit() and len(max_age) < 10):
        raise InvalidRequestError("'max_age' must be a number of seconds.")
    audience = params.get("audience")
    if audience and audience not in client.audiences:
        raise InvalidTargetError("This client may not request tokens for that audience.")
    if "openid" not in scope.split() and not audience:
        raise InvalidScopeError("Request the 'openid' scope, or an 'audience' for an API.")
    hint = params.get("id_token_hint")
    if hint:
        try:
            tokens.verify(hint, verify_exp=False)
        except tokens.InvalidToken:
            raise InvalidRequestError("'id_token_hint' is not an ID token we issued.") from None


def authorize(params: dict[str, str], handle: str | None = None) -> Response:
    """Answer an authorization request, sending the user to sign in or consent when needed."""
    mode = params.get("response_mode")
    sso = current_session()
    try:
        grant = server.get_consent_grant(request=StoredRequest(params), end_user=sso)
        client: Client = grant.request.client
        scope: str = grant.request.scope
        try:
            _check(params, client, scope)
        except OAuth2Error as error:
            error.redirect_uri, error.state = grant.redirect_uri, params.get("state")
            raise
        entry = pending(handle)
        fresh_since = entry["at"] if entry else None
        hint_sub = _hint_subject(params.get("id_token_hint"))
        prompts = params.get("prompt", "").split()
        if _needs_login(sso, params, fresh_since) or (
            hint_sub and sso and hint_sub != sso.user_id and not fresh_since
        ):
            if "none" in prompts:
                raise LoginRequiredError(redirect_uri=grant.redirect_uri, state=params.get("state"))
            return redirect(url_for("accounts.login", state=handle or remember(params)))
        assert sso is not None
        if entry and entry.get("denied"):
            forget(handle)
            raise AccessDeniedError(redirect_uri=grant.redirect_uri, state=params.get("state"))
        consented = entry is not None and entry.get("consented")
        if not (client.first_party or consented or (
            "consent" not in prompts and _has_consent(sso.user_id, client, scope)
        )):
            if "none" in prompts:
                raise ConsentRequiredError(redirect_uri=grant.redirect_uri, state=params.get("state"))
            return redirect(url_for("accounts.consent", state=handle or remember(params)))
    except OAuth2Error as error:
        return error_response(error, mode)
    forget(handle)
    code = grant.generate_authorization_code()
    grant.request.user = sso
    grant.save_authorization_code(code, grant.request)
    answer = [("code", code)]
    if params.get("state"):
        answer.append(("state", params["state"]))
    return respond(grant.redirect_uri, answer, mode)


def _hint_subject(hint: str | None) -> str | None:
    if not hint:
        return None
    return str(tokens.verify(hint, verify_exp=False).get("sub"))
