"""`idp admins …`, `idp init`'s dashboard client, and the overview's figures where counting fails."""

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.admin import overview
from idp.admin.auth import dashboard_client, safe_next
from idp.connections import registry, status
from idp.connections.legacy import LegacyUnavailable
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.events.models import LogEvent
from idp.oauth.models import Client
from idp.users.accounts import create_user
from tests.conftest import PASSWORD


def run(app: Flask, *args: str) -> Any:
    """Invoke the idp CLI in-process; the test then sees what it committed."""
    result = app.test_cli_runner().invoke(args=list(args))
    db.session.expire_all()
    return result


def test_admins_add_list_and_remove_each_recorded(app, user):
    added = run(app, "admins", "add", "ADA@example.com")
    assert added.exit_code == 0 and f"ada@example.com ({user.id}) is now an admin" in added.output
    assert user.admin
    assert "was an admin already" in run(app, "admins", "add", user.email).output
    assert run(app, "admins", "list").output.split() == [
        "ada@example.com", "Username-Password-Authentication", user.id]

    removed = run(app, "admins", "remove", user.email)
    assert removed.exit_code == 0 and "is no longer an admin" in removed.output
    assert not user.admin and run(app, "admins", "list").output == ""
    assert "was not an admin" in run(app, "admins", "remove", user.email).output

    events = db.session.scalars(select(LogEvent).where(LogEvent.type == "sapi")
                                .order_by(LogEvent.log_id)).all()
    assert [e.description for e in events] == ["Admin added", "Admin removed"]  # a no-op records nothing
    assert all(e.user_id == user.id and e.user_name == user.email and e.details["by"] == {"channel": "cli"}
               and e.connection == "Username-Password-Authentication" for e in events)


def test_admins_of_another_connection_are_named_with_it(app, user):
    shop = registry.create("shop-db", migrating=True)
    grace = create_user("grace@shop.example", PASSWORD, shop.id)
    refused = run(app, "admins", "add", grace.email)  # not in the native connection
    assert refused.exit_code == 1 and "no user grace@shop.example in Username-Password-Authentication" in \
        refused.output
    assert run(app, "admins", "add", grace.email, "--connection", "shop-db").exit_code == 0
    assert grace.admin and not user.admin
    assert run(app, "admins", "list").output.split() == ["grace@shop.example", "shop-db", grace.id]


@pytest.mark.parametrize("args", [["add", "nobody@example.com"], ["remove", "nobody@example.com"],
                                  ["add", "ada@example.com", "--connection", "nowhere"]])
def test_admins_refuse_an_unknown_email_or_connection(app, user, args):
    result = run(app, "admins", *args)
    assert result.exit_code == 1 and "Error: no " in result.output and "Traceback" not in result.output
    assert not user.admin


def test_init_registers_the_dashboard_client_once(app):
    for _ in range(2):
        result = run(app, "init")
        assert result.exit_code == 0, result.output
        assert "admin dashboard: http://localhost/admin" in result.output
    [client] = db.session.scalars(select(Client)).all()
    assert client.dashboard and client.public and client.first_party and client.name == "idp dashboard"
    assert client.redirect_uris == ["http://localhost/admin/callback"]
    assert client.post_logout_redirect_uris == ["http://localhost/admin"]
    assert client.id in run(app, "clients", "list").output  # a real client, listed as any other

    # Another issuer: the same client, its URIs following.
    app.config["ISSUER"] = "https://id.example.com"
    assert dashboard_client().id == client.id
    assert client.redirect_uris == ["https://id.example.com/admin/callback"]

    # Deleted: registered again on the next use.
    assert run(app, "clients", "delete", client.id).exit_code == 0
    again = dashboard_client()
    assert again.id != client.id and again.dashboard
    assert len(db.session.scalars(select(Client)).all()) == 1


@pytest.mark.parametrize(("asked", "kept"), [
    ("/admin/users?page=2", "/admin/users?page=2"), ("/admin", "/admin"), (None, "/admin"),
    ("https://evil.example/admin", "/admin"), ("//evil.example/admin", "/admin"),
    ("/administrator", "/admin"), ("/u/account", "/admin"), ("/admin/\\evil", "/admin"),
    ("/admin/\nx", "/admin"), ("/admin/../u/account", "/admin"), ("/admin/..//evil.example", "/admin"),
    ("/admin/%2e%2e/u/account", "/admin"), ("/admin//evil.example", "/admin"),
    ("/admin/users/", "/admin/users/"),
])
def test_a_sign_in_returns_only_to_the_dashboard(asked, kept):
    assert safe_next(asked) == kept


def test_a_legacy_store_that_cannot_count_shows_its_error_redacted(app, monkeypatch):
    shop = registry.create("shop-db", migrating=True, configuration={"dsn": "postgresql://u:hunter22@db"})
    registry.configure(shop, count_users="def count_users(configuration):\n    return 0\n")

    def unavailable(connection: Any) -> int:
        raise LegacyUnavailable("count_users: OperationalError: cannot reach postgresql://u:hunter22@db")

    monkeypatch.setattr(status, "legacy_total", unavailable)
    [row] = [c for c in overview.overview().connections if c.name == "shop-db"]
    assert row.migrating and row.legacy_total is None and row.remaining is None
    assert row.count_error == "count_users: OperationalError: cannot reach [redacted]"


def test_admin_connection_chooses_whose_users_sign_in_to_the_dashboard(app, user):
    shop = registry.create("shop-db", migrating=True)
    grace = create_user("grace@shop.example", PASSWORD, shop.id)
    assert dashboard_client().connection_id == NATIVE_ID
    app.config["ADMIN_CONNECTION"] = "shop-db"
    assert dashboard_client().connection_id == shop.id  # the hosted login then asks shop-db
    assert run(app, "admins", "add", grace.email).exit_code == 0 and grace.admin
    noted = run(app, "admins", "add", user.email, "--connection", "Username-Password-Authentication")
    assert noted.exit_code == 0 and "signs users in through shop-db" in noted.output


def test_a_legacy_count_is_reused_for_a_while_and_asked_again_when_the_script_changes(app):
    # A script whose every answer differs: a reused answer is the same number.
    clock = "import time\ndef count_users(configuration):\n    return time.time_ns() // 1000 % 10**9\n"
    shop = registry.create("shop-db", migrating=True)
    registry.configure(shop, count_users=clock)
    first = status.status(shop)["legacy_total"]
    assert isinstance(first, int) and status.status(shop)["legacy_total"] == first
    registry.configure(shop, configuration={"host": "db.example"})
    changed = status.status(shop)["legacy_total"]
    assert changed != first  # another configuration: counted again at once
    app.config["LEGACY_COUNT_MAX_AGE"] = 0
    assert status.status(shop)["legacy_total"] != changed
