"""The dashboard's Users pages: the list with its search, one user, and blocking, resetting, deleting.

Every change goes through the functions the management API and the hosted pages call, and leaves a
`sapi` log event naming the admin who made it.
"""

import json
from typing import Any

from flask import g, redirect, request, url_for
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Response as BaseResponse

from idp.admin import audit
from idp.admin.user_search import PER_PAGE, SearchFailed, find
from idp.admin.views import bp, render
from idp.connections import registry, stores
from idp.db import db
from idp.management.api import DIGITS, MAX_PAGE
from idp.management.shapes import user_object
from idp.pages import mails
from idp.users import accounts
from idp.users.models import User

# What a finished action says on the page it lands on (`?done=`).
DONE = {
    "blocked": "The user is blocked: they cannot sign in, and their sessions and tokens have ended.",
    "unblocked": "The user is unblocked and can sign in again.",
    "reset": "A password-reset link is on its way to the user's email address.",
    "deleted": "The user was deleted.",
}
SELF = "This is the account you are signed in with: another admin can {action} it."


def _connection_names() -> dict[str, str]:
    return {c.id: c.name for c in registry.all_connections()}


def _user(user_id: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("There is no user with this id.")
    return user


def _record(user: User, description: str, **details: Any) -> None:
    """Add the `sapi` event of a change to a user, naming the admin; the caller commits."""
    audit.record(description, {**details, "user": {"user_id": user.id, "email": user.email}},
                 connection=_connection_names().get(user.connection_id), connection_id=user.connection_id,
                 user_id=user.id, user_name=user.email)


def _page_number(text: str | None) -> int:
    """The `page` parameter: a page from 1; BadRequest for anything else."""
    if text is None:
        return 1
    if not DIGITS.match(text) or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequest(f"The page is a whole number from 1 to {MAX_PAGE:,}.")
    return int(text)


@bp.get("/users")
def users() -> BaseResponse:
    """Search users (plain words, or the management API's query), 50 to a page, newest first."""
    query = request.args.get("q", "").strip()
    context: dict[str, Any] = {"query": query, "per_page": PER_PAGE,
                               "notice": DONE.get(request.args.get("done", ""))}
    try:
        found = find(query, _page_number(request.args.get("page")))
    except BadRequest as error:
        return render("admin/users.html", 400, error=error.description, **context)
    except SearchFailed as failed:
        return render("admin/users.html", failed.status, error=failed.message, **context)
    names = _connection_names()
    rows = [user_object(user, names.get(user.connection_id, user.connection_id)) for user in found.users]
    return render("admin/users.html", found=found, rows=rows, **context)


def _show(user: User, status: int = 200, error: str | None = None) -> BaseResponse:
    shape = user_object(user, _connection_names().get(user.connection_id, user.connection_id))
    metadata = {name: json.dumps(shape[name], indent=2, sort_keys=True, ensure_ascii=False)
                for name in ("app_metadata", "user_metadata")}
    return render("admin/user.html", status, user=user, shape=shape, metadata=metadata, error=error,
                  notice=DONE.get(request.args.get("done", "")), is_self=user.id == g.admin.id)


@bp.get("/users/<user_id>", endpoint="user")
def show(user_id: str) -> BaseResponse:
    """One user: their profile, how and when they moved over, their sign-ins, metadata, and the actions."""
    return _show(_user(user_id))


@bp.post("/users/<user_id>/block")
def block(user_id: str) -> BaseResponse:
    """Block a user (their sessions and tokens end) or unblock them, as the form asks."""
    user = _user(user_id)
    wanted = request.form.get("blocked")
    if wanted not in ("true", "false"):
        return _show(user, 400, "The form did not say whether to block or unblock the user.")
    blocked = wanted == "true"
    if blocked and user.id == g.admin.id:
        return _show(user, 400, SELF.format(action="block"))
    if user.blocked != blocked:
        accounts.set_blocked(user, blocked)  # as the API's PATCH `blocked` does
        _record(user, "User blocked" if blocked else "User unblocked", blocked=blocked)
        db.session.commit()
    return redirect(url_for("admin.user", user_id=user.id, done="blocked" if blocked else "unblocked"))


@bp.post("/users/<user_id>/reset")
def reset(user_id: str) -> BaseResponse:
    """Send the user a password-reset link, the mail the hosted "forgot password" page sends."""
    user = _user(user_id)
    _record(user, "Password reset sent")
    mails.password_reset(user.email, user.connection_id, None)  # commits the event with the request
    return redirect(url_for("admin.user", user_id=user.id, done="reset"))


@bp.get("/users/<user_id>/delete")
def confirm_delete(user_id: str) -> BaseResponse:
    """Ask before deleting a user: what goes with them, and a button to go on."""
    user = _user(user_id)
    store = stores.by_id(user.connection_id)
    return render("admin/user_delete.html", user=user, connection=store.connection.name,
                  migrating=store.migrating, is_self=user.id == g.admin.id)


@bp.post("/users/<user_id>/delete")
def delete(user_id: str) -> BaseResponse:
    """Delete a user with their sessions, grants, tokens and links, as the API's DELETE does."""
    user = _user(user_id)
    if user.id == g.admin.id:
        return _show(user, 400, SELF.format(action="delete"))
    _record(user, "User deleted")
    accounts.delete_user(user, stores.by_id(user.connection_id).connection.name)  # its `sdu`; commits
    return redirect(url_for("admin.users", done="deleted"))
