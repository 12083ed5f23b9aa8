"""`idp actions …`: create, update, list, order, enable, disable, delete, and test against a user."""

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp import create_app
from idp.actions import registry
from idp.actions.models import Action
from idp.db import db
from idp.errors import ConfigurationError
from idp.users.models import User
from tests.actions.conftest import signed_in
from tests.conftest import base_config
from tests.support import Browser, RegisteredClient

CLAIM = '''
def on_execute_post_login(event, api):
    api.id_token.set_custom_claim("greeting", event.secrets.GREETING + " " + event.user.email)
    api.user.set_app_metadata("greeted", True)
'''


def idp(app: Flask, *args: str) -> Any:
    """Run an `idp` command in the app; return the result."""
    return app.test_cli_runner().invoke(args=list(args))


def test_create_list_order_enable_disable_delete(app: Flask, tmp_path: Path):
    source = tmp_path / "greet.py"
    source.write_text(CLAIM)
    created = idp(app, "actions", "create", "--name", "greet", "--file", str(source),
                  "--secret", "GREETING=hello-there")
    assert created.exit_code == 0, created.output
    assert idp(app, "actions", "create", "--name", "second", "--file", str(source)).exit_code == 0
    listed = idp(app, "actions", "list").output.splitlines()
    assert [line.split()[2] for line in listed] == ["greet", "second"]
    assert "secrets: GREETING" in listed[0] and "hello-there" not in "\n".join(listed)
    assert idp(app, "actions", "order", "second", "greet").exit_code == 0
    assert [a.name for a in registry.in_order()] == ["second", "greet"]
    assert idp(app, "actions", "disable", "greet").exit_code == 0
    assert "disabled  greet" in idp(app, "actions", "list").output
    assert [a.name for a in registry.enabled_in_order()] == ["second"]
    assert idp(app, "actions", "enable", "greet").exit_code == 0
    assert idp(app, "actions", "delete", "second").exit_code == 0
    assert [a.name for a in registry.in_order()] == ["greet"]
    # Stored sealed: the secret's value is not in the row.
    row = db.session.get(Action, registry.find("greet").id)
    assert row is not None and b"hello-there" not in (row.secrets_encrypted or b"")


def test_refusals_say_why(app: Flask, tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("def on_execute_post_login(event):\n    pass\n")
    answer = idp(app, "actions", "create", "--name", "bad", "--file", str(bad))
    assert answer.exit_code == 1 and "must take (event, api)" in answer.output
    bad.write_text("def on_execute_post_login(event, api)\n")
    answer = idp(app, "actions", "create", "--name", "bad", "--file", str(bad))
    assert "does not compile: line 1" in answer.output
    bad.write_text("def other(event, api):\n    pass\n")
    assert "defines no top-level function" in idp(app, "actions", "create", "--name", "x", "--file",
                                                  str(bad)).output
    bad.write_text("x = 1\n" * 20_000 + CLAIM)
    assert "longer than 100000" in idp(app, "actions", "create", "--name", "x", "--file", str(bad)).output
    bad.write_text(CLAIM)
    long_value = "GREETING=" + "v" * 4097
    assert "at most 4096" in idp(app, "actions", "create", "--name", "x", "--file", str(bad),
                                 "--secret", long_value).output
    assert "at most 128" in idp(app, "actions", "create", "--name", "x", "--file", str(bad),
                                "--secret", "K" * 129 + "=v").output
    assert "no action named 'nope'" in idp(app, "actions", "enable", "nope").output
    assert registry.in_order() == []


def test_update_replaces_the_code_and_merges_secrets(app: Flask, user: User, rp: RegisteredClient,
                                                     browser: Browser, tmp_path: Path):
    source = tmp_path / "greet.py"
    source.write_text(CLAIM)
    idp(app, "actions", "create", "--name", "greet", "--file", str(source), "--secret", "GREETING=hello")
    assert signed_in(browser, rp)["id_claims"]["greeting"] == "hello ada@example.com"
    answer = idp(app, "actions", "update", "greet", "--secret", "GREETING=welcome", "--secret", "OTHER=x1")
    assert answer.exit_code == 0, answer.output
    assert registry.find("greet").secrets == {"GREETING": "welcome", "OTHER": "x1"}
    assert signed_in(browser, rp)["id_claims"]["greeting"] == "welcome ada@example.com"
    source.write_text(CLAIM.replace("greeting", "salutation"))
    idp(app, "actions", "update", "greet", "--file", str(source), "--secret", "OTHER=")
    assert registry.find("greet").secrets == {"GREETING": "welcome"}
    assert signed_in(browser, rp)["id_claims"]["salutation"] == "welcome ada@example.com"


def test_test_prints_what_the_action_would_do_and_applies_nothing(app: Flask, user: User,
                                                                  rp: RegisteredClient, tmp_path: Path):
    source = tmp_path / "greet.py"
    source.write_text(CLAIM + "    api.access_token.add_scope('read:' + event.client.client_id)\n")
    idp(app, "actions", "create", "--name", "greet", "--file", str(source), "--secret", "GREETING=hi")
    idp(app, "actions", "disable", "greet")  # a disabled action can be tried before it runs for anyone
    answer = idp(app, "actions", "test", "greet", "--email", "ADA@example.com")
    assert answer.exit_code == 0, answer.output
    assert answer.output.splitlines() == [
        'id_token_claim  "greeting"  "hi ada@example.com"',
        'app_metadata  "greeted"  true',
        'add_scope  "read:test-client"',
    ]
    assert f'"read:{rp.id}"' in idp(app, "actions", "test", "greet", "--email", "ada@example.com",
                                    "--client", rp.id).output
    db.session.expire_all()
    assert db.session.get(User, user.id).app_metadata == {}  # nothing applied


def test_test_sees_the_clients_metadata(app: Flask, user: User, rp: RegisteredClient, tmp_path: Path):
    source = tmp_path / "tenant.py"
    source.write_text("def on_execute_post_login(event, api):\n"
                      "    api.id_token.set_custom_claim('metadata', dict(event.client.metadata))\n")
    idp(app, "actions", "create", "--name", "tenant", "--file", str(source))
    assert idp(app, "clients", "update", "--metadata", "tenant=acme", "--", rp.id).exit_code == 0
    tried = idp(app, "actions", "test", "tenant", "--email", "ada@example.com", "--client", rp.id)
    assert tried.output.splitlines() == ['id_token_claim  "metadata"  {"tenant": "acme"}'], tried.output
    # The test client has none.
    tried = idp(app, "actions", "test", "tenant", "--email", "ada@example.com")
    assert tried.output.splitlines() == ['id_token_claim  "metadata"  {}'], tried.output


def test_test_shows_a_failure_with_its_output_redacted(app: Flask, user: User, tmp_path: Path):
    source = tmp_path / "fails.py"
    source.write_text("def on_execute_post_login(event, api):\n"
                      "    print('token', event.secrets.API_TOKEN)\n    raise KeyError('missing')\n")
    idp(app, "actions", "create", "--name", "fails", "--file", str(source),
        "--secret", "API_TOKEN=tok-123456")
    answer = idp(app, "actions", "test", "fails", "--email", "ada@example.com")
    assert answer.exit_code == 1
    assert "KeyError" in answer.output and "token [redacted]" in answer.output
    assert "tok-123456" not in answer.output
    assert "no user nobody@example.com" in idp(app, "actions", "test", "fails", "--email",
                                               "nobody@example.com").output


def test_commands_are_checked_on_the_provider_side(app: Flask, user: User, tmp_path: Path):
    source = tmp_path / "odd.py"
    cases = {
        "api.id_token.set_custom_claim('big', 'x' * 20000)": "longer than 16384 characters of JSON",
        "api.access_token.add_scope('two words')": "a scope must be 1 to 256 printable ASCII",
        "api.id_token.set_custom_claim('tags', {1, 2})": "is not JSON",
        "api.access.deny(42)": "takes the reason as text",
        "api.access_token.set_custom_claim('client_id', 'other')": "'client_id' is registered",
    }
    for number, (line, refusal) in enumerate(cases.items()):
        source.write_text(f"def on_execute_post_login(event, api):\n    {line}\n")
        idp(app, "actions", "create", "--name", f"odd{number}", "--file", str(source))
        answer = idp(app, "actions", "test", f"odd{number}", "--email", "ada@example.com")
        assert answer.exit_code == 1 and refusal in answer.output, (line, answer.output)


def test_the_event_reads_by_attribute_and_copies(app: Flask, user: User, tmp_path: Path):
    source = tmp_path / "event.py"
    source.write_text("import copy\n\ndef on_execute_post_login(event, api):\n"
                      "    seen = copy.deepcopy(event)\n"
                      "    api.id_token.set_custom_claim('seen', [seen.user.email, seen.user.nickname,\n"
                      "        event.connection.name, event.transaction.requested_scopes,\n"
                      "        event.stats.logins_count,\n"
                      "        event.client.name, event.user.migration])\n")
    idp(app, "actions", "create", "--name", "event", "--file", str(source))
    answer = idp(app, "actions", "test", "event", "--email", "ada@example.com")
    assert answer.output.strip() == (
        'id_token_claim  "seen"  ["ada@example.com", null, '
        '"Username-Password-Authentication", ["openid"], 0, "Test client", null]')


@pytest.mark.parametrize("value", [0, -1, "soon", True])
def test_a_bad_actions_timeout_stops_start_up(tmp_path: Path, value: Any):
    with pytest.raises(ConfigurationError, match="ACTIONS_TIMEOUT must be a positive number"):
        create_app({**base_config(f"sqlite:///{tmp_path / 'idp.sqlite3'}", tmp_path),
                    "ACTIONS_TIMEOUT": value})


def test_a_refused_change_leaves_the_action_as_it_was(app: Flask):
    noop = "def on_execute_post_login(event, api):\n    pass\n"
    action = registry.create("keep", noop, {"KEY": "value"})
    for change in [{"name": "renamed", "code": "def on_execute_post_login(event):\n    pass\n"},
                   {"name": "renamed", "code": noop + "# new\n", "secrets": {"not an identifier": "x"}}]:
        with pytest.raises(registry.InvalidAction):
            registry.change(action, **change)
        # Unchanged in this very session, before any rollback.
        assert (action.name, action.code, action.secrets) == ("keep", noop, {"KEY": "value"})
