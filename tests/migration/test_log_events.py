"""A legacy user's move is logged (`migration`, then the sign-in's `s`), never with a password or the
connection's configuration; the legacy store's refusals are `fp`, its failures `f`."""

import json

import pytest
from sqlalchemy import select, text

from idp.db import db
from idp.events.models import LogEvent
from tests.migration.conftest import LEGACY_PASSWORD

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_a_migration_and_its_sign_in_are_logged_without_secrets(browser, legacy):
    wrong = browser.login(browser.authorize(legacy.rp).headers["Location"], "lin@example.com", "nope nope")
    assert wrong.status_code == 400
    browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)
    rows = list(db.session.scalars(select(LogEvent).order_by(LogEvent.log_id)))
    assert [r.type for r in rows] == ["fp", "migration", "s"]
    moved, signed_in = rows[1], rows[2]
    assert moved.user_id == signed_in.user_id == f"{legacy.connection.id}|42"
    assert moved.connection == signed_in.connection == "legacy-db"
    assert moved.details == {"via": "login", "legacy_id": "42"} and moved.user_name == "Lin@Example.com"
    assert signed_in.client_id == legacy.rp.id
    with db.engine.connect() as conn:
        stored = json.dumps([[str(v) for v in row] for row in conn.execute(text("SELECT * FROM log_events"))])
    assert LEGACY_PASSWORD not in stored and str(legacy.path) not in stored and "nope nope" not in stored


def test_an_unavailable_legacy_store_is_a_failed_login(browser, legacy):
    legacy.path.unlink()
    login_page = browser.authorize(legacy.rp).headers["Location"]
    response = browser.login(login_page, "max@example.com", LEGACY_PASSWORD)
    assert response.status_code == 503
    [failed] = db.session.scalars(select(LogEvent))
    assert failed.type == "f" and failed.user_name == "max@example.com"
    assert "unavailable" in (failed.description or "")
