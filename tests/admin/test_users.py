"""The dashboard's Users pages in Chromium, JavaScript off: the list, its totals and paging, plain and
Lucene searches, one user's page, and blocking, sending a reset, deleting, each recorded in the log."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page
from sqlalchemy import func, select

from idp.connections import registry
from idp.connections.models import NATIVE_ID
from idp.db import db
from idp.events.models import LogEvent
from idp.users.accounts import add_user
from idp.users.models import User
from idp.users.passwords import hash_password
from tests.admin.conftest import path_of, sign_in_admin
from tests.browser.pages import Screenshots, alert, follow, heading, sign_in, submit, visit
from tests.conftest import PASSWORD, LiveServer
from tests.mailbox import Mailbox

EMAIL = "ada@example.com"  # the admin
MOVED_AT = datetime(2024, 3, 5, 9, 30, tzinfo=UTC)
DASHBOARD = {"channel": "dashboard"}


def populate() -> None:
    """120 users, older than the admin: 60 native, 60 of the migrating shop-db (40 moved over by signing
    in, 20 by a reset), with one hash for all (120 argon2 hashes would take most of the test)."""
    shop = registry.create("shop-db", migrating=True)
    password_hash = hash_password(PASSWORD)
    start = datetime.now(UTC) - timedelta(days=1)
    for i in range(60):
        add_user(f"n{i:03d}@example.com", password_hash, NATIVE_ID, name=f"Native Person {i:03d}",
                 created_at=start - timedelta(minutes=2 * i))
        add_user(f"s{i:03d}@shop.example", password_hash, shop.id, name=f"Shop Customer {i:03d}",
                 created_at=start - timedelta(minutes=2 * i + 1), legacy_id=f"L-{i:03d}",
                 migrated_at=MOVED_AT, migrated_via="login" if i < 40 else "password_reset")


def shown(page: Page, what: str) -> str:
    """Return what a [data-figure] or [data-field] element of the page says."""
    return page.locator(f"[data-figure='{what}'], [data-field='{what}']").first.inner_text().strip()


def emails(page: Page) -> list[str]:
    """Return the emails of the list's rows, in order."""
    return [e.strip() for e in page.locator("tbody tr th").all_inner_texts()]


def search(page: Page, query: str) -> int:
    """Type a query in the search box, submit it, and return the answer's status."""
    page.get_by_label("Search users").fill(query)
    return submit(page, "Search").status


def events_of(user_id: str, type_: str = "sapi") -> list[LogEvent]:
    """Return a user's log events of a type, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(LogEvent).where(LogEvent.user_id == user_id, LogEvent.type == type_)
                                   .order_by(LogEvent.log_id)))


def made_by_admin(event: LogEvent, admin: Any) -> bool:
    """Say whether an event names the signed-in admin as who made the change."""
    return event.details["by"] == {**DASHBOARD, "user_id": admin.id, "email": admin.email}


def test_the_list_pages_through_every_user_with_honest_totals(page: Page, shots: Screenshots,
                                                              live_server: LiveServer, admin: Any) -> None:
    populate()
    assert db.session.scalar(select(func.count()).select_from(User)) == 121

    page.set_viewport_size({"width": 1280, "height": 900})  # the list's every column, without scrolling
    landed = sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/users")
    assert landed.status == 200 and path_of(page) == "/admin/users" and heading(page) == "Users"
    shots.take(page, "list")
    assert shown(page, "range") == "1–50 of 121 users"
    assert emails(page)[:3] == [EMAIL, "n000@example.com", "s000@shop.example"]  # newest first
    assert len(emails(page)) == 50
    nav = page.get_by_role("navigation", name="Dashboard")
    assert nav.get_by_role("link", name="Users").get_attribute("aria-current") == "page"

    # The columns: connection, how and when a user moved over (or native), logins, blocked.
    moved = page.locator("tr", has=page.locator("th", has_text="s000@shop.example"))
    assert moved.locator("td").all_inner_texts()[:3] == ["Shop Customer 000", "shop-db",
                                                        "login, 2024-03-05 09:30 UTC"]
    native = page.locator("tr", has=page.locator("th", has_text="n000@example.com"))
    assert native.locator("[data-field='migrated']").inner_text() == "native"
    assert native.locator("[data-field='logins']").inner_text() == "0"

    follow(page, "Next page →")
    assert path_of(page) == "/admin/users?page=2" and shown(page, "range") == "51–100 of 121 users"
    follow(page, "Next page →")
    assert shown(page, "range") == "101–121 of 121 users" and len(emails(page)) == 21
    assert page.get_by_role("link", name="Next page →").count() == 0
    assert "Page 3 of 3" in page.get_by_role("navigation", name="Pages").inner_text()
    shots.take(page, "last-page")
    follow(page, "← Previous page")
    assert path_of(page) == "/admin/users?page=2"

    # Past the last page, and a page that is no page: said on the page, never a 500.
    visit(page, live_server.url + "/admin/users?page=9")
    assert shown(page, "range").startswith("No users on page 9: 121 users in all.")
    refused = visit(page, live_server.url + "/admin/users?page=first")
    assert refused.status == 400 and "page is a whole number" in alert(page)


def test_searching_with_plain_words_and_the_api_query_language(page: Page, shots: Screenshots,
                                                                live_server: LiveServer, admin: Any) -> None:
    populate()
    add_user("grace@shop.example", None, NATIVE_ID, name="Grace Hopper")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/users").status == 200

    # Lucene, as the API's `q`: a wildcard on email, and the migration's way.
    assert search(page, "email:*@shop.example AND migration.via:login") == 200
    shots.take(page, "search-lucene")
    assert shown(page, "range") == "1–40 of 40 users"
    assert all(e.endswith("@shop.example") for e in emails(page))
    assert page.get_by_label("Search users").input_value() == "email:*@shop.example AND migration.via:login"

    # Paging keeps the query.
    assert search(page, "identities.connection:shop-db") == 200
    assert shown(page, "range") == "1–50 of 60 users"
    follow(page, "Next page →")
    assert shown(page, "range") == "51–60 of 60 users"
    assert "q=identities.connection" in path_of(page) and "page=2" in path_of(page)

    # Plain words: anywhere in email or name, every word, whatever the case.
    assert search(page, "hopper") == 200
    assert emails(page) == ["grace@shop.example"] and shown(page, "range") == "1–1 of 1 user"
    assert search(page, "GRACE shop.example") == 200
    assert emails(page) == ["grace@shop.example"]
    assert search(page, "Customer") == 200
    assert shown(page, "range") == "1–50 of 60 users"
    assert search(page, "customer 042") == 200
    assert emails(page) == ["s042@shop.example"]
    shots.take(page, "search-plain")
    assert search(page, "nobody-by-this-name") == 200
    assert shown(page, "range") == "No users match this search."

    # A query the parser refuses: its message, a 400, the query kept in the box.
    assert search(page, "email:(") == 400
    shots.take(page, "search-error")
    assert alert(page).startswith("Invalid query: ")
    assert page.get_by_label("Search users").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Search users").input_value() == "email:("
    assert search(page, "name:/regex/") == 400
    assert alert(page) == "Regular expressions are not supported in search"


def test_a_users_page_shows_where_they_came_from(page: Page, shots: Screenshots, live_server: LiveServer,
                                                 admin: Any) -> None:
    shop = registry.create("shop-db", migrating=True)
    moved = add_user("alan@shop.example", None, shop.id, name="Alan Turing", legacy_id="legacy-42",
                     migrated_at=MOVED_AT, migrated_via="password_reset", logins_count=7, last_ip="192.0.2.7",
                     last_login_at=datetime(2024, 6, 1, 8, 15, tzinfo=UTC), email_verified=True,
                     app_metadata={"plan": "gold", "roles": ["buyer", "seller"]},
                     user_metadata={"lang": "fr"})
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/users?q=turing").status == 200
    follow(page, "alan@shop.example")
    assert path_of(page) == f"/admin/users/{moved.id}" and heading(page) == "alan@shop.example"
    shots.take(page, "user")
    assert shown(page, "user_id") == moved.id
    assert shown(page, "connection") == "shop-db"
    assert shown(page, "legacy_id") == "legacy-42"
    assert shown(page, "migration") == "password_reset, 2024-03-05 09:30 UTC"
    assert shown(page, "logins_count") == "7"
    assert shown(page, "last_login") == "2024-06-01 08:15 UTC"
    assert shown(page, "last_ip") == "192.0.2.7"
    assert (shown(page, "email_verified"), shown(page, "blocked")) == ("yes", "no")
    assert json.loads(page.locator("#app-metadata").inner_text()) == {"plan": "gold",
                                                                      "roles": ["buyer", "seller"]}
    assert json.loads(page.locator("#user-metadata").inner_text()) == {"lang": "fr"}
    identities = page.get_by_role("region", name="Identities").locator("tbody td").all_inner_texts()
    assert identities == ["shop-db", "auth0", moved.id, "no"]

    # The admin's own page: a native user, and neither blocking nor deleting oneself is offered.
    visit(page, live_server.url + f"/admin/users/{admin.id}")
    assert shown(page, "migration") == "native" and shown(page, "legacy_id") == "—"
    assert page.get_by_role("button", name="Block").is_disabled()
    assert page.get_by_role("link", name="Delete…").count() == 0

    missing = visit(page, live_server.url + "/admin/users/no-such-user")
    assert missing.status == 404


def test_blocking_stops_sign_in_until_unblocked(page: Page, new_page: Any, shots: Screenshots,
                                                live_server: LiveServer, admin: Any) -> None:
    grace = add_user("grace@example.com", hash_password(PASSWORD), NATIVE_ID, name="Grace Hopper")
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, f"/admin/users/{grace.id}").status == 200

    blocked = submit(page, "Block")
    assert blocked.status == 200 and path_of(page) == f"/admin/users/{grace.id}?done=blocked"
    shots.take(page, "blocked")
    assert "The user is blocked" in page.get_by_role("status").inner_text()
    assert shown(page, "blocked") == "yes"
    assert page.get_by_role("main").locator(".tag.blocked").count() == 1

    # On the hosted login, the right password is answered with the block.
    other = new_page()
    visit(other, live_server.url + "/u/login")
    refused = sign_in(other, "grace@example.com", PASSWORD)
    assert refused.status == 403 and "This account is blocked" in alert(other)
    shots.take(other, "hosted-login-refused")

    # The list tags the user, and a Lucene search finds the blocked.
    visit(page, live_server.url + "/admin/users?q=blocked:true")
    assert emails(page) == ["grace@example.com"] and page.locator("tbody .tag.blocked").count() == 1
    visit(page, live_server.url + f"/admin/users/{grace.id}")

    unblocked = submit(page, "Unblock")
    assert unblocked.status == 200 and path_of(page) == f"/admin/users/{grace.id}?done=unblocked"
    assert shown(page, "blocked") == "no"
    visit(other, live_server.url + "/u/login")
    assert sign_in(other, "grace@example.com", PASSWORD).status == 200 and path_of(other) == "/u/account"

    changes = events_of(grace.id)
    assert [e.description for e in changes] == ["User blocked", "User unblocked"]
    assert all(made_by_admin(e, admin) for e in changes)
    assert [e.details["blocked"] for e in changes] == [True, False]

    # Without the form's CSRF token, nothing happens.
    forged = page.request.post(live_server.url + f"/admin/users/{grace.id}/block", form={"blocked": "true"},
                               headers={"Origin": live_server.url})
    assert forged.status == 400
    db.session.expire_all()
    assert db.session.get(User, grace.id).blocked is False  # type: ignore[union-attr]


def test_sending_a_password_reset_mails_the_user(page: Page, shots: Screenshots, live_server: LiveServer,
                                                 mailbox: Mailbox, admin: Any) -> None:
    # Imported without a password: the reset is how they choose one.
    shop = registry.create("shop-db", migrating=True)
    lin = add_user("lin@shop.example", None, shop.id, legacy_id="L-7", migrated_at=MOVED_AT,
                   migrated_via="import")
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, f"/admin/users/{lin.id}").status == 200

    sent = submit(page, "Send password reset")
    assert sent.status == 200 and path_of(page) == f"/admin/users/{lin.id}?done=reset"
    shots.take(page, "reset-sent")
    assert "password-reset link is on its way" in page.get_by_role("status").inner_text()

    message = mailbox.wait_for("lin@shop.example")
    assert message["Subject"] == "Reset your password"
    assert mailbox.link(message).startswith(live_server.url + "/u/reset-password/new?token=")
    [event] = events_of(lin.id)
    assert event.description == "Password reset sent" and made_by_admin(event, admin)


def test_deleting_asks_first_then_removes_the_user(page: Page, shots: Screenshots, live_server: LiveServer,
                                                   admin: Any) -> None:
    shop = registry.create("shop-db", migrating=True)
    bob = add_user("bob@shop.example", None, shop.id, legacy_id="L-9", migrated_at=MOVED_AT,
                   migrated_via="login").id
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, f"/admin/users/{bob}").status == 200

    follow(page, "Delete…")
    assert path_of(page) == f"/admin/users/{bob}/delete" and heading(page) == "Delete this user?"
    shots.take(page, "confirm-delete")
    assert "shop-db still imports users from its legacy store" in page.get_by_role("main").inner_text()

    # Cancel goes back, and nothing is gone.
    follow(page, "Cancel")
    assert path_of(page) == f"/admin/users/{bob}"
    assert db.session.get(User, bob) is not None

    follow(page, "Delete…")
    deleted = submit(page, "Delete user")
    assert deleted.status == 200 and path_of(page) == "/admin/users?done=deleted"
    shots.take(page, "deleted")
    assert page.get_by_role("status").inner_text() == "The user was deleted."
    assert "bob@shop.example" not in emails(page)
    db.session.expire_all()
    assert db.session.get(User, bob) is None
    [sdu] = events_of(bob, "sdu")
    assert sdu.connection == "shop-db" and sdu.user_name == "bob@shop.example"
    [sapi] = events_of(bob)
    assert sapi.description == "User deleted" and made_by_admin(sapi, admin)
    assert visit(page, live_server.url + f"/admin/users/{bob}").status == 404


def test_a_non_admin_never_reaches_the_users(page: Page, live_server: LiveServer, user: Any) -> None:
    landed = sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/users")
    assert landed.status == 403 and heading(page) == "Not an administrator"
    assert page.locator("table").count() == 0
