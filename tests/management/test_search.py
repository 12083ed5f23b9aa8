"""GET /api/v2/users: Auth0's user search, paging, totals, sort and fields, alike on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import insert

from idp.connections.models import NATIVE_ID
from idp.db import db, utcnow
from idp.users.models import User

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

ALL = {"u-ada", "u-grace", "u-alan", "u-bob", "u-carol", "u-ada2"}


@pytest.mark.parametrize(("q", "expected"), [
    # Normalized fields match whole values, case-insensitively.
    ("email:ada@example.com", {"u-ada", "u-ada2"}),
    ("email:ADA@EXAMPLE.COM", {"u-ada", "u-ada2"}),
    ('name:"ada lovelace"', {"u-ada"}),
    ("name:ada", set()),
    ("family_name:lovelace", {"u-ada"}),
    ("nickname:CAZ", {"u-carol"}),
    ("name:Carol\\ O'Neil", {"u-carol"}),
    # Wildcards.
    ("name:ada*", {"u-ada", "u-ada2"}),
    ("name:*ing", {"u-alan"}),
    ("name:gr?ce*", {"u-grace"}),
    ("email:*@legacy.example", {"u-alan", "u-bob"}),
    ('name:"ada*"', set()),  # no wildcards inside quotes
    ("name:*", ALL - {"u-bob"}),
    ("email.domain:LEGACY.example", {"u-alan", "u-bob"}),
    # Exact fields.
    ("user_id:u-ada", {"u-ada"}),
    ("user_id:U-ADA", set()),
    ("email_verified:true", {"u-ada", "u-grace", "u-alan"}),
    ("email_verified:false", {"u-bob", "u-carol", "u-ada2"}),
    ("blocked:false", ALL),
    ("last_ip:192.0.2.1", {"u-ada"}),
    # Numbers and dates, exact and in ranges (inclusive [ ], exclusive { }, open *).
    ("logins_count:5", {"u-ada"}),
    ("logins_count:0", {"u-grace", "u-bob", "u-carol", "u-ada2"}),
    ("logins_count:[1 TO *]", {"u-ada", "u-alan"}),
    ("logins_count:>2", {"u-ada"}),
    ("logins_count:>=2", {"u-ada", "u-alan"}),
    ("logins_count:{2 TO 5]", {"u-ada"}),
    ("created_at:2020-01-15", {"u-ada"}),
    ("created_at:[2020-01-15 TO 2021-06-01]", {"u-ada", "u-grace"}),
    ("created_at:{2020-01-15 TO 2021-06-01}", set()),
    ("created_at:[2023-01-01 TO *]", {"u-alan", "u-bob", "u-carol", "u-ada2"}),
    ("created_at:<2021-01-01", {"u-ada"}),
    ('created_at:"2023-02-02T12:00:00Z"', {"u-alan"}),
    ("created_at:[2023-02-02T12:00:00.000Z TO 2023-02-02T12:00:00.000Z]", {"u-alan"}),
    ("last_login:[2024-01-01 TO *]", {"u-ada"}),
    ("_exists_:last_login", {"u-ada", "u-alan"}),
    ("NOT _exists_:last_login", ALL - {"u-ada", "u-alan"}),
    # Identities and migration.
    ("identities.connection:legacy-db", {"u-alan", "u-bob", "u-ada2"}),
    ('identities.connection:"Username-Password-Authentication"', {"u-ada", "u-grace", "u-carol"}),
    ("identities.connection:legacy*", {"u-alan", "u-bob", "u-ada2"}),
    ("identities.user_id:u-bob", {"u-bob"}),
    ("_exists_:migration", {"u-alan", "u-bob"}),
    ("NOT _exists_:migration", {"u-ada", "u-grace", "u-carol", "u-ada2"}),
    ("migration.via:login", {"u-alan"}),
    ("migration.via:password_reset", {"u-bob"}),
    ("migration.at:[2023-03-01 TO *]", {"u-bob"}),
    # Metadata: strings case-sensitive, numbers and booleans as typed, nested objects.
    ("app_metadata.plan:gold", {"u-ada"}),
    ("app_metadata.plan:Gold", {"u-alan"}),
    ("app_metadata.plan:g*", {"u-ada"}),
    ("app_metadata.plan:*old", {"u-ada", "u-alan"}),
    ("app_metadata.tier:3", {"u-ada", "u-bob"}),  # the number 3 and the string "3"
    ('app_metadata.tier:"3"', {"u-bob"}),
    ("app_metadata.tier:[2 TO 5]", {"u-ada"}),
    ("app_metadata.tier:<2", {"u-grace"}),
    ("app_metadata.beta:true", {"u-ada"}),
    ("app_metadata.beta:false", {"u-grace"}),
    ("app_metadata.org.id:o1", {"u-ada"}),
    ("_exists_:app_metadata.org", {"u-ada"}),
    ("_exists_:app_metadata", {"u-ada", "u-grace", "u-alan", "u-bob"}),
    ("user_metadata.lang:en", {"u-ada", "u-carol"}),
    ("NOT user_metadata.lang:en", ALL - {"u-ada", "u-carol"}),
    ("user_metadata.missing:x", set()),
    # Operators, groups, implicit operators, bare terms.
    ("(name:ada* OR name:grace*) AND email_verified:true", {"u-ada", "u-grace"}),
    ("name:ada* AND NOT identities.connection:legacy-db", {"u-ada"}),
    ("name:(ada* OR grace*)", {"u-ada", "u-ada2", "u-grace"}),
    ("name:ada* name:grace*", {"u-ada", "u-ada2", "u-grace"}),
    ("+email_verified:true -name:ada*", {"u-grace", "u-alan"}),
    ("-_exists_:migration", {"u-ada", "u-grace", "u-carol", "u-ada2"}),
    ("NOT name:Zed", ALL),  # users without a name too
    ("lovelace", {"u-ada"}),
    ("caz OR hopper", {"u-carol", "u-grace"}),
    ("", ALL),
])
def test_search(api, people, q, expected):
    assert api.ids(q) == expected


@pytest.mark.parametrize("q", [
    "unknown_field:x", "password_hash:x", "app_metadata.a b:x", "app_metadata.:x", "name:/regex/",
    "name:ada~",
    '"ada lovelace"~2', "name:ada^2", "email_verified:maybe", "logins_count:many", "logins_count:1.5",
    "created_at:yesterday", "created_at:[2020-01-01 TO never]", "created_at:2020*", "name:(email:x)",
    "name:", "(name:ada", "name:ada)", "AND", "[a TO b]", "_exists_:nothing", "_exists_:(a OR b)",
    "a" * 5000, "(" * 50 + "name:ada" + ")" * 50, " OR ".join(["name:x"] * 300),
])
def test_queries_we_refuse_are_a_400(api, people, q):
    response = api.get("/users", q=q)
    assert response.status_code == 400, response.text
    assert response.json["statusCode"] == 400 and response.json["error"] == "Bad Request"
    assert response.json["errorCode"] == "invalid_query_string" and response.json["message"]


def test_the_user_object_is_auth0s(api, people):
    [alan] = api.users(q="user_id:u-alan")
    assert alan == {
        "user_id": "u-alan", "email": "alan@legacy.example", "email_verified": True, "name": "Alan Turing",
        "given_name": None, "family_name": None, "nickname": None, "picture": None,
        "identities": [{"connection": "legacy-db", "provider": "auth0", "user_id": "u-alan",
                        "isSocial": False}],
        "created_at": "2023-02-02T12:00:00.000Z", "updated_at": "2023-02-02T12:00:00.000Z",
        "last_login": "2023-03-03T09:30:00.000Z", "logins_count": 2, "last_ip": None,
        "app_metadata": {"plan": "Gold"}, "user_metadata": {"lang": "fr"}, "blocked": False,
        "migration": {"via": "login", "at": "2023-02-02T12:00:00.000Z"},
    }
    [grace] = api.users(q="user_id:u-grace")
    assert "migration" not in grace and grace["logins_count"] == 0 and grace["last_login"] is None


def test_totals_sort_and_fields(api, people):
    body = api.get("/users", include_totals="true", per_page=2, page=1, sort="created_at:1").json
    assert body["start"] == 2 and body["limit"] == 2 and body["length"] == 2 and body["total"] == 6
    assert [u["user_id"] for u in body["users"]] == ["u-alan", "u-bob"]
    assert [u["user_id"] for u in api.users(sort="created_at:-1")] == [
        "u-ada2", "u-carol", "u-bob", "u-alan", "u-grace", "u-ada"]
    # Without the field, last either way.
    assert [u["user_id"] for u in api.users(sort="last_login:1")][:2] == ["u-alan", "u-ada"]
    assert [u["user_id"] for u in api.users(sort="last_login:-1")][:2] == ["u-ada", "u-alan"]
    assert [u["user_id"] for u in api.users(sort="name:1", q="_exists_:name")] == [
        "u-ada2", "u-ada", "u-alan", "u-carol", "u-grace"]
    assert [u["user_id"] for u in api.users(sort="logins_count:-1")][:2] == ["u-ada", "u-alan"]
    assert api.users(q="user_id:u-ada", fields="user_id,email") == [
        {"user_id": "u-ada", "email": "Ada@Example.com"}]
    assert api.users(q="user_id:u-ada", fields="user_id,email", include_fields="true") == [
        {"user_id": "u-ada", "email": "Ada@Example.com"}]
    [rest] = api.users(q="user_id:u-ada", fields="app_metadata,user_metadata,identities",
                       include_fields="false")
    assert "app_metadata" not in rest and "identities" not in rest and rest["user_id"] == "u-ada"
    assert api.users(q="user_id:u-ada", fields="no_such_field") == [{}]
    empty = api.get("/users", include_totals="true", per_page=0, q="_exists_:migration").json
    assert empty == {"start": 0, "limit": 0, "length": 0, "total": 2, "users": []}
    assert api.get("/users", include_totals="true", page=7).json["users"] == []


def test_paging_goes_through_every_user_past_a_thousand(app, api):
    now = utcnow()
    db.session.execute(insert(User), [
        {"id": f"bulk-{i:05d}", "connection_id": NATIVE_ID, "email": f"user{i}@bulk.example",
         "email_normalized": f"user{i}@bulk.example", "email_verified": i % 2 == 0,
         "created_at": now - timedelta(seconds=i), "updated_at": now, "logins_count": i % 7,
         "app_metadata": {"n": i}, "user_metadata": {}}
        for i in range(1100)
    ])
    db.session.commit()
    seen: list[str] = []
    for page in range(12):
        body = api.get("/users", page=page, per_page=100, include_totals="true", sort="created_at:-1").json
        assert body["total"] == 1100 and body["start"] == page * 100
        seen += [u["user_id"] for u in body["users"]]
    assert seen == [f"bulk-{i:05d}" for i in range(1100)]  # newest first, none twice, none missing
    last = api.get("/users", page=10, per_page=100, include_totals="true", q="email_verified:true").json
    assert last["total"] == 550 and last["length"] == 0
    found = api.get("/users", page=5, per_page=100, include_totals="true", q="app_metadata.n:[500 TO *]").json
    assert found["total"] == 600 and found["length"] == 100
    everyone = api.get("/users", page=21, per_page=50, q="email.domain:bulk.example").json
    assert len(everyone) == 50


def test_users_by_email_across_connections_and_case(api, people):
    response = api.get("/users-by-email", email="ada@EXAMPLE.com")
    assert response.status_code == 200
    assert [u["user_id"] for u in response.json] == ["u-ada", "u-ada2"]
    assert {u["identities"][0]["connection"] for u in response.json} == {"Username-Password-Authentication",
                                                                          "legacy-db"}
    assert api.get("/users-by-email", email="nobody@example.com").json == []
    only_ids = api.get("/users-by-email", email="bob@legacy.example", fields="user_id")
    assert only_ids.json == [{"user_id": "u-bob"}]


def test_one_user_by_id(api, people):
    response = api.get("/users/u-bob")
    assert response.status_code == 200 and response.json["migration"]["via"] == "password_reset"
    assert api.get("/users/u-bob", fields="email").json == {"email": "bob@legacy.example"}
    missing = api.get("/users/u-nobody")
    assert missing.status_code == 404
    assert missing.json == {"statusCode": 404, "error": "Not Found", "message": "The user does not exist.",
                            "errorCode": "inexistent_user"}
