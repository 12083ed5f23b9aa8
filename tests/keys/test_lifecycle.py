"""The signing-key lifecycle: publish before signing, rotate, retire, revoke, encrypt at rest."""

import threading

import jwt
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from idp.db import db
from idp.keys import kek, store
from idp.keys.models import CURRENT, NEXT, PREVIOUS, RETIRED, REVOKED, SigningKey
from idp.oauth.tokens import sign
from tests.conftest import PASSWORD
from tests.keys.support import age, jwks_kids, states
from tests.support import in_threads

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_next_key_is_published_before_it_signs(app):
    keys = states()
    assert len(keys[CURRENT]) == 1 and len(keys[NEXT]) == 1
    assert jwks_kids(app) == {keys[CURRENT][0], keys[NEXT][0]}
    assert jwt.get_unverified_header(sign({"x": 1}))["kid"] == keys[CURRENT][0]


def test_rotation_keeps_the_old_key_published_as_previous(app):
    before = states()
    rotated = store.rotate(force=True)
    after = states()
    assert rotated is not None
    new_kid = rotated.kid
    assert new_kid == before[NEXT][0] == after[CURRENT][0]
    assert after[PREVIOUS] == before[CURRENT]
    assert after[NEXT] and after[NEXT] != before[NEXT]
    assert jwks_kids(app) == {*after[CURRENT], *after[PREVIOUS], *after[NEXT]}
    assert jwt.get_unverified_header(sign({"x": 1}))["kid"] == new_kid


def test_automatic_rotation_waits_for_the_period_and_the_jwks_cache(app):
    app.config.update(KEY_ROTATION_PERIOD=3600, JWKS_MAX_AGE=600)
    keys = states()
    store.maintain()
    assert states() == keys  # nothing is due yet
    age(keys[CURRENT][0], seconds=3601)
    store.maintain()
    assert states()[CURRENT] == keys[CURRENT]  # due, but the next key is not yet cached everywhere
    age(keys[NEXT][0], seconds=601)
    store.maintain()
    assert states()[CURRENT] == keys[NEXT]
    assert states()[PREVIOUS] == keys[CURRENT]


def test_previous_key_retires_when_its_tokens_have_expired(app):
    old = states()[CURRENT][0]
    store.rotate(force=True)
    longest = max(app.config["ACCESS_TOKEN_LIFETIME"], app.config["ID_TOKEN_LIFETIME"])
    age(old, seconds=longest - 120)
    store.maintain()
    assert old in jwks_kids(app)
    age(old, seconds=240)
    store.maintain()
    retired = db.session.get(SigningKey, old)
    db.session.refresh(retired)
    assert retired.state == RETIRED and retired.private_key is None
    assert old not in jwks_kids(app)


def test_revoking_the_current_key_replaces_it_at_once(app):
    before = states()
    store.revoke(before[CURRENT][0])
    after = states()
    assert after[REVOKED] == before[CURRENT]
    assert after[CURRENT] == before[NEXT] and len(after[NEXT]) == 1
    assert before[CURRENT][0] not in jwks_kids(app)
    assert jwt.get_unverified_header(sign({"x": 1}))["kid"] == before[NEXT][0]
    with pytest.raises(store.KeyNotFound):
        store.revoke(before[CURRENT][0])


def test_private_keys_are_encrypted_at_rest(app):
    key = db.session.scalars(select(SigningKey)).first()
    assert key is not None and key.private_key is not None
    assert b"PRIVATE KEY" not in key.private_key
    assert b"PRIVATE KEY" in kek.decrypt(key.private_key)
    app.config["KEY_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    with pytest.raises(kek.KeyEncryptionKeyError):
        kek.decrypt(key.private_key)


def test_concurrent_instances_rotate_exactly_once(app):
    app.config.update(KEY_ROTATION_PERIOD=60, JWKS_MAX_AGE=0)
    keys = states()
    age(keys[CURRENT][0], seconds=120)
    db.session.remove()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def instance() -> None:
        with app.app_context():
            try:
                barrier.wait()
                store.maintain()
                store.signing_key()
            except BaseException as e:  # surfaced by the assertion below
                errors.append(e)
            finally:
                db.session.remove()

    in_threads(*[instance] * 6, timeout=30)
    assert not errors
    after = states()
    assert after[PREVIOUS] == keys[CURRENT]
    assert after[CURRENT] == keys[NEXT]
    assert len(after[NEXT]) == 1


def test_a_published_key_signs_and_verifies(app):
    kid, private = store.signing_key()
    token = jwt.encode({"sub": "x"}, private, algorithm="RS256", headers={"kid": kid})
    assert jwt.decode(token, store.public_key(kid), algorithms=["RS256"])["sub"] == "x"


def test_a_rotation_lost_to_another_instance_cannot_revive_a_spent_code(app, browser, user, rp, monkeypatch):
    callback = browser.sign_in(rp, user.email, PASSWORD)
    app.config.update(KEY_ROTATION_PERIOD=0, JWKS_MAX_AGE=0)  # rotation due on every request…
    monkeypatch.setattr(store, "_swap", lambda *args, **kwargs: False)  # …and always lost to another instance
    assert browser.exchange(rp, callback["code"]).status_code == 200
    again = browser.exchange(rp, callback["code"])
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"
