"""Drive idp with auth0-python v4's hand-written classes; print one JSON object of what came back.

Run as `python auth0_v4.py DOMAIN CLIENT_ID CLIENT_SECRET CONNECTION PASSWORD BULK_QUERY` with
PYTHONPATH naming the v4 install (.venv/auth0-v4: v4 and v5 share the package name) and
REQUESTS_CA_BUNDLE the test CA. v4's GetToken sends its token request as JSON, not a form.
"""

import json
import sys
import uuid
from typing import Any

import auth0
from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0


def error(call: Any) -> dict[str, Any]:
    """Run a call that should fail; return what Auth0Error carried."""
    try:
        call()
    except Auth0Error as failure:
        return {"status_code": failure.status_code, "error_code": failure.error_code,
                "message": failure.message}
    return {"status_code": None}


def main(domain: str, client_id: str, secret: str, connection: str, password: str, bulk_q: str) -> None:
    out: dict[str, Any] = {"version": auth0.__version__}
    grant = GetToken(domain, client_id, client_secret=secret).client_credentials(f"https://{domain}/api/v2/")
    out["token"] = {k: grant.get(k) for k in ("token_type", "expires_in", "scope")}
    api = Auth0(domain, grant["access_token"])

    email = f"py4-{uuid.uuid4().hex[:10]}@sdk.example"
    created = api.users.create({"connection": connection, "email": email, "password": password,
                                "name": "Py Four", "user_metadata": {"lang": "en"}})
    out["created"] = created
    out["got"] = api.users.get(created["user_id"], fields=["user_id", "email", "user_metadata"])
    out["listed"] = api.users.list(q=f'email:"{email}"')
    out["by_email"] = api.users_by_email.search_users_by_email(email.upper())
    out["updated"] = api.users.update(created["user_id"], {"user_metadata": {"theme": "dark"}})
    # The last bulk page, past Auth0's 1,000-result cap, without totals (a bare array).
    out["page_11"] = api.users.list(q=bulk_q, page=10, per_page=100, include_totals=False,
                                    sort="created_at:1", fields=["user_id"])
    out["conflict"] = error(lambda: api.users.create({"connection": connection, "email": email,
                                                      "password": password}))
    out["deleted"] = api.users.delete(created["user_id"])
    out["missing"] = error(lambda: api.users.get(created["user_id"]))
    out["unauthorized"] = error(lambda: Auth0(domain, "not-a-token").users.get(created["user_id"]))
    out["bad_client"] = error(lambda: GetToken(domain, client_id, client_secret="wrong")
                              .client_credentials(f"https://{domain}/api/v2/"))
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
