"""Hosted pages: login and consent."""

from flask import Blueprint, Response, redirect, render_template, request, url_for
from sqlalchemy import select

from idp.accounts.forms import ConsentForm, LoginForm
from idp.accounts.models import Consent, User
from idp.accounts.sessions import current_session, start_session
from idp.accounts.users import authenticate
from idp.db import db
from idp.oauth import pending
from idp.oauth.models import AuthorizationRequest

bp = Blueprint("accounts", __name__)


def _continue(waiting: AuthorizationRequest | None) -> Response:
    if waiting is not None:
        return redirect(url_for("oauth.resume", state=waiting.id))
    return redirect(url_for("accounts.login"))


def _signed_in_page() -> str | None:
    sso = current_session()
    user = db.session.get(User, sso.user_id) if sso else None
    return render_template("signed_in.html", user=user) if user else None


@bp.route("/u/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Sign in with email and password."""
    waiting = pending.find(request.args.get("state"))
    if waiting is None and request.method == "GET" and (page := _signed_in_page()):
        return page
    form = LoginForm()
    error = None
    if request.method == "GET" and waiting:
        form.email.data = waiting.params.get("login_hint", "")[:320]
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            start_session(user)
            return _continue(waiting)
        error = "Wrong email or password."
    status = 400 if request.method == "POST" else 200
    page = render_template("login.html", form=form, error=error, client=pending.client_of(waiting))
    return Response(page, status=status)


@bp.route("/u/consent", methods=["GET", "POST"])
def consent() -> Response | str:
    """Let the user allow a third-party application the scopes it asks for."""
    waiting = pending.find(request.args.get("state"))
    sso = current_session()
    client = pending.client_of(waiting)
    if waiting is None or sso is None or client is None:
        return _continue(waiting)
    form = ConsentForm()
    scopes = client.get_allowed_scope(waiting.params.get("scope")).split()
    if form.validate_on_submit():
        if form.allow.data:
            row = db.session.scalar(
                select(Consent).where(Consent.user_id == sso.user_id, Consent.client_id == client.id)
            )
            if row is None:
                row = Consent(user_id=sso.user_id, client_id=client.id, scope="")
                db.session.add(row)
            row.scope = " ".join(sorted(set(row.scope.split()) | set(scopes)))
        pending.decide(waiting, allowed=bool(form.allow.data))
        return _continue(waiting)
    return render_template("consent.html", form=form, client=client, scopes=scopes)
