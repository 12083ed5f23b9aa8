"""Hypothesis fuzzing of every /api/v2 route: hostile q, page, per_page, sort and fields get a 200 or a
400; hostile ids, bodies and methods get an answer or an error in Auth0's shape, never a 500, never HTML.

Requests go through the whole WSGI stack; examples are derandomized (see tests/test_fuzz.py), so a run is
reproducible. The app, its users, connections and log events are built once per database for the module.
"""

import contextvars
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from idp.actions import registry as action_registry
from idp.connections import registry
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.events import log as events
from idp.events.models import LogEvent
from idp.users.models import User
from tests.conftest import app_for, base_config, fresh_database
from tests.management.conftest import management_token

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

FIELDS = ["user_id", "email", "email.domain", "email_verified", "name", "given_name", "family_name",
          "nickname", "created_at", "updated_at", "last_login", "logins_count", "last_ip", "blocked",
          "identities.connection", "identities.user_id", "app_metadata", "app_metadata.plan",
          "app_metadata.n.deep", "user_metadata.lang", "migration", "migration.via", "migration.at",
          "_exists_", "unknown", "app_metadata.a-b", "password_hash"]
NASTY = ["", " ", '"', "\\", "'", "\x00", "\r\n", "é", "日本語", "\U0001f600", "%", "_", "*", "?", "**",
         "*?*", "[", "]", "{", "}", "(", ")", ":", "::", "^", "~", "/", "//", "-", "+", "!", "&&", "||",
         "AND", "OR", "NOT", "TO", "null", "true", "false", "-1", "0", "1e309", "9" * 40, "NaN", "2020-13-45",
         "2020-01-01T25:00:00Z", "0001-01-01", "9999-12-31T23:59:59.999999+14:00", "'; DROP TABLE users; --",
         "$.a", "{a,b}", "%00", "a" * 300]
SORTS = [f"{f}:{d}" for f in FIELDS for d in ("1", "-1")]
SCOPES = ("read:users create:users update:users delete:users read:logs read:logs_users read:connections "
          "update:connections read:stats read:actions create:actions update:actions delete:actions")
DSN = "postgresql://legacy:s3cret@db.internal/legacy"
ERROR_SHAPE = {"statusCode", "error", "message", "errorCode"}


@dataclass
class Target:
    app: Flask
    token: str
    ids: dict[str, str] = field(default_factory=dict)  # placeholders in the examples -> the stored ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("management-fuzz")
    with app_for(base_config(fresh_database(request, request.param, tmp), tmp)) as app:
        for i, metadata in enumerate([{}, {"plan": "gold", "n": {"deep": 3}}, {"plan": 7, "a-b": True},
                                      {"plan": None, "n": [1, 2]}, {"plan": "日本語 \\ % _ *"}]):
            db.session.add(User(
                id=f"fz-{i}", email=f"user{i}@fuzz.example", email_normalized=f"user{i}@fuzz.example",
                connection_id=NATIVE_ID, name=["Ada", None, "O'Neil", "日本", "%_\\"][i],
                created_at=datetime(2020 + i, 1, 1, tzinfo=UTC), app_metadata=metadata,
                user_metadata={"lang": "en"} if i % 2 else {},
                migrated_at=datetime(2024, 1, 1, tzinfo=UTC) if i > 2 else None,
                migrated_via="login" if i > 2 else None))
        for i in range(3):
            db.session.add(events.build("s" if i else "f", f"event {i}", user_id=f"fz-{i}",
                                        user_name=f"user{i}@fuzz.example", client_id="fuzz-client"))
        db.session.commit()
        legacy = registry.create("fuzz-legacy", migrating=True, configuration={"DSN": DSN})
        plain = registry.create("fuzz-plain", migrating=False)
        action = action_registry.create("fuzz-action", "def on_execute_post_login(event, api):\n    pass\n")
        log_id = db.session.scalars(select(LogEvent.log_id).order_by(LogEvent.log_id)).first() or ""
        yield Target(app, management_token(app, scope=SCOPES),
                     {"{legacy}": legacy.id, "{plain}": plain.id, "{log}": log_id, "{action}": action.id})


def send(t: Target, params: list[tuple[str, str]]) -> int:
    """GET /api/v2/users through the whole WSGI stack; assert it is no server error and is Auth0-shaped."""
    code, body = request(t, "GET", "/api/v2/users", query_string=urlencode(params))
    assert code in (200, 400), f"{params!r}\n-> {code}\n{body}"
    if code == 400:
        assert body["statusCode"] == 400 and body["errorCode"] == "invalid_query_string", body
    return code


def request(t: Target, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """Send a request through the whole WSGI stack; return its status and JSON body (none on a 204)."""
    environ = EnvironBuilder(path=path, method=method, headers={"Authorization": f"Bearer {t.token}"},
                             **kwargs).get_environ()
    app_iter, status, headers = contextvars.Context().run(run_wsgi_app, t.app, environ, True)
    text = b"".join(app_iter).decode()
    code = int(status[:3])
    seen = f"{method} {path!r:.300} {kwargs!r:.1000}\n-> {status}\n{text[:2000]}"
    assert code < 500 or code == 503, seen
    assert "Traceback" not in text, seen
    if not text:  # a 204, or the automatic answer to OPTIONS
        assert code == 204 or method == "OPTIONS", seen
        return code, None
    assert headers.get("Content-Type", "").startswith("application/json"), seen
    body = json.loads(text)
    if code >= 400:
        assert isinstance(body, dict) and {"statusCode", "error", "message"} <= set(body) <= ERROR_SHAPE, seen
        assert body["statusCode"] == code and isinstance(body["error"], str) and body["message"], seen
        assert isinstance(body["message"], str) and isinstance(body.get("errorCode", ""), str), seen
    return code, body


hostile = st.one_of(st.sampled_from(NASTY), st.text(max_size=20),
                    st.lists(st.sampled_from(NASTY), min_size=2, max_size=4).map("".join))
values = st.one_of(hostile, st.sampled_from(["ada", "Ada*", "*da", "gold", "7", "3", "true", "login",
                                             "2021-01-01", "2021-01-01T00:00:00.000Z", '"Ada"', "*"]))
fields = st.one_of(st.sampled_from(FIELDS), hostile)


def _term(pair: tuple[str, str]) -> str:
    return f"{pair[0]}:{pair[1]}"


def lucene(fields: st.SearchStrategy[str], values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Queries in Lucene's syntax (Auth0's user and log search) over these field names and values."""
    terms = st.one_of(
        st.tuples(fields, values).map(_term),
        st.tuples(fields, values, values, st.sampled_from("[{"), st.sampled_from("]}")).map(
            lambda t: f"{t[0]}:{t[3]}{t[1]} TO {t[2]}{t[4]}"),
        st.tuples(fields, st.sampled_from([">", ">=", "<", "<="]), values).map(
            lambda t: f"{t[0]}:{t[1]}{t[2]}"),
        st.builds(lambda f: f"_exists_:{f}", fields),
        values,
    )
    return st.recursive(terms, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" AND ", " OR ", " ", " && ", " || "]), inner).map("".join),
        st.builds(lambda q: f"({q})", inner),
        st.builds(lambda q: f"NOT {q}", inner),
        st.builds(lambda q: f"-{q}", inner),
        st.builds(lambda q: f"+{q}", inner),
        st.tuples(fields, inner).map(lambda t: f"{t[0]}:({t[1]})"),
    ), max_leaves=8)


queries = lucene(fields, values)


@FUZZ
@given(q=st.one_of(queries, hostile))
def test_hostile_queries_are_answered_or_refused(target, q):
    send(target, [("q", q), ("per_page", "100"), ("include_totals", "true")])


numbers = st.one_of(hostile, st.integers(-5, 10**12).map(str), st.sampled_from(["0", "1", "100", "101"]))


@FUZZ
@given(page=st.one_of(st.none(), numbers), per_page=st.one_of(st.none(), numbers),
       sort=st.one_of(st.none(), st.sampled_from(SORTS), hostile),
       field_list=st.one_of(st.none(), st.lists(fields, max_size=5).map(",".join), hostile),
       flags=st.lists(st.tuples(st.sampled_from(["include_totals", "include_fields", "search_engine", "x"]),
                                st.one_of(st.sampled_from(["true", "false", "v3"]), hostile)), max_size=3))
def test_hostile_paging_sorting_and_fields_are_answered_or_refused(target, page, per_page, sort, field_list,
                                                                    flags):
    params = [(k, v) for k, v in (("page", page), ("per_page", per_page), ("sort", sort),
                                  ("fields", field_list)) if v is not None]
    send(target, params + flags)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
              st.sampled_from(NASTY), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), inner,
                                            max_size=4)),
    max_leaves=10)
BODY_NAMES = ["connection", "email", "password", "email_verified", "name", "given_name", "family_name",
              "nickname", "picture", "user_metadata", "app_metadata", "blocked", "user_id"]
body_values = st.one_of(json_values, st.sampled_from(["Username-Password-Authentication", "new@fuzz.example",
                                                      "correct horse battery staple", "user1@fuzz.example"]))
bodies = st.one_of(json_values, st.dictionaries(st.one_of(st.sampled_from(BODY_NAMES), hostile), body_values,
                                                max_size=6))


@FUZZ
@given(method=st.sampled_from(["POST", "PATCH", "DELETE", "PUT"]),
       user=st.one_of(st.sampled_from(["fz-1", "fz-2", "missing"]), hostile), body=bodies,
       content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-16"]))
def test_hostile_writes_are_answered_or_refused(target, method, user, body, content_type):
    path = "/api/v2/users" if method == "POST" else "/api/v2/users/" + quote(user, safe="")
    code, answer = request(target, method, path, data=json.dumps(body), content_type=content_type)
    if code >= 400:  # Auth0's shape
        assert answer["statusCode"] == code and answer["message"], answer


# Every other route: hostile ids, parameters, bodies and methods.


class Long(str):
    """A long string that Hypothesis reports by its start and length."""

    def __repr__(self) -> str:
        return f"Long({str.__repr__(self[:60])}..., {len(self)} characters)"


class LongBytes(bytes):
    def __repr__(self) -> str:
        return f"LongBytes({bytes.__repr__(self[:60])}..., {len(self)} bytes)"


ROUTE_FUZZ = settings(FUZZ, max_examples=100)
ROUTES = {  # each path under /api/v2 and the methods it answers
    "/users": {"GET", "POST"}, "/users/{id}": {"GET", "PATCH", "DELETE"}, "/users-by-email": {"GET"},
    "/users/{id}/logs": {"GET"}, "/logs": {"GET"}, "/logs/{id}": {"GET"}, "/connections": {"GET"},
    "/connections/{id}": {"GET", "PATCH"}, "/stats/migration": {"GET"},
    "/actions/actions": {"GET", "POST"}, "/actions/actions/{id}": {"GET", "PATCH", "DELETE"},
    "/actions/actions/{id}/deploy": {"POST"}, "/actions/actions/{id}/test": {"POST"},
    "/actions/triggers": {"GET"}, "/actions/triggers/{id}/bindings": {"GET", "PATCH"},
}
KNOWN_IDS = ["fz-1", "missing", NATIVE_ID, "{legacy}", "{plain}", "{log}", "con_", "0" * 64, "z" * 64]
HOSTILE_IDS = ["\x00", "a\x00b", "\ud800", "\udfff", "a\ud83d", "%00", "%", "%zz", "..", ".", "~", "a" * 256,
               Long("a" * 10_000), Long("é" * 5_000), "\U0001f600" * 100, "\u202e", "\ufeff", "\r\n", "?",
               "#", ";x", "a/b", "../connections", "%2e%2e", "fz-1/logs", " fz-1", "FZ-1", "con_native ",
               "' OR 1=1 --"]
# Written into the path as they are, not percent-encoded.
RAW_IDS = ["..", ".", "./fz-1", "a//b", "//", "", "x/", "?fields=x", "#frag", "%zz", "%", "a/../b", "%2F",
           "%C0%AF", "%ED%A0%80", "%FF", "%00", "%E2%80%AE"]
ids = st.one_of(st.sampled_from(KNOWN_IDS + HOSTILE_IDS), hostile).map(lambda i: (i, False))
raw_ids = st.sampled_from(RAW_IDS).map(lambda i: (i, True))
MANY = ["0", "1", "50", "100", "101", "1000", "-1", "1e3", "0x10", " 1", "１", "9" * 11, "4294967296"]
numbers_or_hostile = st.one_of(st.sampled_from(MANY), numbers)
flags_ = st.one_of(st.sampled_from(["true", "false", "True", "1", "yes", ""]), hostile)


def path(t: Target, template: str, ident: tuple[str, bool] = ("", False)) -> str:
    """The route with its id: a placeholder becomes a stored id; anything else is encoded unless raw."""
    text, raw = ident
    text = t.ids.get(text, text)
    return "/api/v2" + template.replace("{id}", text if raw else quote(text, safe="", errors="surrogatepass"))


def get(t: Target, where: str, params: list[tuple[str, str]], allowed: set[int]) -> Any:
    """GET with these query parameters (percent-encoded, lone surrogates too); check the status."""
    query = urlencode(params, errors="surrogatepass")
    if "?" in where:  # a raw id carrying a query of its own
        code, body = request(t, "GET", f"{where}&{query}" if query else where)
    else:
        code, body = request(t, "GET", where, query_string=query)
    assert code in allowed, (where, params, code, body)
    if code == 400:
        assert body["errorCode"] in ("invalid_query_string", "invalid_body"), body
    return body


def optional(**strategies: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Query parameters: each of these maybe, and perhaps a repeated or unknown one."""
    given_ = st.fixed_dictionaries({}, optional=strategies).map(lambda d: list(d.items()))
    extra = st.lists(st.tuples(st.one_of(st.sampled_from(sorted(strategies)), hostile), hostile), max_size=2)
    return st.tuples(given_, extra).map(lambda t: t[0] + t[1])


FIELD_LISTS = st.one_of(st.lists(st.one_of(fields, st.sampled_from(["log_id", "date", "type", "id", "name",
                                                                     "options", "strategy"])),
                                 max_size=5).map(",".join), hostile, st.just(",".join(["a"] * 51)))


@ROUTE_FUZZ
@given(template=st.sampled_from(["/users/{id}", "/users/{id}/logs", "/logs/{id}", "/connections/{id}",
                                  "/actions/actions/{id}", "/actions/triggers/{id}/bindings"]),
       ident=st.one_of(ids, raw_ids),
       params=optional(fields=FIELD_LISTS, include_fields=flags_, page=numbers_or_hostile,
                       per_page=numbers_or_hostile, include_totals=flags_,
                       sort=st.one_of(st.sampled_from(["date:1", "date:-1"]), hostile)))
def test_hostile_ids_are_answered_or_refused(target, template, ident, params):
    get(target, path(target, template, ident), params, {200, 400, 404})


EMAILS = ["user1@fuzz.example", "USER1@FUZZ.EXAMPLE", "@", "a@b", Long("a" * 10_000 + "@x.example"),
          "\ud800@x.example", " user1@fuzz.example ", "user1@FUZZ.example\r\n"]


@ROUTE_FUZZ
@given(params=optional(email=st.one_of(st.sampled_from(EMAILS), hostile), fields=FIELD_LISTS,
                       include_fields=flags_))
def test_hostile_users_by_email_are_answered_or_refused(target, params):
    get(target, "/api/v2/users-by-email", params, {200, 400})


LOG_FIELDS = ["date", "type", "user_id", "user_name", "client_id", "client_name", "connection",
              "connection_id", "description", "ip", "hostname", "log_id", "user_agent", "strategy",
              "strategy_type", "details.x", "audience", "_exists_"]
log_fields = st.one_of(st.sampled_from(LOG_FIELDS), hostile)
log_values = st.one_of(values, st.sampled_from(["s", "f", "fz-1", "fuzz-client", "event*", "[2020 TO *]",
                                                "2024-01-01", "now", "now-1d", "{log}"]))


@ROUTE_FUZZ
@given(params=optional(q=st.one_of(lucene(log_fields, log_values), hostile), search=hostile,
                       page=numbers_or_hostile, per_page=numbers_or_hostile,
                       sort=st.one_of(st.sampled_from(["date:1", "date:-1", "date", "log_id:1"]), hostile),
                       fields=FIELD_LISTS, include_fields=flags_, include_totals=flags_,
                       take=numbers_or_hostile,
                       **{"from": st.one_of(st.sampled_from(["{log}", "0", "z" * 64, "z" * 65, ""]),
                                            hostile)}))
def test_hostile_log_searches_are_answered_or_refused(target, params):
    params = [(k, target.ids.get(v, v)) for k, v in params]
    get(target, "/api/v2/logs", params, {200, 400})


@ROUTE_FUZZ
@given(params=optional(name=st.one_of(st.sampled_from(["fuzz-legacy", "fuzz-plain", Long("a" * 10_000)]),
                                     hostile),
                       fields=FIELD_LISTS, include_fields=flags_, page=numbers_or_hostile,
                       per_page=numbers_or_hostile, include_totals=flags_,
                       **{"from": st.one_of(st.sampled_from(KNOWN_IDS), hostile)}, take=numbers_or_hostile),
       strategies=st.lists(st.one_of(st.sampled_from(["auth0", "google-oauth2", "a" * 129]), hostile),
                           max_size=3))
def test_hostile_connection_listings_are_answered_or_refused(target, params, strategies):
    params = [(k, target.ids.get(v, v)) for k, v in params] + [("strategy", s) for s in strategies]
    get(target, "/api/v2/connections", params, {200, 400})


DAYS = ["0001-01-01", "0001-01-29", "0001-01-30", "0001-01-31", "9999-12-31", "9999-12-30", "2024-02-29",
        "2023-02-29", "2024-13-01", "2024-00-10", "2024-1-1", "20240101", "2024-01-01T00:00:00Z",
        "+2024-01-01", "２０２４-01-01", "2024-01-01\n", "0000-01-01", "1970-01-01"]
days = st.one_of(st.sampled_from(DAYS), st.dates().map(str), hostile)


@ROUTE_FUZZ
@given(params=optional(to=days, **{"from": days}))
@example(params=[("to", "9999-12-31")])  # the ends of the calendar, found by this fuzz
@example(params=[("to", "0001-01-01")])
def test_hostile_migration_windows_are_answered_or_refused(target, params):
    get(target, "/api/v2/stats/migration", params, {200, 400})


def script(function: str, body: str) -> str:
    arguments = "email, password, configuration" if function == "login" else "email, configuration"
    return Long(f"def {function}({arguments}):\n    {body}\n")


SCRIPTS = [  # what the script checks must refuse (too long, too deep, not compiling) or take
    "", " ", "x", "def login(:", script("login", "return None"), script("get_user", "return None"),
    script("login", "return " + "-" * 50_000 + "1"), script("login", "return " + "+".join(["a"] * 30_000)),
    script("get_user", "return " + "(" * 300 + ")" * 300),
    script("get_user", "return " + "not " * 30_000 + "1"),
    script("login", "return f" + "()" * 30_000), script("login", "return " + "lambda: " * 20_000 + "1"),
    script("get_user", "return " + "[" * 150 + "]" * 150),
    Long(script("login", "return None") + "#" * 100_000),
    script("login", "return '\ud800'"), script("login", "return '\x00'"), "def login(a):\n    pass\n",
    "\ufeff" + script("login", "return None"), script("login", "return None").replace("    ", "\t"),
    script("login", "import os; os.system('id')"), "def login(email, password, configuration):\n",
]
scripts = st.one_of(st.sampled_from(SCRIPTS), json_values)
CONFIGURATION_VALUES = ["secret", "", Long("x" * 10_001), "po…(21 chars)", "ab…(3 chars)", "…(0 chars)",
                        "\ud800", "\x00"]
configurations = st.one_of(
    json_values,
    st.dictionaries(st.one_of(st.sampled_from(["DSN", "port", "", "k" * 256]), hostile),
                    st.one_of(st.sampled_from(CONFIGURATION_VALUES), json_values), max_size=5),
    st.just({f"k{i}": "v" for i in range(101)}),
)
options = st.one_of(json_values, st.tuples(
    st.fixed_dictionaries({}, optional={
        "enabledDatabaseCustomization": st.one_of(st.booleans(), json_values),
        "import_mode": st.one_of(st.booleans(), json_values),
        "customScripts": st.one_of(st.dictionaries(st.one_of(st.sampled_from(["login", "get_user"]), hostile),
                                                   scripts, max_size=3), json_values),
        "configuration": configurations,
    }),
    st.dictionaries(st.one_of(st.sampled_from(["brute_force_protection", "passwordPolicy"]), hostile),
                    json_values, max_size=2),
).map(lambda t: {**t[0], **t[1]} if t[1] and len(t[1]) % 2 else t[0]))
connection_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={"options": options}),
    st.fixed_dictionaries({"options": options}, optional={
        "name": json_values, "id": json_values, "strategy": json_values, "enabled_clients": json_values,
        "realms": json_values, "is_domain_connection": json_values, "metadata": json_values}),
    st.dictionaries(hostile, json_values, max_size=3),
    json_values,
)


def _deep(depth: int) -> str:
    return Long('{"options":' * depth + "{}" + "}" * depth)


RAW_BODIES = [  # what json.dumps never writes
    b"", b"{", b"}", b"null", b"NaN", b'{"options": NaN}', b'{"options": {"import_mode": Infinity}}',
    b"\xff\xfe", b'{"options": {"configuration": {"k": "\xed\xa0\x80"}}}',
    b'{"options": {"configuration": {"k": "\\ud800"}}}', b'{"options": {"configuration": {"\\u0000": "v"}}}',
    b'{"options": {}, "options": 1}', b"[" * 100_000, _deep(50).encode(), _deep(5_000).encode(),
    b'{"options": {"customScripts": {"login": "' + b"a" * 2_000_000 + b'"}}}',
    b'{"options": {"configuration": {"k": "' + b"a" * 1_000_000 + b'"}}}', b"\xef\xbb\xbf{}",
    b'{"options": 1e999}', b"1" * 5_000, b'"' + b"\\" * 1_001 + b'"',
    '{"options": {"configuration": {"é": "日本"}}}'.encode("utf-16"),
]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-16", "application/json; charset=latin-1",
                 "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                 "multipart/form-data; boundary=x", "application/merge-patch+json",
                 "application/vnd.api+json", "APPLICATION/JSON", "", "application/json\x00"]
payloads = st.one_of(connection_bodies.map(lambda b: LongBytes(json.dumps(b).encode())),
                     st.sampled_from([LongBytes(b) for b in RAW_BODIES]))


@ROUTE_FUZZ
@given(ident=st.one_of(st.sampled_from(["{legacy}", "{plain}", NATIVE_ID, "missing"]).map(
           lambda i: (i, False)), ids),
       payload=payloads, content_type=st.sampled_from(CONTENT_TYPES))
def test_hostile_connection_changes_are_answered_or_refused(target, ident, payload, content_type):
    code, body = request(target, "PATCH", path(target, "/connections/{id}", ident), data=payload,
                         content_type=content_type)
    # An id holding "/" makes another path, which the router may answer for the whole API: 405.
    routed = (405,) if "/" in target.ids.get(ident[0], ident[0]) else ()
    assert code in (200, 400, 404, 413, 415, *routed), (payload[:300], code, body)
    if code == 200:
        assert body["strategy"] == "auth0" and isinstance(body["options"], dict), body


@ROUTE_FUZZ
@given(function=st.sampled_from(["login", "get_user", "login"]), source=st.one_of(st.sampled_from(SCRIPTS),
                                                                                  st.text(max_size=50)))
def test_hostile_scripts_are_taken_or_refused(target, function, source):
    body = {"options": {"enabledDatabaseCustomization": True, "customScripts": {function: source}}}
    code, answer = request(target, "PATCH", path(target, "/connections/{id}", ("{legacy}", False)),
                           data=json.dumps(body), content_type="application/json")
    assert code in (200, 400), (source[:300], code, answer)


NOOP_ACTION = "def on_execute_post_login(event, api):\n    pass\n"
action_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={
        "name": st.one_of(st.sampled_from(["fuzz-action", "other", "", "a" * 129, "-x"]), hostile,
                          json_values),
        "supported_triggers": st.one_of(st.just([{"id": "post-login", "version": "v3"}]), json_values),
        "code": st.one_of(st.sampled_from([NOOP_ACTION, *SCRIPTS]), json_values),
        "secrets": st.one_of(st.lists(st.fixed_dictionaries({"name": st.one_of(st.sampled_from(["KEY", ""]),
                                                                                 hostile)},
                                                            optional={"value": json_values}), max_size=3),
                             json_values),
        "runtime": st.one_of(st.sampled_from(["python3.11", "node22"]), json_values),
        "dependencies": json_values, "deploy": json_values,
    }),
    st.dictionaries(hostile, json_values, max_size=3),
    json_values,
)
binding_bodies = st.one_of(
    st.fixed_dictionaries({"bindings": st.lists(st.one_of(
        st.fixed_dictionaries({"ref": st.fixed_dictionaries({
            "type": st.one_of(st.sampled_from(["action_id", "action_name", "binding_id"]), hostile),
            "value": st.one_of(st.sampled_from(["{action}", "fuzz-action", "act_x"]), hostile,
                               json_values)})},
            optional={"display_name": json_values, "secrets": json_values}),
        json_values), max_size=3)}),
    json_values,
)


@ROUTE_FUZZ
@given(where=st.sampled_from([("POST", "/actions/actions"), ("PATCH", "/actions/actions/{id}"),
                              ("PATCH", "/actions/triggers/post-login/bindings")]),
       body=st.one_of(action_bodies, binding_bodies), content_type=st.sampled_from(CONTENT_TYPES[:2]))
def test_hostile_action_changes_are_answered_or_refused(target, where, body, content_type):
    method, template = where
    text = json.dumps(body).replace('"{action}"', json.dumps(target.ids["{action}"]))
    code, answer = request(target, method, path(target, template, ("{action}", False)), data=text,
                           content_type=content_type)
    assert code in (200, 201, 400, 409, 415), (text[:300], code, answer)
    if code >= 400:
        assert set(answer) == ERROR_SHAPE, answer


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "MKCOL"]


@ROUTE_FUZZ
@given(template=st.sampled_from(sorted(ROUTES)), method=st.sampled_from(METHODS),
       ident=st.sampled_from(["fz-4", "missing", "{plain}", "{log}", "{action}", "post-login"]),
       payload=st.one_of(st.just(b""), payloads), content_type=st.sampled_from(CONTENT_TYPES))
def test_wrong_methods_are_refused(target, template, method, ident, payload, content_type):
    if method in ROUTES[template]:
        method = "PUT"  # a method the route does not answer
    code, body = request(target, method, path(target, template, (ident, False)), data=payload,
                         content_type=content_type)
    if code == 413:  # a form too large to read is refused before any route is chosen
        assert len(payload) > 500_000 and content_type.startswith("multipart/"), (template, method)
    elif method == "OPTIONS":
        assert code == 200 and body is None, (template, code, body)
    else:
        assert code == 405, (method, template, code, body)
