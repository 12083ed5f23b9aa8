"""What the user object reports is recorded where it happens: sign-ins, and moves from a legacy store."""

import pytest

from idp.connections import legacy
from idp.connections.models import Connection
from idp.db import db
from idp.migration.profiles import parse
from idp.users.models import User
from tests.conftest import PASSWORD
from tests.support import Browser

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_a_sign_in_counts_and_keeps_the_address(app, api, user):
    before = api.get(f"/users/{user.id}").json
    assert before["logins_count"] == 0 and before["last_ip"] is None and before["last_login"] is None
    for _ in range(2):  # two browsers
        response = Browser(app.test_client()).login("/u/login", user.email, PASSWORD)
        assert response.status_code == 302, response.text
    after = api.get(f"/users/{user.id}").json
    assert after["logins_count"] == 2 and after["last_ip"] == "127.0.0.1" and after["last_login"]
    assert api.ids("logins_count:2") == {user.id}
    failed = Browser(app.test_client()).login("/u/login", user.email, "wrong password")
    assert failed.status_code == 400
    assert api.get(f"/users/{user.id}").json["logins_count"] == 2


@pytest.mark.parametrize("source", ["login", "password_reset"])
def test_a_moved_over_user_says_how_they_came(app, api, source):
    connection = Connection(id="con_shop", name="shop-db", migrating=True)
    db.session.add(connection)
    db.session.commit()
    profile = parse({"user_id": 7, "email": "moved@shop.example", "name": "Moved Over"})
    user = legacy.import_profile(connection, profile, PASSWORD, source)
    assert db.session.get(User, user.id).migrated_via == source
    shown = api.get(f"/users/{user.id}").json
    assert shown["migration"]["via"] == source and shown["migration"]["at"].endswith("Z")
    assert shown["identities"] == [{"connection": "shop-db", "provider": "auth0", "user_id": user.id,
                                    "isSocial": False}]
    assert api.ids(f"migration.via:{source}") == {user.id}
