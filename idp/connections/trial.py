"""Trying a migrating connection's scripts on one email (and password): both profiles and how they differ.

`idp connections test` and the dashboard's try form both use it. Nothing is created or recorded: the
scripts run in the sandbox and their answers are only compared, so a try moves nobody over.
"""

from dataclasses import dataclass, field, fields
from typing import Any

from idp import redact
from idp.connections import runtime
from idp.connections.models import Connection
from idp.connections.registry import InvalidConnection
from idp.migration.profiles import Profile, ProfileInvalid, parse
from idp.migration.sandbox import ScriptError, WrongCredentials

# The profile's fields, in the order a profile lists them: what two answers are compared on.
FIELDS = tuple(f.name for f in fields(Profile))


@dataclass
class Answer:
    """What one script answered for the email."""

    function: str
    value: Any = None  # what it returned; None is "no user" (or, from login, a wrong password)
    output: str = ""  # what it printed, secrets scrubbed
    wrong_password: bool = False
    failure: str | None = None  # it raised or could not run: "Type: message", secrets scrubbed
    refused: str | None = None  # it returned a profile idp would refuse, and why
    profile: Profile | None = None

    @property
    def no_user(self) -> bool:
        """Say whether the script found nobody (a wrong password included) without failing."""
        return self.value is None and self.failure is None


@dataclass(frozen=True)
class Row:
    """One field of the profile as get_user and login gave it."""

    name: str
    get_user: Any
    login: Any

    @property
    def differs(self) -> bool:
        """Say whether the two scripts disagree on this field."""
        return bool(self.get_user != self.login)

    def describe(self) -> str:
        """Describe the difference in a line."""
        return f"{self.name}: {self.get_user!r} ≠ {self.login!r}"


@dataclass
class Trial:
    """The answers of get_user and, given a password, login, in the order they ran."""

    answers: list[Answer] = field(default_factory=list)

    def answer(self, function: str) -> Answer | None:
        """Return a script's answer, if it ran."""
        return next((a for a in self.answers if a.function == function), None)

    @property
    def rows(self) -> list[Row]:
        """Every profile field side by side, when both scripts gave a profile idp accepts."""
        get_user, login = self.answer("get_user"), self.answer("login")
        if get_user is None or login is None or get_user.profile is None or login.profile is None:
            return []
        return [Row(name, getattr(get_user.profile, name), getattr(login.profile, name)) for name in FIELDS]

    @property
    def differences(self) -> list[str]:
        """Describe every field in which the two profiles differ (users would be changed or duplicated)."""
        return [row.describe() for row in self.rows if row.differs]


def _ask(connection: Connection, function: str, args: list[Any], secrets: list[str]) -> Answer:
    source = getattr(connection, f"{function}_script") or ""
    answer = Answer(function)
    try:
        # The process's pool outside any connection's flow: a try must not take a sign-in's slot.
        outcome = runtime.pool().call(source, function, [*args, connection.configuration])
    except WrongCredentials as wrong:
        answer.wrong_password, answer.output = True, redact.scrub(wrong.output, secrets)
        return answer
    except ScriptError as error:
        answer.failure = redact.scrub(f"{type(error).__name__}: {error}", secrets)
        answer.output = redact.scrub(error.output, secrets)
        return answer
    answer.value, answer.output = outcome.value, redact.scrub(outcome.output, secrets)
    if outcome.value is not None:
        try:
            answer.profile = parse(outcome.value)
        except ProfileInvalid as invalid:
            answer.refused = redact.scrub(str(invalid), secrets)
    return answer


def run(connection: Connection, email: str, password: str | None = None) -> Trial:
    """Run get_user and, given a password, login for an email; create and record nothing."""
    if not connection.migrating:
        raise InvalidConnection(f"{connection.name} is not a migrating connection")
    secrets = redact.secrets_in(connection.configuration, password)
    trial = Trial([_ask(connection, "get_user", [email], secrets)])
    if password is not None:
        trial.answers.append(_ask(connection, "login", [email, password], secrets))
    return trial
