"""GET /api/v2/users: Auth0's user search, paging, totals, sort and fields, alike on SQLite and PostgreSQL."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, text

from idp.connections.models import NATIVE_ID
from idp.db import db, utcnow
from idp.events.models import LogEvent
from idp.management import search
from idp.users.models import User
from tests.management.conftest import Api, add_user, at, management_token

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


@pytest.mark.parametrize(("q", "expected"), [
    # A date as a bound: inclusive takes in its whole day, exclusive leaves it all out (alan: 09:30).
    ("last_login:[2023-01-01 TO 2023-03-03]", {"u-alan"}),
    ("last_login:[2023-01-01 TO 2023-03-03}", set()),
    ("last_login:{2023-03-03 TO *]", {"u-ada"}),
    ("last_login:[2023-03-03 TO *]", {"u-ada", "u-alan"}),
    ("last_login:>2023-03-03", {"u-ada"}),
    ("last_login:>=2023-03-03", {"u-ada", "u-alan"}),
    ("last_login:<=2023-03-03", {"u-alan"}),
    ("last_login:<2023-03-03", set()),
    ("last_login:2023-03-03", {"u-alan"}),
    # Years and months, with the same rounding.
    ("last_login:{2017-11 TO 2017-12]", set()),
    ("last_login:{2023-02 TO 2024-03}", {"u-alan"}),
    ("last_login:{2023-03 TO 2024-03]", {"u-ada"}),
    ("last_login:[2023-03 TO 2023-03]", {"u-alan"}),
    ("created_at:[2020 TO *]", ALL),
    ("created_at:2023", {"u-alan", "u-bob"}),
    ("created_at:{2020 TO 2023]", {"u-grace", "u-alan", "u-bob"}),
    ("created_at:2024-02", {"u-ada2"}),
    ("created_at:<2021", {"u-ada"}),
    ("created_at:>2023", {"u-carol", "u-ada2"}),
    ("created_at:[2023-12 TO 2024-01]", {"u-carol"}),
    # Times round at the precision they are given in (alan was created at 2023-02-02T12:00:00).
    ("created_at:{2023-02-02T12:00:00 TO *]", {"u-bob", "u-carol", "u-ada2"}),
    ("created_at:{2023-02-02T11:59:59.999 TO *]", {"u-alan", "u-bob", "u-carol", "u-ada2"}),
    ("created_at:[* TO 2023-02-02T11:59:59]", {"u-ada", "u-grace"}),
    ("created_at:[* TO 2023-02-02T12:00]", {"u-ada", "u-grace", "u-alan"}),
    ("created_at:{* TO 2023-02-02T12:00:00.000Z}", {"u-ada", "u-grace"}),
    ("created_at:[* TO 2023-02-02T12:00:00.000Z]", {"u-ada", "u-grace", "u-alan"}),
    ('created_at:"2023-02-02T12"', {"u-alan"}),
    ('created_at:"2023-02-02T14:00:00+02:00"', {"u-alan"}),
    ('created_at:"2023-02-02T11:30-00:30"', {"u-alan"}),
])
def test_dates_round_as_elasticsearch_does(api, people, q, expected):
    assert api.ids(q) == expected


@pytest.mark.parametrize("q", [
    "created_at:2023-13", "created_at:2023-02-30", "created_at:202", "created_at:[2020 TO 20x]",
    'created_at:"2023-02-02T12:00:00+25:00"', 'created_at:"2023-02-02T25:00"', "created_at:0001",
    "created_at:2023-1", "created_at:2023-01-01T", 'created_at:"2023-02-02 12:00:00 UTC"',
])
def test_invalid_dates_are_a_400(api, people, q):
    response = api.get("/users", q=q)
    assert response.status_code == 400 and "date" in response.json["message"], response.text


@pytest.fixture
def more_people(people: dict[str, User]) -> dict[str, User]:
    """Users with accented names and with arrays in their metadata, beside `people`."""
    users = {
        "odon": add_user(
            "u-odon", "Odon@Example.com", name="Ödön Élan", given_name="Ödön", nickname="Éva",
            created_at=at("2024-05-05T00:00:00"), updated_at=at("2024-05-05T00:00:00"),
            app_metadata={"roles": ["admin", "user"], "levels": [1, 2.5], "flags": [True, "x"]},
            user_metadata={"addresses": {"cities": ["Paris", "Lyon"]}}),
        "solo": add_user(
            "u-solo", "solo@example.com", created_at=at("2024-05-06T00:00:00"),
            updated_at=at("2024-05-06T00:00:00"), app_metadata={"roles": "admin"}),
        "members": add_user(
            "u-members", "members@example.com", created_at=at("2024-05-07T00:00:00"),
            updated_at=at("2024-05-07T00:00:00"), app_metadata={"roles": {"admin": "admin"}, "levels": []}),
    }
    db.session.commit()
    return users


MORE = ALL | {"u-odon", "u-solo", "u-members"}


@pytest.mark.parametrize(("q", "expected"), [
    # Folded beyond ASCII, alike on both databases.
    ('name:"Ödön Élan"', {"u-odon"}),
    ('name:"ÖDÖN ÉLAN"', {"u-odon"}),
    ('name:"ödön élan"', {"u-odon"}),
    ("nickname:ÉVA", {"u-odon"}),
    ("nickname:éva", {"u-odon"}),
    ("name:Ödön*", {"u-odon"}),
    ("name:*ÉLAN", {"u-odon"}),
    ("given_name:ö?ön", {"u-odon"}),
    ("given_name:[ÖA TO ÖZ]", {"u-odon"}),  # a range compares the folded text
    ("ÉVA", {"u-odon"}),
    ("élan", set()),  # a whole field, as in ASCII
    ("NOT nickname:ÉVA", MORE - {"u-odon"}),
    # An array matches when one of its elements does; objects do not.
    ("app_metadata.roles:admin", {"u-odon", "u-solo"}),
    ('app_metadata.roles:"admin"', {"u-odon", "u-solo"}),
    ("app_metadata.roles:adm*", {"u-odon", "u-solo"}),
    ("app_metadata.roles:user", {"u-odon"}),
    ("app_metadata.roles:Admin", set()),
    ("app_metadata.roles:[a TO b]", {"u-odon", "u-solo"}),
    ("NOT app_metadata.roles:admin", MORE - {"u-odon", "u-solo"}),
    ("app_metadata.roles:admin AND app_metadata.roles:user", {"u-odon"}),
    ("app_metadata.levels:2.5", {"u-odon"}),
    ('app_metadata.levels:"2.5"', set()),
    ("app_metadata.levels:[2 TO 5]", {"u-odon"}),
    ("app_metadata.levels:{2.5 TO *]", set()),
    ("app_metadata.flags:true", {"u-odon"}),
    ("app_metadata.flags:false", set()),
    ("app_metadata.flags:x", {"u-odon"}),
    ('user_metadata.addresses.cities:"Paris"', {"u-odon"}),
    ("user_metadata.addresses.cities:Ly*", {"u-odon"}),
    ("user_metadata.addresses:Paris", set()),
    # _exists_ as before: a path with any value but null, an empty array and an object included.
    ("_exists_:app_metadata.roles", {"u-odon", "u-solo", "u-members"}),
    ("_exists_:app_metadata.levels", {"u-odon", "u-members"}),
    ("app_metadata.roles:*", {"u-odon", "u-solo", "u-members"}),
])
def test_accents_and_arrays(api, more_people, q, expected):
    assert api.ids(q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("username:ada", set()),
    ("username:*", set()),
    ("_exists_:username", set()),
    ("NOT username:ada", ALL),
    ("phone_number:\\+15551234", set()),
    ("_exists_:phone_number", set()),
    ("phone_verified:true", set()),
    ("phone_verified:false", set()),
    ("identities.provider:auth0", ALL),
    ("identities.provider:auth*", ALL),
    ("identities.provider:google-oauth2", set()),
    ("identities.provider:[a TO b]", ALL),
    ("_exists_:identities.provider", ALL),
    ("identities.isSocial:false", ALL),
    ("identities.isSocial:true", set()),
    ("identities.user_id:u-ada", {"u-ada"}),
    ("identities.provider:auth0 AND identities.isSocial:false AND name:ada*", {"u-ada", "u-ada2"}),
])
def test_fields_idp_users_have_one_way_or_never(api, people, q, expected):
    assert api.ids(q) == expected


def test_the_log_search_folds_beyond_ascii_too(app, api):
    db.session.add_all([
        LogEvent(log_id="0001", type="s", user_name="Éva@Example.com", description="Connexion réussie",
                 client_name="Café"),
        LogEvent(log_id="0002", type="s", user_name="eva@example.com", description="ok", client_name="Shop"),
    ])
    db.session.commit()
    reader = Api(app.test_client(), management_token(app, scope="read:logs"))

    def found(q: str) -> set[str]:
        response = reader.get("/logs", q=q)
        assert response.status_code == 200, response.text
        return {row["log_id"] for row in response.json}

    assert found("user_name:ÉVA@EXAMPLE.COM") == {"0001"}
    assert found('description:"CONNEXION RÉUSSIE"') == {"0001"}
    assert found("client_name:CAF*") == {"0001"}
    assert found("CAFÉ") == {"0001"}
    assert found("user_name:eva*") == {"0002"}


def test_metadata_terms_are_capped(api, people):
    nineteen = " OR ".join(f"app_metadata.plan:p{i}" for i in range(search.MAX_METADATA_TERMS - 1))
    assert api.ids(nineteen + " OR user_metadata.lang:en") == {"u-ada", "u-carol"}
    response = api.get("/users", q=nineteen + " OR user_metadata.lang:en OR _exists_:app_metadata.plan")
    assert response.status_code == 400
    assert response.json["message"] == (f"The query has more than {search.MAX_METADATA_TERMS} terms on "
                                         "app_metadata or user_metadata")
    # Other terms count only towards the overall cap.
    assert api.ids(nineteen + " OR " + " OR ".join(["name:x"] * 150)) == set()


SLOW = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
              "SELECT count(*) FROM n",
    "postgresql": "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
}


def test_a_search_past_its_time_limit_is_stopped(app, people, database_url):
    dialect = db.engine.dialect.name
    started = time.monotonic()
    with pytest.raises(search.QueryTimeout), search.time_limit(0.2):
        db.session.execute(text(SLOW[dialect])).scalar()
    assert time.monotonic() - started < 2
    # The session is usable afterwards, and the limit went with the transaction.
    assert db.session.scalar(select(func.count()).select_from(User)) == 6
    if dialect == "postgresql":
        assert db.session.scalar(text("SHOW statement_timeout")) == "0"


def test_a_search_within_its_time_limit_runs(app, people, database_url):
    dialect = db.engine.dialect.name
    with search.time_limit(0.2):
        assert db.session.scalar(select(func.count()).select_from(User)) == 6
        where = search.condition("name:ada* AND app_metadata.plan:gold", dialect)
        assert db.session.scalars(select(User.id).where(where)).all() == ["u-ada"]
    if dialect == "postgresql":
        assert db.session.scalar(text("SHOW statement_timeout")) == "0"  # restored within the transaction
    time.sleep(0.25)  # past the deadline: a handler left behind would now interrupt SQLite
    counted = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) " \
              "SELECT count(*) FROM n"
    assert db.session.scalar(text(counted)) == 100000
    db.session.commit()
