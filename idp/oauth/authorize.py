"""The authorization endpoint's decisions: validate, sign in, ask consent, issue a code."""

import json
import secrets
import time
from typing import Any, cast

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
from flask import Response, redirect, render_template, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.actions import runner
from idp.db import db
from idp.oauth import pending, tokens
from idp.oauth.models import AuthorizationRequest, Client, Consent
from idp.oauth.server import ACTION_FAILED, InvalidTargetError, server
from idp.users.models import Session, User
from idp.users.sessions import current_session
from idp.web import error_page

RESPONSE_MODES = ("query", "form_post")
MAX_NONCE = 512  # the authorization code's nonce column
MAX_REQUEST_CHARS = 16384  # one authorization request's parameters, as JSON


class StoredRequest(OAuth2Request):
    """An authorization request rebuilt from its parameters (kept while the user signs in)."""

    payload: BasicOAuth2Payload

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__("GET", tokens.issuer() + "/authorize", headers={})
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self) -> dict[str, str]:  # type: ignore[override]  # the stubs' dict[str, str | None] is invariant
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        return {}


def respond(redirect_uri: str, params: list[tuple[str, str]], mode: str | None) -> BaseResponse:
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


def error_response(error: OAuth2Error, mode: str | None) -> BaseResponse:
    """Send an error to the client's redirect URI, or show it when there is none to trust."""
    # Every OAuth2Error class names its error, and get_body leaves out the values that are unset.
    if error.redirect_uri:
        return respond(error.redirect_uri, cast(list[tuple[str, str]], error.get_body()), mode)
    return error_page(cast(str, error.error), error.get_error_description())


def consented_items(scope: str, audience: str | None) -> list[str]:
    """Return what a user consents to: the scopes, and the API (as `aud:<audience>`) if any."""
    return [*scope.split(), *([f"aud:{audience}"] if audience else [])]


def _has_consent(user_id: str, client: Client, items: list[str]) -> bool:
    row = db.session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client.id)
    )
    return row is not None and set(items) <= set(row.scope.split())


def _needs_login(sso: Session | None, params: dict[str, str], waiting: AuthorizationRequest | None) -> bool:
    if sso is None:
        return True
    if waiting is not None and sso.auth_time >= int(waiting.created_at.timestamp()):
        return False  # the user signed in after this request arrived
    if "login" in params.get("prompt", "").split():
        return True
    max_age = params.get("max_age")
    return max_age is not None and time.time() - sso.auth_time > int(max_age)


def _check(params: dict[str, str], client: Client, scope: str) -> str | None:
    """Refuse what Authlib does not check for us; return the subject of a valid id_token_hint."""
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
    if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) < 10):
        raise InvalidRequestError("'max_age' must be a number of seconds.")
    audience = params.get("audience")
    if audience and audience not in client.audiences:
        raise InvalidTargetError("This client may not request tokens for that audience.")
    if "openid" not in scope.split() and not audience:
        raise InvalidScopeError("Request the 'openid' scope, or an 'audience' for an API.")
    hint = params.get("id_token_hint")
    if not hint:
        return None
    try:
        return str(tokens.verify(hint, typ="JWT", verify_exp=False)["sub"])
    except (tokens.InvalidToken, KeyError):
        raise InvalidRequestError("'id_token_hint' is not an ID token we issued.") from None


def _send_to(page: str, params: dict[str, str], waiting: AuthorizationRequest | None) -> BaseResponse:
    """Send the user to a hosted page, keeping the request until they come back."""
    return redirect(url_for(page, state=waiting.id if waiting else pending.remember(params)))


def _run_actions(sso: Session, client: Client, params: dict[str, str], redirect_uri: str, scope: str,
                 waiting: AuthorizationRequest | None) -> dict[str, Any] | None:
    """Run the post-login actions; return what they add to the tokens, or raise access_denied."""
    if client.dashboard:
        return None  # idp's own dashboard: a broken action must not lock the admins who could fix it out
    user = db.session.get(User, sso.user_id)
    if user is None:
        raise LoginRequiredError(redirect_uri=redirect_uri, state=params.get("state"))
    transaction = runner.Transaction(
        client.id, client.name, runner.CODE_FLOW, scope.split(), redirect_uri=redirect_uri,
        prompt=params.get("prompt", "").split(), query=dict(params), audience=params.get("audience"),
        client_metadata=dict(client.client_metadata),
    )
    try:
        return runner.run(user, transaction).as_json()
    except (runner.Denied, runner.ActionFailed) as stopped:
        pending.forget(waiting)  # answered: the request is not resumed again
        reason = stopped.reason if isinstance(stopped, runner.Denied) else ACTION_FAILED
        raise AccessDeniedError(reason, redirect_uri=redirect_uri, state=params.get("state")) from None


def authorize(params: dict[str, str], waiting: AuthorizationRequest | None = None) -> BaseResponse:
    """Answer an authorization request, sending the user to sign in or consent when needed."""
    mode = params.get("response_mode")
    sso = current_session()
    try:
        grant = server.get_consent_grant(request=StoredRequest(params), end_user=sso)
        client: Client = grant.request.client
        scope: str = grant.request.scope
        redirect_uri, state = grant.redirect_uri, params.get("state")
        try:
            hint_sub = _check(params, client, scope)
        except OAuth2Error as error:
            error.redirect_uri, error.state = redirect_uri, state
            raise
        prompts = params.get("prompt", "").split()
        if _needs_login(sso, params, waiting) or (
            hint_sub and sso and hint_sub != sso.user_id and waiting is None
        ):
            if "none" in prompts:
                raise LoginRequiredError(redirect_uri=redirect_uri, state=state)
            return _send_to("pages.login", params, waiting)
        assert sso is not None
        if waiting is not None and waiting.denied:
            pending.forget(waiting)
            raise AccessDeniedError(redirect_uri=redirect_uri, state=state)
        consented = waiting is not None and waiting.consented
        if not (client.first_party or consented or (
            "consent" not in prompts
            and _has_consent(sso.user_id, client, consented_items(scope, params.get("audience")))
        )):
            if "none" in prompts:
                raise ConsentRequiredError(redirect_uri=redirect_uri, state=state)
            return _send_to("pages.consent", params, waiting)
        post_login = _run_actions(sso, client, params, redirect_uri, scope, waiting)
    except OAuth2Error as error:
        return error_response(error, mode)
    pending.forget(waiting)
    code = grant.generate_authorization_code()
    grant.request.user = sso
    grant.request.post_login = post_login
    grant.save_authorization_code(code, grant.request)
    answer = [("code", code)]
    if state:
        answer.append(("state", state))
    return respond(redirect_uri, answer, mode)
