"""Liveness and database reachability, answered in bounded time even when the database hangs."""

import socket
import threading
import time
from pathlib import Path

from sqlalchemy import make_url

from idp import create_app
from idp.db import db
from tests.conftest import PostgresDatabase, app_for, base_config


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path: Path):
    app = create_app(base_config("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", tmp_path))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unreachable"}
    with app.app_context():
        db.engine.dispose()  # which also stops the mail sender the request started


class Freezer:
    """A TCP proxy in front of the database that can stop answering, like a database host that hangs.

    Frozen, it still accepts connections (the kernel would anyway) and reads what it is sent, but
    answers nothing, on new connections and on those already open.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.sockets.append(client)
            if self.frozen.is_set():
                continue  # accepted, never answered
            server = socket.create_connection(self.upstream)
            self.sockets.append(server)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    return
                if not self.frozen.is_set():
                    target.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def test_healthz_answers_503_within_its_timeout_when_the_database_hangs(
        postgres_database: PostgresDatabase, tmp_path: Path):
    upstream = make_url(postgres_database.url)
    assert upstream.host and upstream.port
    proxy = Freezer(upstream.host, upstream.port)
    url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    # Key maintenance runs before the first request of each interval, on the app's own connections
    # (a matter of its own): here it runs once, while the database still answers.
    config = {**base_config(url, tmp_path), "KEY_MAINTENANCE_INTERVAL": 3600, "HEALTHZ_TIMEOUT": 2}
    try:
        with app_for(config) as app:
            client = app.test_client()
            assert client.get("/healthz").json == {"status": "ok", "database": "ok"}
            proxy.frozen.set()
            for _ in range(2):  # and again: nothing waits on what the first probe left behind
                started = time.perf_counter()
                response = client.get("/healthz")
                assert response.status_code == 503
                assert response.json == {"status": "unavailable", "database": "unreachable"}
                assert time.perf_counter() - started < 5
            proxy.frozen.clear()
            assert client.get("/healthz").status_code == 200  # answers again once the database does
    finally:
        proxy.close()
