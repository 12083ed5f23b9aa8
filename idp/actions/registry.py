"""Creating, changing, ordering and deleting post-login actions, with the checks each change passes.

The CLI calls these, and so can the management API and the dashboard: each refuses bad input with
InvalidAction, whose message says why, and commits its change.
"""

import ast
import re

from sqlalchemy import func, select

from idp.actions.models import Action
from idp.cache import Recent, detached
from idp.db import db
from idp.errors import InvalidInput

FUNCTION = "on_execute_post_login"
ARGUMENTS = ("event", "api")
MAX_CODE = 100_000  # characters of an action's source
MAX_SECRET_KEY, MAX_SECRET_VALUE = 128, 4096
MAX_SECRETS = 50
_recent: Recent[list[Action]] = Recent("CLIENT_CACHE_MAX_AGE")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,127}")
SECRET_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # attribute access: event.secrets.KEY


class InvalidAction(InvalidInput):
    """An action, name, order or secret we refuse; the message says why."""


class ActionExists(InvalidAction):
    """Another action has this name already."""


def check_code(code: str) -> None:
    """Refuse source that does not compile or lacks a top-level `on_execute_post_login(event, api)`."""
    if len(code) > MAX_CODE:
        raise InvalidAction(f"the action is longer than {MAX_CODE} characters")
    try:
        tree = ast.parse(code, filename="<action>")
        compile(tree, "<action>", "exec")
    except SyntaxError as e:
        raise InvalidAction(f"the action does not compile: line {e.lineno}: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError):  # too deep to compile, or a NUL character
        raise InvalidAction("the action cannot be compiled") from None
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == FUNCTION]
    if not found:
        raise InvalidAction(f"the action defines no top-level function `{FUNCTION}`")
    args = found[-1].args
    if len(args.args) != len(ARGUMENTS) or args.vararg or args.kwonlyargs or args.posonlyargs:
        raise InvalidAction(f"line {found[-1].lineno}: `{FUNCTION}` must take ({', '.join(ARGUMENTS)})")


def check_secrets(secrets: dict[str, str]) -> None:
    """Refuse secrets whose keys are not identifiers or whose keys or values are too long."""
    if len(secrets) > MAX_SECRETS:
        raise InvalidAction(f"an action has at most {MAX_SECRETS} secrets")
    for key, value in secrets.items():
        if len(key) > MAX_SECRET_KEY or not SECRET_KEY.fullmatch(key):
            raise InvalidAction(f"a secret's name must be a Python identifier of at most {MAX_SECRET_KEY} "
                                "characters")
        if not isinstance(value, str) or len(value) > MAX_SECRET_VALUE or "\x00" in value:
            # The value stays out of the message: it is a secret.
            raise InvalidAction(f"the secret {key} must be text of at most {MAX_SECRET_VALUE} characters")


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise InvalidAction("an action's name is 1 to 128 letters, digits, spaces, '_', '.' or '-', "
                            "starting with a letter or digit")


def in_order() -> list[Action]:
    """Return every action in run order."""
    return list(db.session.scalars(select(Action).order_by(Action.position, Action.created_at)))


def enabled_in_order() -> list[Action]:
    """Return the actions that run, in run order: read-only copies, fresh at most CLIENT_CACHE_MAX_AGE ago.

    Every sign-in and refresh asks; another process's change shows this late, this process's at once.
    """
    return _recent.get(None, lambda: [detached(a) for a in in_order() if a.enabled])


def _commit() -> None:
    """Commit a change to the actions; this process's copy of the enabled ones goes with it."""
    db.session.commit()
    _recent.clear()


def get(action_id: str) -> Action | None:
    """Return an action by id; an id no action can have (too long, NUL, which PostgreSQL refuses) is none."""
    return db.session.get(Action, action_id) if len(action_id) <= 36 and "\x00" not in action_id else None


def find(name: str) -> Action:
    """Return an action by name."""
    action = db.session.scalar(select(Action).where(Action.name == name))
    if action is None:
        raise InvalidAction(f"no action named {name!r}")
    return action


def _check_free(name: str) -> None:
    if db.session.scalar(select(Action.id).where(Action.name == name)) is not None:
        raise ActionExists(f"an action named {name!r} exists already")


def create(name: str, code: str, secrets: dict[str, str] | None = None, enabled: bool = True) -> Action:
    """Add an action that runs after every other one (when enabled)."""
    _check_name(name)
    check_code(code)
    check_secrets(secrets or {})
    _check_free(name)
    last = db.session.scalar(select(func.max(Action.position)))
    action = Action(name=name, code=code, enabled=enabled, position=(last or 0) + 1)
    action.secrets = dict(secrets or {})
    db.session.add(action)
    _commit()
    return action


def update(name: str, code: str | None = None, secrets: dict[str, str] | None = None) -> Action:
    """Replace an action's code and add or change secrets (an empty value removes one)."""
    action = find(name)
    merged = None
    if secrets:
        merged = {k: v for k, v in {**action.secrets, **secrets}.items() if v != ""}
    return change(action, code=code, secrets=merged)


def change(action: Action, name: str | None = None, code: str | None = None,
           secrets: dict[str, str] | None = None) -> Action:
    """Rename an action, replace its code, or replace all its secrets; what is None stays.

    Everything is checked before anything changes: a refusal leaves the action as it was.
    """
    new_name = name if name != action.name else None
    if new_name is not None:
        _check_name(new_name)
        _check_free(new_name)
    if code is not None:
        check_code(code)
    if secrets is not None:
        check_secrets(secrets)
    if new_name is not None:
        action.name = new_name
    if code is not None:
        action.code = code
    if secrets is not None:
        action.secrets = secrets
    _commit()
    return action


def order(names: list[str]) -> list[Action]:
    """Run the named actions first, in that order, and the others after them as they were."""
    if len(set(names)) != len(names):
        raise InvalidAction("name each action once")
    named = [find(n) for n in names]
    rest = [a for a in in_order() if a.name not in names]
    for position, action in enumerate([*named, *rest], start=1):
        action.position = position
    _commit()
    return in_order()


def bind(actions: list[Action]) -> list[Action]:
    """Run exactly these actions, in this order; disable every other one, keeping its place after them."""
    if len({a.id for a in actions}) != len(actions):
        raise InvalidAction("name each action once")
    chosen = {a.id for a in actions}
    rest = [a for a in in_order() if a.id not in chosen]
    for position, action in enumerate([*actions, *rest], start=1):
        action.position, action.enabled = position, action.id in chosen
    _commit()
    return actions


def set_enabled(name: str, enabled: bool) -> Action:
    """Turn an action on or off; a disabled action keeps its place in the order."""
    action = find(name)
    action.enabled = enabled
    _commit()
    return action


def delete(action: Action) -> None:
    """Delete an action."""
    db.session.delete(action)
    _commit()
