"""idp against node-oidc-provider: each server alone on core 0, wrk on core 1; one table of rates."""

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import create_engine, func, insert, select

from idp.connections.models import NATIVE_ID
from idp.oauth.models import Client, digest
from idp.users.models import User, new_user_id

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
SERVER_CORE, WRK_CORE = 0, 1
API, REDIRECT_URI = "https://api.example.com", "https://rp.example/cb"
EMAIL, PASSWORD = "bench@example.com", "correct horse battery staple"
VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
PROMPT = re.compile(r'name="prompt" value="(\w+)"')
MEASURES = ("client_credentials", "JWKS", "discovery", "introspection", "userinfo", "code flow")
FLOORED = ("JWKS", "discovery")  # also compared with the hello-world


@dataclass
class Target:
    """A provider being measured: where it listens, its endpoints, its clients and a signed-in session."""

    base: str
    paths: dict[str, str]  # authorize, token, jwks, introspect, userinfo
    m2m: tuple[str, str]  # (client_id, secret) allowed client_credentials for API
    web: tuple[str, str]  # (client_id, secret) of the code flow
    cc_body: str  # the client_credentials form body (idp: audience, the peer: resource)
    cookie: str = ""  # the SSO session, as a Cookie header
    access_token: str = ""  # from a code flow: for userinfo and introspection


@dataclass
class Run:
    """How to run wrk."""

    seconds: int
    warmup: int
    connections: int


def basic(client: tuple[str, str]) -> str:
    """Return an HTTP Basic Authorization value."""
    return "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


def free_port() -> int:
    """Return a TCP port free on the loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    """Run a server on SERVER_CORE until the block ends; wait for its port first."""
    with log.open("ab") as out:
        proc = subprocess.Popen(["taskset", "-c", str(SERVER_CORE), *command], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{command[0]} exited with {proc.returncode}; see {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[0]} did not listen on {port}; see {log}") from None
                time.sleep(0.1)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def wrk(url: str, args: list[str], run: Run, script: str = "request.lua") -> float:
    """Return requests (or, with flow.lua, flows) per second after a warm-up; warn on failures."""
    threads = run.connections if script == "flow.lua" else 2  # flow.lua keeps one flow per thread

    def once(seconds: int) -> str:
        command = ["taskset", "-c", str(WRK_CORE), "wrk", f"-t{threads}", f"-c{run.connections}",
                   f"-d{seconds}s", "-s", str(HERE / script), url, "--", *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    once(run.warmup)
    out = once(run.seconds)
    for failures in re.findall(r"(?:Non-2xx or 3xx responses|Failed flows|Socket errors): (.*)", out):
        if failures.strip() != "0":
            print(f"warning: {url}: {failures.strip()} failed", file=sys.stderr)
    match = re.search(r"(?:Flows|Requests)/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def authorization(client_id: str, **extra: str) -> dict[str, str]:
    """Return the parameters of a code-flow authorization request with PKCE."""
    return {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email", "state": "bench", "code_challenge": CHALLENGE,
            "code_challenge_method": "S256", **extra}


def exchange_body(code: str) -> str:
    """Return the token request body that exchanges a code."""
    return urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                      "code_verifier": VERIFIER})


def found(pattern: re.Pattern[str], text: str) -> str:
    """Return the first group of a pattern that must match."""
    match = pattern.search(text)
    assert match, f"{pattern.pattern} not in {text[:500]}"
    return match.group(1)


def sign_in(t: Target) -> None:
    """Sign in once through the hosted pages (idp's login form or the peer's devInteractions)."""
    http = requests.Session()
    response = http.get(t.base + t.paths["authorize"], params=authorization(t.web[0]), allow_redirects=False)
    for _ in range(10):
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(REDIRECT_URI):
            break
        page = http.get(location, allow_redirects=False)
        if "/u/login" in location:
            form = {"csrf_token": found(CSRF, page.text), "email": EMAIL, "password": PASSWORD}
            response = http.post(location, data=form, allow_redirects=False)
        elif "/interaction/" in location:
            form = {"prompt": found(PROMPT, page.text), "login": "bench"}
            response = http.post(location, data=form, allow_redirects=False)
        else:
            response = page
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = http.post(t.base + t.paths["token"], data=exchange_body(code), allow_redirects=False,
                       headers={"Authorization": basic(t.web),
                                "Content-Type": "application/x-www-form-urlencoded"})
    assert tokens.status_code == 200, tokens.text
    t.access_token = tokens.json()["access_token"]
    t.cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def check(t: Target) -> None:
    """Ask each measured endpoint once and fail loudly if the answer is not a success."""
    form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic(t.m2m)}
    cc = requests.post(t.base + t.paths["token"], data=t.cc_body, headers=form)
    assert cc.status_code == 200 and cc.json()["access_token"].count(".") == 2, cc.text  # a JWT
    introspected = requests.post(t.base + t.paths["introspect"], data={"token": t.access_token},
                                 headers={"Authorization": basic(t.web)})
    assert introspected.status_code == 200 and introspected.json()["active"], introspected.text
    bearer = {"Authorization": f"Bearer {t.access_token}"}
    userinfo = requests.get(t.base + t.paths["userinfo"], headers=bearer)
    assert userinfo.status_code == 200 and userinfo.json()["email"] == EMAIL, userinfo.text
    response = requests.get(t.base + t.paths["authorize"], params=authorization(t.web[0], prompt="none"),
                            headers={"Cookie": t.cookie}, allow_redirects=False)
    assert "code=" in response.headers.get("Location", ""), response.headers


def token_rate(t: Target, run: Run) -> float:
    """Return client_credentials requests per second at the token endpoint."""
    return wrk(t.base + t.paths["token"], ["POST", t.cc_body, f"Authorization: {basic(t.m2m)}"], run)


def measure(t: Target, run: Run) -> dict[str, float]:
    """Return each measure's rate for one provider."""
    check(t)
    get = ["GET", ""]
    flow = [f"{t.paths['authorize']}?{urlencode(authorization(t.web[0], prompt='none'))}", t.cookie,
            t.paths["token"], basic(t.web), exchange_body("CODE")]
    return {
        "client_credentials": token_rate(t, run),
        "JWKS": wrk(t.base + t.paths["jwks"], get, run),
        "discovery": wrk(t.base + "/.well-known/openid-configuration", get, run),
        "introspection": wrk(t.base + t.paths["introspect"], [
            "POST", urlencode({"token": t.access_token}), f"Authorization: {basic(t.web)}"], run),
        "userinfo": wrk(t.base + t.paths["userinfo"], [*get, f"Authorization: Bearer {t.access_token}"], run),
        "code flow": wrk(t.base, flow, run, "flow.lua"),
    }


def populate(database: Path, count: int, secret: str) -> float:
    """Top idp's SQLite database up to `count` clients and `count` users with bulk inserts; return seconds."""
    start = time.perf_counter()
    engine = create_engine(f"sqlite:///{database}")
    password_hash = PasswordHasher().hash(secrets.token_urlsafe())  # one hash for all: nobody signs in
    with engine.begin() as db:
        clients = db.scalar(select(func.count()).select_from(Client.__table__)) or 0
        users = db.scalar(select(func.count()).select_from(User.__table__)) or 0
        if count > clients:
            db.execute(insert(Client.__table__), [
                {"id": f"bulk-{i}", "name": f"Bulk {i}", "secret_digest": digest(secret),
                 "first_party": False, "redirect_uris": [REDIRECT_URI], "post_logout_redirect_uris": [],
                 "audiences": [API], "connection_id": NATIVE_ID} for i in range(clients, count)])
        if count > users:
            db.execute(insert(User.__table__), [
                {"id": new_user_id(), "connection_id": NATIVE_ID, "email": f"user{i}@bulk.example",
                 "email_normalized": f"user{i}@bulk.example", "email_verified": True,
                 "password_hash": password_hash, "user_metadata": {}, "app_metadata": {}}
                for i in range(users, count)])
    engine.dispose()
    return time.perf_counter() - start


@contextmanager
def idp(tmp: Path) -> Iterator[tuple[Target, Callable[[int], float]]]:
    """Run idp (`idp serve --workers 1`) on a fresh SQLite database; yield it and its populate()."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "IDP_INSTANCE_PATH": str(tmp / "instance"), "IDP_ISSUER": base,
           "IDP_RATELIMIT_ENABLED": "false"}

    def cli(*args: str) -> str:
        return subprocess.run([str(BIN / "idp"), *args], env=env, check=True, capture_output=True,
                              text=True, cwd=ROOT).stdout

    cli("init")
    m2m = json.loads(cli("clients", "create", "--name", "bench-m2m", "--audience", API, "--json"))
    web = json.loads(cli("clients", "create", "--name", "bench-web", "--redirect-uri", REDIRECT_URI,
                         "--first-party", "--json"))
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--name", "Bench User", "--verified")
    paths = {"authorize": "/authorize", "token": "/oauth/token", "jwks": "/.well-known/jwks.json",
             "introspect": "/oauth/introspect", "userinfo": "/userinfo"}
    t = Target(base, paths, (m2m["client_id"], m2m["client_secret"]),
               (web["client_id"], web["client_secret"]),
               urlencode({"grant_type": "client_credentials", "audience": API}))
    command = [str(BIN / "idp"), "serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    with serve(command, port, env, tmp / "idp.log"):
        sign_in(t)
        yield t, lambda count: populate(tmp / "instance" / "idp.sqlite3", count, m2m["client_secret"])


@contextmanager
def peer(tmp: Path) -> Iterator[Target]:
    """Run node-oidc-provider (bench/peer/provider.mjs, in-memory adapter)."""
    port, secret = free_port(), secrets.token_urlsafe(32)
    paths = {"authorize": "/auth", "token": "/token", "jwks": "/jwks", "introspect": "/token/introspection",
             "userinfo": "/me"}
    t = Target(f"http://127.0.0.1:{port}", paths, ("bench-m2m", secret), ("bench-web", secret),
               urlencode({"grant_type": "client_credentials", "resource": API}))
    command = ["node", str(HERE / "provider.mjs"), str(port), secret]
    with serve(command, port, dict(os.environ), tmp / "peer.log"):
        sign_in(t)
        yield t


def hello_rate(tmp: Path, run: Run) -> float:
    """Return the hello-world app's GET rate under idp's gunicorn settings, one worker."""
    port = free_port()
    command = [sys.executable, "-m", "bench.peer.hello", f"127.0.0.1:{port}"]
    with serve(command, port, dict(os.environ), tmp / "hello.log"):
        return wrk(f"http://127.0.0.1:{port}/", ["GET", ""], run)


def sign_rate(seconds: float = 2.0) -> float:
    """Return RS256 signatures per second on one core (cryptography, 2048-bit key)."""
    key = rsa.generate_private_key(65537, 2048)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(b"x" * 400, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - start)


def preflight() -> None:
    """Stop with a clear message when a tool the benchmark needs is missing."""
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("bench-peer needs two cores: the server on core 0, wrk on core 1")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `apt-get install wrk` (Debian), or run `make bench-peer` as root")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        raise SystemExit("oidc-provider is missing: `cd bench/peer && npm ci` (or `make bench-peer`)")


def main() -> None:
    """Measure both providers and the floors, then print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per row (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--clients", default="", help="e.g. 10,1000,100000: idp's client_credentials rate "
                        "with that many clients and users in its database")
    options = parser.parse_args()
    preflight()
    run = Run(options.duration, options.warmup, options.connections)
    counts = [int(n) for n in options.clients.split(",") if n]
    os.sched_setaffinity(0, {WRK_CORE})  # this driver stays off the server's core
    signs = sign_rate()
    scaling: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as folder:
        tmp = Path(folder)
        with idp(tmp) as (target, grow):
            ours = measure(target, run)
            for count in sorted(counts):
                seconds = grow(count)
                scaling.append((count, seconds, token_rate(target, run)))
        with peer(tmp) as target:
            theirs = measure(target, run)
        hello = hello_rate(tmp, run)

    print(f"\nrequests/s, server on core {SERVER_CORE}, wrk on core {WRK_CORE}, {run.connections} "
          f"connections, {run.seconds} s after {run.warmup} s warm-up (code flow: flows/s)")
    print(f"{'measure':<20} {'idp':>10} {'peer':>10} {'idp/peer':>9} {'idp/hello':>10}")
    for name in MEASURES:
        floor = f"{ours[name] / hello:>10.2f}" if name in FLOORED else ""
        ratio = ours[name] / theirs[name]
        print(f"{name:<20} {ours[name]:>10.1f} {theirs[name]:>10.1f} {ratio:>9.2f} {floor}")
    print("floors")
    print(f"{'RS256 signature':<20} {signs:>10.1f}  /s, cryptography in-process, 2048-bit, one core")
    print(f"{'hello-world':<20} {hello:>10.1f}  req/s, Flask under idp's gunicorn settings, --workers 1")
    if scaling:
        print("idp client_credentials with N clients and N users in its database")
        for count, seconds, rate in scaling:
            print(f"{f'N = {count}':<20} {rate:>10.1f}  req/s (bulk insert took {seconds:.1f} s)")


if __name__ == "__main__":
    main()
