"""The dashboard's Actions pages: the post-login actions in run order (reordered, enabled and disabled
there), creating one, and an action's page: its code in the script editor, its masked secrets, running it
against a user as `idp actions test` does, and deleting it. Changes go through the registry the CLI uses,
each with a `sapi` log event naming the admin and the action (never a secret's value)."""

import json
import re
from typing import Any

from flask import redirect, request, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from idp import redact
from idp.actions import registry, runner
from idp.actions.models import Action
from idp.actions.registry import InvalidAction
from idp.admin import audit
from idp.admin.views import bp, render
from idp.db import db
from idp.management.connections import MASKED

TEMPLATE = f"def {registry.FUNCTION}(event, api):\n    pass\n"  # a new action's body
MAX_NAME = 128  # registry.NAME's longest
MAX_EMAIL = 320
LINE = re.compile(r"\bline (\d+)\b")


def error_line(error: str | None) -> int | None:
    """The line an error names, if any, for the editor's gutter."""
    found = LINE.search(error or "")
    return int(found.group(1)) if found else None


def _details(action: Action) -> dict[str, Any]:
    return {"action": {"id": action.id, "name": action.name}}


def _find(name: str) -> Action:
    if len(name) > MAX_NAME:
        raise NotFound(f"There is no action named {name[:MAX_NAME]}….")
    try:
        return registry.find(name)
    except InvalidAction:
        raise NotFound(f"There is no action named {name}.") from None


def _source(field: str) -> str:
    """A textarea's text as stored: browsers send its lines ending in CRLF."""
    return request.form.get(field, "").replace("\r\n", "\n")


# The list


# What a redirect after a change tells the admin (the page is reloaded with GET, so that reloading it does
# not send the form again). The query is anyone's to write: the notices name no action.
_LIST_NOTICES = {"moved": "The order is saved.", "enabled": "The action is enabled.",
                 "disabled": "The action is disabled.", "deleted": "The action is deleted.",
                 "nothing": "Nothing changed."}


def _list(status: int = 200, **context: Any) -> BaseResponse:
    context.setdefault("new_name", "")
    context.setdefault("new_code", TEMPLATE)
    return render("admin/actions.html", status, actions=registry.in_order(),
                  new_error_line=error_line(context.get("code_error")), **context)


@bp.get("/actions")
def actions() -> BaseResponse:
    """Every action in run order: its state and when it changed; move, enable, disable; a new one."""
    return _list(notice=_LIST_NOTICES.get(request.args.get("done", "")))


@bp.post("/actions")
def create_action() -> BaseResponse:
    """Add an action from its name and code; it is enabled and runs after the others."""
    name, code = request.form.get("name", "").strip(), _source("code")
    try:
        registry.check_code(code)
    except InvalidAction as refused:
        return _list(400, error=f"Nothing was saved: {refused}.", code_error=str(refused),
                     new_name=name[:MAX_NAME * 2], new_code=code)
    audit.record("Create action", {"action": {"name": name}})
    try:
        registry.create(name, code)
    except (InvalidAction, IntegrityError) as refused:  # a bad or taken name (taken in between, too)
        db.session.rollback()  # the event goes with the change it tells of
        why = refused if isinstance(refused, InvalidAction) else f"an action named {name!r} exists already"
        return _list(400, error=f"Nothing was saved: {why}.", new_name=name[:MAX_NAME * 2], new_code=code)
    return redirect(url_for("admin.action", name=name, saved="created"), 303)


@bp.post("/actions/<name>/move")
def move_action(name: str) -> BaseResponse:
    """Move an action one place up or down the run order, as `idp actions order` would."""
    action = _find(name)
    names = [a.name for a in registry.in_order()]
    here = names.index(action.name)
    direction = request.form.get("direction")
    there = here - 1 if direction == "up" else here + 1 if direction == "down" else -1
    if not 0 <= there < len(names):
        return redirect(url_for("admin.actions", done="nothing"), 303)
    names[here], names[there] = names[there], names[here]
    audit.record("Reorder actions", {**_details(action), "moved": direction, "order": names})
    try:
        registry.order(names)
    except InvalidAction:  # one was deleted in between
        db.session.rollback()
        raise NotFound("The actions changed since this page was shown: nothing was moved.") from None
    return redirect(url_for("admin.actions", done="moved"), 303)


@bp.post("/actions/<name>/enabled")
def set_action_enabled(name: str) -> BaseResponse:
    """Turn an action on (`enabled=yes`) or off (`enabled=no`); a disabled one keeps its place."""
    action = _find(name)
    wanted = request.form.get("enabled")
    if wanted not in ("yes", "no") or (wanted == "yes") == action.enabled:
        return redirect(url_for("admin.actions", done="nothing"), 303)
    enabled = wanted == "yes"
    audit.record("Enable action" if enabled else "Disable action", {**_details(action), "enabled": enabled})
    registry.set_enabled(action.name, enabled)
    return redirect(url_for("admin.actions", done="enabled" if enabled else "disabled"), 303)


# One action


_NOTICES = {"created": "The action is created: it is enabled and runs after the others.",
            "code": "The code is saved.", "secrets": "The secrets are saved.", "nothing": "Nothing changed."}


def _page(action: Action, status: int = 200, **context: Any) -> BaseResponse:
    """Render an action's page; the context may carry a form's outcome (typed code, errors, a test)."""
    context.setdefault("code", action.code)
    return render("admin/action.html", status, action=action, position=_position(action),
                  secrets=sorted((k, redact.mask(v)) for k, v in action.secrets.items()),
                  code_error_line=error_line(context.get("code_error")), **context)


def _position(action: Action) -> int:
    return [a.id for a in registry.in_order()].index(action.id) + 1


@bp.get("/actions/<name>")
def action(name: str) -> BaseResponse:
    """An action: its facts, its code in the editor, its masked secrets, the test form, delete."""
    return _page(_find(name), notice=_NOTICES.get(request.args.get("saved", "")))


@bp.post("/actions/<name>/code")
def save_action_code(name: str) -> BaseResponse:
    """Save the code, only when it compiles and defines on_execute_post_login(event, api)."""
    action = _find(name)
    code = _source("code")
    if code == action.code:
        return redirect(url_for("admin.action", name=action.name, saved="nothing"), 303)
    try:
        registry.check_code(code)
    except InvalidAction as refused:
        return _page(action, 400, code=code, code_error=str(refused))
    audit.record("Update action code", {**_details(action), "code": "changed"})
    try:
        registry.update(action.name, code=code)
    except InvalidAction as refused:
        db.session.rollback()
        return _page(action, 400, code=code, code_error=str(refused))
    return redirect(url_for("admin.action", name=action.name, saved="code"), 303)


class _Refused(Exception):
    """A secrets form we cannot save; the message says why (and holds no value)."""


def _secret_changes(stored: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Return the registry.update secrets the form asks for ("" removes one), and the names it replaces,
    adds and removes."""
    update: dict[str, str] = {}
    changes: dict[str, list[str]] = {"replaced": [], "added": [], "removed": []}
    for key, value in stored.items():
        if request.form.get(f"remove:{key}"):
            update[key] = ""
            changes["removed"].append(key)
            continue
        replacement = request.form.get(f"replace:{key}", "")
        if not replacement or replacement == value or replacement == redact.mask(value):
            continue  # blank, unchanged, or the mask sent back: kept
        if MASKED.search(replacement):
            raise _Refused(f"the new value of {key} looks like a masked value: type the value itself")
        update[key] = replacement
        changes["replaced"].append(key)
    key, value = request.form.get("new_key", "").strip(), request.form.get("new_value", "")
    if value and not key:
        raise _Refused("the new secret has no name: name it")
    if key:
        if key in stored:
            raise _Refused(f"there is a secret {key[:registry.MAX_SECRET_KEY]} already: replace its value "
                           "in its own field")
        if not value:
            raise _Refused(f"the new secret {key[:registry.MAX_SECRET_KEY]} has no value")
        update[key] = value
        changes["added"].append(key)
    merged = {k: v for k, v in {**stored, **update}.items() if v != ""}
    try:
        registry.check_secrets(merged)
    except InvalidAction as refused:
        raise _Refused(str(refused)) from None
    return update, {kind: sorted(keys) for kind, keys in changes.items() if keys}


@bp.post("/actions/<name>/secrets")
def save_action_secrets(name: str) -> BaseResponse:
    """Replace, add and remove secrets; blank fields keep theirs, and no value is ever shown again."""
    action = _find(name)
    try:
        update, changes = _secret_changes(action.secrets)
    except _Refused as refused:
        return _page(action, 400, secrets_error=f"Nothing was saved: {refused}. Type the new values again.")
    if not changes:
        return redirect(url_for("admin.action", name=action.name, saved="nothing"), 303)
    audit.record("Update action secrets", {**_details(action), "secrets": changes})  # names, no values
    try:
        registry.update(action.name, secrets=update)
    except InvalidAction as refused:
        db.session.rollback()
        return _page(action, 400, secrets_error=f"Nothing was saved: {refused}. Type the new values again.")
    return redirect(url_for("admin.action", name=action.name, saved="secrets"), 303)


@bp.post("/actions/<name>/test")
def test_action(name: str) -> BaseResponse:
    """Run the action (even disabled) against a user and show the commands it gives; nothing is applied."""
    action = _find(name)
    email = request.form.get("email", "").strip()
    if not email or len(email) > MAX_EMAIL or "\x00" in email:
        return _page(action, 400, test_error="Give the email address of a user of idp.",
                     test_email=email[:MAX_EMAIL].replace("\x00", ""))
    user = runner.user_for_test(email)
    if user is None:
        return _page(action, 400, test_error=f"There is no user {email} in idp's database.", test_email=email)
    transaction = runner.sign_in_for_test()
    failure: runner.ActionFailed | None = None
    commands: list[tuple[str, list[str]]] = []
    try:
        commands = [(kind, [json.dumps(a, ensure_ascii=False) for a in args])
                    for kind, *args in runner.dry_run(action, user, transaction)]
    except runner.ActionFailed as failed:
        failure = failed
    # A test reads a user's profile: the log says who tested which action on whom.
    audit.record("Test action", {**_details(action), "email": user.email, "failed": failure is not None},
                 user_id=user.id, user_name=user.email)
    db.session.commit()
    return _page(action, test_email=email, tested=True, commands=commands, failure=failure)


@bp.route("/actions/<name>/delete", methods=["GET", "POST"])
def delete_action(name: str) -> BaseResponse:
    """Ask, saying what deleting does; then delete the action, its code and its secrets."""
    action = _find(name)
    if request.method == "POST":
        audit.record("Delete action", _details(action))
        registry.delete(action)  # one deleted in between stays deleted
        return redirect(url_for("admin.actions", done="deleted"), 303)
    return render("admin/action_delete.html", action=action, secrets=sorted(action.secrets))
