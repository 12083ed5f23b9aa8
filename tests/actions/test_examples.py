"""The README's two post-login actions, run as written through the code flow and a refresh."""

import re
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from idp.actions import registry
from idp.db import db
from idp.users.models import User
from tests.actions.conftest import refresh, signed_in, verified
from tests.support import Browser, RegisteredClient

README = Path(__file__).parent.parent.parent / "README.md"


def examples() -> list[str]:
    """Return the Python blocks of the README's "Post-login actions" section."""
    text = README.read_text()
    section = text[text.index("## Post-login actions"):text.index("## Signing keys")]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_roles_reach_both_tokens_and_refresh_drops_offline_access_for_non_admins(
        app: Flask, user: User, rp: RegisteredClient, browser: Browser):
    roles, _ = examples()
    user.app_metadata = {"roles": ["editor"]}
    db.session.commit()
    registry.create("roles", roles)
    body = signed_in(browser, rp, scope="openid profile offline_access")
    assert "offline_access" in body["access_claims"]["scope"].split()
    assert body["id_claims"]["https://example.com/roles"] == ["editor"]
    assert body["access_claims"]["https://example.com/roles"] == ["editor"]
    again = refresh(browser, rp, body["refresh_token"])
    assert again.status_code == 200, again.text
    assert verified(browser, again.json["access_token"])["scope"] == "openid profile"


def test_backfill_fills_what_a_migrated_user_lacks(app: Flask, user: User, rp: RegisteredClient,
                                                   browser: Browser):
    _, backfill = examples()
    user.migrated_at, user.migrated_via, user.legacy_id = datetime.now(UTC), "login", "legacy-7"
    user.app_metadata = {"legacy_locale": "fr"}
    user.user_metadata = {"plan": "pro"}
    db.session.commit()
    registry.create("backfill", backfill, {"DEFAULT_LOCALE": "en", "DEFAULT_PLAN": "basic"})
    body = signed_in(browser, rp)
    assert body["id_claims"]["https://example.com/migrated_via"] == "login"
    db.session.expire_all()
    assert db.session.get(User, user.id).user_metadata == {"plan": "pro", "locale": "fr"}
