"""Post-login actions' added latency, against their floors: a warm jailed call, one RS256 signature."""

import statistics
import sys
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.harness import authorization, measure, provider
from bench.sandbox import ARGS, SCRIPT, warm_call
from idp import config
from idp.actions import registry
from idp.connections import runtime
from idp.connections.models import NATIVE_ID
from idp.migration.sandbox import ScriptError
from idp.oauth.clients import create_client
from idp.users.accounts import create_user

PASSWORD = "correct horse battery staple"
NOOP = "def on_execute_post_login(event, api):\n    pass\n"
NAMES = ("noop-1", "noop-2", "noop-3")
ROUNDS = 40  # per block
BLOCKS = 9
# The jail and limits production runs actions in: idp/config.py's own values, whatever IDP_* says.
PRODUCTION = {k: getattr(config, k) for k in dir(config) if k.startswith("SCRIPT_") or k == "ACTIONS_TIMEOUT"}


def main() -> list[tuple[str, float, float]]:
    """Return rows of (benchmark, seconds, floor seconds)."""
    key = rsa.generate_private_key(65537, config.SIGNING_KEY_SIZE)
    sign = measure(lambda: jwt.encode({"sub": "x", "iat": 0}, key, algorithm="RS256"), 200)

    app = provider(**PRODUCTION)
    with app.app_context():
        create_user("bench@example.com", PASSWORD, NATIVE_ID)
        client, secret = create_client("Bench", ["https://rp.example/cb"], first_party=True)
        client_id = client.id
        for name in NAMES:
            registry.create(name, NOOP, enabled=False)
        pool = runtime.pool()  # the floor's pool, built from the app's SCRIPT_* like the actions' own
    assert secret is not None
    try:
        pool.call(SCRIPT, "login", ARGS)
        jailed = True
    except ScriptError as error:  # SandboxUnavailable above all: the kernel lacks what SCRIPT_JAIL=full needs
        print(f"actions: no post-login action can run on this machine, only the figures without one "
              f"follow: {error}", file=sys.stderr)
        jailed = False
    http = app.test_client()
    auth_query, verifier = authorization(client_id)

    def enable(count: int) -> None:
        with app.app_context():
            for index, name in enumerate(NAMES):
                registry.set_enabled(name, index < count)

    def code() -> str:
        location = http.get("/authorize", query_string=auth_query).headers["Location"]
        answer = parse_qs(urlsplit(location).query)
        assert "code" in answer, f"no code: {answer}"
        return answer["code"][0]

    location = http.get("/authorize", query_string=auth_query).headers["Location"]
    assert http.post(location, data={"email": "bench@example.com", "password": PASSWORD}).status_code == 302
    tokens = http.post("/oauth/token", auth=(client_id, secret), data={
        "grant_type": "authorization_code", "code": code(), "redirect_uri": "https://rp.example/cb",
        "code_verifier": verifier}).get_json()
    state = {"refresh": tokens["refresh_token"]}

    def refresh() -> None:
        response = http.post("/oauth/token", auth=(client_id, secret), data={
            "grant_type": "refresh_token", "refresh_token": state["refresh"]})
        body = response.get_json()
        assert response.status_code == 200, body
        state["refresh"] = body["refresh_token"]

    # Interleaved blocks, each configuration beside the others and the floor: a warm jailed call's
    # median moves by as much as half from one block to the next on a small machine, a shift that a
    # difference of two medians measured one after the other would carry whole.
    names = ("warm", "code0", "code1", "code3", "refresh0", "refresh1")
    blocks: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(BLOCKS):
        for count in (0, 1, 3) if jailed else (0,):
            enable(count)
            blocks[f"code{count}"].append(measure(code, ROUNDS))
            if count < 3:
                blocks[f"refresh{count}"].append(measure(refresh, ROUNDS))
        if jailed:
            blocks["warm"].append(warm_call(pool, 10 * ROUNDS))
    enable(0)

    def median(name: str) -> float:
        return statistics.median(blocks[name])

    def added(name: str) -> float:
        """Return the median over blocks of the configuration's median minus the one without actions."""
        base = "refresh0" if name.startswith("refresh") else "code0"
        return statistics.median(a - b for a, b in zip(blocks[name], blocks[base], strict=True))

    rows = [
        ("actions: RS256 sign (floor)", sign, sign),
        ("actions: authorize with SSO session → code, no action", median("code0"), sign),
        ("actions: refresh with rotation, no action", median("refresh0"), sign),
    ]
    if not jailed:
        return rows
    warm = median("warm")
    return [
        *rows,
        ("actions: warm jailed call, production jail (floor)", warm, warm),
        ("actions: authorize → code, 1 no-op action", median("code1"), sign),
        ("actions: authorize → code, 3 no-op actions", median("code3"), sign),
        ("actions: refresh with rotation, 1 no-op action", median("refresh1"), sign),
        ("actions: added by 1 no-op action, ÷ warm jailed call", added("code1"), warm),
        ("actions: added by 3 no-op actions, ÷ 3 warm jailed calls", added("code3"), 3 * warm),
        ("actions: added by 1 no-op action to refresh, ÷ warm call", added("refresh1"), warm),
    ]


if __name__ == "__main__":
    for name, seconds, floor in main():
        print(f"{name:<62} {seconds * 1000:>10.3f} ms {seconds / floor:>9.1f}×")
