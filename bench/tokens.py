"""Protocol endpoints against their floors: one RS256 signature, one argon2id hash."""

from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.harness import authorization, measure, production_hasher, provider
from idp import config
from idp.connections.models import NATIVE_ID
from idp.oauth.clients import create_client
from idp.users.accounts import create_user

PASSWORD = "correct horse battery staple"


def main() -> list[tuple[str, float, float]]:
    """Return rows of (benchmark, seconds, floor seconds)."""
    key = rsa.generate_private_key(65537, config.SIGNING_KEY_SIZE)
    sign_floor = measure(lambda: jwt.encode({"sub": "x", "iat": 0}, key, algorithm="RS256"), 200)
    hasher = production_hasher()
    hashed = hasher.hash(PASSWORD)
    argon_floor = measure(lambda: hasher.verify(hashed, PASSWORD), 20)

    app = provider()
    with app.app_context():
        create_user("bench@example.com", PASSWORD, NATIVE_ID)
        client, secret = create_client("Bench", ["https://rp.example/cb"], first_party=True)
        client_id = client.id
    assert secret is not None
    http = app.test_client()
    auth_query, verifier = authorization(client_id)

    def login() -> None:
        http.delete_cookie("idp_session")
        location = http.get("/authorize", query_string=auth_query).headers["Location"]
        response = http.post(location, data={"email": "bench@example.com", "password": PASSWORD})
        assert response.status_code == 302

    def code() -> str:
        location = http.get("/authorize", query_string=auth_query).headers["Location"]
        return parse_qs(urlsplit(location).query)["code"][0]

    codes: list[str] = []

    def exchange() -> dict[str, str]:
        data = {"grant_type": "authorization_code", "code": codes.pop() if codes else code(),
                "redirect_uri": "https://rp.example/cb", "code_verifier": verifier}
        return http.post("/oauth/token", data=data, auth=(client_id, secret)).json

    login()
    tokens = exchange()
    codes.extend(code() for _ in range(101))  # made beforehand: time the exchange alone
    state = {"refresh": tokens["refresh_token"]}

    def refresh() -> None:
        body = http.post("/oauth/token", auth=(client_id, secret), data={
            "grant_type": "refresh_token", "refresh_token": state["refresh"]}).json
        state["refresh"] = body["refresh_token"]

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    rows = [
        ("RS256 sign (floor)", sign_floor, sign_floor),
        ("argon2id verify, production parameters (floor)", argon_floor, argon_floor),
        ("login POST (one argon2id verify)", measure(login, 10), argon_floor),
        ("authorize with SSO session → code", measure(code, 100), sign_floor),
        ("code exchange (access + ID token: 2 signatures)", measure(exchange, 100), sign_floor),
        ("refresh with rotation (1 signature)", measure(refresh, 100), sign_floor),
        ("userinfo (1 verify)", measure(lambda: http.get("/userinfo", headers=bearer), 200), sign_floor),
        ("JWKS", measure(lambda: http.get("/.well-known/jwks.json"), 200), sign_floor),
    ]
    return rows
