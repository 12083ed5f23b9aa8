"""Liveness and database reachability."""

from pathlib import Path

from idp import create_app
from tests.conftest import base_config


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path: Path):
    app = create_app(base_config("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", tmp_path))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unreachable"}
