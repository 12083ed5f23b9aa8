"""The dashboard's Actions pages in Chromium, JavaScript off: creating an action, code refused with its
line, reordering, disabling and enabling, masked secrets, testing an action on a real user, deleting."""

from typing import Any

from playwright.sync_api import Page
from sqlalchemy import func, select

from idp.actions import registry
from idp.actions.models import Action
from idp.db import db
from idp.events.models import LogEvent
from idp.users.models import User
from tests.admin.conftest import path_of, sign_in_admin
from tests.browser.pages import Screenshots, alert, follow, heading, submit, visit
from tests.conftest import PASSWORD, LiveServer

EMAIL = "ada@example.com"  # the `admin` fixture
TEMPLATE = "def on_execute_post_login(event, api):\n    pass\n"
CLAIM = '''def on_execute_post_login(event, api):
    api.id_token.set_custom_claim("https://example.com/email", event.user.email)
    api.access_token.set_custom_claim("https://example.com/key", event.secrets.API_TOKEN)
    api.user.set_app_metadata("greeted", True)
'''
TOKEN = "tok-0123456789-very-secret"


def stored(name: str) -> Action:
    """Return the action as the database has it now."""
    db.session.expire_all()
    return registry.find(name)


def sapi(description: str) -> LogEvent:
    """Return the one `sapi` event of a dashboard change, made by the admin."""
    db.session.expire_all()
    [event] = db.session.scalars(select(LogEvent).where(LogEvent.description == description)).all()
    assert event.type == "sapi" and event.details["by"]["email"] == EMAIL
    return event


def sapi_count() -> int:
    """Return how many `sapi` events tell of a change to actions (the `admin` fixture's own is not one)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LogEvent).where(
        LogEvent.type == "sapi", LogEvent.description.ilike("%action%"))) or 0


def names() -> list[str]:
    db.session.expire_all()
    return [a.name for a in registry.in_order()]


def test_create_an_action_from_the_page(page: Page, shots: Screenshots, live_server: LiveServer,
                                        admin: Any) -> None:
    landed = sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/actions")
    assert landed.status == 200 and heading(page) == "Actions"
    shots.take(page, "empty")
    nav = page.get_by_role("navigation", name="Dashboard")
    assert nav.get_by_role("link", name="Actions").get_attribute("aria-current") == "page"
    assert "No actions yet" in page.locator("#actions").inner_text()
    code = page.get_by_label("Code", exact=True)
    assert code.input_value() == TEMPLATE and code.get_attribute("spellcheck") == "false"
    assert page.locator("#new .gutter").inner_text().split("\n") == ["1", "2", "3"]

    page.get_by_label("Name", exact=True).fill("roles")
    code.fill(CLAIM)
    created = submit(page, "Create action")
    assert created.status == 200 and path_of(page) == "/admin/actions/roles?saved=created"
    shots.take(page, "created")
    assert heading(page).startswith("roles") and "enabled" in page.locator("h1 .tag").inner_text()
    assert page.get_by_role("status").inner_text().startswith("The action is created")
    assert page.get_by_label("on_execute_post_login(event, api)").input_value() == CLAIM
    action = stored("roles")
    assert (action.code, action.enabled, action.secrets) == (CLAIM, True, {})
    event = sapi("Create action")
    assert event.details["action"] == {"name": "roles"}
    assert event.details["by"] == {"channel": "dashboard", "user_id": admin.id, "email": EMAIL}

    # A taken or bad name is refused, the typed code kept; an unknown action is not found.
    visit(page, live_server.url + "/admin/actions")
    page.get_by_label("Name", exact=True).fill("roles")
    refused = submit(page, "Create action")
    assert refused.status == 400 and "exists already" in alert(page)
    assert page.get_by_label("Code", exact=True).input_value() == TEMPLATE
    page.get_by_label("Name", exact=True).fill("-bad/name")
    assert submit(page, "Create action").status == 400 and "starting with a letter or digit" in alert(page)
    assert names() == ["roles"] and sapi_count() == 1
    assert visit(page, live_server.url + "/admin/actions/nope").status == 404
    assert visit(page, live_server.url + "/admin/actions/" + "x" * 300).status == 404


def test_code_that_does_not_compile_is_refused_with_its_line(page: Page, shots: Screenshots,
                                                             live_server: LiveServer, admin: Any) -> None:
    broken = ("def on_execute_post_login(event, api):\n    roles = []\n"
              "    api.id_token.set_custom_claim('r', roles\n")
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/actions").status == 200
    page.get_by_label("Name", exact=True).fill("roles")
    page.get_by_label("Code", exact=True).fill(broken)
    refused = submit(page, "Create action")
    assert refused.status == 400 and path_of(page) == "/admin/actions"
    shots.take(page, "refused-new")
    assert "Nothing was saved" in alert(page) and "does not compile: line 3" in alert(page)
    assert page.get_by_label("Code", exact=True).input_value() == broken  # what the admin typed is kept
    assert page.get_by_label("Name", exact=True).input_value() == "roles"
    assert page.locator("#new .gutter .bad").inner_text() == "3"
    assert names() == [] and sapi_count() == 0

    # On an action's page: refused with its line, nothing saved; then saved once it compiles.
    registry.create("roles", TEMPLATE)
    visit(page, live_server.url + "/admin/actions/roles")
    editor = page.get_by_label("on_execute_post_login(event, api)")
    editor.fill(broken)
    refused = submit(page, "Save code")
    assert refused.status == 400 and path_of(page) == "/admin/actions/roles/code"
    shots.take(page, "refused-edit")
    assert "does not compile: line 3" in alert(page)
    assert "line 3" in page.locator("#error-code").inner_text()
    assert editor.input_value() == broken and editor.get_attribute("aria-invalid") == "true"
    assert page.locator("[data-script='on_execute_post_login'] .gutter .bad").inner_text() == "3"
    editor.fill("def on_execute_post_login(event):\n    pass\n")
    assert submit(page, "Save code").status == 400
    assert "line 1: `on_execute_post_login` must take" in alert(page)
    assert stored("roles").code == TEMPLATE and sapi_count() == 0

    editor.fill(CLAIM)
    assert submit(page, "Save code").status == 200 and path_of(page) == "/admin/actions/roles?saved=code"
    shots.take(page, "saved")
    assert page.get_by_role("status").inner_text() == "The code is saved."
    assert stored("roles").code == CLAIM
    event = sapi("Update action code")
    assert event.details["action"] == {"id": stored("roles").id, "name": "roles"}


def test_reorder_disable_and_enable(page: Page, shots: Screenshots, live_server: LiveServer,
                                    admin: Any) -> None:
    for name in ("first", "second", "third"):
        registry.create(name, TEMPLATE)
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/actions").status == 200
    shots.take(page, "list")
    rows = page.locator("#actions tbody tr")
    assert [r.get_attribute("data-action") for r in rows.all()] == ["first", "second", "third"]
    assert page.get_by_role("button", name="Move up first", exact=True).is_disabled()
    assert page.get_by_role("button", name="Move down third", exact=True).is_disabled()

    assert submit(page, "Move up second").status == 200 and path_of(page) == "/admin/actions?done=moved"
    assert names() == ["second", "first", "third"]
    assert sapi("Reorder actions").details["order"] == ["second", "first", "third"]
    assert submit(page, "Move down first").status == 200
    shots.take(page, "reordered")
    assert names() == ["second", "third", "first"]
    assert [r.get_attribute("data-action") for r in rows.all()] == ["second", "third", "first"]

    assert submit(page, "Disable third").status == 200 and path_of(page) == "/admin/actions?done=disabled"
    shots.take(page, "disabled")
    assert stored("third").enabled is False and names() == ["second", "third", "first"]  # keeps its place
    assert page.locator("tr[data-action='third'] [data-figure='state']").inner_text() == "disabled"
    assert sapi("Disable action").details["action"]["name"] == "third"
    assert submit(page, "Enable third").status == 200
    assert stored("third").enabled is True
    assert sapi("Enable action").details["enabled"] is True
    assert sapi_count() == 4

    # Forms no page sends: nothing changes, and nothing breaks.
    token = page.locator("input[name='csrf_token']").first.get_attribute("value")
    for path, form, status in (("/admin/actions/first/move", {"direction": "sideways"}, 303),
                               ("/admin/actions/second/move", {"direction": "up"}, 303),  # first already
                               ("/admin/actions/first/enabled", {"enabled": "maybe"}, 303),
                               ("/admin/actions/nope/move", {"direction": "up"}, 404)):
        answer = page.request.post(live_server.url + path, form={"csrf_token": str(token), **form},
                                   headers={"Origin": live_server.url}, max_redirects=0)
        assert answer.status == status, (path, form)
    assert names() == ["second", "third", "first"] and sapi_count() == 4


def test_secrets_are_masked_and_replaceable(page: Page, shots: Screenshots, live_server: LiveServer,
                                            admin: Any) -> None:
    registry.create("roles", CLAIM, {"API_TOKEN": TOKEN, "OTHER": "other-value-1"})
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/actions/roles").status == 200
    shots.take(page, "masked")
    assert TOKEN not in page.content() and "other-value-1" not in page.content()
    row = page.locator("tr[data-key='API_TOKEN']")
    assert row.locator("[data-figure='masked']").inner_text() == f"to…({len(TOKEN)} chars)"

    # Replace one, remove one, add one.
    page.get_by_label("New value of API_TOKEN").fill("tok-replaced-value-42")
    page.get_by_label("Remove OTHER").check()
    page.get_by_label("Name", exact=True).fill("DEFAULT_PLAN")
    page.get_by_label("Value", exact=True).fill("basic-plan")
    assert submit(page, "Save secrets").status == 200
    assert path_of(page) == "/admin/actions/roles?saved=secrets"
    shots.take(page, "replaced")
    assert stored("roles").secrets == {"API_TOKEN": "tok-replaced-value-42", "DEFAULT_PLAN": "basic-plan"}
    assert "tok-replaced-value-42" not in page.content() and "basic-plan" not in page.content()
    event = sapi("Update action secrets")
    assert event.details["secrets"] == {"added": ["DEFAULT_PLAN"], "removed": ["OTHER"],
                                        "replaced": ["API_TOKEN"]}
    assert "tok-replaced" not in str(event.details) and "basic-plan" not in str(event.details)

    # Refused: a name that exists, a name that is not an identifier; nothing typed is shown again.
    page.get_by_label("Name", exact=True).fill("API_TOKEN")
    page.get_by_label("Value", exact=True).fill("typed-secret-1")
    refused = submit(page, "Save secrets")
    assert refused.status == 400 and "there is a secret API_TOKEN already" in alert(page)
    page.get_by_label("Name", exact=True).fill("not-an-identifier")
    page.get_by_label("Value", exact=True).fill("typed-secret-2")
    assert submit(page, "Save secrets").status == 400 and "Python identifier" in alert(page)
    shots.take(page, "refused")
    assert "typed-secret" not in page.content() and "tok-replaced-value-42" not in page.content()
    assert stored("roles").secrets == {"API_TOKEN": "tok-replaced-value-42", "DEFAULT_PLAN": "basic-plan"}
    assert sapi_count() == 1


def test_the_test_form_shows_what_the_action_would_do(page: Page, shots: Screenshots,
                                                      live_server: LiveServer, admin: Any) -> None:
    registry.create("roles", CLAIM, {"API_TOKEN": TOKEN})
    registry.set_enabled("roles", False)  # a disabled action can be tried before it runs for anyone
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/actions/roles").status == 200
    page.get_by_label("Email", exact=True).fill("ADA@example.com")
    tested = submit(page, "Test")
    assert tested.status == 200
    shots.take(page, "result")
    commands = page.locator("#commands tbody tr")
    assert [r.get_attribute("data-command") for r in commands.all()] == [
        "id_token_claim", "access_token_claim", "app_metadata"]
    assert commands.nth(0).locator("td").inner_text() == '"https://example.com/email" "ada@example.com"'
    assert commands.nth(1).locator("td").inner_text() == '"https://example.com/key" "[redacted]"'
    assert TOKEN not in page.content()
    db.session.expire_all()
    assert db.session.get(User, admin.id).app_metadata in ({}, None)  # nothing applied
    event = sapi("Test action")
    assert event.details["email"] == EMAIL and event.user_id == admin.id

    page.get_by_label("Email", exact=True).fill("nobody@example.com")
    refused = submit(page, "Test")
    assert refused.status == 400 and "There is no user nobody@example.com" in alert(page)
    shots.take(page, "unknown-user")

    # A failing action: the error shown, its secrets redacted.
    registry.update("roles", code=CLAIM.replace("event.secrets.API_TOKEN", "event.secrets.API_TOKEN + 1"))
    visit(page, live_server.url + "/admin/actions/roles")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    assert submit(page, "Test").status == 200
    assert "It failed" in alert(page) and TOKEN not in page.content()


def test_delete_with_confirmation(page: Page, shots: Screenshots, live_server: LiveServer,
                                  admin: Any) -> None:
    registry.create("roles", CLAIM, {"API_TOKEN": TOKEN})
    registry.create("keep", TEMPLATE)
    assert sign_in_admin(page, live_server, EMAIL, PASSWORD, "/admin/actions/roles").status == 200
    follow(page, "Delete roles…")
    assert path_of(page) == "/admin/actions/roles/delete" and heading(page) == "Delete this action?"
    shots.take(page, "confirm")
    assert "API_TOKEN" in page.locator("main").inner_text() and TOKEN not in page.content()
    assert names() == ["roles", "keep"]  # asking deletes nothing

    assert submit(page, "Delete the action").status == 200 and path_of(page) == "/admin/actions?done=deleted"
    shots.take(page, "deleted")
    assert page.get_by_role("status").inner_text() == "The action is deleted."
    assert names() == ["keep"]
    assert sapi("Delete action").details["action"]["name"] == "roles"
    assert visit(page, live_server.url + "/admin/actions/roles/delete").status == 404
