"""Running the enabled actions after a sign-in: the event, the sandbox calls, the commands checked and
applied in order, metadata written once, and a log event for a denial or a failure.

An action runs in the script sandbox of the migrating connections (same jail and limits). Its code,
followed by the harness, is one script; the event and secrets go in as one JSON text, never as a dict,
because a dict among a call's arguments is read as configuration that opens files and endpoints to the
jail. Everything the script returns is checked here: it ran where nothing is trusted.
"""

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from flask import current_app, has_request_context, request
from sqlalchemy import select

from idp import redact
from idp.actions import harness, registry
from idp.actions.models import Action
from idp.connections import runtime
from idp.connections.models import Connection
from idp.db import db
from idp.events import log as events
from idp.migration.sandbox import ScriptError, ScriptFailed, WrongCredentials
from idp.users.models import User, normalize

logger = logging.getLogger(__name__)

OWNER = "post-login actions"  # the runtime's pool key: never a connection id
REFRESH = "oauth2-refresh-token"  # transaction.protocol at the token endpoint, as Auth0 names it
CODE_FLOW = "oidc-basic-profile"  # transaction.protocol of the authorization-code flow, as Auth0's
# Claims an action may not set: the token's own, which clients and idp rely on.
REGISTERED = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "nonce", "azp", "auth_time",
                        "at_hash", "c_hash", "acr", "amr", "sid", "scope", "client_id", "typ"})
# Who a test run signs in to (`idp actions test` without --client, the dashboard's test form).
TEST_CLIENT = ("test-client", "Test client")
MAX_COMMANDS = 200
MAX_NAME = 256  # a claim's or metadata key's name
MAX_VALUE = 16_384  # characters of a claim's or metadata value's JSON
MAX_REASON = 500
MAX_OUTPUT = 4000  # characters of a failed action's output kept in its log event
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")  # RFC 6749 §3.3
# RFC 6749 §4.1.2.1: error_description is printable ASCII without '"' and '\'.
UNSAFE_DESCRIPTION = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


class Denied(Exception):
    """An action denied access; `reason` is for the application."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"post-login action {action!r} denied access: {reason}")
        self.action, self.reason = action, reason


class ActionFailed(Exception):
    """An action raised, timed out, or gave a command idp refuses; nothing is issued."""

    def __init__(self, action: str, error: str, output: str = "") -> None:
        super().__init__(f"post-login action {action!r} failed: {error}")
        self.action, self.error, self.output = action, error, output


class Application(Protocol):
    """The client a sign-in is for, as a test names it."""

    id: str
    name: str
    client_metadata: dict[str, str]


@dataclass(frozen=True)
class Transaction:
    """What is being authorized: the client, the protocol, the scopes and the request's parameters."""

    client_id: str
    client_name: str
    protocol: str
    requested_scopes: list[str]
    redirect_uri: str | None = None
    prompt: list[str] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    audience: str | None = None
    client_metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Changes:
    """What the actions add to the tokens, kept with the code and the grant as JSON."""

    id_token: dict[str, Any] = field(default_factory=dict)
    access_token: dict[str, Any] = field(default_factory=dict)
    add_scopes: list[str] = field(default_factory=list)
    remove_scopes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any] | None:
        """Return the changes as stored, or None when there are none."""
        data = {"id_token": self.id_token, "access_token": self.access_token,
                "add_scopes": self.add_scopes, "remove_scopes": self.remove_scopes}
        return data if any(data.values()) else None


Command = list[Any]  # [kind, …arguments], checked


def event_of(user: User, transaction: Transaction) -> dict[str, Any]:
    """Return the event an action sees (its secrets are added per action)."""
    connection = db.session.get(Connection, user.connection_id)
    migration = None
    if user.migrated_at is not None:
        migration = {"via": user.migrated_via, "migrated_at": user.migrated_at.isoformat(),
                     "legacy_id": user.legacy_id}
    ip = user_agent = hostname = method = None
    if has_request_context():
        ip, user_agent = request.remote_addr, request.headers.get("User-Agent")
        hostname, method = request.host, request.method
    connection_info = None
    if connection is not None:
        connection_info = {"id": connection.id, "name": connection.name, "strategy": "auth0"}
    return {
        "user": {
            "user_id": user.id, "email": user.email, "email_verified": user.email_verified,
            "name": user.name, "given_name": user.given_name, "family_name": user.family_name,
            "nickname": user.nickname, "picture": user.picture,
            "created_at": user.created_at.isoformat(), "updated_at": user.updated_at.isoformat(),
            "last_login": user.last_login_at.isoformat() if user.last_login_at else None,
            "app_metadata": dict(user.app_metadata or {}), "user_metadata": dict(user.user_metadata or {}),
            "identities": [{"provider": "auth0", "connection": connection.name if connection else None,
                            "user_id": user.id, "isSocial": False}],
            "migration": migration,
        },
        "client": {"client_id": transaction.client_id, "name": transaction.client_name,
                   "metadata": dict(transaction.client_metadata)},
        "connection": connection_info,
        "request": {"ip": ip, "user_agent": user_agent, "hostname": hostname, "method": method,
                    "query": dict(transaction.query)},
        "stats": {"logins_count": user.logins_count},
        "transaction": {"requested_scopes": list(transaction.requested_scopes),
                        "protocol": transaction.protocol, "redirect_uri": transaction.redirect_uri,
                        "prompt": list(transaction.prompt), "audience": transaction.audience},
    }


def call(action: Action, event: dict[str, Any], timeout: float) -> list[Command]:
    """Run one action in the sandbox and return its checked commands; raise ActionFailed."""
    secrets = action.secrets
    hidden = redact.secrets_in(secrets)
    payload = json.dumps({"event": event, "secrets": secrets})
    try:
        outcome = runtime.call(OWNER, action.code + harness.SOURCE, harness.ENTRY, [payload], timeout=timeout)
    except ScriptFailed as e:
        detail = redact.scrub(f"{e.type_name}: {e.message}\n{e.traceback}".strip(), hidden)
        raise ActionFailed(action.name, detail, redact.scrub(e.output, hidden)) from None
    except (ScriptError, WrongCredentials, runtime.Busy) as e:  # timed out, crashed, bad result, no slot
        output = redact.scrub(getattr(e, "output", ""), hidden)
        raise ActionFailed(action.name, redact.scrub(str(e), hidden), output) from None
    try:
        return _checked(outcome.value)
    except ValueError as e:
        output = redact.scrub(outcome.output, hidden)
        raise ActionFailed(action.name, redact.scrub(str(e), hidden), output) from None


def _json_value(value: Any, what: str) -> Any:
    if len(json.dumps(value)) > MAX_VALUE:
        raise ValueError(f"{what} is longer than {MAX_VALUE} characters of JSON")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME or "\x00" in value:
        raise ValueError(f"{what} must be text of 1 to {MAX_NAME} characters")
    return value


def _checked(value: Any) -> list[Command]:
    """Check what the harness returned, command by command; raise ValueError naming the first bad one."""
    if not isinstance(value, list) or len(value) > MAX_COMMANDS:
        raise ValueError(f"an action gives at most {MAX_COMMANDS} commands")
    checked: list[Command] = []
    for command in value:
        if not isinstance(command, list) or not command or not isinstance(command[0], str):
            raise ValueError("the harness returned an unknown command")
        kind, args = command[0], command[1:]
        if kind in ("id_token_claim", "access_token_claim") and len(args) == 2:
            claim = _name(args[0], "a claim's name")
            if claim in REGISTERED:
                raise ValueError(f"the claim {claim!r} is registered: an action may not set it")
            checked.append([kind, claim, _json_value(args[1], f"the claim {claim!r}")])
        elif kind in ("add_scope", "remove_scope") and len(args) == 1:
            if not isinstance(args[0], str) or not SCOPE_TOKEN.fullmatch(args[0]):
                raise ValueError("a scope must be 1 to 256 printable ASCII characters without spaces")
            checked.append([kind, args[0]])
        elif kind == "deny" and len(args) == 1:
            if not isinstance(args[0], str):
                raise ValueError("access.deny takes the reason as text")
            checked.append([kind, UNSAFE_DESCRIPTION.sub("?", args[0])[:MAX_REASON]])
        elif kind in ("app_metadata", "user_metadata") and len(args) == 2:
            key = _name(args[0], "a metadata key")
            checked.append([kind, key, _json_value(args[1], f"the metadata {key!r}")])
        else:
            raise ValueError(f"the harness returned an unknown command {kind!r}")
    return checked


def _apply(commands: list[Command], changes: Changes, metadata: dict[str, dict[str, Any]]) -> str | None:
    """Apply commands in order to the changes and metadata; return a deny reason, which stops them."""
    for kind, *args in commands:
        if kind == "id_token_claim":
            changes.id_token[args[0]] = args[1]
        elif kind == "access_token_claim":
            changes.access_token[args[0]] = args[1]
        elif kind == "add_scope":
            changes.remove_scopes = [s for s in changes.remove_scopes if s != args[0]]
            changes.add_scopes = [*(s for s in changes.add_scopes if s != args[0]), args[0]]
        elif kind == "remove_scope":
            changes.add_scopes = [s for s in changes.add_scopes if s != args[0]]
            changes.remove_scopes = [*(s for s in changes.remove_scopes if s != args[0]), args[0]]
        elif kind == "deny":
            return str(args[0])
        else:
            metadata[kind][args[0]] = args[1]
    return None


def _write_metadata(user: User, metadata: dict[str, dict[str, Any]]) -> bool:
    """Write the gathered metadata changes at once (None removes a key); say whether there were any."""
    for kind in ("app_metadata", "user_metadata"):
        if metadata[kind]:
            merged = {**(getattr(user, kind) or {}), **metadata[kind]}
            setattr(user, kind, {k: v for k, v in merged.items() if v is not None})  # a new dict: saved
    return any(metadata.values())


def run(user: User, transaction: Transaction) -> Changes:
    """Run the enabled actions in order and commit what they changed on the user.

    Raise Denied or ActionFailed, after writing the metadata set up to then and a log event. A denial
    keeps its action's metadata, as Auth0 does; a failed action gave no answer, so nothing of its own is
    kept, but what the actions before it set is, since they ran as intended.
    """
    actions = registry.enabled_in_order()
    changes = Changes()
    if not actions:
        return changes
    metadata: dict[str, dict[str, Any]] = {"app_metadata": {}, "user_metadata": {}}
    event = event_of(user, transaction)
    deadline = time.monotonic() + float(current_app.config["ACTIONS_TIMEOUT"])
    stopped: Denied | ActionFailed | None = None
    for action in actions:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise ActionFailed(action.name, "the actions ran past ACTIONS_TIMEOUT before it started")
            reason = _apply(call(action, event, remaining), changes, metadata)
        except ActionFailed as failed:
            stopped = failed
            break
        if reason is not None:
            stopped = Denied(action.name, reason)
            break
    wrote = _write_metadata(user, metadata)
    if stopped is not None:
        _record(user, transaction, stopped)
    if wrote or stopped is not None:
        # Only then: a commit expires every loaded row, which the sign-in would read again.
        db.session.commit()
    if stopped is not None:
        raise stopped
    return changes


def _record(user: User, transaction: Transaction, stopped: Denied | ActionFailed) -> None:
    """Log a denial or a failure: the action, and a failure's error and output (secrets scrubbed)."""
    connection = db.session.get(Connection, user.connection_id)
    kind = events.FAILED_REFRESH if transaction.protocol == REFRESH else events.FAILED_LOGIN
    details: dict[str, Any] = {"action": stopped.action}
    if isinstance(stopped, ActionFailed):
        details.update(error=stopped.error[:MAX_OUTPUT], output=stopped.output[-MAX_OUTPUT:])
        logger.warning("%s; output: %s", stopped, stopped.output[-MAX_OUTPUT:])
    else:
        details["reason"] = stopped.reason
    events.record(kind, str(stopped), client_id=transaction.client_id, client_name=transaction.client_name,
                  user_id=user.id, user_name=user.email, connection=connection.name if connection else None,
                  connection_id=connection.id if connection else None, audience=transaction.audience,
                  scope=" ".join(transaction.requested_scopes) or None, details=details)


def dry_run(action: Action, user: User, transaction: Transaction) -> list[Command]:
    """Run one action against a user and return its checked commands, applying none, secrets redacted."""
    commands = call(action, event_of(user, transaction), float(current_app.config["ACTIONS_TIMEOUT"]))
    # What a test shows goes to whoever may test, who need not be who may read the secrets.
    hidden = redact.secrets_in(action.secrets)
    return [cast(Command, redact.scrub_values(command, hidden)) for command in commands]


def user_for_test(email: str) -> User | None:
    """Return a user with this email, in any connection: whom a test of an action runs for."""
    return db.session.scalar(select(User).where(User.email_normalized == normalize(email)).limit(1))


def sign_in_for_test(client: Application | None = None) -> Transaction:
    """Return the sign-in a test of an action runs as: the code flow to a client (a test one by default)."""
    if client is None:
        return Transaction(*TEST_CLIENT, protocol=CODE_FLOW, requested_scopes=["openid"])
    return Transaction(client.id, client.name, protocol=CODE_FLOW, requested_scopes=["openid"],
                       client_metadata=dict(client.client_metadata))
