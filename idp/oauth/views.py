"""Protocol endpoints: discovery, authorize, token, userinfo, revoke, introspect, logout."""

import math
from typing import Any

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from flask_wtf import FlaskForm
from sqlalchemy import Engine, create_engine, make_url, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from werkzeug.wrappers import Response as BaseResponse

from idp import redact
from idp.db import db
from idp.events import log as events
from idp.oauth import authorize as authz
from idp.oauth import pending, tokens
from idp.oauth.models import AUTH_METHODS, SCOPES, SECRET_METHODS
from idp.oauth.server import ActionDeniedError, json_parameters, query_client, server
from idp.users.models import User
from idp.users.sessions import current_session, end_session
from idp.web import Document, csrf, error_page, per_ip, publish

bp = Blueprint("oauth", __name__)
DISCOVERY = "/.well-known/openid-configuration"

# Parameters that must not be repeated (RFC 6749 §3.1); the others are ignored if repeated.
SINGLE = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
          "code_challenge", "code_challenge_method", "prompt", "max_age", "response_mode")


def _metadata(iss: str) -> dict[str, Any]:
    """Return this provider's metadata (OpenID Connect Discovery 1.0)."""
    return {
        "issuer": iss,
        "authorization_endpoint": iss + "/authorize",
        "token_endpoint": iss + "/oauth/token",
        "userinfo_endpoint": iss + "/userinfo",
        "jwks_uri": iss + "/.well-known/jwks.json",
        "revocation_endpoint": iss + "/oauth/revoke",
        "introspection_endpoint": iss + "/oauth/introspect",
        "end_session_endpoint": iss + "/oidc/logout",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(authz.RESPONSE_MODES),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": SECRET_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "name",
            "given_name", "family_name", "nickname", "picture", "updated_at", "email",
            "email_verified",
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


def discovery_document() -> Document:
    """Return this provider's metadata document, fixed by the configuration: built once per process."""
    document = current_app.extensions.get("idp.discovery")
    if document is None:
        document = current_app.extensions["idp.discovery"] = Document.of(_metadata(tokens.issuer()))
    return document


@bp.get(DISCOVERY)
def discovery() -> BaseResponse:
    """Describe this provider (a plain GET is answered by web.PublicDocuments before reaching here)."""
    return discovery_document().answer(current_app.config["JWKS_MAX_AGE"])


@bp.record_once
def _publish(state: BlueprintSetupState) -> None:
    publish(state.app, DISCOVERY, discovery_document)


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize() -> BaseResponse:
    """Start (or answer at once) an authorization request."""
    values = request.values
    for name in SINGLE:
        if len(values.getlist(name)) > 1:
            return error_page("invalid_request", f"'{name}' is repeated.")
    return authz.authorize(values.to_dict())


@bp.get("/authorize/resume")
def resume() -> BaseResponse:
    """Continue an authorization request after sign-in or consent."""
    waiting = pending.find(request.args.get("state"))
    if waiting is None:
        return error_page(
            "expired", "This sign-in request has expired. Go back to the application and try again."
        )
    return authz.authorize(waiting.params, waiting)


@bp.post("/oauth/token")
@csrf.exempt
@per_ip("RATELIMIT_TOKEN")
def token() -> Response:
    """Exchange a code, a refresh token or client credentials for tokens."""
    # Authlib's stubs give the framework-neutral (status, body, headers); its Flask server makes a Response.
    response: Response = server.create_token_response()  # type: ignore[assignment]
    if response.status_code >= 400:
        _log_failed_exchange(response)
    return response


# Failed exchanges logged here (`feccft`, `fertft`); successful ones by their grants.
FAILED_EXCHANGES = {"client_credentials": events.FAILED_CLIENT_CREDENTIALS,
                    "refresh_token": events.FAILED_REFRESH}


def _log_failed_exchange(response: Response) -> None:
    """Record a failed client_credentials or refresh exchange, on its own (nothing of it is kept)."""
    body = json_parameters(request)
    params = request.form if body is None else body
    kind = FAILED_EXCHANGES.get(params.get("grant_type") or "")
    if kind is None:
        return
    try:
        basic = request.authorization
    except (ValueError, UnicodeError):  # malformed credentials: refused as invalid_client already
        basic = None
    client_id = basic.username if basic and basic.username else params.get("client_id")
    client_id = client_id if isinstance(client_id, str) and "\x00" not in client_id else None
    client = query_client(client_id)
    answer = response.get_json(silent=True) or {}
    error = str(answer.get("error") or "")
    if error == ActionDeniedError.error:
        return  # a post-login action refused it: the runner logged that, naming the action and the user
    # Authlib's messages quote no credential, but nothing the client sent as a secret may reach the log.
    sent = [v for k in ("client_secret", "refresh_token") if (v := params.get(k))]
    if basic and basic.password:
        sent.append(basic.password)
    message = redact.scrub(str(answer.get("error_description") or error)[:500],
                           sorted(sent, key=len, reverse=True))
    db.session.rollback()  # whatever the failed exchange left unsaved stays so
    try:
        events.record(kind, message, client_id=client_id, client_name=client.name if client else None,
                      audience=params.get("audience") if kind == events.FAILED_CLIENT_CREDENTIALS else None,
                      details={"error": {"message": message, "oauthError": error}}, database=False)
        db.session.commit()
    except SQLAlchemyError as failure:  # the client still gets its protocol error, never a 500
        db.session.rollback()
        current_app.logger.warning("could not log a failed token exchange: %s", type(failure).__name__)


@bp.post("/oauth/revoke")
@csrf.exempt
def revoke() -> Response:
    """Revoke a token (RFC 7009)."""
    return server.create_endpoint_response("revocation")


@bp.post("/oauth/introspect")
@csrf.exempt
def introspect() -> Response:
    """Describe a token to the client it was issued to (RFC 7662)."""
    return server.create_endpoint_response("introspection")


def _bearer_error(status: int, error: str | None = None, description: str = "") -> Response:
    challenge = 'Bearer realm="idp"'
    body: dict[str, Any] = {}
    if error:
        challenge += f', error="{error}", error_description="{description}"'
        body = {"error": error, "error_description": description}
    response = jsonify(body)
    response.status_code = status
    response.headers["WWW-Authenticate"] = challenge
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo() -> Response:
    """Return the claims an access token's scope releases about its user, and those its actions set."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    access_token = value.strip() if scheme.lower() == "bearer" else None
    if access_token is None and request.method == "POST":
        access_token = request.form.get("access_token")  # RFC 6750 §2.2
    if not access_token:
        return _bearer_error(401)
    try:
        row = tokens.active_token(access_token)
    except tokens.InvalidToken:
        return _bearer_error(401, "invalid_token", "The access token is invalid, expired or revoked.")
    user = db.session.get(User, row.grant.user_id) if row.grant.user_id else None
    if user is None:
        return _bearer_error(401, "invalid_token", "The access token does not belong to a user.")
    if "openid" not in row.scope.split():
        return _bearer_error(403, "insufficient_scope", "The access token lacks the openid scope.")
    # What the post-login actions set in the ID token is the user's too, as Auth0 answers it here.
    claims = {**tokens.user_claims(user, row.scope), **tokens.custom_claims(row.grant.actions, "id_token")}
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response


def _logout_hint(hint: str | None) -> dict[str, Any]:
    """Return the claims of a logout request's ID token hint (expired ones too)."""
    return tokens.verify(hint, typ="JWT", verify_exp=False) if hint else {}


@bp.route("/oidc/logout", methods=["GET", "POST"])
@csrf.exempt  # relying parties may POST here; our own confirmation form checks its token itself
def logout() -> BaseResponse:
    """End the SSO session (OpenID Connect RP-Initiated Logout 1.0)."""
    values = request.values
    target = values.get("post_logout_redirect_uri")
    try:
        claims = _logout_hint(values.get("id_token_hint"))
    except tokens.InvalidToken:
        return error_page("invalid_request", "The id_token_hint is not valid.")
    aud = claims.get("aud", values.get("client_id"))
    client = query_client(aud[0] if isinstance(aud, list) and aud else aud)
    if target and (client is None or target not in client.post_logout_redirect_uris):
        return error_page(
            "invalid_request", "The post_logout_redirect_uri is not registered for this application."
        )
    sso, form = current_session(), FlaskForm()
    # Sign out at once only when the hint names this very session; otherwise the request could
    # come from anywhere (anyone can hold some ID token): ask first.
    hinted = sso is not None and claims.get("sub") == sso.user_id and claims.get("sid", sso.id) == sso.id
    if sso is not None and not hinted and not form.validate_on_submit():
        return Response(render_template("logout.html", form=form, client=client, values=values))
    end_session()
    if target:
        state = values.get("state")
        return redirect(add_params_to_uri(target, [("state", state)]) if state else target)
    return Response(render_template("signed_out.html", client=client))


def _probe_engine() -> Engine:
    """Return the health probe's engine: a new connection per probe, connecting and answering in time.

    Not the app's pool: a pooled connection to a database that stopped answering waits as long as
    the operating system lets it, and a probe must answer while every pooled connection is busy.
    """
    engine = current_app.extensions.get("idp.healthz.engine")
    if engine is None:
        seconds = current_app.config["HEALTHZ_TIMEOUT"]
        url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
        bounds: dict[str, Any] = {
            # Connecting (the client's own clock, whole seconds) and the query (the server's).
            "postgresql": {"connect_timeout": max(2, math.ceil(seconds)),
                           "options": f"-c statement_timeout={round(seconds * 1000)}"},
            "sqlite": {"timeout": seconds},  # how long to wait for a lock another connection holds
        }.get(url.get_backend_name(), {})
        engine = current_app.extensions.setdefault("idp.healthz.engine", create_engine(
            url, poolclass=NullPool, connect_args=bounds, hide_parameters=True))
    return engine


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Report liveness and whether the database answers, within HEALTHZ_TIMEOUT seconds."""
    try:
        with _probe_engine().connect() as connection:
            connection.execute(select(1))
    except Exception as e:  # any failure means "not ready"; the reason goes to the log, not the probe
        current_app.logger.warning("health check: database unreachable (%s)", type(e).__name__)
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200
