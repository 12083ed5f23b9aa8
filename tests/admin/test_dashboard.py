"""The dashboard in Chromium, JavaScript off: signing in through the hosted login, the overview's figures,
who is refused, forged and replayed callbacks, and the ways an admin session ends."""

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from playwright.sync_api import Page, Request
from sqlalchemy import func, select, update

from idp.actions import registry as registry_of_actions
from idp.connections import legacy, registry
from idp.connections.legacy import MIGRATED, SCRIPT_ERROR
from idp.connections.models import MigrationEvent
from idp.db import db, utcnow
from idp.events.models import LogEvent
from idp.keys import store
from idp.oauth.models import Client
from idp.users.accounts import create_user
from idp.users.models import Session, User
from tests.admin.conftest import path_of, sign_in_admin
from tests.browser.pages import Screenshots, alert, heading, sign_in, submit, visit
from tests.conftest import PASSWORD, LiveServer

EMAIL = "ada@example.com"  # the `user` fixture


def figure(page: Page, scope: str, name: str) -> str:
    """Return a figure the overview shows, by the card or table row it is in."""
    return page.locator(f"{scope} [data-figure='{name}']").inner_text().strip()


def moved_over(connection: Any, email: str, at: Any) -> None:
    """A user of a migrating connection who moved over at a given moment, as a sign-in records it."""
    user = create_user(email, PASSWORD, connection.id, legacy_id=email, migrated_at=at, migrated_via="login")
    legacy.record(connection, MIGRATED, source="login", user_id=user.id, email=email)
    db.session.flush()
    moved = MigrationEvent.__table__.update().where(MigrationEvent.user_id == user.id)
    db.session.execute(moved.values(at=at))
    db.session.commit()


def test_an_admin_signs_in_and_sees_the_overview(page: Page, shots: Screenshots, live_server: LiveServer,
                                                 admin: Any) -> None:
    shop = registry.create("shop-db", migrating=True)
    now = utcnow()
    moved_over(shop, "new@shop.example", now - timedelta(hours=1))
    moved_over(shop, "older@shop.example", now - timedelta(days=3))
    legacy.record(shop, SCRIPT_ERROR, source="login", email="x@shop.example", detail="login: RuntimeError")
    db.session.commit()

    visit(page, live_server.url + "/admin")
    assert path_of(page).startswith("/u/login?state=")
    shots.take(page, "hosted-login")
    assert heading(page) == "Sign in"
    assert "idp dashboard" in page.locator(".lead").inner_text()
    landed = sign_in(page, EMAIL, PASSWORD)
    assert landed.status == 200 and path_of(page) == "/admin"
    shots.take(page, "overview")
    assert heading(page) == "Overview"
    assert EMAIL in page.locator("header").inner_text()

    # The figures, against the database.
    users = db.session.scalar(select(func.count()).select_from(User))
    assert users == 3 and figure(page, "#users-card", "users") == "3"
    assert figure(page, "#clients-card", "clients") == str(db.session.scalar(
        select(func.count()).select_from(Client))) == "1"  # the dashboard itself
    current = store.key_set(fresh=True).current
    assert current and figure(page, "#keys-card", "current-kid") == current[:16] + "…"
    upcoming = next(k for k in store.published_keys() if k.state == "next")
    assert figure(page, "#keys-card", "next-kid") == upcoming.kid[:16] + "…"
    assert figure(page, "#failures-card", "failures") == "1"
    row = "tr[data-connection='shop-db']"
    assert figure(page, row, "users") == "2"
    assert (figure(page, row, "moved-day"), figure(page, row, "moved-week"), figure(page, row, "moved")) == (
        "1", "2", "2")
    assert figure(page, row, "legacy-total") == "—"  # no count_users script
    assert figure(page, row, "failures-day") == "1"
    assert figure(page, "tr[data-connection='Username-Password-Authentication']", "users") == "1"
    assert "migrating" in page.locator(row).inner_text()

    # The layout: every page linked, the current one marked; a skip link comes first.
    nav = page.get_by_role("navigation", name="Dashboard")
    assert nav.get_by_role("link").all_inner_texts() == ["Overview", "Users", "Connections", "Migration",
                                                         "Keys", "Clients", "Actions", "Logs"]
    assert nav.get_by_role("link", name="Overview").get_attribute("aria-current") == "page"
    assert page.get_by_role("link", name="Skip to content").count() == 1
    assert page.get_by_role("button", name="Sign out").count() == 1

    page.set_viewport_size({"width": 390, "height": 800})
    shots.take(page, "overview-narrow")

    # The dashboard signed in through the hosted login, as any application does.
    client = db.session.scalar(select(Client).where(Client.dashboard.is_(True)))
    assert client is not None and client.public and client.first_party
    assert client.redirect_uris == [live_server.url + "/admin/callback"]
    assert db.session.scalar(select(LogEvent).where(LogEvent.type == "s", LogEvent.client_id == client.id,
                                                    LogEvent.user_id == admin.id)) is not None


def test_a_signed_in_user_who_is_not_an_admin_is_refused(page: Page, shots: Screenshots,
                                                         live_server: LiveServer, user: Any) -> None:
    landed = sign_in_admin(page, live_server, EMAIL, PASSWORD)
    assert landed.status == 403 and path_of(page).startswith("/admin/callback?")
    shots.take(page, "refused")
    assert heading(page) == "Not an administrator"
    assert alert(page) == "This account is not an administrator of idp."
    assert page.locator("[data-figure]").count() == 0 and "Overview" not in page.content()

    # Signed in to idp all the same: every dashboard path ends at the same refusal, without a login page.
    for path in ("/admin", "/admin/users", "/admin/anything"):
        response = visit(page, live_server.url + path)
        assert response.status == 403 and heading(page) == "Not an administrator", path
    shots.take(page, "refused-again")


def test_signed_out_visitors_are_sent_to_sign_in(page: Page, shots: Screenshots, live_server: LiveServer,
                                                 admin: Any) -> None:
    for path, target in (("/admin", "/admin"), ("/admin/anything", "/admin/anything"),
                         ("/admin/users?page=2", "/admin/users?page=2")):
        first = page.request.get(live_server.url + path, max_redirects=0)
        assert first.status == 302 and first.headers["location"].startswith("/admin/login?next=")
        assert parse_qs(urlsplit(first.headers["location"]).query)["next"] == [target]
        visit(page, live_server.url + path)
        assert path_of(page).startswith("/u/login?state=") and heading(page) == "Sign in", path
    shots.take(page, "sent-to-sign-in")

    # Where the admin was going is kept through the sign-in: an admin meets the "not found" of a page
    # that does not exist only once signed in.
    landed = sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/anything")
    assert landed.status == 404 and path_of(page) == "/admin/anything"
    shots.take(page, "not-found-once-signed-in")


def test_a_sign_in_goes_on_only_to_the_dashboard(page: Page, live_server: LiveServer, admin: Any) -> None:
    visit(page, live_server.url + "/admin/login?next=https://evil.example/admin")
    landed = sign_in(page, EMAIL, PASSWORD)
    assert landed.status == 200 and path_of(page) == "/admin"
    for target in ("//evil.example/admin", "/u/account", "/admin\\..\\u", "/administrator"):
        response = page.request.get(live_server.url + "/admin/login?next=" + target, max_redirects=0)
        assert response.status == 302 and response.headers["location"] == "/admin", target


def test_a_forged_or_replayed_callback_is_refused(new_page: Any, shots: Screenshots, live_server: LiveServer,
                                                  admin: Any) -> None:
    first = new_page()
    seen: list[str] = []
    first.on("request", lambda request: seen.append(request.url))
    sign_in_admin(first, live_server, EMAIL, PASSWORD)
    [callback] = [url for url in seen if urlsplit(url).path == "/admin/callback"]
    code = parse_qs(urlsplit(callback).query)["code"][0]

    # The same answer again, in the same browser: the sign-in it completed is over.
    replayed = visit(first, callback)
    assert replayed.status == 400
    shots.take(first, "replayed-callback")
    assert "expired or was not started in this browser" in alert(first)

    # Another browser, with a sign-in of its own under way: a state that is not its own is refused...
    other = new_page()
    authorizations: list[Request] = []
    other.on("request", lambda r: authorizations.append(r) if urlsplit(r.url).path == "/authorize" else None)
    visit(other, live_server.url + "/admin")
    forged = visit(other, f"{live_server.url}/admin/callback?code={code}&state=forged&iss={live_server.url}")
    assert forged.status == 400 and "not started in this browser" in alert(other)
    shots.take(other, "forged-state")

    # ...and so is the first browser's code, spent already, under its own state.
    visit(other, live_server.url + "/admin")
    state = parse_qs(urlsplit(authorizations[-1].url).query)["state"][0]
    stolen = visit(other, f"{live_server.url}/admin/callback?code={code}&state={state}&iss={live_server.url}")
    assert stolen.status == 400 and "code was refused" in alert(other)
    shots.take(other, "replayed-code")
    visit(other, live_server.url + "/admin")
    assert path_of(other).startswith("/u/login?state=")  # nothing admitted it


def test_the_admin_session_ends_when_the_user_stops_being_an_admin(page: Page, shots: Screenshots,
                                                                  live_server: LiveServer, app: Flask,
                                                                  admin: Any) -> None:
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD).status == 200
    result = app.test_cli_runner().invoke(args=["admins", "remove", EMAIL])
    assert result.exit_code == 0, result.output
    response = visit(page, live_server.url + "/admin")
    assert response.status == 403 and heading(page) == "Not an administrator"
    shots.take(page, "no-longer-an-admin")
    db.session.expire_all()
    event = db.session.scalar(select(LogEvent).where(LogEvent.description == "Admin removed"))
    assert event is not None and event.type == "sapi" and event.user_id == admin.id
    assert event.details["by"] == {"channel": "cli"}


def test_signing_out_needs_the_form_and_ends_the_sso_session(page: Page, shots: Screenshots,
                                                             live_server: LiveServer, admin: Any) -> None:
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD).status == 200

    # Without the form's CSRF token, nothing happens.
    refused = page.request.post(live_server.url + "/admin/logout", form={},
                                headers={"Origin": live_server.url})
    assert refused.status == 400
    assert visit(page, live_server.url + "/admin").status == 200 and heading(page) == "Overview"

    signed_out = submit(page, "Sign out")
    assert signed_out.status == 200 and heading(page) == "Signed out"
    shots.take(page, "signed-out")
    db.session.expire_all()
    sessions = db.session.scalars(select(Session).where(Session.user_id == admin.id)).all()
    assert sessions and all(s.ended_at is not None for s in sessions)

    # Signed out of idp too: the dashboard asks for the password again.
    visit(page, live_server.url + "/admin")
    assert path_of(page).startswith("/u/login?state=")
    shots.take(page, "asked-to-sign-in-again")


def test_an_old_sso_session_must_type_the_password_again(page: Page, live_server: LiveServer, app: Flask,
                                                         admin: Any) -> None:
    """A session whose password was typed longer ago than ADMIN_REAUTHENTICATE_AFTER is not enough."""
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD).status == 200
    app.config["ADMIN_SESSION_LIFETIME"] = 0  # the dashboard sign-in is over: the next visit signs in anew
    db.session.execute(update(Session).where(Session.user_id == admin.id)
                       .values(auth_time=Session.auth_time - 3600))  # the password was typed an hour ago
    db.session.commit()
    visit(page, live_server.url + "/admin")
    assert path_of(page).startswith("/u/login?state="), page.url  # asked again, although signed in
    app.config["ADMIN_SESSION_LIFETIME"] = 3600
    landed = sign_in(page, EMAIL, PASSWORD)
    assert landed.status == 200 and path_of(page) == "/admin" and heading(page) == "Overview"


def test_post_login_actions_never_stand_between_admins_and_the_dashboard(page: Page, live_server: LiveServer,
                                                                         admin: Any) -> None:
    """A broken or denying action would otherwise lock out the admins who can fix it."""
    deny = "def on_execute_post_login(event, api):\n    api.access.deny('no')\n"
    registry_of_actions.create("deny all", deny)
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD).status == 200
    assert path_of(page) == "/admin" and heading(page) == "Overview"
