"""Every migration flow, end to end through the hosted pages, for each template over a live store.

A connection is made from the template with the store's configuration, and a first-party relying
party is bound to it. The user's `sub` must be "<connection id>|<legacy user_id>" whichever flow
brought them over: login here, password reset there.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from sqlalchemy import func, select

from idp.connections import registry as connections
from idp.connections.models import Connection, MigrationEvent
from idp.db import db
from idp.oauth.clients import create_client
from idp.users.models import User
from tests.migration.templates.conftest import Person, Store
from tests.support import Browser, RegisteredClient, csrf_token, query

CANT = "We can&#39;t sign you in right now"
WRONG = "Wrong email or password."


@dataclass
class Migrating:
    """A migrating connection over a live store, and a relying party that uses it."""

    store: Store
    connection: Connection
    rp: RegisteredClient

    def sub(self, person: Person) -> str:
        """Return the `sub` the person must get: the same from every flow."""
        return f"{self.connection.id}|{self.store.profile(person)['user_id']}"


@pytest.fixture
def migrating(app, store: Store) -> Migrating:
    """A connection made from the store's template, as `idp connections create --migrate` does."""
    app.config.update(SCRIPT_TIMEOUT=10)
    name = "legacy-" + store.template.replace("_", "-")
    connection = connections.create(name, migrating=True, template_name=store.template,
                                    configuration=store.configuration)
    assert connection.login_script == connection.get_user_script == connections.template(store.template)
    client, secret = create_client("Legacy App", ["https://legacy-app.example.com/cb"], first_party=True,
                                   connection_id=connection.id)
    return Migrating(store, connection, RegisteredClient(client.id, secret, "https://legacy-app.example.com/cb"))


def users() -> int:
    """Count local users."""
    return db.session.scalar(select(func.count()).select_from(User))


def sources() -> list[str | None]:
    """Return how each migrated user came over."""
    return list(db.session.scalars(select(MigrationEvent.source).where(MigrationEvent.type == "migrated")))


def signed_in_sub(browser: Browser, rp: RegisteredClient, email: str, password: str) -> str:
    """Sign in as a signed-out visitor, as the relying party sees it: return the ID token's `sub`.

    The ID token is checked against the published keys and must agree with userinfo.
    """
    browser.client.delete_cookie("idp_session")
    callback = browser.sign_in(rp, email, password)
    assert "code" in callback, callback
    tokens = browser.exchange(rp, callback["code"]).json
    header = jwt.get_unverified_header(tokens["id_token"])
    keys = {k["kid"]: k for k in browser.get("/.well-known/jwks.json").json["keys"]}
    claims = jwt.decode(tokens["id_token"], jwt.PyJWK(keys[header["kid"]]).key, algorithms=["RS256"],
                        audience=rp.id)
    userinfo = browser.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json
    assert userinfo["sub"] == claims["sub"]
    return claims["sub"]


def post_login(browser: Browser, rp: RegisteredClient, email: str, password: str) -> Any:
    """Post the login form as a signed-out visitor; return the response."""
    browser.client.delete_cookie("idp_session")
    first = browser.authorize(rp)
    return browser.login(first.headers["Location"], email, password)


def check_moved_over(migrating: Migrating, person: Person) -> User:
    """Check the local user against the legacy profile; return it."""
    user = db.session.get(User, migrating.sub(person))
    assert user is not None and user.connection_id == migrating.connection.id
    profile = migrating.store.profile(person)
    assert user.email == profile["email"]
    for name in ("name", "given_name", "family_name", "nickname"):
        assert getattr(user, name) == profile.get(name), name
    assert user.app_metadata == profile.get("app_metadata", {})
    assert user.user_metadata == profile.get("user_metadata", {})
    assert user.legacy_id == str(profile["user_id"])
    assert user.password_hash.startswith("$argon2id$")
    return user


def first_login_moves_the_user_over(browser: Browser, migrating: Migrating) -> None:
    store = migrating.store
    lin, max_ = store.person("lin"), store.person("max")
    assert signed_in_sub(browser, migrating.rp, lin.email.lower(), lin.password) == migrating.sub(lin)
    user = check_moved_over(migrating, lin)
    assert user.email_verified is store.profile(lin)["email_verified"]
    assert sources() == ["login"]

    store.stop()  # the legacy store is gone: a user who moved over does not notice
    assert signed_in_sub(browser, migrating.rp, lin.email, lin.password) == migrating.sub(lin)
    refused = post_login(browser, migrating.rp, lin.email, "not the password")
    assert refused.status_code == 400 and WRONG in refused.text
    # One who has not moved yet meets an outage, not a wrong password, and nothing is created.
    failed = post_login(browser, migrating.rp, max_.email, max_.password)
    assert failed.status_code == 503 and CANT in failed.text
    assert users() == 1


def test_first_login_moves_the_user_over_and_later_logins_are_local(browser, migrating):
    first_login_moves_the_user_over(browser, migrating)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("store", ["postgres", "aspnet_membership"], indirect=True)
def test_first_login_with_the_provider_on_postgresql(browser, migrating):
    first_login_moves_the_user_over(browser, migrating)


def test_wrong_password_and_unknown_user_create_nothing(browser, migrating):
    lin = migrating.store.person("lin")
    for email, password in ((lin.email, "not the password"), ("nobody@example.com", lin.password)):
        response = post_login(browser, migrating.rp, email, password)
        assert response.status_code == 400 and WRONG in response.text
    assert users() == 0


def test_signup_is_refused_while_the_legacy_user_exists(browser, migrating):
    response = browser.authorize(migrating.rp)
    url = f"/u/signup?state={query(response.headers['Location'])['state']}"
    page = browser.get(url)
    for person in (migrating.store.person("lin"), migrating.store.person("max")):
        form = {"csrf_token": csrf_token(page.text), "email": person.email.upper(),
                "password": "a whole new password"}
        taken = browser.client.post(url, data=form)
        assert taken.status_code == 400 and "already exists" in taken.text
    assert users() == 0


def reset_moves_the_user_over(browser: Browser, migrating: Migrating, mailbox: Any) -> None:
    store = migrating.store
    lin = store.person("lin")
    response = browser.authorize(migrating.rp)
    url = f"/u/reset-password?state={query(response.headers['Location'])['state']}"
    page = browser.get(url)
    sent = browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": lin.email.upper()})
    assert sent.status_code == 200 and users() == 0
    link = urlsplit(mailbox.link(mailbox.wait_for(lin.email)))
    link_path = f"{link.path}?{link.query}"
    form = browser.get(link_path)
    new = "a brand new password, chosen in idp"
    done = browser.client.post(link_path, data={"csrf_token": csrf_token(form.text), "password": new,
                                                "confirm": new})
    assert done.status_code == 200 and "Password changed" in done.text
    user = check_moved_over(migrating, lin)  # the id, and the profile, that login would have given
    assert user.email_verified is True  # the reset proved the address
    assert sources() == ["password_reset"]

    store.stop()  # later logins are local
    assert signed_in_sub(browser, migrating.rp, lin.email, new) == migrating.sub(lin)
    old = post_login(browser, migrating.rp, lin.email, lin.password)
    assert old.status_code == 400 and WRONG in old.text
    assert users() == 1


def test_password_reset_moves_the_user_over_with_the_new_password(browser, migrating, mailbox):
    reset_moves_the_user_over(browser, migrating, mailbox)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_password_reset_with_the_provider_on_postgresql(browser, migrating, mailbox):
    reset_moves_the_user_over(browser, migrating, mailbox)


@pytest.mark.parametrize("store", ["aspnet_membership"], indirect=True)
def test_a_locked_out_member_cannot_sign_in_but_moves_over_by_resetting(browser, migrating, mailbox):
    locked = migrating.store.person("locked")
    refused = post_login(browser, migrating.rp, locked.email, locked.password)
    assert refused.status_code == 400 and WRONG in refused.text and users() == 0
    response = browser.authorize(migrating.rp)
    url = f"/u/reset-password?state={query(response.headers['Location'])['state']}"
    page = browser.get(url)
    browser.client.post(url, data={"csrf_token": csrf_token(page.text), "email": locked.email})
    link = urlsplit(mailbox.link(mailbox.wait_for(locked.email)))
    form = browser.get(f"{link.path}?{link.query}")
    new = "unlocked by proving the mailbox"
    done = browser.client.post(f"{link.path}?{link.query}",
                               data={"csrf_token": csrf_token(form.text), "password": new, "confirm": new})
    assert done.status_code == 200
    user = check_moved_over(migrating, locked)
    assert user.app_metadata == {"aspnet_approved": True, "aspnet_locked_out": True}
    assert signed_in_sub(browser, migrating.rp, locked.email, new) == migrating.sub(locked)
