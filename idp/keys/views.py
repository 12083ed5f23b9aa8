"""The JWKS endpoint."""

from flask import Blueprint, current_app
from werkzeug.wrappers import Response as BaseResponse

from idp.keys.store import key_set

bp = Blueprint("keys", __name__)


@bp.get("/.well-known/jwks.json")
def jwks() -> BaseResponse:
    """Publish the next, current and previous public keys, built once per change of the key set."""
    return key_set().jwks.answer(current_app.config["JWKS_MAX_AGE"])
