"""The script sandbox, jailed, against its floors: an in-process call, a pipe round-trip, an interpreter."""

import json
import os
import socket
import struct
import subprocess
import sys
import threading

from bench.harness import measure
from idp.migration.sandbox import Pool

SCRIPT = '''
def login(email, password, configuration):
    if password != "correct horse battery staple":
        raise WrongUsernameOrPassword(email)
    return {"user_id": 42, "email": email, "name": "Lin Legacy", "email_verified": True}
'''
ARGS = ["lin@example.com", "correct horse battery staple", {"path": "/var/lib/legacy.sqlite3"}]
# A connect() the jail hands to its keeper, which checks host:port and connects in the script's place.
CONNECT = '''
import socket
def f(configuration):
    socket.create_connection((configuration["host"], int(configuration["port"]))).close()
'''

# The floor of the parent-child hop: a warm child that echoes length-prefixed JSON, nothing else.
ECHO = '''
import json, os, struct, sys
r, w = int(sys.argv[1]), int(sys.argv[2])
def read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(r, n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
while True:
    body = json.loads(read(struct.unpack(">I", read(4))[0]))
    out = json.dumps({"ok": True, "value": body["args"]}).encode()
    os.write(w, struct.pack(">I", len(out)) + out)
'''


def in_process() -> float:
    """Return the median of one call of the script's function in this process."""
    namespace: dict[str, object] = {"WrongUsernameOrPassword": Exception}
    exec(compile(SCRIPT, "<script>", "exec"), namespace)
    login = namespace["login"]
    assert callable(login)
    return measure(lambda: login(*ARGS), 20000)


def pipe_round_trip() -> float:
    """Return the median of one JSON request and answer over pipes to a warm echo child."""
    requests_r, requests_w = os.pipe()
    responses_r, responses_w = os.pipe()
    child = subprocess.Popen([sys.executable, "-I", "-c", ECHO, str(requests_r), str(responses_w)],
                             pass_fds=(requests_r, responses_w))
    os.close(requests_r)
    os.close(responses_w)

    def read(n: int) -> bytes:
        data = b""
        while len(data) < n:
            data += os.read(responses_r, n - len(data))
        return data

    def round_trip() -> None:
        body = json.dumps({"source": SCRIPT, "function": "login", "args": ARGS}).encode()
        os.write(requests_w, struct.pack(">I", len(body)) + body)
        json.loads(read(struct.unpack(">I", read(4))[0]))

    try:
        return measure(round_trip, 2000)
    finally:
        os.close(requests_w)
        os.close(responses_r)
        child.wait()


def connects() -> tuple[float, float]:
    """Return the medians of a warm call that connects to a configured port, and of its floor."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        configuration = {"host": "127.0.0.1", "port": str(server.getsockname()[1])}

        def accept() -> None:
            while True:
                try:
                    server.accept()[0].close()
                except OSError:  # closed: the benchmark is over
                    return

        threading.Thread(target=accept, daemon=True).start()
        address = ("127.0.0.1", server.getsockname()[1])
        direct = measure(lambda: socket.create_connection(address).close(), 300)
        with Pool(size=1) as pool:
            plain = measure(lambda: pool.call(SCRIPT, "login", ARGS), 300)
            through = measure(lambda: pool.call(CONNECT, "f", [configuration]), 300)
        server.shutdown(socket.SHUT_RDWR)
    return through, plain + direct


def warm_call(pool: Pool, rounds: int = 2000) -> float:
    """Return the median of one warm call of login() through a pool (the warm-up call starts its worker)."""
    return measure(lambda: pool.call(SCRIPT, "login", ARGS), rounds)


def main() -> list[tuple[str, float, float]]:
    """Return rows of (benchmark, seconds, floor seconds)."""
    direct = in_process()
    hop = pipe_round_trip()
    with Pool(size=1) as pool:
        warm = warm_call(pool)
    bare = measure(lambda: subprocess.run([sys.executable, "-I", "-c", "pass"], check=True), 15)

    def cold_call() -> None:
        with Pool(size=1) as pool:
            pool.call(SCRIPT, "login", ARGS)

    cold = measure(cold_call, 15)
    connected, connect_floor = connects()
    return [
        ("script: in-process call of login() (floor)", direct, direct),
        ("script: JSON round-trip over a pipe to a warm child (floor)", hop, hop),
        ("script: login() through a warm pool, ÷ in-process call", warm, direct),
        ("script: login() through a warm pool, ÷ pipe round-trip", warm, hop),
        ("script: python -I -c pass, start to exit (floor)", bare, bare),
        ("script: cold worker: start, first call, stop, ÷ bare interpreter", cold, bare),
        ("script: connect() via the jail's keeper, ÷ warm call + direct connect", connected, connect_floor),
    ]


if __name__ == "__main__":
    for name, seconds, floor in main():
        print(f"{name:<62} {seconds * 1000:>10.3f} ms {seconds / floor:>9.1f}×")
