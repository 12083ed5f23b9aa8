"""WSGI servers for idp side by side: each alone on core 0, one worker, wrk on core 1; a table of rates."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, request

from bench.peer.__main__ import BIN, HERE, ROOT, SERVER_CORE, WRK_CORE, basic, free_port, serve
from bench.peer.hello import app as hello_app
from idp.production import ACCESS_LOG_FORMAT

API = "https://api.example.com"
ENDPOINTS = ("hello", "discovery", "JWKS", "client_credentials")
FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on",
             "X-Forwarded-Host": "evil.example", "X-Forwarded-Prefix": "/evil", "SCRIPT_NAME": "/evil",
             "Forwarded": "for=203.0.113.9;proto=https"}
GUNICORN = ["--workers", "1", "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT,
            "--logger-class", "idp.production.RedactingLogger", "--forwarded-allow-ips", "",
            "--forwarder-headers", "", "--no-control-socket"]
Command = Callable[[str, int], list[str]]  # (module:attribute, port) -> argv


def gunicorn(*worker: str) -> Command:
    """Return gunicorn with idp's settings and the given worker options."""
    return lambda app, port: [str(BIN / "gunicorn"), *GUNICORN, *worker, "--bind", f"127.0.0.1:{port}", app]


def granian(*extra: str) -> Command:
    """Return granian's WSGI interface with an access log of paths only."""
    fmt = '%(addr)s [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'
    return lambda app, port: [str(BIN / "granian"), "--interface", "wsgi", "--workers", "1", "--no-ws",
                              "--port", str(port), "--access-log", "--access-log-fmt", fmt, *extra, app]


def waitress(app: str, port: int) -> list[str]:
    """Return waitress with 8 threads (it has no access log)."""
    return [str(BIN / "waitress-serve"), "--listen", f"127.0.0.1:{port}", "--threads", "8", app]


def uwsgi(app: str, port: int) -> list[str]:
    """Return uWSGI, one process of 8 threads, HTTP/1.1 keep-alive, a log of paths only."""
    return [str(BIN / "uwsgi"), "--http11-socket", f"127.0.0.1:{port}", "--master", "--processes", "1",
            "--threads", "8", "--die-on-term", "--need-app", "--module", app,
            "--logformat", '%(addr) [%(ctime)] "%(method) %(var.PATH_INFO) %(proto)" %(status) %(msecs)ms']


def cheroot(app: str, port: int) -> list[str]:
    """Return cheroot with 8 threads (it has no access log)."""
    return [str(BIN / "cheroot"), "--bind", f"127.0.0.1:{port}", "--threads", "8", "--max-threads", "8", app]


SERVERS: dict[str, Command] = {
    "gunicorn sync": gunicorn("--worker-class", "sync"),
    "gunicorn gthread 1": gunicorn("--worker-class", "gthread", "--threads", "1"),
    "gunicorn gthread 4": gunicorn("--worker-class", "gthread", "--threads", "4"),
    "gunicorn gthread 8": gunicorn("--worker-class", "gthread", "--threads", "8"),
    "gunicorn gevent": gunicorn("--worker-class", "gevent"),
    "granian": granian(),
    "granian 8 threads": granian("--blocking-threads", "8"),
    "waitress 8": waitress,
    "uwsgi 8": uwsgi,
    "cheroot 8": cheroot,
}
PACKAGES = ("gunicorn", "gevent", "granian", "waitress", "uwsgi", "cheroot", "flask")
# What each server offers, from its documentation: TLS, access log, graceful worker restart, processes.
FEATURES = {
    "gunicorn": "TLS yes; access log with format; HUP/USR2 graceful; N workers",
    "granian": "TLS yes (minimum TLS 1.3 by default); access log with format; HUP reload; N workers",
    "waitress": "no TLS; no access log (a middleware's); no restart; one process",
    "uwsgi": "TLS yes (https-socket); logformat; HUP/touch-reload graceful; N workers; maintenance mode",
    "cheroot": "TLS yes (ssl adapter, not on its CLI); no access log; no restart; one process",
}


def environ_echo() -> dict[str, Any]:
    """Return what the server put in the WSGI environ about the request's origin."""
    keys = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SCRIPT_NAME", "PATH_INFO")
    return {"origin": {k: request.environ.get(k) for k in keys},
            "environment": "IDP_BENCH_SENTINEL" in request.environ}


def with_probe(app: Flask) -> Flask:
    """Return bench/peer/hello.py's app with /environ added for the probe."""
    app.add_url_rule("/environ", "environ", environ_echo)
    return app


hello = with_probe(hello_app())  # `bench.servers:hello`, for every server


def wrk(url: str, seconds: int, *args: str) -> float:
    """Return requests per second (after a one-second warm-up); fail on any non-2xx answer."""
    def once(duration: int) -> str:
        command = ["taskset", "-c", str(WRK_CORE), "wrk", "-t1", "-c16", f"-d{duration}s",
                   "-s", str(HERE / "request.lua"), url, "--", *(args or ("GET", ""))]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout
    once(1)
    out = once(seconds)
    assert "Non-2xx" not in out, out
    if "Socket errors" in out:  # a rare timeout under a loaded host: say so, keep the rate
        print(f"warning: {url}: {out.split('Socket errors: ')[1].splitlines()[0]}", file=sys.stderr)
    return float(out.split("Requests/sec:")[1].split()[0])


def probe(base: str, log: Path) -> str:
    """Say whether the server trusted X-Forwarded-*, leaked os.environ, or logged a query string."""
    answer = requests.get(f"{base}/environ?code=SECRETCODE", headers=FORWARDED).json()
    origin = answer["origin"]
    trusted = [k for k, v in {"REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "SCRIPT_NAME": "",
                              "PATH_INFO": "/environ"}.items() if origin[k] != v]
    trusted += ["HTTP_HOST"] if origin["HTTP_HOST"] != base.removeprefix("http://") else []
    notes = [f"trusted {','.join(trusted)}" if trusted else "forwarded ignored",
             "os.environ in environ" if answer["environment"] else "",
             "query in log" if "SECRETCODE" in log.read_text(errors="replace") else ""]
    return "; ".join(n for n in notes if n)


def prepare(tmp: Path, base: str) -> tuple[dict[str, str], str]:
    """Make an idp instance as bench/peer does; return its environment and a client_credentials header."""
    env = {**os.environ, "IDP_INSTANCE_PATH": str(tmp / "instance"), "IDP_ISSUER": base,
           "IDP_RATELIMIT_ENABLED": "false", "IDP_BENCH_SENTINEL": "1", "PYTHONPATH": str(ROOT)}
    for args in (["init"], ["clients", "create", "--name", "m2m", "--audience", API, "--json"]):
        done = subprocess.run([str(BIN / "idp"), *args], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"idp {args[0]} failed:\n{done.stderr}")
    client = json.loads(done.stdout)
    return env, f"Authorization: {basic((client['client_id'], client['client_secret']))}"


def measure(name: str, seconds: int, tmp: Path) -> tuple[dict[str, float], str]:
    """Return one server's rate per endpoint and what the probe found."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, authorization = prepare(tmp / name.replace(" ", "-"), base)
    log = tmp / f"{name.replace(' ', '-')}.log"
    cc = urlencode({"grant_type": "client_credentials", "audience": API})
    with serve(SERVERS[name]("bench.servers:hello", port), port, env, log):
        rates = {"hello": wrk(base + "/", seconds)}
        found = probe(base, log)
    with serve(SERVERS[name]("wsgi:app", port), port, env, log):
        form = {"Content-Type": "application/x-www-form-urlencoded", **dict([authorization.split(": ", 1)])}
        token = requests.post(base + "/oauth/token", data=cc, headers=form)
        assert token.status_code == 200, token.text
        rates["discovery"] = wrk(base + "/.well-known/openid-configuration", seconds)
        rates["JWKS"] = wrk(base + "/.well-known/jwks.json", seconds)
        rates["client_credentials"] = wrk(base + "/oauth/token", seconds, "POST", cc, authorization)
    return rates, found


def main() -> None:
    """Measure every server (or those named) and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds measured per endpoint (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all servers; the best rate counts "
                        "(other load on the host only ever lowers a rate; default 2)")
    parser.add_argument("servers", nargs="*", metavar="SERVER", help=f"default: all of {', '.join(SERVERS)}")
    options = parser.parse_args()
    if unknown := set(options.servers) - set(SERVERS):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    os.sched_setaffinity(0, {WRK_CORE})  # this driver stays off the server's core
    rows: dict[str, tuple[dict[str, float], str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as folder:
        for turn in range(options.rounds):
            for name in options.servers or SERVERS:
                rates, found = measure(name, options.duration, Path(folder) / str(turn))
                best = rows.get(name, ({}, ""))[0]
                rows[name] = {e: max(rates[e], best.get(e, 0.0)) for e in ENDPOINTS}, found
                print(f"round {turn + 1}, {name}: {rates}", file=sys.stderr)
    print(f"\nrequests/s, one worker on core {SERVER_CORE}, wrk -t1 -c16 on core {WRK_CORE}, "
          f"{options.duration} s after 1 s warm-up, best of {options.rounds}")
    print(f"{'server':<20}" + "".join(f"{e:>20}" for e in ENDPOINTS) + "  probe")
    for name, (rates, found) in rows.items():
        print(f"{name:<20}" + "".join(f"{rates[e]:>20.1f}" for e in ENDPOINTS) + f"  {found}")
    print("\n" + ", ".join(f"{p} {version(p)}" for p in PACKAGES) + f", Python {sys.version.split()[0]}")
    for family, features in FEATURES.items():
        print(f"{family:<10} {features}")


if __name__ == "__main__":
    main()
