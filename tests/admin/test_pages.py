"""The dashboard's migration, keys, clients and logs pages in Chromium, JavaScript off: the chart against
the database, rotating and revoking keys, a client's URIs, and the log search."""

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from playwright.sync_api import Page
from sqlalchemy import func, select

from idp.connections import legacy, registry
from idp.connections.legacy import MIGRATED, SCRIPT_ERROR
from idp.connections.models import Connection, MigrationEvent
from idp.db import db
from idp.events import log as events
from idp.events.models import LogEvent
from idp.keys import store
from idp.keys.models import CURRENT, NEXT, PREVIOUS, REVOKED, SigningKey
from idp.oauth.models import Client
from idp.users.accounts import create_user
from tests.admin.conftest import path_of, sign_in_admin
from tests.admin.test_dashboard import moved_over
from tests.browser.pages import Screenshots, alert, follow, heading, submit, visit
from tests.conftest import PASSWORD, LiveServer
from tests.support import RegisteredClient

EMAIL = "ada@example.com"  # the `user` fixture, made an admin by `admin`
COUNT_USERS = "def count_users(configuration):\n    return 10\n"


def noon(day: date) -> datetime:
    """Midday (UTC) of a day: well inside it, whatever the test's clock."""
    return datetime.combine(day, time(12), UTC)


def moved_by(connection: Connection, email: str, at: datetime, way: str) -> None:
    """A user who moved over one way (password_reset, import) at a given moment, as moved_over does."""
    user = create_user(email, PASSWORD, connection.id, legacy_id=email, migrated_at=at, migrated_via=way)
    legacy.record(connection, MIGRATED, source=way, user_id=user.id, email=email)
    db.session.flush()
    db.session.execute(MigrationEvent.__table__.update().where(MigrationEvent.user_id == user.id)
                       .values(at=at))
    db.session.commit()


def failed(connection: Connection, at: datetime) -> None:
    """A login script that failed at a given moment."""
    legacy.record(connection, SCRIPT_ERROR, source="login", email="x@shop.example",
                  detail="login: RuntimeError")
    db.session.flush()
    db.session.execute(MigrationEvent.__table__.update().where(MigrationEvent.type == SCRIPT_ERROR)
                       .values(at=at))
    db.session.commit()


def bar(page: Page, chart: str, day: date, way: str) -> tuple[str | None, str]:
    """Return one bar part's count and tooltip."""
    part = page.locator(f"#{chart} g[data-date='{day.isoformat()}'] rect[data-way='{way}']")
    return part.get_attribute("data-count"), part.locator("title").text_content() or ""


def cell(page: Page, table: str, row: str, name: str) -> str:
    """Return a table cell's text by its row and data-figure."""
    return page.locator(f"#{table} tr{row} [data-figure='{name}']").inner_text().strip()


def moved_on(connection: Connection, day: date, way: str) -> int:
    """Count in the database the users of a connection who moved over one way on a UTC day."""
    return db.session.scalar(select(func.count()).select_from(MigrationEvent).where(
        MigrationEvent.connection_id == connection.id, MigrationEvent.type == MIGRATED,
        MigrationEvent.source == way, MigrationEvent.at >= noon(day) - timedelta(hours=12),
        MigrationEvent.at < noon(day) + timedelta(hours=12))) or 0


def sapi(description: str) -> LogEvent:
    """Return the dashboard's log event of a change, checking it names the admin."""
    db.session.expire_all()
    event = db.session.scalar(select(LogEvent).where(LogEvent.description == description)
                              .order_by(LogEvent.date.desc()))
    assert event is not None and event.type == "sapi"
    assert event.details["by"]["channel"] == "dashboard" and event.details["by"]["email"] == EMAIL
    return event


def test_the_migration_chart_matches_the_counts(page: Page, shots: Screenshots, live_server: LiveServer,
                                               admin: Any) -> None:
    shop = registry.create("shop-db", migrating=True)
    registry.configure(shop, count_users=COUNT_USERS)
    db.session.commit()
    other = registry.create("crm-db", migrating=True)
    today = datetime.now(UTC).date()
    one, three = today - timedelta(days=1), today - timedelta(days=3)
    moved_over(shop, "a@shop.example", noon(one))
    moved_over(shop, "b@shop.example", noon(one))
    moved_by(shop, "c@shop.example", noon(three), "password_reset")
    moved_by(other, "d@crm.example", noon(three), "import")
    failed(shop, noon(one))

    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/migration?days=7").status == 200
    shots.take(page, "migration-every-connection")
    assert heading(page) == "Migration"
    # Every connection together: the bars stack the ways of both.
    assert bar(page, "moved-chart", three, "password_reset") == ("1", f"{three}: 1 by password reset")
    assert bar(page, "moved-chart", three, "import") == ("1", f"{three}: 1 by import")
    assert page.locator(f"#moved-chart g[data-date='{three}']").get_attribute("data-total") == "2"
    assert page.locator("#moved-chart g[data-date]").count() == 7
    assert page.locator("#moved-chart title").first.text_content() == "Users moved over per day, by way"
    assert page.locator("#moved-chart desc").count() == 1
    assert page.locator("#moved-chart [data-legend]").all_text_contents() == [
        "Sign-in", "Password reset", "Bulk import"]

    # One connection: its bars, its failures, and the table with the database's numbers.
    visit(page, live_server.url + "/admin/migration?connection=shop-db&days=7")
    shots.take(page, "migration-one-connection")
    assert bar(page, "moved-chart", one, "login") == ("2", f"{one}: 2 by login")
    assert bar(page, "moved-chart", three, "password_reset")[0] == "1"
    assert page.locator(f"#moved-chart g[data-date='{three}'] rect[data-way='import']").count() == 0
    assert bar(page, "failures-chart", one, "script_error") == ("1", f"{one}: 1 script error")
    for day in (one, three):
        row = f"[data-date='{day}']"
        for way in ("login", "password_reset", "import"):
            assert cell(page, "per-day", row, way) == str(moved_on(shop, day, way)), (day, way)
    assert cell(page, "per-day", f"[data-date='{one}']", "script_error") == "1"
    assert cell(page, "per-day", f"[data-date='{today}']", "moved") == "0"
    shop_row = "[data-connection='shop-db']"
    assert cell(page, "progress", shop_row, "moved") == "3"
    assert cell(page, "progress", shop_row, "login") == "2"
    assert cell(page, "progress", shop_row, "failures") == "1"
    # count_users says 10; three of them are here.
    assert cell(page, "progress", shop_row, "left").endswith("7 of 10 left")
    assert page.locator(f"#progress tr{shop_row} progress").get_attribute("value") == "3"
    assert page.locator("#progress tr[data-connection='crm-db']").count() == 0

    visit(page, live_server.url + "/admin/migration?connection=crm-db&days=90")
    assert bar(page, "moved-chart", three, "import")[0] == "1"
    assert "no count_users script" in cell(page, "progress", "[data-connection='crm-db']", "left")
    assert page.locator("#moved-chart g[data-date]").count() == 90
    shots.take(page, "migration-90-days")

    # Asked for what is not there: said on the page, the default shown.
    wrong = visit(page, live_server.url + "/admin/migration?days=12&connection=nope")
    assert wrong.status == 400 and "Show 7, 30 or 90 days" in page.get_by_role("alert").first.inner_text()
    assert page.locator("#moved-chart g[data-date]").count() == 30
    shots.take(page, "migration-wrong-query")
    page.set_viewport_size({"width": 390, "height": 800})
    visit(page, live_server.url + "/admin/migration?connection=shop-db&days=7")
    shots.take(page, "migration-narrow")


def _state(kid: str) -> str:
    db.session.expire_all()
    key = db.session.get(SigningKey, kid)
    assert key is not None
    return key.state


def test_keys_rotate_refused_then_forced_and_revoked(page: Page, shots: Screenshots, live_server: LiveServer,
                                                     admin: Any) -> None:
    keys = {k.state: k.kid for k in store.published_keys()}
    old_current, old_next = keys[CURRENT], keys[NEXT]
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/keys").status == 200
    shots.take(page, "keys")
    assert heading(page) == "Signing keys"
    assert page.locator(f"tr[data-kid='{old_current}']").get_attribute("data-state") == CURRENT
    assert page.locator(f"tr[data-kid='{old_current}'] [data-figure='signs']").inner_text() == "yes"
    assert page.locator(f"tr[data-kid='{old_next}']").get_attribute("data-state") == NEXT
    assert "safe to sign from" in page.locator(f"tr[data-kid='{old_next}']").inner_text()

    # The next key was published moments ago: refused, with the CLI's reasons.
    refused = submit(page, "Rotate keys")
    assert refused.status == 409
    shots.take(page, "rotate-refused")
    assert alert(page).startswith(f"Not rotating: the next key {old_next} has been published for less than")
    assert "Rotate anyway" in alert(page)
    assert (_state(old_current), _state(old_next)) == (CURRENT, NEXT)

    # Forced: the next key signs at once, and the page says what relying parties may see.
    page.get_by_label("Rotate anyway").check()
    form = {name: page.locator(f"form input[name='{name}']").first.get_attribute("value") or ""
            for name in ("csrf_token", "next_kid")}
    done = submit(page, "Rotate keys")
    assert done.status == 200 and path_of(page) == f"/admin/keys?rotated={old_next}"
    shots.take(page, "rotated-anyway")
    assert page.get_by_role("status").inner_text() == f"Rotated: {old_next} now signs."
    assert "reject the tokens it signs" in page.locator("#young-current").inner_text()
    assert (_state(old_current), _state(old_next)) == (PREVIOUS, CURRENT)
    event = sapi("Signing keys rotated")
    assert event.details["kid"] == old_next and event.details["previous"] == old_current
    assert event.details["forced"] is True
    # The same form again (a double click): the key it saw as next already signs, so nothing rotates.
    again = page.request.post(live_server.url + "/admin/keys/rotate", form={**form, "force": "yes"},
                              headers={"Origin": live_server.url}, max_redirects=0)
    assert again.status == 409 and "The keys changed since this page was shown" in again.text()
    assert (_state(old_current), _state(old_next)) == (PREVIOUS, CURRENT)

    # Revoking asks first, and says what happens to the tokens the key signed.
    follow(page, f"Revoke {old_current[:16]}…")
    assert heading(page) == "Revoke this key?"
    assert "stops verifying" in page.locator(".consequences").inner_text()
    shots.take(page, "revoke-confirm")
    follow(page, "Cancel")
    assert _state(old_current) == PREVIOUS
    follow(page, f"Revoke {old_current[:16]}…")
    revoked = submit(page, "Revoke the key")
    assert revoked.status == 200 and path_of(page) == f"/admin/keys?revoked={old_current}"
    shots.take(page, "revoked")
    assert _state(old_current) == REVOKED
    assert page.locator(f"tr[data-kid='{old_current}']").get_attribute("data-state") == REVOKED
    assert sapi("Signing key revoked").details == {"kid": old_current, "state": PREVIOUS,
                                                  "by": {"channel": "dashboard", "user_id": admin.id,
                                                         "email": EMAIL}}
    # A revoked key has nothing left to revoke; its confirmation is gone too.
    assert visit(page, f"{live_server.url}/admin/keys/{old_current}/revoke").status == 404


def test_clients_are_listed_and_their_uris_changed(page: Page, shots: Screenshots, live_server: LiveServer,
                                                   admin: Any, rp: RegisteredClient,
                                                   third_party_rp: RegisteredClient) -> None:
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/clients").status == 200
    shots.take(page, "clients")
    assert heading(page) == "Clients"
    dashboard = db.session.scalar(select(Client).where(Client.dashboard.is_(True)))
    assert dashboard is not None
    row = f"tr[data-client='{dashboard.id}']"
    assert page.locator(f"{row} [data-figure='dashboard']").inner_text() == "this dashboard"
    assert page.locator(f"{row} [data-figure='kind']").inner_text() == "public"
    rp_row = f"tr[data-client='{rp.id}']"
    assert page.locator(f"{rp_row} [data-figure='party']").inner_text() == "first party"
    assert page.locator(f"{rp_row} [data-figure='kind']").inner_text() == "confidential"
    connection = page.locator(f"{rp_row} [data-figure='connection']").inner_text()
    assert connection == "Username-Password-Authentication"
    assert page.locator(f"{rp_row} [data-figure='redirect-uris']").inner_text() == rp.redirect_uri
    third = f"tr[data-client='{third_party_rp.id}'] [data-figure='party']"
    assert page.locator(third).inner_text() == "third party"

    # A client's page, and its URIs checked by the CLI's rules.
    follow(page, "Example App")
    assert heading(page) == "Example App" and path_of(page) == f"/admin/clients/{rp.id}"
    shots.take(page, "client")
    page.get_by_label("Redirect URIs", exact=True).fill("https://rp.example.com/callback\nhttp://evil.example/cb")
    refused = submit(page, "Save URIs")
    assert refused.status == 400 and alert(page) == "Not saved: http is allowed only on loopback: http://evil.example/cb."
    typed = page.get_by_label("Redirect URIs", exact=True).input_value()
    assert "http://evil.example/cb" in typed  # kept, to be corrected
    shots.take(page, "client-refused")
    db.session.expire_all()
    assert db.session.get(Client, rp.id).redirect_uris == [rp.redirect_uri]  # type: ignore[union-attr]

    page.get_by_label("Redirect URIs", exact=True).fill(
        "https://rp.example.com/callback\n\nhttps://rp.example.com/other ")
    saved = submit(page, "Save URIs")
    assert saved.status == 200 and path_of(page) == f"/admin/clients/{rp.id}?updated=1"
    shots.take(page, "client-saved")
    db.session.expire_all()
    changed = db.session.get(Client, rp.id)
    assert changed is not None
    assert changed.redirect_uris == ["https://rp.example.com/callback", "https://rp.example.com/other"]
    assert changed.post_logout_redirect_uris == ["https://rp.example.com/bye"]
    event = sapi("Client updated")
    assert event.client_id == rp.id and event.details["after"]["redirect_uris"] == changed.redirect_uris
    assert event.details["before"]["redirect_uris"] == [rp.redirect_uri]

    # The dashboard's own URIs follow the issuer: shown, not editable.
    visit(page, f"{live_server.url}/admin/clients/{dashboard.id}")
    assert page.locator("form textarea").count() == 0 and "follow" in page.locator("main").inner_text()
    shots.take(page, "dashboard-client")
    assert visit(page, f"{live_server.url}/admin/clients/nope").status == 404


def test_logs_are_searched_as_the_api_searches_them(page: Page, shots: Screenshots, live_server: LiveServer,
                                                    admin: Any) -> None:
    events.record(events.FAILED_LOGIN, "Wrong email or password.", user_name="bob@example.com",
                  connection="Username-Password-Authentication")
    db.session.commit()
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/logs").status == 200
    shots.take(page, "logs")
    assert heading(page) == "Logs"
    types = [r.get_attribute("data-type") for r in page.locator("#events tbody tr").all()]
    assert "s" in types and "f" in types
    dates = [t.get_attribute("datetime") or "" for t in page.locator("#events tbody time").all()]
    assert dates == sorted(dates, reverse=True)  # newest first

    page.get_by_label("Search", exact=True).fill("type:s")
    found = submit(page, "Search")
    assert found.status == 200 and path_of(page) == "/admin/logs?q=type%3As"
    shots.take(page, "logs-type-s")
    rows = page.locator("#events tbody tr")
    expected = db.session.scalar(select(func.count()).select_from(LogEvent).where(LogEvent.type == "s"))
    assert rows.count() == expected and expected >= 1
    assert {r.get_attribute("data-type") for r in rows.all()} == {"s"}
    assert "Success Login" in rows.first.inner_text() and EMAIL in rows.first.inner_text()

    page.get_by_label("Search", exact=True).fill('user_name:"bob@example.com"')
    submit(page, "Search")
    assert [r.get_attribute("data-type") for r in page.locator("#events tbody tr").all()] == ["f"]

    page.get_by_label("Search", exact=True).fill("type:(s OR")
    bad = submit(page, "Search")
    assert bad.status == 400 and alert(page).startswith("Invalid query")
    assert page.locator("#events").count() == 0
    shots.take(page, "logs-bad-query")
    assert visit(page, live_server.url + "/admin/logs?page=11").status == 400
    assert "Pages go from 1 to 10" in alert(page)

    # One event: its whole JSON, as GET /api/v2/logs/{id} returns it.
    visit(page, live_server.url + "/admin/logs?q=type:f")
    log_id = page.locator("#events tbody tr").first.get_attribute("data-log")
    page.locator("#events tbody tr").first.get_by_role("link").click()
    page.wait_for_url(f"**/admin/logs/{log_id}")
    shots.take(page, "log-event")
    assert heading(page) == "Wrong email or password."
    row = db.session.get(LogEvent, log_id)
    assert row is not None and json.loads(page.locator("#event-json").inner_text()) == row.as_dict()
    assert visit(page, live_server.url + "/admin/logs/nope!").status == 404
