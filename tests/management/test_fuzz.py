"""Hypothesis fuzzing of GET /api/v2/users: hostile q, page, per_page, sort and fields get a 200 or a 400.

Requests go through the whole WSGI stack; examples are derandomized (see tests/test_fuzz.py), so a run is
reproducible. The app and its users are built once per database for the module.
"""

import contextvars
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app

from idp.connections.models import NATIVE_ID
from idp.db import db
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


@dataclass
class Target:
    app: Flask
    token: str


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
        db.session.commit()
        yield Target(app, management_token(app, scope="read:users create:users update:users delete:users"))


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
    assert code < 500 or code == 503, f"{method} {path} {kwargs!r:.1000}\n-> {status}\n{text[:2000]}"
    if 300 <= code < 400:  # werkzeug merging the slashes of a path: no error, no body of ours
        return code, None
    return code, json.loads(text) if text else None


hostile = st.one_of(st.sampled_from(NASTY), st.text(max_size=20),
                    st.lists(st.sampled_from(NASTY), min_size=2, max_size=4).map("".join))
values = st.one_of(hostile, st.sampled_from(["ada", "Ada*", "*da", "gold", "7", "3", "true", "login",
                                             "2021-01-01", "2021-01-01T00:00:00.000Z", '"Ada"', "*"]))
fields = st.one_of(st.sampled_from(FIELDS), hostile)


def _term(pair: tuple[str, str]) -> str:
    return f"{pair[0]}:{pair[1]}"


terms = st.one_of(
    st.tuples(fields, values).map(_term),
    st.tuples(fields, values, values, st.sampled_from("[{"), st.sampled_from("]}")).map(
        lambda t: f"{t[0]}:{t[3]}{t[1]} TO {t[2]}{t[4]}"),
    st.tuples(fields, st.sampled_from([">", ">=", "<", "<="]), values).map(lambda t: f"{t[0]}:{t[1]}{t[2]}"),
    st.builds(lambda f: f"_exists_:{f}", fields),
    values,
)
queries = st.recursive(terms, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from([" AND ", " OR ", " ", " && ", " || "]), inner).map("".join),
    st.builds(lambda q: f"({q})", inner),
    st.builds(lambda q: f"NOT {q}", inner),
    st.builds(lambda q: f"-{q}", inner),
    st.builds(lambda q: f"+{q}", inner),
    st.tuples(fields, inner).map(lambda t: f"{t[0]}:({t[1]})"),
), max_leaves=8)


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
