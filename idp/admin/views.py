"""The dashboard's blueprint: sign-in and sign-out, the admin check before every page, the overview."""

from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from idp.admin import auth
from idp.admin.overview import overview as gather
from idp.users.sessions import end_session
from idp.web import error_page

bp = Blueprint("admin", __name__, url_prefix="/admin")

# What anyone may reach: the sign-in's two ends, and signing out.
OPEN = {"admin.login", "admin.callback", "admin.logout"}
# The dashboard's pages, in the navigation's order; a page shows there once its view exists.
NAV = (("admin.overview", "Overview"), ("admin.users", "Users"), ("admin.connections", "Connections"),
       ("admin.migration", "Migration"), ("admin.keys", "Keys"), ("admin.clients", "Clients"),
       ("admin.actions", "Actions"), ("admin.logs", "Logs"))


@bp.before_request
def admins_only() -> BaseResponse | None:
    """Send anyone but a signed-in admin to sign in, before any dashboard page or data."""
    if "\x00" in request.path:
        raise NotFound()  # no id has a NUL, and PostgreSQL refuses to look one up
    if request.endpoint in OPEN or auth.current_admin() is not None:
        return None
    auth.dismiss()  # whatever made the admin sign-in stale, it is over
    return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))


def has_page(endpoint: str) -> bool:
    """Say whether the dashboard has this page (pages are added by registering their views)."""
    return endpoint in current_app.view_functions


def render(template: str, status: int = 200, **context: Any) -> Response:
    """Render a dashboard page in its layout: the admin, the navigation, the sign-out form."""
    nav = [{"label": label, "url": url_for(endpoint), "current": request.endpoint == endpoint}
           for endpoint, label in NAV if has_page(endpoint)]
    return Response(render_template(template, admin=g.admin, nav=nav, has_page=has_page, **context),
                    status=status)


@bp.get("")
def overview() -> Response:
    """At a glance: users, the migration of each connection, recent failures, keys, clients."""
    return render("admin/overview.html", figures=gather())


@bp.get("/<path:rest>")
def unknown(rest: str) -> Response:
    """A dashboard path without a page: not found, said only to admins (the check runs first)."""
    raise NotFound()


@bp.get("/login")
def login() -> BaseResponse:
    """Start signing in through the hosted login: the authorization-code flow with PKCE."""
    target = auth.safe_next(request.args.get("next"))
    if auth.current_admin() is not None:
        return redirect(target)
    url, sealed = auth.begin(target)
    response = redirect(url)
    response.set_cookie(auth.SIGN_IN_COOKIE, sealed, max_age=auth.SIGN_IN_LIFETIME, path=auth.HOME,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True, samesite="Lax")
    return response


@bp.get("/callback")
def callback() -> BaseResponse:
    """Finish signing in: check the answer, exchange the code, admit an admin and refuse anyone else."""
    sign_in = auth.pending(request.cookies.get(auth.SIGN_IN_COOKIE))
    response: BaseResponse
    try:
        if sign_in is None:
            raise auth.SignInFailed("This sign-in has expired or was not started in this browser.")
        user, sso = auth.finish(sign_in, request.args.to_dict())
    except auth.SignInFailed as failed:
        response = error_page("invalid_request", str(failed))
    else:
        if auth.admits(user):
            auth.admit(user, sso)
            response = redirect(sign_in.next)
        else:
            auth.dismiss()
            response = Response(render_template("admin/refused.html", email=user.email), status=403)
    response.delete_cookie(auth.SIGN_IN_COOKIE, path=auth.HOME)  # a sign-in completes once
    return response


@bp.post("/logout")
def logout() -> Response:
    """Sign out of the dashboard and of idp (the SSO session ends); the form carries a CSRF token."""
    auth.dismiss()
    end_session()
    return Response(render_template("notice.html", title="Signed out",
                                    message="You are signed out of idp admin.",
                                    link=url_for("admin.overview"), link_text="Sign in again"))
