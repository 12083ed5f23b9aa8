"""`idp users list|show|delete`, `idp connections delete` and `idp clients update`, on real databases."""

import json
from typing import Any

import click
import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.connections import registry as connections
from idp.connections.models import NATIVE_ID, Connection, MigrationEvent
from idp.db import db
from idp.oauth.clients import create_client
from idp.oauth.models import AuthorizationCode, Client, Consent, Grant, Token
from idp.pages import links
from idp.pages.models import AccountToken
from idp.users.accounts import create_user
from idp.users.models import Session, User
from tests.conftest import PASSWORD
from tests.support import Browser, RegisteredClient

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
# A migrating connection whose legacy store must never be asked by list, show or delete.
ASKED = '''
def login(email, password, configuration):
    raise RuntimeError("the legacy store was asked")


def get_user(email, configuration):
    raise RuntimeError("the legacy store was asked")
'''


def run(app: Flask, *args: str, input: str | None = None) -> Any:
    """Invoke the idp CLI in-process; the test then sees what it committed."""
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    db.session.expire_all()
    return result


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def migrating(name: str) -> Connection:
    connection = connections.create(name, migrating=True)
    connections.configure(connection, login=ASKED, get_user=ASKED)
    return connection


# `idp users list` and `idp users show`


def test_list_and_show_users_as_auth0_does_without_the_password_or_the_legacy_store(app, user):
    shop = migrating("shop-db")
    grace = create_user("grace@example.com", PASSWORD, shop.id, name="Grace Hopper")
    also = create_user("Ada@Example.com", PASSWORD, shop.id)  # one email, two connections

    listed = run(app, "users", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["user_id"] for r in rows] == [user.id, grace.id, also.id]
    assert rows[0]["connection"] == "Username-Password-Authentication" and rows[1]["connection"] == "shop-db"
    assert set(rows[0]) >= {"user_id", "email", "email_verified", "name", "given_name", "family_name",
                            "created_at", "updated_at", "last_login", "migrated_at", "legacy_id"}
    assert rows[0]["email_verified"] is True and rows[0]["created_at"].endswith("Z")
    assert rows[0]["last_login"] is None
    only = json.loads(run(app, "users", "list", "--connection", "shop-db", "--json").output)
    assert [r["email"] for r in only] == ["grace@example.com", "Ada@Example.com"]
    human = run(app, "users", "list").output
    assert f"{grace.id}  grace@example.com  (shop-db, unverified)" in human

    by_id = json.loads(run(app, "users", "show", user.id, "--json").output)
    assert by_id["name"] == "Ada Lovelace" and by_id["connection"] == "Username-Password-Authentication"
    by_email = json.loads(run(app, "users", "show", "GRACE@example.com", "--json").output)
    assert by_email["user_id"] == grace.id
    both = run(app, "users", "show", "ada@example.com")
    assert both.exit_code != 0 and "name one with --connection" in both.output
    chosen = run(app, "users", "show", "ada@example.com", "--connection", "shop-db", "--json")
    assert json.loads(chosen.output)["user_id"] == also.id
    assert "email_verified:" in run(app, "users", "show", grace.id).output

    everything = "".join(run(app, "users", *args).output for args in (
        ("list",), ("list", "--json"), ("show", user.id), ("show", user.id, "--json")))
    assert "argon2" not in everything and "password_hash" not in everything
    # Not in idp's database: not found, and the legacy store was never asked.
    missing = run(app, "users", "show", "lin@example.com", "--connection", "shop-db")
    assert missing.exit_code != 0 and "no user lin@example.com in shop-db" in missing.output
    assert "Traceback" not in missing.output
    assert count(MigrationEvent) == 0
    wrong = run(app, "users", "show", grace.id, "--connection", "Username-Password-Authentication")
    assert wrong.exit_code != 0 and "no user" in wrong.output
    nowhere = run(app, "users", "list", "--connection", "nope")
    assert nowhere.exit_code != 0 and "no connection named 'nope'" in nowhere.output


# `idp users delete`


def _signed_in(app: Flask, rp: RegisteredClient, email: str) -> User:
    """Sign a user in through a client, exchange the code, and give them a consent and a mailed link."""
    browser = Browser(app.test_client())
    code = browser.sign_in(rp, email, PASSWORD)["code"]
    assert browser.exchange(rp, code).status_code == 200
    browser.sign_in(rp, email, PASSWORD)  # a second code, never exchanged
    user = db.session.scalar(select(User).where(User.email == email))
    db.session.add(Consent(user_id=user.id, client_id=rp.id, scope="openid"))
    links.issue(links.VERIFY_EMAIL, email, user.connection_id, user.id)
    db.session.commit()
    return user


def _footprint(user_id: str) -> dict[str, int]:
    grants = select(Grant.id).where(Grant.user_id == user_id)
    return {
        "users": count(User, User.id == user_id),
        "sessions": count(Session, Session.user_id == user_id),
        "grants": count(Grant, Grant.user_id == user_id),
        "tokens": count(Token, Token.grant_id.in_(grants)),
        "codes": count(AuthorizationCode, AuthorizationCode.user_id == user_id),
        "consents": count(Consent, Consent.user_id == user_id),
        "account_tokens": count(AccountToken, AccountToken.user_id == user_id),
    }


@BOTH
def test_delete_takes_the_users_sessions_grants_tokens_and_links_and_nothing_else(app, rp, user):
    other = create_user("grace@example.com", PASSWORD, NATIVE_ID, name="Grace Hopper")
    _signed_in(app, rp, user.email)
    _signed_in(app, rp, other.email)
    theirs, before = _footprint(user.id), _footprint(other.id)
    assert all(theirs.values()) and all(before.values()), (theirs, before)
    user_id = user.id

    kept = run(app, "users", "delete", user_id, input="n\n")
    assert kept.exit_code != 0 and "Delete user" in kept.output
    assert _footprint(user_id) == theirs
    done = run(app, "users", "delete", user_id, input="y\n")
    assert done.exit_code == 0, done.output
    assert f"deleted user {user_id} <ada@example.com>" in done.output

    assert set(_footprint(user_id).values()) == {0}
    assert _footprint(other.id) == before
    assert db.session.get(Client, rp.id) is not None
    again = run(app, "users", "delete", "--yes", user_id)
    assert again.exit_code != 0 and f"no user with id {user_id}" in again.output
    assert "Traceback" not in again.output


def test_deleting_a_migrated_user_warns_that_they_may_move_over_again(app):
    shop = migrating("shop-db")
    grace = create_user("grace@example.com", PASSWORD, shop.id)
    done = run(app, "users", "delete", "--yes", "--", grace.id)
    assert done.exit_code == 0 and "move over again" in done.output
    assert count(MigrationEvent) == 0  # the legacy store was not asked


# `idp connections delete`


def test_the_native_connection_is_never_deleted(app):
    refused = run(app, "connections", "delete", "Username-Password-Authentication", "--yes", "--force")
    assert refused.exit_code != 0 and "native connection" in refused.output
    assert db.session.get(Connection, NATIVE_ID) is not None
    with pytest.raises(connections.InvalidConnection):
        connections.delete(db.session.get(Connection, NATIVE_ID), with_users=True)


def test_a_connection_in_use_by_clients_is_refused_naming_them(app):
    shop = connections.create("shop-db", migrating=False)
    client, _ = create_client("Shop", ["https://shop.example/cb"], connection_id=shop.id)
    refused = run(app, "connections", "delete", "shop-db", "--yes", "--force")
    assert refused.exit_code != 0 and f"Shop ({client.id})" in refused.output
    assert "--connection" in refused.output and "Traceback" not in refused.output
    assert db.session.get(Connection, shop.id) is not None


@BOTH
def test_users_are_deleted_with_their_connection_only_with_force(app, rp, user):
    shop = migrating("shop-db")
    grace = create_user("grace@example.com", PASSWORD, shop.id)
    grace_id = grace.id
    db.session.add(MigrationEvent(connection_id=shop.id, type="migrated", source="login", user_id=grace.id))
    links.issue(links.RESET_PASSWORD, "lin@example.com", shop.id, None)  # a legacy user's reset link
    db.session.add(Session(id="s-grace", user_id=grace.id, auth_time=0, expires_at=grace.created_at))
    db.session.commit()
    _signed_in(app, rp, user.email)
    native_before = _footprint(user.id)

    refused = run(app, "connections", "delete", "shop-db", "--yes")
    assert refused.exit_code != 0 and "has 1 user" in refused.output and "--force" in refused.output
    assert count(User, User.connection_id == shop.id) == 1
    declined = run(app, "connections", "delete", "shop-db", "--force", input="n\n")
    assert declined.exit_code != 0 and "and its 1 user?" in declined.output
    assert db.session.get(Connection, shop.id) is not None

    done = run(app, "connections", "delete", "shop-db", "--force", input="y\n")
    assert done.exit_code == 0 and "deleted connection shop-db with 1 user" in done.output
    assert db.session.get(Connection, shop.id) is None
    assert count(User, User.connection_id == shop.id) == 0
    assert count(Session, Session.user_id == grace_id) == 0
    assert count(MigrationEvent) == 0 and count(AccountToken, AccountToken.connection_id == shop.id) == 0
    assert _footprint(user.id) == native_before  # the native connection's users are untouched


@BOTH
def test_a_delete_the_database_refuses_leaves_everything_as_it_was(app):
    shop = connections.create("shop-db", migrating=False)
    grace = create_user("grace@example.com", PASSWORD, shop.id)
    # A client that arrived after the command's check: the database refuses, and the users stay.
    create_client("Late", ["https://late.example/cb"], connection_id=shop.id)
    with pytest.raises(connections.InvalidConnection, match="nothing was deleted"):
        connections.delete(shop, with_users=True)
    db.session.expire_all()
    assert db.session.get(Connection, shop.id) is not None and db.session.get(User, grace.id) is not None


def test_an_unused_empty_connection_is_deleted(app):
    connections.create("spare", migrating=True)
    assert "deleted connection spare" in run(app, "connections", "delete", "spare", "--yes").output
    missing = run(app, "connections", "delete", "spare", "--yes")
    assert missing.exit_code != 0 and "no connection named 'spare'" in missing.output


# `idp clients update`


def test_update_changes_what_is_given_and_checks_it_as_create_does(app, rp):
    shop = connections.create("shop-db", migrating=False)
    updated = run(app, "clients", "update", "--name", "Renamed", "--redirect-uri", "https://rp.example.com/a",
                  "--redirect-uri", "myapp:/cb", "--third-party", "--audience", "", "--connection", "shop-db",
                  "--json", "--", rp.id)
    assert updated.exit_code == 0, updated.output
    data = json.loads(updated.output)
    assert data["client_id"] == rp.id and data["name"] == "Renamed"
    assert data["redirect_uris"] == ["https://rp.example.com/a", "myapp:/cb"]
    assert data["first_party"] is False and data["audiences"] == []
    assert data["post_logout_redirect_uris"] == ["https://rp.example.com/bye"]  # not given: kept
    assert rp.secret not in updated.output and "secret" not in updated.output
    client = db.session.get(Client, rp.id)
    assert client.connection_id == shop.id and client.check_client_secret(rp.secret)

    for args, reason in [(("--redirect-uri", "http://evil.example/cb"), "http is allowed only on loopback"),
                         (("--post-logout-redirect-uri", "https://x.example/#f"), "without fragment"),
                         (("--name", " "), "needs a name"),
                         (("--connection", "nope"), "no connection named")]:
        refused = run(app, "clients", "update", *args, "--", rp.id)
        assert refused.exit_code != 0 and reason in refused.output, refused.output
        assert "Traceback" not in refused.output
    assert json.loads(run(app, "clients", "list", "--json").output)[0] == data  # nothing changed

    human = run(app, "clients", "update", "--first-party", "--", rp.id)
    assert human.exit_code == 0 and f"updated {rp.id}" in human.output
    assert db.session.get(Client, rp.id).first_party is True
    missing = run(app, "clients", "update", "--name", "X", "--", "-no-such-client")
    assert missing.exit_code != 0 and "no client -no-such-client" in missing.output


def test_metadata_is_set_at_creation_and_merged_by_update(app):
    made = run(app, "clients", "create", "--name", "Shop", "--redirect-uri", "https://shop.example.com/cb",
               "--metadata", "tenant=acme", "--metadata", "plan-tier=gold", "--metadata", "none=", "--json")
    assert made.exit_code == 0, made.output
    client_id = json.loads(made.output)["client_id"]
    # none= is no key, as on update
    assert json.loads(made.output)["client_metadata"] == {"tenant": "acme", "plan-tier": "gold"}
    assert db.session.get(Client, client_id).client_metadata == {"tenant": "acme", "plan-tier": "gold"}

    updated = run(app, "clients", "update", "--metadata", "region=eu-west_1", "--metadata", "plan-tier=",
                  "--metadata", "tenant=acme = corp", "--json", "--", client_id)
    assert updated.exit_code == 0, updated.output
    metadata = {"tenant": "acme = corp", "region": "eu-west_1"}  # merged; plan-tier= removed it
    assert json.loads(updated.output)["client_metadata"] == metadata
    listing = json.loads(run(app, "clients", "list", "--json").output)
    (listed,) = [c for c in listing if c["client_id"] == client_id]
    assert listed["client_metadata"] == metadata
    assert db.session.get(Client, client_id).client_metadata == metadata
    # Options not given leave the metadata as it is.
    assert run(app, "clients", "update", "--name", "Shop 2", "--", client_id).exit_code == 0
    assert db.session.get(Client, client_id).client_metadata == metadata


def test_metadata_is_refused_beyond_auth0s_limits(app, rp):
    run(app, "clients", "update", "--metadata", "kept=yes", "--", rp.id)
    eleven = [arg for n in range(11) for arg in ("--metadata", f"k{n}=v")]
    for args, reason in [(eleven, "at most 10 keys"),
                         (["--metadata", "long=" + "x" * 256], "at most 255 characters"),
                         (["--metadata", "control=a\tb"], "printable"),
                         (["--metadata", "surrogate=a\udcffb"], "printable"),
                         (["--metadata", "bad key=v"], "letters, digits"),
                         (["--metadata", "dot.key=v"], "letters, digits"),
                         (["--metadata", "=v"], "letters, digits"),
                         (["--metadata", "k" * 256 + "=v"], "letters, digits"),
                         (["--metadata", "no-equals"], "KEY=VALUE")]:
        refused = run(app, "clients", "update", *args, "--", rp.id)
        assert refused.exit_code != 0 and reason in refused.output, (args[:2], refused.output)
        assert "Traceback" not in refused.output
        assert db.session.get(Client, rp.id).client_metadata == {"kept": "yes"}  # nothing changed
        created = run(app, "clients", "create", "--name", "Bad", "--redirect-uri", "https://b.example/cb",
                      *args)
        assert created.exit_code != 0 and reason in created.output, (args[:2], created.output)
    # Ten keys in all is the limit, counted after the merge; 255 characters is allowed.
    nine = [arg for n in range(9) for arg in ("--metadata", f"k{n}=" + "v" * 255)]
    assert run(app, "clients", "update", *nine, "--", rp.id).exit_code == 0
    assert len(db.session.get(Client, rp.id).client_metadata) == 10
    assert run(app, "clients", "update", "--metadata", "k9=v", "--", rp.id).exit_code != 0
    missing = run(app, "clients", "update", "--metadata", "a=b", "--", "no-such-client")
    assert missing.exit_code != 0 and "no client no-such-client" in missing.output
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.name == "Bad")) == 0


def test_a_public_client_keeps_a_redirect_uri(app, public_rp):
    refused = run(app, "clients", "update", "--redirect-uri", "", "--", public_rp.id)
    assert refused.exit_code != 0 and "at least one redirect URI" in refused.output
    assert db.session.get(Client, public_rp.id).redirect_uris == [public_rp.redirect_uri]


def test_every_operator_command_has_a_one_line_help(app):
    def walk(group: click.Group, path: str) -> list[tuple[str, click.Command]]:
        found = []
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            found.append((f"{path} {name}", command))
            if isinstance(command, click.Group):
                found += walk(command, f"{path} {name}")
        return found

    for name, command in walk(app.cli, "idp"):
        if name.startswith("idp db"):  # Flask-Migrate's; the `idp` command shows its own `db upgrade`
            continue
        assert (command.help or "").strip(), f"{name} has no help"
        assert command.get_short_help_str(limit=200), name
