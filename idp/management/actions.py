"""Post-login actions under /api/v2/actions/, in Auth0's shapes.

An action of idp is live as soon as it is saved: there are no drafts, so every action is
`all_changes_deployed`, and `deploy` answers with the version that runs. Its bindings to the
`post-login` trigger are the enabled actions in run order; a binding's id is its action's id, since
an action is bound at most once. As in Auth0, an action created here is bound by PATCHing the
trigger's bindings (the CLI's `create` binds it at once, last).
"""

import sys
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy.exc import IntegrityError

from idp.actions import registry, runner
from idp.actions.models import Action
from idp.db import db
from idp.management.api import (
    READ_USERS,
    ApiError,
    _body,
    _number,
    _scopes,
    _single,
    _user,
    bp,
    flag,
    invalid_body,
    invalid_query,
    requires,
)
from idp.management.shapes import iso_time
from idp.oauth.models import Client

READ_ACTIONS, CREATE_ACTIONS = "read:actions", "create:actions"
UPDATE_ACTIONS, DELETE_ACTIONS = "update:actions", "delete:actions"
TRIGGER, TRIGGER_VERSION = "post-login", "v3"
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
DEFAULT_PER_PAGE, MAX_PER_PAGE, MAX_PAGE = 20, 100, 10**9
MAX_BODY = 1_048_576  # room for an action of 100,000 characters escaped in six bytes each, and its secrets
REF_TYPES = ("action_id", "action_name", "binding_id")
FIELDS = {"name", "supported_triggers", "code", "dependencies", "runtime", "secrets"}  # of an action's body


def _not_found() -> ApiError:
    return ApiError(404, "The action does not exist.", "inexistent_action")


def _find(action_id: str) -> Action:
    action = registry.get(action_id)
    if action is None:
        raise _not_found()
    return action


def action_object(action: Action) -> dict[str, Any]:
    """Return an action in Auth0's shape: secrets by name only, never their values."""
    return {
        "id": action.id, "name": action.name,
        "supported_triggers": [{"id": TRIGGER, "version": TRIGGER_VERSION}],
        "code": action.code, "dependencies": [], "runtime": RUNTIME,
        "secrets": [{"name": name, "updated_at": iso_time(action.updated_at)}
                    for name in sorted(action.secrets)],
        "status": "built", "all_changes_deployed": True,
        "created_at": iso_time(action.created_at), "updated_at": iso_time(action.updated_at),
    }


def _version(action: Action) -> dict[str, Any]:
    """The version that runs: the action as saved."""
    data = action_object(action)
    return {"id": action.id, "action_id": action.id, "deployed": True,
            **{k: data[k] for k in ("code", "dependencies", "runtime", "secrets", "status",
                                    "supported_triggers", "created_at", "updated_at")}}


def _binding(action: Action) -> dict[str, Any]:
    return {"id": action.id, "trigger_id": TRIGGER, "display_name": action.name,
            "action": action_object(action), "created_at": iso_time(action.created_at),
            "updated_at": iso_time(action.updated_at)}


def _page(params: dict[str, str]) -> tuple[int, int]:
    page = _number(params, "page", 0, MAX_PAGE)
    per_page = _number(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    if per_page < 1:
        raise invalid_query(f"Query validation error: 'per_page' must be an integer from 1 to {MAX_PER_PAGE}")
    return page, per_page


def _trigger(trigger_id: str) -> None:
    if trigger_id != TRIGGER:
        raise ApiError(404, f"idp runs actions on the {TRIGGER} trigger only.", "inexistent_trigger")


# Request bodies


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_body(f"'{name}' must be a string")
    return value


def _check_platform(body: dict[str, Any]) -> None:
    """Refuse a trigger, runtime or dependency idp does not run: the code would never run as written."""
    if "supported_triggers" in body:
        triggers = body["supported_triggers"]
        if not isinstance(triggers, list) or not triggers or not all(
                isinstance(t, dict) and t.get("id") == TRIGGER for t in triggers):
            raise invalid_body(f"'supported_triggers' must be [{{\"id\": \"{TRIGGER}\"}}]: idp runs actions "
                               "after sign-in only")
    runtime = body.get("runtime")
    if runtime is not None and (not isinstance(runtime, str) or not runtime.startswith("python3")):
        raise invalid_body(f"'runtime': idp runs actions written in Python ({RUNTIME})")
    if body.get("dependencies") not in (None, []):
        raise invalid_body("'dependencies': idp's actions run with the standard library only")


def _secrets(value: Any, stored: dict[str, str]) -> dict[str, str]:
    """The new secrets, `[{"name", "value"}]`, replacing the stored ones; a name alone keeps its value."""
    if not isinstance(value, list):
        raise invalid_body("'secrets' must be a list of {\"name\", \"value\"}")
    new: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "value", "updated_at"} \
                or not isinstance(item.get("name"), str):
            raise invalid_body("'secrets' must be a list of {\"name\", \"value\"}")
        name = item["name"]
        if name in new:
            raise invalid_body(f"the secret {name[:128]!r} is given twice")
        if "value" in item:
            new[name] = item["value"]
        elif name in stored:
            new[name] = stored[name]
        else:
            raise invalid_body(f"the secret {name[:128]!r} is new: it needs a value")
    return new


def _refused(error: registry.InvalidAction) -> ApiError:
    if isinstance(error, registry.ActionExists):
        return ApiError(409, str(error), "action_conflict")
    return invalid_body(str(error))


# Actions


@bp.get("/actions/actions")
@requires(READ_ACTIONS)
def list_actions() -> Response:
    """Every action in run order, a page at a time; `triggerId`, `actionName` and `deployed` filter."""
    params = _single(request.args, {"triggerId", "actionName", "deployed", "installed", "page", "per_page"})
    page, per_page = _page(params)
    flag(params, "deployed", False)  # a filter to deployed actions only: every action of idp is deployed
    actions = registry.in_order()
    if params.get("triggerId", TRIGGER) != TRIGGER or flag(params, "installed", False):
        actions = []  # none comes from a marketplace
    if "actionName" in params:
        actions = [a for a in actions if a.name == params["actionName"]]
    shown = actions[page * per_page:(page + 1) * per_page]
    return jsonify(actions=[action_object(a) for a in shown], total=len(actions), page=page,
                   per_page=per_page)


@bp.post("/actions/actions")
@requires(CREATE_ACTIONS)
def create_action() -> tuple[Response, int]:
    """Create an action, not bound yet: it runs once the post-login bindings name it."""
    body = _body(FIELDS | {"deploy"}, MAX_BODY)
    _check_platform(body)
    if "deploy" in body and not isinstance(body["deploy"], bool):
        raise invalid_body("'deploy' must be true or false")
    name, code = _text(body, "name"), _text(body, "code")
    if name is None or "supported_triggers" not in body:
        raise invalid_body("'name' and 'supported_triggers' are required")
    if code is None:
        raise invalid_body(f"'code' is required: Python source defining {registry.FUNCTION}(event, api)")
    secrets = _secrets(body.get("secrets", []), {})
    try:
        action = registry.create(name, code, secrets, enabled=False)
    except registry.InvalidAction as error:
        raise _refused(error) from None
    except IntegrityError:  # the same name taken at the same moment
        db.session.rollback()
        raise _refused(registry.ActionExists(f"an action named {name!r} exists already")) from None
    return jsonify(action_object(action)), 201


@bp.get("/actions/actions/<action_id>")
@requires(READ_ACTIONS)
def get_action(action_id: str) -> Response:
    """One action by id."""
    _single(request.args, set())
    return jsonify(action_object(_find(action_id)))


@bp.patch("/actions/actions/<action_id>")
@requires(UPDATE_ACTIONS)
def update_action(action_id: str) -> Response:
    """Rename an action, replace its code or its secrets; live at once."""
    body = _body(FIELDS, MAX_BODY)
    _check_platform(body)
    action = _find(action_id)
    name, code = _text(body, "name"), _text(body, "code")
    secrets = _secrets(body["secrets"], action.secrets) if "secrets" in body else None
    try:
        registry.change(action, name=name, code=code, secrets=secrets)
    except registry.InvalidAction as error:
        db.session.rollback()
        raise _refused(error) from None
    except IntegrityError:
        db.session.rollback()
        raise _refused(registry.ActionExists(f"an action named {name!r} exists already")) from None
    return jsonify(action_object(action))


@bp.delete("/actions/actions/<action_id>")
@requires(DELETE_ACTIONS)
def delete_action(action_id: str) -> tuple[str, int]:
    """Delete an action; a bound one only with `force=true`, as Auth0 asks."""
    force = flag(_single(request.args, {"force"}), "force", False)
    action = _find(action_id)
    if action.enabled and not force:
        raise ApiError(400, "The action is bound to the post-login trigger: unbind it first, or pass "
                            "force=true.", "action_bound")
    registry.delete(action)
    return "", 204


@bp.post("/actions/actions/<action_id>/deploy")
@requires(CREATE_ACTIONS)
def deploy_action(action_id: str) -> tuple[Response, int]:
    """Answer with the version that runs: an action is live as soon as it is saved."""
    return jsonify(_version(_find(action_id))), 202


@bp.post("/actions/actions/<action_id>/test")
@requires(CREATE_ACTIONS)
def test_action(action_id: str) -> Response:
    """Run an action once against a user, applying nothing; say what it would do, or how it failed.

    `payload.user` names the user by `user_id` or `email`; `payload.client.client_id` the application
    (a test client by default). The action reads the user's profile, so the token needs `read:users`
    too; what it gives back has the action's secrets redacted.
    """
    if READ_USERS not in _scopes():
        raise ApiError(403, f"Insufficient scope, expected all of: {CREATE_ACTIONS},{READ_USERS}",
                       "insufficient_scope")
    body = _body({"payload"}, MAX_BODY)
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise invalid_body("'payload' must be an object naming the user: {\"user\": {\"user_id\": …}}")
    action = _find(action_id)
    named = _object(payload, "user")
    user = None
    if isinstance(named.get("user_id"), str):
        user = _user(named["user_id"])
    elif isinstance(named.get("email"), str):
        user = runner.user_for_test(named["email"])
    if user is None:
        raise invalid_body("'payload.user' must name an existing user by 'user_id' or 'email'")
    transaction = runner.sign_in_for_test(_client(_object(payload, "client").get("client_id")))
    try:
        commands = runner.dry_run(action, user, transaction)
    except runner.ActionFailed as failed:
        return jsonify(payload={"error": failed.error, "logs": failed.output})
    return jsonify(payload={"commands": commands})


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name, {})
    if not isinstance(value, dict):
        raise invalid_body(f"'payload.{name}' must be an object")
    return value


def _client(client_id: Any) -> Client | None:
    """The application a test names, or None for the test client."""
    if client_id is None:
        return None
    known = isinstance(client_id, str) and len(client_id) <= 64 and "\x00" not in client_id
    client = db.session.get(Client, client_id) if known else None
    if client is None:
        raise invalid_body("'payload.client.client_id' must name an existing application")
    return client


# The post-login trigger


@bp.get("/actions/triggers")
@requires(READ_ACTIONS)
def list_triggers() -> Response:
    """The one trigger idp runs actions on."""
    _single(request.args, set())
    return jsonify(triggers=[{"id": TRIGGER, "version": TRIGGER_VERSION, "status": "CURRENT",
                              "runtimes": [RUNTIME], "default_runtime": RUNTIME, "compatible_triggers": []}])


@bp.get("/actions/triggers/<trigger_id>/bindings")
@requires(READ_ACTIONS)
def list_bindings(trigger_id: str) -> Response:
    """The enabled actions, in run order."""
    _trigger(trigger_id)
    page, per_page = _page(_single(request.args, {"page", "per_page"}))
    bound = [a for a in registry.in_order() if a.enabled]  # fresh, not the per-process copy sign-ins use
    shown = bound[page * per_page:(page + 1) * per_page]
    return jsonify(bindings=[_binding(a) for a in shown], total=len(bound), page=page, per_page=per_page)


def _bound(ref: Any) -> Action:
    """The action a binding's `ref` names."""
    if not isinstance(ref, dict) or ref.get("type") not in REF_TYPES or not isinstance(ref.get("value"), str):
        raise invalid_body(f"a binding's 'ref' is {{\"type\": one of {', '.join(REF_TYPES)}, \"value\"}}")
    if ref["type"] == "action_name":
        try:
            return registry.find(ref["value"])
        except registry.InvalidAction:
            raise invalid_body(f"no action is named {ref['value'][:128]!r}") from None
    action = registry.get(ref["value"])
    if action is None:
        raise invalid_body(f"no action has the id {ref['value'][:64]!r}")
    return action


@bp.patch("/actions/triggers/<trigger_id>/bindings")
@requires(UPDATE_ACTIONS)
def update_bindings(trigger_id: str) -> Response:
    """Bind exactly these actions, in this order; every other action stops running."""
    _trigger(trigger_id)
    body = _body({"bindings"}, MAX_BODY)
    bindings = body.get("bindings")
    if not isinstance(bindings, list):
        raise invalid_body("'bindings' must be a list of {\"ref\": {\"type\", \"value\"}}")
    actions = []
    for binding in bindings:
        if not isinstance(binding, dict) or set(binding) - {"ref", "display_name", "secrets"} \
                or not isinstance(binding.get("display_name", ""), str):
            raise invalid_body("a binding is {\"ref\", \"display_name\"}; its display name is its action's")
        if binding.get("secrets"):
            raise invalid_body("a binding has no secrets of its own in idp: give them to the action")
        actions.append(_bound(binding.get("ref")))
    try:
        registry.bind(actions)
    except registry.InvalidAction as error:
        raise _refused(error) from None
    return jsonify(bindings=[_binding(a) for a in actions])
