"""Auth0's user search (query syntax v3): a Lucene query, parsed by luqum, as one SQLAlchemy condition.

What it understands: `field:value`, quoted phrases, `*` and `?` wildcards, ranges `[a TO b]`, `{a TO b}`
and `>a`, `<=b` on dates, numbers and text, AND, OR, NOT, `+`/`-`, parentheses, `field:(a OR b)`,
`_exists_:field` (and `field:*`), and nested fields: `identities.connection`, `app_metadata.x.y`,
`user_metadata.x`, `migration.via`. A term without a field searches the normalized profile fields.
Terms next to each other without an operator combine as in Lucene: any of them may match, unless
some are marked `+` (must) or `-` (must not).

The normalized fields (email, name, given_name, family_name, nickname) match case-insensitively, the
others exactly. A value matches a whole field: `name:jane` does not find "Jane Smith" (use a phrase,
or `name:jane*`). Every condition is true or false, never unknown (NULL), so that NOT finds the
users without the field as Lucene does. The conditions work on SQLite and PostgreSQL alike.

Dates round as Elasticsearch's do: `2023`, `2023-03`, `2023-03-03` and `2023-03-03T10:00` name a whole
year, month, day or minute, which an inclusive bound takes in and an exclusive one leaves out. A
metadata value that is an array matches when one of its elements does, as Auth0 flattens arrays.
The caller runs the condition within `time_limit`, which turns a search past its budget into
QueryTimeout.
"""

import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from luqum import tree
from luqum.exceptions import ParseError
from luqum.thread import parse
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Numeric,
    Text,
    and_,
    case,
    cast,
    event,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from idp.connections.models import Connection
from idp.db import db
from idp.errors import InvalidInput, Unavailable
from idp.users.models import User

MAX_QUERY_LENGTH = 4096
MAX_DEPTH = 40  # nesting of groups and operators: deeper queries are refused, not recursed into
MAX_TERMS = 200
MAX_METADATA_TERMS = 20  # each reads every user's JSON: a few hundred of them take seconds on 20k users
KEY = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")  # one key of a metadata path
INTEGER = re.compile(r"^-?[0-9]{1,18}$")
NUMBER = re.compile(r"^-?[0-9]{1,30}(\.[0-9]{1,30})?$")
# An ISO 8601 date, down to the year, or a time, down to the hour, with an optional zone (UTC without).
MOMENT = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:[T ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})"
                    r"(?:[.,]([0-9]{1,9}))?)?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?)?)?", re.IGNORECASE)
ANY, ONE = object(), object()  # the wildcards `*` and `?` in a parsed value

Condition = ColumnElement[bool]


class QueryError(InvalidInput):
    """A query that cannot be parsed, or asks for something we cannot search."""


class QueryTimeout(Unavailable):
    """A search that did not finish within its time budget."""


def fold(text: str) -> str:
    """The case-insensitive form of a text, the same on both sides of a comparison."""
    return text.lower()


def _sql_fold(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


@event.listens_for(Engine, "connect")
def _sqlite_fold(dbapi_connection: Any, record: Any) -> None:
    """Give every SQLite connection idp_fold: SQLite's own lower() folds ASCII letters only."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("idp_fold", 1, _sql_fold, deterministic=True)


# A value as typed: literal text, with `*` and `?` wildcards where the query left them unescaped.
Pieces = list[str | object]


@dataclass(frozen=True)
class Value:
    """A term's value: its pieces, and whether it was a quoted phrase."""

    pieces: Pieces
    phrase: bool

    @property
    def text(self) -> str:
        """The value with any wildcard written back as itself."""
        return "".join(p if isinstance(p, str) else ("*" if p is ANY else "?") for p in self.pieces)

    @property
    def is_pattern(self) -> bool:
        """Say whether the value has a wildcard."""
        return any(not isinstance(p, str) for p in self.pieces)

    def like(self, lower: bool = False) -> str:
        """The value as a LIKE pattern, escaped with a backslash."""
        out = []
        for p in self.pieces:
            if isinstance(p, str):
                text = fold(p) if lower else p
                out.append(text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
            else:
                out.append("%" if p is ANY else "_")
        return "".join(out)

    def glob(self) -> str:
        """The value as an SQLite GLOB pattern (case-sensitive, unlike SQLite's LIKE)."""
        special = {"*": "[*]", "?": "[?]", "[": "[[]"}
        return "".join("".join(special.get(c, c) for c in p) if isinstance(p, str) else
                       ("*" if p is ANY else "?") for p in self.pieces)


Bound = Value | None  # a range's bound; None for `*`


def _value(term: tree.Item) -> Value:
    """Read a Word or Phrase: backslash escapes undone; wildcards only outside quotes."""
    if isinstance(term, tree.Phrase):
        raw = term.value[1:-1]
        return Value([re.sub(r"\\(.)", r"\1", raw, flags=re.S)], phrase=True)
    if not isinstance(term, tree.Word):
        raise QueryError(f"Unsupported value in query: {str(term)[:100]}")
    pieces: Pieces = []
    text = term.value
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            pieces.append(text[i + 1])
            i += 2
            continue
        pieces.append(ANY if c == "*" else ONE if c == "?" else c)
        i += 1
    merged: Pieces = []
    for p in pieces:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return Value(merged, phrase=False)


def _bound(item: tree.Item) -> Value | None:
    """A range's bound; None for `*` (open)."""
    if isinstance(item, tree.Prohibit) and isinstance(item.a, tree.Word):  # a negative number
        value = _value(item.a)
        return Value(["-" + value.text], phrase=False)
    value = _value(item)
    if not value.phrase and value.pieces == [ANY]:
        return None
    if value.is_pattern:
        raise QueryError("Wildcards are not allowed in ranges")
    return value


class Target:
    """A searchable field: how a value, a range and `_exists_` become conditions."""

    name: str

    def match(self, value: Value) -> Condition:
        raise QueryError(f"Field {self.name} cannot be searched by value")

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        raise QueryError(f"Field {self.name} cannot be searched by range")

    def exists(self) -> Condition:
        raise QueryError(f"Field {self.name} cannot be searched for existence")


def _compare(expr: Any, low: Any, high: Any, include_low: bool, include_high: bool) -> Condition:
    parts: list[Condition] = [expr.is_not(None)]
    if low is not None:
        parts.append(expr >= low if include_low else expr > low)
    if high is not None:
        parts.append(expr <= high if include_high else expr < high)
    return and_(*parts)


@dataclass
class TextTarget(Target):
    """A text column: exact (or case-insensitive) match, wildcards, ranges in code-point order."""

    name: str
    column: Any
    dialect: str
    folded: bool = False  # matched case-insensitively
    stored_folded: bool = False  # the column already holds the lower-cased value

    def _expr(self) -> Any:
        if not self.folded or self.stored_folded:
            return self.column
        if self.dialect == "sqlite":
            return func.idp_fold(self.column)  # folds as fold() does the query's text
        return func.lower(self.column)  # as schema revision 0011's statistics name it

    def _text(self, value: Value) -> str:
        return fold(value.text) if self.folded else value.text

    def match(self, value: Value) -> Condition:
        expr = self._expr()
        if not value.is_pattern:
            return and_(expr.is_not(None), expr == self._text(value))
        if value.pieces == [ANY]:
            return self.exists()
        if self.dialect == "sqlite" and not self.folded:
            return and_(expr.is_not(None), expr.op("GLOB")(value.glob()))
        return and_(expr.is_not(None), expr.like(value.like(lower=self.folded), escape="\\"))

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        expr = self._expr()
        if self.dialect == "postgresql":
            expr = expr.collate("C")  # code-point order, as SQLite's BINARY
        return _compare(expr, low and self._text(low), high and self._text(high), include_low, include_high)

    def exists(self) -> Condition:
        return self.column.is_not(None)


@dataclass
class BoolTarget(Target):
    """A boolean column."""

    name: str
    column: Any

    def match(self, value: Value) -> Condition:
        text = value.text.lower()
        if value.is_pattern or text not in ("true", "false"):
            raise QueryError(f"Field {self.name} is true or false")
        if isinstance(self.column, bool):
            return true() if self.column == (text == "true") else false()
        return and_(self.column.is_not(None), self.column.is_(text == "true"))

    def exists(self) -> Condition:
        return true() if isinstance(self.column, bool) else self.column.is_not(None)


def _integer(name: str, value: Value) -> int:
    if value.is_pattern or not INTEGER.match(value.text):
        raise QueryError(f"Field {name} is an integer")
    return int(value.text)


@dataclass
class IntegerTarget(Target):
    """An integer column."""

    name: str
    column: Any

    def match(self, value: Value) -> Condition:
        if value.pieces == [ANY]:
            return self.exists()
        return and_(self.column.is_not(None), self.column == _integer(self.name, value))

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        return _compare(self.column, low and _integer(self.name, low), high and _integer(self.name, high),
                        include_low, include_high)

    def exists(self) -> Condition:
        return self.column.is_not(None)


def _zone(text: str | None) -> timezone:
    if text is None or text.upper() == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return timezone(-offset if text[0] == "-" else offset)  # ValueError past a day


def _moment(name: str, value: Value) -> tuple[datetime, datetime]:
    """The span of time a date or timestamp names, from its start to the start of the next: a year, a
    month, a day, an hour, a minute, a second, a millisecond (or microsecond), whichever it ends with."""
    text = value.text.strip()
    found = None if value.is_pattern or len(text) > 40 else MOMENT.fullmatch(text)
    if found is None:
        raise QueryError(f"Field {name} is a date: {text[:40]!r} is not one")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    if not 2 <= int(year) <= 9998:  # a day's worth of zone either side stays within datetime's years
        raise QueryError(f"Field {name}: the date {text[:40]!r} is out of range")
    try:
        start = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                         int(second or 0), int((fraction or "")[:6].ljust(6, "0")), tzinfo=_zone(zone))
    except ValueError:
        raise QueryError(f"Field {name} is a date: {text[:40]!r} is not one") from None
    if month is None:
        end = start.replace(year=start.year + 1)
    elif day is None:
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else \
            start.replace(month=start.month + 1)
    else:
        end = start + (timedelta(days=1) if hour is None else timedelta(hours=1) if minute is None else
                       timedelta(minutes=1) if second is None else timedelta(seconds=1) if fraction is None
                       else timedelta(milliseconds=1) if len(fraction) <= 3 else timedelta(microseconds=1))
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class DateTarget(Target):
    """A timestamp column; a date or time matches the whole span it names (see _moment)."""

    name: str
    column: Any

    def match(self, value: Value) -> Condition:
        if value.pieces == [ANY]:
            return self.exists()
        start, end = _moment(self.name, value)
        return _compare(self.column, start, end, True, False)

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        # As Elasticsearch rounds: an inclusive bound takes in the whole span it names (`[a TO 2023-03-03]`
        # ends before 2023-03-04), an exclusive one leaves it all out (`{2023-03-03 TO *]` starts there).
        start = None if low is None else _moment(self.name, low)[0 if include_low else 1]
        end = None if high is None else _moment(self.name, high)[1 if include_high else 0]
        return _compare(self.column, start, end, True, False)

    def exists(self) -> Condition:
        return self.column.is_not(None)


@dataclass
class ConnectionTarget(Target):
    """`identities.connection`: the name of the user's connection."""

    name: str
    dialect: str

    def _where(self, condition: Condition) -> Condition:
        return User.connection_id.in_(select(Connection.id).where(condition))

    def match(self, value: Value) -> Condition:
        return self._where(TextTarget(self.name, Connection.name, self.dialect).match(value))

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        inner = TextTarget(self.name, Connection.name, self.dialect)
        return self._where(inner.range(low, high, include_low, include_high))

    def exists(self) -> Condition:
        return true()


@dataclass
class EmailDomainTarget(Target):
    """`email.domain`: what follows the @, case-insensitively."""

    name: str

    def match(self, value: Value) -> Condition:
        if value.pieces == [ANY]:
            return self.exists()
        pattern = "%@" + value.like(lower=True)
        return User.email_normalized.like(pattern, escape="\\")

    def exists(self) -> Condition:
        return User.email_normalized.is_not(None)


@dataclass(frozen=True)
class JsonValue:
    """A JSON value in SQL: its type, in the dialect's words (NULL when there is none), and its value (on
    PostgreSQL, as text)."""

    kind: Any
    value: Any
    dialect: str

    def string(self) -> Any:
        """The value when it is a JSON string, else NULL."""
        return case((self.kind == ("text" if self.dialect == "sqlite" else "string"), self.value))

    def number(self) -> Any:
        """The value when it is a JSON number, else NULL."""
        if self.dialect == "sqlite":
            return case((self.kind.in_(["integer", "real"]), self.value))
        return case((self.kind == "number", cast(self.value, Numeric)))

    def boolean(self, flag: bool) -> Condition:
        word = "true" if flag else "false"
        if self.dialect == "sqlite":
            return func.coalesce(self.kind == word, False)
        return func.coalesce(and_(self.kind == "boolean", self.value == word), False)


@dataclass
class JsonTarget(Target):
    """A value inside app_metadata or user_metadata: strings, numbers and booleans, as typed; an array
    matches when one of its elements does."""

    name: str
    column: Any
    keys: Sequence[str]
    dialect: str

    def _kind(self) -> Any:
        """The JSON type of the value, in this dialect's words (NULL when there is none)."""
        if self.dialect == "sqlite":
            return func.json_type(self.column, self._sqlite_path())
        return func.json_typeof(self._pg_node())

    def _sqlite_path(self) -> str:
        return "$" + "".join(f'."{key}"' for key in self.keys)

    def _pg_node(self) -> Any:
        return self.column.op("#>")(literal(list(self.keys), ARRAY(Text)))

    def _pg_text(self) -> Any:
        return self.column.op("#>>", return_type=Text)(literal(list(self.keys), ARRAY(Text)))

    def _value(self) -> JsonValue:
        if self.dialect == "sqlite":
            return JsonValue(self._kind(), func.json_extract(self.column, self._sqlite_path()), self.dialect)
        return JsonValue(self._kind(), self._pg_text(), self.dialect)

    def _any(self, test: Callable[[JsonValue], Condition]) -> Condition:
        """`test` on the value, or on one of its elements when it is an array."""
        if self.dialect == "sqlite":
            # json_each walks an array's elements (and an object's members, which the CASE keeps out).
            elements = func.json_each(self.column, self._sqlite_path()).table_valued("type", "value")
            element = JsonValue(elements.c.type, elements.c.value, self.dialect)
        else:
            # The column is JSON, not JSONB; json_array_elements refuses anything but an array.
            node = self._pg_node()
            elements = func.json_array_elements(case((func.json_typeof(node) == "array", node))) \
                .table_valued("value")
            whole = literal([], ARRAY(Text))  # `#>> '{}'`: the element itself, as text
            element = JsonValue(func.json_typeof(elements.c.value),
                                elements.c.value.op("#>>", return_type=Text)(whole), self.dialect)
        in_array = exists(select(literal(1)).select_from(elements).where(test(element)))
        return or_(test(self._value()), case((self._kind() == "array", in_array), else_=false()))

    def match(self, value: Value) -> Condition:
        if value.pieces == [ANY]:
            return self.exists()
        return self._any(lambda json: self._match(json, value))

    def _match(self, json: JsonValue, value: Value) -> Condition:
        text = TextTarget(self.name, json.string(), self.dialect)
        if value.is_pattern or value.phrase:
            return text.match(value)
        choices = [text.match(value)]
        if value.text in ("true", "false"):
            choices.append(json.boolean(value.text == "true"))
        if NUMBER.match(value.text):
            number = json.number()
            choices.append(and_(number.is_not(None), number == float(value.text)))
        return or_(*choices)

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        bounds = [b for b in (low, high) if b is not None]
        if bounds and all(NUMBER.match(b.text) for b in bounds):
            return self._any(lambda json: _compare(json.number(), low and float(low.text),
                                                   high and float(high.text), include_low, include_high))
        return self._any(lambda json: TextTarget(self.name, json.string(), self.dialect)
                         .range(low, high, include_low, include_high))

    def exists(self) -> Condition:
        kind = self._kind()
        return and_(kind.is_not(None), kind != "null")


@dataclass
class MetadataRoot(Target):
    """`_exists_:app_metadata`: metadata with at least one key."""

    name: str
    column: Any

    def exists(self) -> Condition:
        text = cast(self.column, Text)
        return and_(text.is_not(None), text.not_in(["{}", "null"]))


@dataclass
class MigrationRoot(Target):
    """`_exists_:migration`: users who moved over from a legacy store."""

    name: str

    def exists(self) -> Condition:
        return User.migrated_at.is_not(None)


@dataclass
class AbsentTarget(Target):
    """A field Auth0's users may have and idp's never do (`username`, `phone_number`): nothing matches."""

    name: str

    def match(self, value: Value) -> Condition:
        return false()

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        return false()

    def exists(self) -> Condition:
        return false()


@dataclass
class ConstantTarget(Target):
    """A text field every user has, with the same value: `identities.provider` is always auth0."""

    name: str
    text: str

    def match(self, value: Value) -> Condition:
        # The positions in the text the value so far can end at: linear, where a regular expression with
        # many `*` could backtrack for ages.
        ends = {0}
        for token in (c for p in value.pieces for c in (p if isinstance(p, str) else [p])):
            if token is ANY:
                ends = set(range(min(ends), len(self.text) + 1)) if ends else ends
            else:
                ends = {i + 1 for i in ends if i < len(self.text) and token in (ONE, self.text[i])}
        return true() if len(self.text) in ends else false()

    def range(self, low: Bound, high: Bound, include_low: bool, include_high: bool) -> Condition:
        above = low is None or (self.text >= low.text if include_low else self.text > low.text)
        below = high is None or (self.text <= high.text if include_high else self.text < high.text)
        return true() if above and below else false()

    def exists(self) -> Condition:
        return true()


# Fields that match case-insensitively; a term without a field searches these.
NORMALIZED = ("email", "name", "given_name", "family_name", "nickname")
METADATA = {"app_metadata": User.app_metadata, "user_metadata": User.user_metadata}


def target(name: str, dialect: str) -> Target:
    """Return the field a query names, or refuse it."""
    simple: dict[str, Callable[[], Target]] = {
        "user_id": lambda: TextTarget(name, User.id, dialect),
        "identities.user_id": lambda: TextTarget(name, User.id, dialect),
        "email": lambda: TextTarget(name, User.email_normalized, dialect, folded=True, stored_folded=True),
        "email.domain": lambda: EmailDomainTarget(name),
        "email_verified": lambda: BoolTarget(name, User.email_verified),
        "name": lambda: TextTarget(name, User.name, dialect, folded=True),
        "given_name": lambda: TextTarget(name, User.given_name, dialect, folded=True),
        "family_name": lambda: TextTarget(name, User.family_name, dialect, folded=True),
        "nickname": lambda: TextTarget(name, User.nickname, dialect, folded=True),
        "picture": lambda: TextTarget(name, User.picture, dialect),
        "created_at": lambda: DateTarget(name, User.created_at),
        "updated_at": lambda: DateTarget(name, User.updated_at),
        "last_login": lambda: DateTarget(name, User.last_login_at),
        "logins_count": lambda: IntegerTarget(name, User.logins_count),
        "last_ip": lambda: TextTarget(name, User.last_ip, dialect),
        "blocked": lambda: BoolTarget(name, User.blocked),
        "identities.connection": lambda: ConnectionTarget(name, dialect),
        "identities.provider": lambda: ConstantTarget(name, "auth0"),
        "identities.isSocial": lambda: BoolTarget(name, False),
        "username": lambda: AbsentTarget(name),
        "phone_number": lambda: AbsentTarget(name),
        "phone_verified": lambda: AbsentTarget(name),
        "migration": lambda: MigrationRoot(name),
        "migration.via": lambda: TextTarget(name, User.migrated_via, dialect),
        "migration.at": lambda: DateTarget(name, User.migrated_at),
    }
    if name in simple:
        return simple[name]()
    root, _, rest = name.partition(".")
    if root in METADATA:
        if not rest:
            return MetadataRoot(name, METADATA[root])
        keys = rest.split(".")
        if len(keys) <= 10 and all(KEY.match(key) for key in keys):
            return JsonTarget(name, METADATA[root], keys, dialect)
    raise QueryError(f"Unsupported field in query: {name[:100]}")


Fields = Callable[[str, str], Target]  # a field's name and the dialect -> where to look


class _Translator:
    def __init__(self, dialect: str, fields: Fields = target, defaults: Sequence[str] = NORMALIZED) -> None:
        self.dialect = dialect
        self.terms = self.metadata_terms = 0
        self.fields, self.defaults = fields, defaults

    def node(self, item: tree.Item, field: str | None, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            raise QueryError("The query is nested too deeply")
        down = depth + 1
        if isinstance(item, tree.SearchField):
            if field is not None:
                raise QueryError(f"A field inside a field: {item.name[:100]} in {field[:100]}")
            if item.name == "_exists_":
                if not isinstance(item.expr, tree.Word | tree.Phrase):
                    raise QueryError("_exists_ takes one field name")
                return self._leaf(lambda: self._field(_value(item.expr).text).exists())
            return self.node(item.expr, item.name, down)
        if isinstance(item, tree.BaseGroup):
            return self.node(item.expr, field, down)
        if isinstance(item, tree.AndOperation):
            return and_(*(self.node(o, field, down) for o in item.operands))
        if isinstance(item, tree.OrOperation):
            return or_(*(self.node(o, field, down) for o in item.operands))
        if isinstance(item, tree.UnknownOperation):
            return self._implicit(item.operands, field, down)
        if isinstance(item, tree.Not | tree.Prohibit):
            return not_(self.node(item.a, field, down))
        if isinstance(item, tree.Plus):
            return self.node(item.a, field, down)
        if isinstance(item, tree.Range | tree.From | tree.To):
            if field is None:
                raise QueryError("A range needs a field")
            return self._leaf(lambda: self._range(item, field))
        if isinstance(item, tree.Word | tree.Phrase):
            value = _value(item)
            if field is None:
                return self._leaf(lambda: or_(*(self._field(f).match(value) for f in self.defaults)))
            if not value.phrase and value.pieces == [ANY]:  # `field:*`: has the field
                return self._leaf(lambda: self._field(field).exists())
            return self._leaf(lambda: self._field(field).match(value))
        kind = {tree.Regex: "Regular expressions", tree.Fuzzy: "Fuzzy searches",
                tree.Proximity: "Proximity searches", tree.Boost: "Boosts"}.get(type(item), "This syntax")
        raise QueryError(f"{kind} are not supported in search")

    def _leaf(self, make: Callable[[], Condition]) -> Condition:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(f"The query has more than {MAX_TERMS} terms")
        return make()

    def _field(self, name: str) -> Target:
        where = self.fields(name, self.dialect)
        if isinstance(where, JsonTarget):
            self.metadata_terms += 1
            if self.metadata_terms > MAX_METADATA_TERMS:
                raise QueryError(f"The query has more than {MAX_METADATA_TERMS} terms on app_metadata or "
                                 "user_metadata")
        return where

    def _range(self, item: tree.Range | tree.From | tree.To, field: str) -> Condition:
        where = self._field(field)
        if isinstance(item, tree.Range):
            return where.range(_bound(item.low), _bound(item.high), item.include_low, item.include_high)
        bound = _bound(item.a)
        if isinstance(item, tree.From):
            return where.range(bound, None, item.include, True)
        return where.range(None, bound, True, item.include)

    def _implicit(self, operands: Sequence[tree.Item], field: str | None, depth: int) -> Condition:
        """Lucene's default: `+` terms must match, `-` terms must not, and of the others at least one must
        match unless some term is required."""
        must = [self.node(o.a, field, depth) for o in operands if isinstance(o, tree.Plus)]
        must_not = [self.node(o.a, field, depth) for o in operands if isinstance(o, tree.Prohibit)]
        should = [self.node(o, field, depth) for o in operands
                  if not isinstance(o, tree.Plus | tree.Prohibit)]
        parts = [*must, *(not_(c) for c in must_not)]
        if should and not must:
            parts.append(or_(*should))
        return and_(*parts) if parts else true()


def condition(query: str, dialect: str, fields: Fields = target,
              defaults: Sequence[str] = NORMALIZED) -> Condition:
    """Translate a search query into a condition (on users, unless `fields` names other columns, as the
    log search does; `defaults` are the fields a term without one searches); raise QueryError when it
    cannot be."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError(f"The query is longer than {MAX_QUERY_LENGTH} characters")
    if not query.strip():
        return true()
    try:
        parsed = parse(query)
    except ParseError as error:
        raise QueryError(f"Invalid query: {str(error)[:200]}") from None
    except Exception:  # the parser's own failures on strange input are the query's fault, not ours
        raise QueryError("Invalid query") from None
    return _Translator(dialect, fields, defaults).node(parsed, None, 0)


PROGRESS_STEPS = 1000  # SQLite virtual-machine instructions between two looks at the clock
QUERY_CANCELED = "57014"  # the SQLSTATE of a PostgreSQL statement that statement_timeout stopped


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Give the block's statements `seconds` (each, on PostgreSQL; all, on SQLite); past it, roll the
    session back and raise QueryTimeout."""
    connection = db.session.connection()  # begins the transaction the block's statements run in
    postgres = connection.dialect.name == "postgresql"
    raw = connection.connection.dbapi_connection
    stopped = False
    before: Any = None
    if postgres:
        before = connection.scalar(select(func.current_setting("statement_timeout")))
        # LOCAL: it ends with the transaction, whatever happens to the block.
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
    elif isinstance(raw, sqlite3.Connection):
        deadline = time.monotonic() + seconds

        def stop() -> int:
            nonlocal stopped
            stopped = time.monotonic() > deadline
            return stopped  # not zero: SQLite interrupts the statement

        raw.set_progress_handler(stop, PROGRESS_STEPS)
    try:
        yield
    except DBAPIError as error:
        if stopped or getattr(error.orig, "sqlstate", None) == QUERY_CANCELED:
            db.session.rollback()
            raise QueryTimeout(f"The search did not finish within {seconds:g} s") from None
        raise
    finally:
        if isinstance(raw, sqlite3.Connection):
            raw.set_progress_handler(None, 0)
    if postgres and not connection.closed and connection.in_transaction():
        # What follows in the same transaction gets the timeout it had.
        connection.execute(select(func.set_config("statement_timeout", before, True)))
