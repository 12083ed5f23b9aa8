"""Events written off the request (a client-credentials exchange's `seccft`): written when the process
exits, kept and tried again while the database is unreachable, bounded while it stays so."""

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from idp import create_app
from idp.db import db
from idp.events import batch
from idp.events.models import LogEvent
from idp.oauth import apis
from idp.oauth.clients import create_client

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

EXCHANGE_AND_EXIT = """
import json, sys
from idp import create_app
config, client_id, secret = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
app = create_app(config)
answer = app.test_client().post("/oauth/token", auth=(client_id, secret), data={
    "grant_type": "client_credentials", "audience": config["ISSUER"] + "/api/v2/"})
assert answer.status_code == 200, answer.data
"""


def stored_types(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(LogEvent.type)))
    finally:
        engine.dispose()


def test_a_process_that_exits_writes_what_it_queued(app, config: dict[str, Any]):
    client, secret = create_client("Nightly export", [])
    apis.grant(client.id, apis.management_identifier(), ["read:users"])
    # The child exits right after its exchange, long before its batch's timer would fire.
    subprocess.run([sys.executable, "-c", EXCHANGE_AND_EXIT, json.dumps(config), client.id, secret],
                   check=True, cwd=Path(__file__).parents[2], timeout=60)
    assert stored_types(config["DATABASE_URL"]) == ["seccft"]


def test_events_wait_while_the_database_is_unreachable(config, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(batch, "MAX_PENDING", 3)
    unreachable = create_app({**config, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/folder/idp.db"})
    key = ""
    with unreachable.test_request_context("/oauth/token", environ_base={"REMOTE_ADDR": "192.0.2.7"}):
        key = str(db.engine.url)
        for n in range(5):
            batch.record_soon("seccft", f"exchange {n}", client_id="c")
        with caplog.at_level(logging.ERROR, logger="idp.events.batch"):
            batch.flush(key)
    try:
        # The oldest two dropped, and said so; the rest kept for the next try, with their details.
        waiting = batch._batches[key]
        assert [row["description"] for row in waiting.rows] == ["exchange 2", "exchange 3", "exchange 4"]
        assert waiting.rows[0]["ip"] == "192.0.2.7" and waiting.timer is not None
        assert "2 log events dropped" in caplog.text and "3 log events not written" in caplog.text
    finally:
        batch.forget()
