"""The keys page: every signing key and its state, rotating (as `idp keys rotate`, --force included) and
revoking (as `idp keys revoke`) after a confirmation, each change recorded in the log."""

import math
from datetime import datetime

from flask import Response, current_app, redirect, request, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from idp.admin import audit
from idp.admin.views import bp, render
from idp.db import db, utcnow
from idp.keys import store
from idp.keys.models import CURRENT, NEXT, PUBLISHED, REVOKED, SigningKey


def _seconds_until(moment: datetime) -> int:
    """Return the whole seconds from now until a moment, rounded up."""
    return max(0, math.ceil((moment - utcnow()).total_seconds()))


def _too_new(early: store.NextKeyTooNew) -> str:
    """Say why a rotation was refused, in the words `idp keys rotate` uses."""
    max_age = current_app.config["JWKS_MAX_AGE"]
    lag = int(store.cache_window().total_seconds()) - max_age  # until every process serves a new key
    return (f"Not rotating: the next key {early.kid} has been published for less than the JWKS cache "
            f"lifetime (JWKS_MAX_AGE={max_age}s, plus {lag}s for every process to serve it), so relying "
            "parties may still hold a JWKS without it. "
            f"It becomes safe to sign in {_seconds_until(early.safe_at)}s, at "
            f"{early.safe_at:%Y-%m-%d %H:%M:%S}Z; tick \u201cRotate anyway\u201d to rotate all the same.")


def _page(status: int = 200, error: str | None = None, notice: str | None = None) -> Response:
    keys = store.all_keys()
    upcoming = next((k for k in keys if k.state == NEXT), None)
    current = next((k for k in keys if k.state == CURRENT), None)
    return render("admin/keys.html", status=status, keys=keys, published=PUBLISHED, error=error,
                  notice=notice, upcoming=upcoming,
                  next_safe_at=store.unsafe_until(upcoming) if upcoming else None,
                  current_unsafe_until=store.unsafe_until(current) if current else None,
                  max_age=current_app.config["JWKS_MAX_AGE"])


def _notice() -> str | None:
    """Say what the last change was, from the page's query after the change redirected here."""
    rotated, revoked = request.args.get("rotated"), request.args.get("revoked")
    # Only what the database confirms is said: the query is anyone's to write.
    if rotated and (key := db.session.get(SigningKey, rotated)) is not None and key.state == CURRENT:
        return f"Rotated: {key.kid} now signs."
    if revoked and (key := db.session.get(SigningKey, revoked)) is not None and key.state == REVOKED:
        return f"Revoked: {key.kid} is out of the JWKS and its private key is erased."
    return None


@bp.get("/keys")
def keys() -> Response:
    """Every signing key, newest first: its state, dates and whether it signs; rotate and revoke."""
    return _page(notice=_notice())


@bp.post("/keys/rotate")
def rotate_keys() -> BaseResponse:
    """Rotate: the next key signs, the current one is kept to verify; refused while the next is too new."""
    force = request.form.get("force") == "yes"
    before = store.key_set(fresh=True).current
    try:
        key = store.rotate(force=force, expected_next=request.form.get("next_kid", ""))
    except store.NextKeyTooNew as early:
        return _page(409, error=_too_new(early))
    if key is None:
        return _page(409, error="The keys changed since this page was shown (a rotation here or elsewhere): "
                                "nothing was rotated, and the keys below are as they are now.")
    audit.record("Signing keys rotated", {"kid": key.kid, "previous": before, "forced": force})
    db.session.commit()
    return redirect(url_for("admin.keys", rotated=key.kid), 303)


def _published(kid: str) -> SigningKey:
    key = db.session.get(SigningKey, kid) if len(kid) <= 64 else None
    if key is None or key.state not in PUBLISHED:
        raise NotFound("There is no published signing key with this kid.")
    return key


@bp.get("/keys/<kid>/revoke")
def confirm_revoke(kid: str) -> Response:
    """Ask before revoking a key, saying what it does to the tokens the key signed."""
    key = _published(kid)
    return render("admin/key_revoke.html", key=key, max_age=current_app.config["JWKS_MAX_AGE"])


@bp.post("/keys/<kid>/revoke")
def revoke_key(kid: str) -> BaseResponse:
    """Revoke a published key at once, as `idp keys revoke` does; a current or next one is replaced."""
    was = _published(kid).state
    try:
        store.revoke(kid)
    except store.KeyNotFound:  # revoked by another admin or instance in between
        raise NotFound("There is no published signing key with this kid.") from None
    audit.record("Signing key revoked", {"kid": kid, "state": was})
    db.session.commit()
    return redirect(url_for("admin.keys", revoked=kid), 303)
