"""The demo relying party: a small Flask app that signs its users in with idp."""

import json
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from authlib.integrations.flask_client.apps import FlaskOAuth2App
from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request, session
from werkzeug.serving import make_server

bp = Blueprint("rp", __name__)

# Claims that hold seconds since the epoch: the page shows them as dates too.
TIME_CLAIMS = ("exp", "iat", "auth_time", "nbf", "updated_at")
# The session stores claims sorted by name; show who the user is first, then the protocol's claims.
CLAIM_ORDER = ("sub", "name", "given_name", "family_name", "nickname", "email", "email_verified",
               "picture", "updated_at", "iss", "aud", "azp", "iat", "exp", "auth_time", "nonce",
               "at_hash", "sid")


def create_rp(issuer: str, client_id: str, client_secret: str, base_url: str) -> Flask:
    """Build the relying party for a client registered at `issuer`, served at `base_url`."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.urandom(32),  # a demo: sessions need not outlive the process
        # Cookies ignore ports: a name of our own keeps clear of the provider's cookie on 127.0.0.1.
        SESSION_COOKIE_NAME="demo_rp_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=base_url.startswith("https://"),
        DEMO_ISSUER=issuer.rstrip("/"),
        DEMO_BASE_URL=base_url.rstrip("/"),
    )
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{app.config['DEMO_ISSUER']}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    app.register_blueprint(bp)
    return app


def _idp() -> FlaskOAuth2App:
    return current_app.extensions["authlib.integrations.flask_client"].idp


def _error(title: str, description: str | None, status: int = 400) -> tuple[str, int]:
    return render_template("error.html", title=title, description=description or ""), status


def _rows(claims: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return (claim, value, note) rows for the claims table."""
    rows = []
    known = {name: i for i, name in enumerate(CLAIM_ORDER)}
    for name, value in sorted(claims.items(), key=lambda c: (known.get(c[0], len(known)), c[0])):
        shown = value if isinstance(value, str) else json.dumps(value)
        note = ""
        if name in TIME_CLAIMS and isinstance(value, int | float):
            note = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append((name, shown, note))
    return rows


@bp.get("/")
def index() -> str | tuple[str, int]:
    """Show the sign-in button, or what the provider told us about the signed-in user."""
    notice = None
    if "state" in request.args:
        try:
            _idp().validate_logout_response()
            notice = "You are signed out, here and at the provider."
        except OAuthError:
            return _error("Sign-out not confirmed",
                          "The provider came back with a state this app did not send.")
    claims = session.get("claims")
    return render_template(
        "index.html", notice=notice, issuer=current_app.config["DEMO_ISSUER"],
        claims=_rows(claims) if claims else None, user=claims,
        userinfo=json.dumps(session.get("userinfo"), indent=2),
        userinfo_endpoint=session.get("userinfo_endpoint"),
    )


@bp.get("/login")
def login() -> Response | tuple[str, int]:
    """Send the browser to the provider's authorization endpoint."""
    session.clear()
    try:
        return _idp().authorize_redirect(current_app.config["DEMO_BASE_URL"] + "/callback")
    except requests.RequestException as e:
        return _error("The provider does not answer", str(e), 502)


@bp.get("/callback")
def callback() -> Response | tuple[str, int]:
    """Exchange the code, validate the ID token and fetch the userinfo."""
    client = _idp()
    try:
        metadata = client.load_server_metadata()
        # RFC 9207: a response naming another issuer (or none, when it promises one) is a mix-up.
        iss = request.args.get("iss")
        if iss != metadata["issuer"] and (
            iss is not None or metadata.get("authorization_response_iss_parameter_supported")
        ):
            return _error("Wrong issuer", f"The response names issuer {iss!r}, "
                          f"not {metadata['issuer']!r}.")
        token = client.authorize_access_token()  # checks state, sends the PKCE verifier
        if "userinfo" not in token:
            return _error("No ID token", "The token response carried no ID token.")
        response = client.get(metadata["userinfo_endpoint"], token=token)
    except OAuthError as e:
        return _error(f"Sign-in failed: {e.error}", e.description)
    except requests.RequestException as e:
        return _error("The provider does not answer", str(e), 502)
    if response.status_code != 200:
        return _error(f"userinfo answered {response.status_code}", response.text, 502)
    session.clear()  # a fresh session for the signed-in user
    session["id_token"] = token["id_token"]
    session["claims"] = dict(token["userinfo"])
    session["userinfo"] = response.json()
    session["userinfo_endpoint"] = metadata["userinfo_endpoint"]
    return redirect("/")


@bp.get("/logout")
def logout() -> Response | tuple[str, int]:
    """Forget the user here, then end the session at the provider (RP-initiated logout)."""
    id_token = session.get("id_token")
    session.clear()
    if not id_token:
        return redirect("/")
    try:
        return _idp().logout_redirect(
            post_logout_redirect_uri=current_app.config["DEMO_BASE_URL"] + "/",
            id_token_hint=id_token,
        )
    except requests.RequestException as e:
        return _error("The provider does not answer", str(e), 502)


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main() -> None:
    """Serve the relying party configured by IDP_ISSUER, DEMO_PORT and DEMO_CLIENT_*."""
    port = int(os.environ.get("DEMO_PORT", "5001"))
    base_url = f"http://127.0.0.1:{port}"
    app = create_rp(os.environ.get("IDP_ISSUER", "http://127.0.0.1:5000"),
                    os.environ["DEMO_CLIENT_ID"], os.environ["DEMO_CLIENT_SECRET"], base_url)
    server = make_server("127.0.0.1", port, app, threaded=True)
    signal.signal(signal.SIGTERM, _interrupt)  # the launcher stops us with SIGTERM
    print(f"demo relying party listening on {base_url}", file=sys.stderr, flush=True)
    server.serve_forever()  # returns on KeyboardInterrupt and closes the socket


if __name__ == "__main__":
    main()
