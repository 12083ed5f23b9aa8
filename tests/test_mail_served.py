"""Mail under `idp serve`: queued in the database, so a restart loses none and workers send each once."""

import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.mailbox import Mailbox
from tests.served import Served, serve
from tests.support import csrf_token
from tests.test_mail_queue import eventually, path, queued

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

# Short waits; a short lease too, in case a worker is stopped while it holds a mail.
SETTINGS = {"SMTP_TIMEOUT": "1", "MAIL_RETRY_INITIAL": "0.2", "MAIL_RETRY_MAX": "0.5",
            "MAIL_POLL_INTERVAL": "0.2", "MAIL_CLAIM_LEASE": "3", "RATELIMIT_ENABLED": "false"}


def ask_for_reset(served: Served, email: str) -> requests.Response:
    """Ask for a password-reset link, as the form does."""
    with requests.Session() as session:
        page = session.get(served.url + "/u/reset-password", timeout=10)
        return session.post(page.url, timeout=10, data={"csrf_token": csrf_token(page.text), "email": email})


def test_mail_asked_for_before_a_restart_arrives_once_after_it(app: Any, user: Any, database_url: str,
                                                                tmp_path: Path) -> None:
    with socket.socket() as down:  # SMTP is down: the port is taken, and nobody listens
        down.bind(("127.0.0.1", 0))
        port = down.getsockname()[1]
        smtp = f"smtp://127.0.0.1:{port}"
        with serve(database_url, tmp_path, SMTP_URL=smtp, **SETTINGS) as served:
            answer = ask_for_reset(served, user.email)
            assert answer.status_code == 200 and "Check your inbox" in answer.text
            eventually(lambda: [r for r in queued() if r.task is None and r.attempts >= 1])
    [row] = queued()  # the provider stopped; the mail is in the database, unsent
    assert row.label == f"mail to {user.email}: 'Reset your password'"

    with Mailbox(port=port) as box, serve(database_url, tmp_path, SMTP_URL=smtp, **SETTINGS) as served:
        message = box.wait_for(user.email, timeout=20)
        eventually(lambda: not queued())
        time.sleep(1)  # every worker looks every 0.2 s: a second copy would have come by now
        assert len(box.messages) == 1
        form = requests.get(served.url + path(box.link(message)), timeout=10)
        assert form.status_code == 200 and "Choose a new password" in form.text


def test_workers_send_each_mail_once(app: Any, user: Any, database_url: str, tmp_path: Path) -> None:
    with Mailbox(delay=0.05) as box, serve(database_url, tmp_path, SMTP_URL=box.url, **SETTINGS) as served:
        asked = 0
        # Until both workers have queued mail, and so both run a sender (which worker answers is the
        # kernel's choice).
        while asked < 8 or len({pid for pid, method, _, _ in served.served() if method == "POST"}) < 2:
            assert asked < 40, "one worker answered every request"
            assert "Check your inbox" in ask_for_reset(served, user.email).text
            asked += 1
        messages = [box.wait_for(user.email, timeout=20) for _ in range(asked)]
        eventually(lambda: not queued())
        time.sleep(1)  # every worker looks every 0.2 s: a second copy would have come by now
        assert len(box.messages) == asked
        assert len({box.link(m) for m in messages}) == asked
