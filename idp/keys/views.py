"""The JWKS endpoint."""

import hashlib
import json

from flask import Blueprint, Response, current_app, request
from werkzeug.wrappers import Response as BaseResponse

from idp.keys.store import published_keys

bp = Blueprint("keys", __name__)


@bp.get("/.well-known/jwks.json")
def jwks() -> BaseResponse:
    """Publish the next, current and previous public keys."""
    body = json.dumps({"keys": [k.public_jwk for k in published_keys()]}, sort_keys=True)
    etag = hashlib.sha256(body.encode()).hexdigest()[:32]
    response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.cache_control.public = True
    response.cache_control.max_age = current_app.config["JWKS_MAX_AGE"]
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)
