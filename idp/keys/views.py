"""The JWKS endpoint."""

from flask import Blueprint, current_app
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response as BaseResponse

from idp import web
from idp.keys.store import key_set, maintain_now_and_then

bp = Blueprint("keys", __name__)
PATH = "/.well-known/jwks.json"


def document() -> web.Document:
    """Return the JWKS: the next, current and previous public keys, built once per change of the key set."""
    maintain_now_and_then()  # what every request does before its work: a JWKS request too
    return key_set().jwks


@bp.get(PATH)
def jwks() -> BaseResponse:
    """Publish the JWKS (a plain GET is answered by web.PublicDocuments before reaching here)."""
    return key_set().jwks.answer(current_app.config["JWKS_MAX_AGE"])  # maintained before_request


@bp.record_once
def _publish(state: BlueprintSetupState) -> None:
    web.publish(state.app, PATH, document)
