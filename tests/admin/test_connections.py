"""The dashboard's Connections pages in Chromium, JavaScript off (and once on, for the editor): the list,
a connection's page, scripts refused with their line or saved, the masked configuration, trying the
scripts against a real legacy store, and disconnecting."""

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import func, select

from idp.connections import registry
from idp.connections.models import Connection, MigrationEvent
from idp.db import db
from idp.events.models import LogEvent
from idp.users.models import User
from tests.admin.conftest import path_of, sign_in_admin
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.pages import Screenshots, alert, follow, heading, submit, visit
from tests.conftest import PASSWORD, LiveServer
from tests.migration.conftest import LEGACY_PASSWORD, SCRIPT, legacy  # noqa: F401  (legacy: the fixture)

EMAIL = "ada@example.com"  # the `admin` fixture
PAGE = "/admin/connections/legacy-db"
# get_user names Lin otherwise than login does: the try form must mark that field, and only it.
DIFFERING = SCRIPT.replace("return _profile(row) if row else None",
                           "return dict(_profile(row), name='Lin L.') if row else None")
COUNTING = SCRIPT + '''

def count_users(configuration):
    db = sqlite3.connect(configuration["path"])
    try:
        return db.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        db.close()
'''
TOKEN = "tok-0123456789-very-secret"
# Every test: the migration tests' legacy store (SQLite, bcrypt) with lin@example.com and max@example.com,
# behind the migrating connection legacy-db that the client "Legacy App" signs in through.
pytestmark = pytest.mark.usefixtures("legacy")


def stored(name: str = "legacy-db") -> Connection:
    """Return the connection as the database has it now."""
    db.session.expire_all()
    return registry.find(name)


def sapi(description: str) -> LogEvent:
    """Return the one `sapi` event of a dashboard change."""
    db.session.expire_all()
    [event] = db.session.scalars(select(LogEvent).where(LogEvent.description == description)).all()
    assert event.type == "sapi"
    return event


def legacy_path() -> str:
    """Return where the legacy store is: a configuration value, a secret the pages never show."""
    return stored().configuration["path"]


def editor(page: Page, function: str) -> Any:
    """Return a script's textarea, by its label."""
    return page.get_by_label(f"{function}(", exact=False)


def test_the_list_and_a_connection_page(page: Page, shots: Screenshots, live_server: LiveServer,
                                        admin: Any) -> None:
    registry.create("old-db", migrating=True)
    registry.disconnect(registry.find("old-db"))
    landed = sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/connections")
    assert landed.status == 200 and heading(page) == "Connections"
    shots.take(page, "list")
    nav = page.get_by_role("navigation", name="Dashboard")
    assert nav.get_by_role("link", name="Connections").get_attribute("aria-current") == "page"
    rows = {row.get_attribute("data-connection"): row for row in page.locator("tbody tr").all()}
    assert list(rows) == ["Username-Password-Authentication", "legacy-db", "old-db"]
    native, migrating, gone = (rows[n] for n in ("Username-Password-Authentication", "legacy-db", "old-db"))
    cells = ("state", "users", "clients", "moved")
    shown = [[row.locator(f"[data-figure='{c}']").inner_text() for c in cells]
             for row in (native, migrating, gone)]
    assert shown == [
        ["native", "1", "idp dashboard", "—"], ["migrating", "0", "Legacy App", "0"],
        ["disconnected", "0", "—", "0"]]

    follow(page, "legacy-db")
    assert path_of(page) == PAGE and heading(page).startswith("legacy-db")
    shots.take(page, "migrating-connection")
    assert page.locator(".editor textarea").count() == 4
    assert editor(page, "login").input_value() == SCRIPT
    assert editor(page, "login").get_attribute("spellcheck") == "false"
    assert editor(page, "count_users").input_value() == ""  # the fixture's scripts define no count_users
    gutter = page.locator("[data-script='login'] .gutter").inner_text().split("\n")
    assert gutter == [str(n) for n in range(1, SCRIPT.count("\n") + 2)]
    assert page.get_by_role("link", name="Disconnect legacy-db…").count() == 1

    # The native connection: no scripts, no configuration, no try form.
    visit(page, live_server.url + "/admin/connections/Username-Password-Authentication")
    shots.take(page, "native-connection")
    assert page.locator("textarea").count() == 0 and page.locator("#configuration, #try").count() == 0
    assert "no scripts and no configuration" in page.locator("main").inner_text()
    assert visit(page, live_server.url + "/admin/connections/nope").status == 404


def test_a_script_that_does_not_compile_is_refused_with_its_line(page: Page, shots: Screenshots,
                                                                  live_server: LiveServer,
                                                                  admin: Any) -> None:
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, PAGE).status == 200
    broken = "def login(email, password, configuration):\n    name = 'Lin'\n    return {'name': name\n"
    editor(page, "login").fill(broken)
    refused = submit(page, "Save scripts")
    assert refused.status == 400 and path_of(page) == PAGE + "/scripts"
    shots.take(page, "refused")
    message = alert(page)
    assert "Nothing was saved" in message and "login script does not compile: line 3" in message
    assert "line 3" in page.locator("#error-login").inner_text()
    assert editor(page, "login").get_attribute("aria-invalid") == "true"
    assert editor(page, "login").input_value() == broken  # what the admin typed is kept
    assert page.locator("[data-script='login'] .gutter .bad").inner_text() == "3"
    assert stored().login_script == SCRIPT  # nothing saved
    assert db.session.scalar(select(func.count()).select_from(LogEvent)
                             .where(LogEvent.type == "sapi", LogEvent.connection == "legacy-db")) == 0

    # Fixed, with an optional script added and another one's text kept: saved together.
    fixed = SCRIPT.replace("return _profile(row)\n", "return dict(_profile(row), nickname='lin')\n")
    editor(page, "login").fill(fixed)
    editor(page, "count_users").fill(COUNTING)
    saved = submit(page, "Save scripts")
    assert saved.status == 200 and path_of(page) == PAGE + "?saved=scripts"
    shots.take(page, "saved")
    assert page.get_by_role("status").inner_text() == "The scripts are saved."
    connection = stored()
    assert (connection.login_script, connection.get_user_script, connection.count_users_script) == (
        fixed, SCRIPT, COUNTING)
    event = sapi("Update connection scripts")
    assert event.connection_id == connection.id
    assert event.details["scripts"] == {"count_users": "changed", "login": "changed"}
    assert event.details["by"] == {"channel": "dashboard", "user_id": admin.id, "email": EMAIL}

    # An emptied optional script is removed, as the API's "" removes it.
    editor(page, "count_users").fill("")
    assert submit(page, "Save scripts").status == 200
    assert stored().count_users_script is None


def test_configuration_values_are_masked_and_replaceable(page: Page, shots: Screenshots,
                                                         live_server: LiveServer, admin: Any) -> None:
    connection = stored()
    registry.configure(connection, configuration={**connection.configuration, "api_token": TOKEN})
    path = legacy_path()
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, PAGE).status == 200
    shots.take(page, "masked")
    assert TOKEN not in page.content() and path not in page.content()
    row = page.locator("tr[data-key='api_token']")
    assert row.locator("[data-figure='masked']").inner_text() == f"to…({len(TOKEN)} chars)"

    # Replace one value, add a key: the other value is kept as it was.
    page.get_by_label("New value of api_token").fill("tok-replaced-value-42")
    page.get_by_label("Key", exact=True).fill("timeout")
    page.get_by_label("Value", exact=True).fill("5")
    assert submit(page, "Save configuration").status == 200
    shots.take(page, "replaced")
    assert page.get_by_role("status").inner_text() == "The configuration is saved."
    assert stored().configuration == {"path": path, "api_token": "tok-replaced-value-42", "timeout": "5"}
    assert "tok-replaced-value-42" not in page.content()
    event = sapi("Update connection configuration")
    assert event.details["configuration"] == {"added": ["timeout"], "replaced": ["api_token"]}
    assert event.details["by"]["email"] == EMAIL and "tok-replaced" not in str(event.details)

    # Remove a key; a key that exists already cannot be added again (and nothing is saved then).
    page.get_by_label("Remove timeout").check()
    assert submit(page, "Save configuration").status == 200
    assert set(stored().configuration) == {"path", "api_token"}
    page.get_by_label("Key", exact=True).fill("path")
    page.get_by_label("Value", exact=True).fill("/elsewhere")
    refused = submit(page, "Save configuration")
    assert refused.status == 400 and "there is a key path already" in alert(page)
    shots.take(page, "refused")
    assert stored().configuration["path"] == path


def test_the_try_form_shows_every_difference_between_the_profiles(page: Page, shots: Screenshots,
                                                                   live_server: LiveServer,
                                                                   admin: Any) -> None:
    registry.configure(stored(), get_user=DIFFERING)
    users = db.session.scalar(select(func.count()).select_from(User))
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, PAGE).status == 200
    page.get_by_label("Email", exact=True).fill("lin@example.com")
    page.get_by_label("Password", exact=True).fill(LEGACY_PASSWORD)
    tried = submit(page, "Try")
    assert tried.status == 200
    shots.take(page, "differing")
    assert "differ in 1 field" in page.locator("[data-figure='verdict']").inner_text()
    name = page.locator("tr[data-field='name']")
    assert name.get_attribute("class") == "differs" and "differs" in name.inner_text()
    assert name.locator("td").nth(0).inner_text() == "Lin L." and name.locator("td").nth(1).inner_text() == (
        "Lin Legacy")
    others = page.locator("table.profiles tbody tr:not([data-field='name'])")
    assert others.count() == 9
    for other in others.all():
        assert other.get_attribute("class") is None and "differs" not in other.inner_text()
    assert page.locator("tr[data-field='user_id'] td").nth(0).inner_text() == "42"
    # The password is never shown again, the legacy store's path neither; the email is kept.
    assert LEGACY_PASSWORD not in page.content() and legacy_path() not in page.content()
    assert page.get_by_label("Email", exact=True).input_value() == "lin@example.com"
    assert page.get_by_label("Password", exact=True).input_value() == ""
    # Trying moves nobody over and records nothing.
    assert db.session.scalar(select(func.count()).select_from(User)) == users
    assert db.session.scalar(select(func.count()).select_from(MigrationEvent)) == 0

    page.get_by_label("Password", exact=True).fill("not the password")
    assert submit(page, "Try").status == 200
    shots.take(page, "wrong-password")
    assert "wrong email or password" in page.locator("[data-answer='login']").inner_text()
    assert page.locator("[data-answer='get_user']").inner_text().endswith("a profile")
    assert page.locator("[data-figure='verdict']").count() == 0  # nothing to compare
    assert "not the password" not in page.content()

    # A failing script is reported on the page, its secrets scrubbed.
    failing = ("def get_user(email, configuration):\n"
               "    raise RuntimeError('cannot open ' + configuration['path'])\n")
    registry.configure(stored(), get_user=failing)
    page.get_by_label("Password", exact=True).fill(LEGACY_PASSWORD)
    assert submit(page, "Try").status == 200
    shots.take(page, "failing-script")
    answer = page.locator("[data-answer='get_user']").inner_text()
    assert "failed: ScriptFailed" in answer and "RuntimeError" in answer and "[redacted]" in answer
    assert legacy_path() not in page.content()


def test_disconnecting_says_what_it_does_then_does_it(page: Page, shots: Screenshots, live_server: LiveServer,
                                                      admin: Any) -> None:
    registry.configure(stored(), count_users=COUNTING)
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, PAGE).status == 200
    follow(page, "Disconnect legacy-db…")
    assert path_of(page) == PAGE + "/disconnect" and heading(page) == "Disconnect legacy-db"
    shots.take(page, "confirm")
    text = page.locator("main").inner_text()
    assert "replaced by the no-op ones" in text and "run against idp's own users only" in text
    assert "can no longer sign in" in text and "idp migration finish legacy-db" in text
    assert page.locator("[data-figure='remaining']").inner_text().startswith("2 of 2 legacy users")
    assert stored().disconnected_at is None  # asking changes nothing

    done = submit(page, "Disconnect legacy-db")
    assert done.status == 200 and path_of(page) == PAGE + "?saved=disconnected"
    shots.take(page, "disconnected")
    assert page.locator("h1 [data-figure='state']").inner_text() == "disconnected"
    assert page.locator("#try, #disconnect").count() == 0
    assert page.get_by_role("button", name="Save scripts").count() == 0
    connection = stored()
    assert connection.disconnected_at is not None and connection.count_users_script is None
    assert connection.login_script == registry.template("noop")
    event = sapi("Disconnect connection")
    assert event.connection == "legacy-db" and event.details["by"]["user_id"] == admin.id
    refused = visit(page, live_server.url + PAGE + "/disconnect")
    assert refused.status == 400 and "nothing to disconnect" in alert(page)


@pytest.fixture
def scripted(chromium: Browser) -> Iterator[Page]:
    """A tab with JavaScript on, for the editor's enhancement."""
    context = chromium.new_context(java_script_enabled=True, viewport={"width": 1000, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_the_editor_numbers_lines_and_indents_with_javascript_on(scripted: Page, shots: Screenshots,
                                                                 live_server: LiveServer, admin: Any) -> None:
    problems: list[str] = []
    scripted.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    scripted.on("pageerror", lambda e: problems.append(str(e)))
    assert sign_in_admin(scripted, live_server, EMAIL, PASSWORD, PAGE).status == 200
    frame = scripted.locator("[data-script='get_user'] .editor")
    assert frame.get_attribute("data-enhanced") == ""
    lines = SCRIPT.count("\n") + 1
    gutter = frame.locator(".gutter")
    assert gutter.inner_text().split("\n") == [str(n) for n in range(1, lines + 1)]
    textarea = frame.locator("textarea")
    textarea.click()
    scripted.keyboard.press("Control+End")
    scripted.keyboard.type("\n\n")
    scripted.keyboard.press("Tab")
    scripted.keyboard.type("pass")
    shots.take(scripted, "editing")
    assert gutter.inner_text().split("\n")[-1] == str(lines + 2)
    assert textarea.input_value().endswith("\n\n    pass")
    assert textarea.get_attribute("rows") == str(lines + 3)
    assert not problems, problems  # the Content-Security-Policy let the script run
