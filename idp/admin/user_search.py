"""The users list's search: plain words or the management API's Lucene query, a page at a time, with the
total the API's `include_totals` counts."""

from dataclasses import dataclass

from luqum import tree
from luqum.thread import parse
from sqlalchemy import ColumnElement, and_, func, or_, select

from idp.db import db
from idp.management import api, search
from idp.users.models import User

PER_PAGE = 50
PLAIN_FIELDS = ("email", "name")  # what plain words search, each anywhere in the field
MAX_PLAIN_WORDS = 20
# Characters that make a word Lucene's even without a field: wildcards and escapes.
LUCENE_IN_WORD = ("*", "?", "\\")
# Newest first, as the API sorts with `sort=created_at:-1` (the (created_at, id) index read backwards).
ORDER = (User.created_at.desc(), User.id.desc())


class SearchFailed(Exception):
    """A search the list cannot show: the query is refused (400) or took too long (503)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Found:
    """One page of a search: its users, the page number (from 1) and how many users match in all."""

    users: list[User]
    page: int
    total: int

    @property
    def first(self) -> int:
        """The position of the page's first user among all those found, from 1 (0 for none)."""
        return (self.page - 1) * PER_PAGE + 1 if self.users else 0

    @property
    def last(self) -> int:
        """The position of the page's last user among all those found."""
        return (self.page - 1) * PER_PAGE + len(self.users)

    @property
    def has_previous(self) -> bool:
        """Say whether a page comes before this one."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """Say whether users come after this page."""
        return self.page * PER_PAGE < self.total


def plain_words(query: str) -> list[str] | None:
    """Return the words of a plain-text query (no field, operator, quote, wildcard or group), else None."""
    try:
        parsed = parse(query)
    except Exception:  # not plain text, whatever the parser found wrong: condition() says what
        return None
    items = parsed.operands if isinstance(parsed, tree.UnknownOperation) else (parsed,)
    if all(isinstance(item, tree.Word) and not any(c in item.value for c in LUCENE_IN_WORD)
           for item in items):
        return [item.value for item in items]
    return None


def condition(query: str, dialect: str) -> ColumnElement[bool]:
    """Turn the search box's text into a condition on users; raise search.QueryError when it cannot be.

    Plain words find the users whose email or name contains every one of them, whatever their case;
    anything else is the management API's query (Auth0's syntax v3), read by the same parser.
    """
    # Long queries go straight to search.condition, which refuses them before parsing.
    words = plain_words(query) if query.strip() and len(query) <= search.MAX_QUERY_LENGTH else None
    if words is None:
        return search.condition(query, dialect)
    if len(words) > MAX_PLAIN_WORDS:
        raise search.QueryError(f"Plain-text search takes at most {MAX_PLAIN_WORDS} words")
    fields = [search.target(name, dialect) for name in PLAIN_FIELDS]
    return and_(*(or_(*(field.match(search.Value([search.ANY, word, search.ANY], phrase=False))
                        for field in fields)) for word in words))


def find(query: str, page: int) -> Found:
    """Return a page (from 1) of the users a query finds, newest first, with the total; SearchFailed if the
    query is refused or the search outlasts the management API's time budget."""
    dialect = db.session.get_bind().dialect.name
    try:
        where = condition(query, dialect)
    except search.QueryError as error:
        raise SearchFailed(str(error), 400) from None
    # The API's two steps: the page's ids (an index-only scan past the offset), then their rows.
    ids = select(User.id).where(where).order_by(*ORDER).offset((page - 1) * PER_PAGE).limit(PER_PAGE)
    try:
        with api.searching():
            users = list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(*ORDER)))
            total = db.session.scalar(select(func.count()).select_from(User).where(where)) or 0
    except api.ApiError as error:  # searching() turns a search past its budget into the API's 503
        raise SearchFailed(error.message, error.status) from None
    return Found(users, page, total)
