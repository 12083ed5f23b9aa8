"""`idp connections …`, `idp migration status` and `idp clients … --connection`."""

import json
from pathlib import Path

from idp.connections.models import Connection
from idp.db import db
from idp.oauth.models import Client
from tests.migration.conftest import LEGACY_PASSWORD, SCRIPT

SECRET = "s3cr3t-dsn-password-value"


def run(app, *args: str):
    """Invoke the idp CLI in-process."""
    return app.test_cli_runner().invoke(args=list(args))


def test_create_show_and_list_never_show_a_secret_in_full(app):
    made = run(app, "connections", "create", "--name", "shop-db", "--migrate", "--template", "noop",
               "--config", f"dsn=postgresql://legacy:{SECRET}@db/shop", "--config", "timeout=5")
    assert made.exit_code == 0, made.output
    shown = run(app, "connections", "show", "shop-db", "--json")
    data = json.loads(shown.output)
    assert data["migrating"] is True and set(data["configuration"]) == {"dsn", "timeout"}
    assert SECRET not in shown.output and "chars" in data["configuration"]["dsn"]
    listed = run(app, "connections", "list")
    assert "shop-db  (migrating)" in listed.output
    assert "Username-Password-Authentication  (native)" in listed.output
    stored = db.session.scalar(
        db.select(Connection.configuration_encrypted).where(Connection.name == "shop-db"))
    assert SECRET.encode() not in stored  # encrypted at rest


def test_create_refuses_bad_input_clearly(app):
    assert "no template 'nope'" in run(app, "connections", "create", "--name", "x", "--migrate",
                                       "--template", "nope").output
    bad = run(app, "connections", "create", "--name", "x", "--migrate", "--config", f"novalue{SECRET}")
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output and SECRET not in bad.output
    run(app, "connections", "create", "--name", "x", "--migrate")
    assert "already exists" in run(app, "connections", "create", "--name", "x", "--migrate").output
    assert "belong to migrating" in run(app, "connections", "create", "--name", "y", "--config", "a=b").output
    # Auth0's rule for names, which also keeps every name usable in the dashboard's URLs.
    for name in ["a/b", "..", "legacy db", "-legacy", "legacy-", "legacy_db", "é", "a" * 129, ""]:
        refused = run(app, "connections", "create", "--name", name, "--migrate")
        assert refused.exit_code != 0 and "letters, digits and '-'" in refused.output, name
    assert run(app, "connections", "create", "--name", "Legacy-2-" + "a" * 119).exit_code == 0
    assert db.session.query(Connection).filter(Connection.name.like("%/%")).count() == 0


def test_scripts_are_checked_before_they_are_stored(app, tmp_path: Path):
    run(app, "connections", "create", "--name", "shop-db", "--migrate")
    broken = tmp_path / "broken.py"
    broken.write_text("def login(email, password, configuration):\n    return {\n")
    answer = run(app, "connections", "scripts", "shop-db", "--login", str(broken))
    assert answer.exit_code != 0 and "line 2" in answer.output
    missing = tmp_path / "missing.py"
    missing.write_text("def other():\n    pass\n")
    assert "defines no function `get_user`" in run(app, "connections", "scripts", "shop-db", "--get-user",
                                                     str(missing)).output
    wrong_args = tmp_path / "args.py"
    wrong_args.write_text("def login(email):\n    return None\n")
    assert "must take (email, password, configuration)" in run(
        app, "connections", "scripts", "shop-db", "--login", str(wrong_args)).output
    good = tmp_path / "good.py"
    good.write_text(SCRIPT)
    stored = run(app, "connections", "scripts", "shop-db", "--login", str(good), "--get-user", str(good))
    assert stored.exit_code == 0
    assert db.session.scalar(db.select(Connection.login_script).where(Connection.name == "shop-db")) == SCRIPT


def test_test_command_shows_both_profiles_and_their_differences(app, legacy, tmp_path: Path):
    agree = run(app, "connections", "test", "legacy-db", "--email", "lin@example.com",
                "--password", LEGACY_PASSWORD)
    assert agree.exit_code == 0 and "the profiles agree" in agree.output and "Lin Legacy" in agree.output
    assert LEGACY_PASSWORD not in agree.output and str(legacy.path) not in agree.output
    asked = app.test_cli_runner().invoke(input=LEGACY_PASSWORD + "\n", args=[
        "connections", "test", "legacy-db", "--email", "lin@example.com", "--password", ""])
    assert asked.exit_code == 0 and "the profiles agree" in asked.output  # prompted for, not in argv
    differing = tmp_path / "differing.py"
    # get_user gives another id and name than login: users would be duplicated or changed.
    differing.write_text(SCRIPT.replace("return _profile(row) if row else None",
                                        "return dict(_profile(row), user_id=7, name='X') if row else None"))
    run(app, "connections", "scripts", "legacy-db", "--get-user", str(differing))
    answer = run(app, "connections", "test", "legacy-db", "--email", "lin@example.com", "--password",
                 LEGACY_PASSWORD)
    assert answer.exit_code == 1 and "the profiles differ" in answer.output
    assert "user_id: '7' ≠ '42'" in answer.output and "name: 'X' ≠ 'Lin Legacy'" in answer.output
    wrong = run(app, "connections", "test", "legacy-db", "--email", "lin@example.com", "--password", "nope")
    assert "login: wrong email or password" in wrong.output
    failing = tmp_path / "failing.py"
    failing.write_text("def get_user(email, configuration):\n"
                       "    raise RuntimeError('cannot open ' + configuration['path'])\n")
    run(app, "connections", "scripts", "legacy-db", "--get-user", str(failing))
    failed = run(app, "connections", "test", "legacy-db", "--email", "lin@example.com")
    assert failed.exit_code != 0 and "RuntimeError" in failed.output and str(legacy.path) not in failed.output


def test_disconnect_and_status(app, browser, legacy):
    browser.sign_in(legacy.rp, "lin@example.com", LEGACY_PASSWORD)
    report = json.loads(run(app, "migration", "status", "legacy-db", "--json").output)
    assert report["connection"] == "legacy-db" and report["migrated"] == 1
    assert report["by_source"] == {"login": 1} and report["last_migrated_at"]
    assert report["recent_failures"] == []
    listing = json.loads(run(app, "migration", "status", "--json").output)
    assert [r["connection"] for r in listing] == ["legacy-db"]
    human = run(app, "migration", "status")
    assert "legacy-db: 1 migrated (login: 1)" in human.output
    assert run(app, "connections", "disconnect", "legacy-db").exit_code == 0
    assert "disconnected" in run(app, "migration", "status").output
    assert "no connection named" in run(app, "connections", "disconnect", "nope").output


def test_clients_choose_their_connection(app, legacy):
    made = run(app, "clients", "create", "--name", "Shop", "--redirect-uri", "https://shop.example/cb",
               "--connection", "legacy-db", "--json")
    client_id = json.loads(made.output)["client_id"]
    assert db.session.get(Client, client_id).connection_id == legacy.connection.id
    moved = run(app, "clients", "set-connection", client_id, "Username-Password-Authentication")
    assert moved.exit_code == 0
    db.session.expire_all()
    assert db.session.get(Client, client_id).connection_id == "con_native"
    assert "no connection named" in run(app, "clients", "set-connection", client_id, "nope").output
    assert "no connection named" in run(app, "clients", "create", "--name", "X", "--redirect-uri",
                                        "https://x.example/cb", "--connection", "nope").output
