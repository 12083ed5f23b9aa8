"""A web service: ask your legacy application's HTTP API, authenticating with HTTP Basic (requests).

Configuration keys:
    base_url   the API's root, e.g. "https://legacy.example.com/idp-api"; https (plain http only
               to this machine: passwords travel in the requests)
    username   the user idp authenticates as (HTTP Basic)
    password   that user's password
    timeout    seconds to wait for each answer (default 10; keep it under the script timeout, 20 s)
    ca_bundle  path of the CA certificates to verify the API's TLS certificate with (default: the
               public ones certifi ships); certificates are always verified

The API, written in the legacy application next to its own password check:

    POST {base_url}/login   with JSON {"email": "...", "password": "..."}
        200 and the user's profile as JSON, or
        401 when the email or the password is wrong (no such user included), without a
            WWW-Authenticate header
    GET {base_url}/users?email=...
        200 and the user's profile as JSON, or
        404 with a JSON body (any, e.g. {"error": "not_found"}) when no user has the email

    GET {base_url}/users/count                      (optional)
        200 and {"count": the number of users}
    GET {base_url}/users/export?after=...           (optional; no `after` for the first page)
        200 and {"users": [profile…], "next": the `after` of the next page, or null after the last},
        each profile with the user's password hash as "password_hash" (bcrypt, phpass, Django's…)
        or "custom_password_hash" (Auth0's format), so that they sign in with their old password

Both look the email up without regard to case and return the same profile for a user, as a JSON
object with "user_id" (text or a number) and "email", and optionally "email_verified", "name",
"given_name", "family_name", "nickname", "picture", "user_metadata" and "app_metadata" (other
members are ignored). The user's id in idp is "<connection id>|<user_id>", whichever call brought
them over. Check with `idp connections test NAME --email E --password P`.

count_users and export_users let `idp migration status` say how many users are left and `idp migration
finish` move them over, through the two optional endpoints. Without those, remove both scripts from
the connection (`idp connections scripts NAME --count-users '' --export-users ''`).

Anything else is a failure of the legacy store (nothing is created, and the login page says "we
can't sign you in right now"): another status, a redirect, a body that is not a JSON object, a
timeout or no answer. So is a 401 that carries a `WWW-Authenticate: Basic` header, which is what
web frameworks send when the Basic credentials themselves are refused: a wrong `password` in this
configuration must not look like every user's wrong password. And so is a 404 that is not JSON,
the answer of a server whose base_url is wrong: taking it for "no such user" would let people
sign up again with the address of a legacy user.

Password hash: whatever the legacy application uses; it checks passwords itself, so this script
assumes no hash format.

One HTTP session per configuration is kept between calls (the sandbox keeps a script's globals),
so connections to the API are reused.
"""

from urllib.parse import urlsplit

PROFILE_FIELDS = ("user_id", "email", "email_verified", "name", "given_name", "family_name", "nickname",
                  "picture", "user_metadata", "app_metadata")
HASH_FIELDS = ("password_hash", "custom_password_hash")  # what an exported user adds
LOOPBACK = ("localhost", "127.0.0.1", "::1")

_sessions = {}  # configuration -> requests.Session, kept between calls


def _url(configuration, path):
    """Return the URL of an endpoint of the API, refusing plain http to another machine."""
    base = configuration["base_url"].rstrip("/")
    parts = urlsplit(base)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise ValueError("the configuration key `base_url` must be an https URL")
    return base + path


def _session(configuration):
    """Return an HTTP session that authenticates as idp, kept between calls."""
    import requests

    key = tuple(sorted(configuration.items()))  # several connections may share this script
    if key not in _sessions:
        session = requests.Session()
        session.auth = (configuration["username"], configuration["password"])
        session.verify = configuration.get("ca_bundle") or True
        session.headers["Accept"] = "application/json"
        _sessions[key] = session
    return _sessions[key]


def _timeout(configuration):
    """Return the seconds to wait for an answer."""
    return float(configuration.get("timeout") or 10)


def _refused_us(response):
    """Say whether a 401 is the API refusing idp's own Basic credentials."""
    return "basic" in response.headers.get("WWW-Authenticate", "").lower()


def _object(response):
    """Return the JSON object of a 200 answer."""
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"the web service answered {response.request.method} {urlsplit(response.url).path} "
                         "with JSON that is not an object")
    return data


def _profile(response):
    """Return the profile in a 200 answer: the same fields from login and from get_user."""
    data = _object(response)
    return {name: data[name] for name in PROFILE_FIELDS if name in data}


def _not_found(response):
    """Say whether a 404 is the API's "no such user" rather than a wrong URL's."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _unexpected(response):
    """Return the error for an answer the API contract does not allow: the legacy store failed."""
    kind = response.headers.get("Content-Type") or "no content type"
    return RuntimeError(f"the web service answered {response.request.method} {urlsplit(response.url).path} "
                        f"with HTTP {response.status_code} ({kind})")


def login(email, password, configuration):
    """Return the profile of the user with this email and password; refuse anyone else."""
    response = _session(configuration).post(
        _url(configuration, "/login"), json={"email": email, "password": password},
        timeout=_timeout(configuration), allow_redirects=False,
    )
    if response.status_code == 200:
        return _profile(response)
    if response.status_code == 401 and not _refused_us(response):
        raise WrongUsernameOrPassword(email)
    raise _unexpected(response)


def get_user(email, configuration):
    """Return the profile of the user with this email, or None if there is none."""
    response = _session(configuration).get(
        _url(configuration, "/users"), params={"email": email},
        timeout=_timeout(configuration), allow_redirects=False,
    )
    if response.status_code == 200:
        return _profile(response)
    if response.status_code == 404 and _not_found(response):
        return None
    raise _unexpected(response)


def _get(configuration, path, params=None):
    """Return the JSON object of a 200 answer to a GET, or raise for any other answer."""
    response = _session(configuration).get(_url(configuration, path), params=params,
                                           timeout=_timeout(configuration), allow_redirects=False)
    if response.status_code != 200:
        raise _unexpected(response)
    return _object(response)


def count_users(configuration):
    """Return how many users the legacy application has."""
    count = _get(configuration, "/users/count").get("count")
    if not isinstance(count, int) or isinstance(count, bool):
        raise ValueError("the web service answered GET /users/count without a whole number as `count`")
    return count


def export_users(cursor, configuration):
    """Return a page of users with their password hashes, and where the next page starts (None: done)."""
    page = _get(configuration, "/users/export", None if cursor is None else {"after": cursor})
    users = page.get("users")
    if not isinstance(users, list) or not all(isinstance(user, dict) for user in users):
        raise ValueError("the web service answered GET /users/export without a list of objects as `users`")
    fields = PROFILE_FIELDS + HASH_FIELDS
    return {"users": [{name: user[name] for name in fields if name in user} for user in users],
            "next": page.get("next")}
