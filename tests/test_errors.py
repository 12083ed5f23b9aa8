"""idp's own errors reach the edge as protocol answers: 503 or 400, JSON for programs, a page for browsers."""

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from idp import create_app
from idp.connections.legacy import LegacyUnavailable
from idp.db import db
from idp.errors import IdpError, InvalidInput, Unavailable
from idp.mail import MailError
from idp.oauth.clients import InvalidClientMetadata


@pytest.fixture
def client(tmp_path) -> Iterator[FlaskClient]:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32}, serving=False)

    @app.get("/api/unavailable")
    @app.get("/u/unavailable")
    def unavailable() -> str:
        raise LegacyUnavailable("the legacy store of Legacy did not answer")

    @app.get("/u/invalid")
    def invalid() -> str:
        raise InvalidClientMetadata("http is allowed only on loopback: http://example.com/cb")

    yield app.test_client()
    with app.app_context():
        db.engine.dispose()  # which also stops the mail sender its requests started


def test_every_error_of_ours_has_the_one_root():
    assert issubclass(LegacyUnavailable, Unavailable) and issubclass(MailError, Unavailable)
    assert issubclass(InvalidClientMetadata, InvalidInput)
    assert issubclass(Unavailable, IdpError) and issubclass(InvalidInput, IdpError)


def test_an_unavailable_store_is_a_503_in_the_callers_format(client, caplog):
    api = client.get("/api/unavailable")
    assert api.status_code == 503 and api.json["error"] == "temporarily_unavailable"
    page = client.get("/u/unavailable")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "not answering" in page.text and "Traceback" not in page.text
    assert "LegacyUnavailable on GET /u/unavailable" in caplog.text


def test_refused_input_is_a_400_saying_why(client):
    page = client.get("/u/invalid")
    assert page.status_code == 400 and "only on loopback" in page.text
