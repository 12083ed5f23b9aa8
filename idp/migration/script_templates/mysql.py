"""MySQL or MariaDB: find legacy users in a table of your database (PyMySQL).

Configuration keys:
    host             the server's name or address (default "localhost")
    port             (default 3306)
    database         the database (schema) that holds the users table
    user             an account that may SELECT from the users table: nothing more is needed
    password         that account's password
    ssl_ca           path of the CA certificate to verify the server's TLS certificate with; when
                     given, the connection is encrypted and the certificate checked (default: no TLS)
    connect_timeout  seconds to wait for the server (default 10)

Password hash: bcrypt, "$2y$" (PHP's password_hash, Laravel) or "$2a$"/"$2b$". The check is
idp.migration.hashes.verify(), which recognises the format by its prefix, so WordPress "$wp$",
phpass "$P$"/"$H$", Django "pbkdf2_sha256$…", SHA-crypt "$5$"/"$6$" and argon2 hashes work
unchanged, even mixed in one table. A hash it does not recognise is a failure of the legacy store
(logged with the format's name), not a wrong password. For other formats call another verifier
from that module (verify_digest, verify_scrypt…) in _password_ok() below.

The table: edit FIND_USER below to match your schema. It must return the columns named in its
SELECT list (rename yours with AS) and must keep %(email)s: the email always travels as a query
parameter, never inside the SQL text. The lookup ignores case whatever the column's collation.
With a case-insensitive collation (the default, *_ci) `WHERE email = %(email)s` ignores case too
and can use an index on email: prefer it on a big table. Two users whose addresses differ only
in case make the lookup fail (rather than pick one): merge them in the legacy store first.

WordPress: its users are in wp_users (mind your table prefix), passwords in user_pass ("$wp$2y$…"
since WordPress 6.8, phpass "$P$…" before; hashes.verify() checks both), and there is no
first/last name or verification flag in that table (claim no verified addresses). For example:

    SELECT ID AS user_id, user_email AS email, user_pass AS password_hash,
           0 AS email_verified, display_name AS name, NULL AS given_name, NULL AS family_name
    FROM wp_users
    WHERE LOWER(user_email) = LOWER(%(email)s)

Both scripts return the same profile for a user (_profile below), as they must: the user's id in
idp is "<connection id>|<user_id>", whichever of login and get_user brought them over. Check with
`idp connections test NAME --email E --password P`.

count_users and export_users let `idp migration status` say how many users are left and `idp migration
finish` move them over with their hashes (who then sign in with their old passwords). Edit COUNT_USERS
and EXPORT_USERS to match FIND_USER: EXPORT_USERS pages through the table in the order of the column
that gives user_id (its primary key, say), starting after the last user_id of the previous page.

One connection per configuration is kept between calls (the sandbox keeps a script's globals) and
opened again once if the server dropped it (a restart, wait_timeout).
"""

# Finds a user by email. Keep the column names after AS: the rest of the script reads them.
FIND_USER = """
    SELECT id AS user_id, email, password_hash, email_verified,
           CONCAT_WS(' ', first_name, last_name) AS name,
           first_name AS given_name, last_name AS family_name
    FROM users
    WHERE LOWER(email) = LOWER(%(email)s)
"""

# Counts the legacy users.
COUNT_USERS = "SELECT COUNT(*) AS users FROM users"

# A page of users with their hashes: the first page when %(first)s, then those after %(after)s.
EXPORT_USERS = """
    SELECT id AS user_id, email, password_hash, email_verified,
           CONCAT_WS(' ', first_name, last_name) AS name,
           first_name AS given_name, last_name AS family_name
    FROM users
    WHERE %(first)s OR id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
"""
PAGE = 1000  # users per page

# A bcrypt hash of a random password, checked when no user has the email, so that an unknown
# address takes as long as a wrong password. Use the cost of your own hashes (the "10").
UNKNOWN_USER_HASH = "$2y$10$nP7jC9WdHR4VozMgtLDIWe13F7alohAZFLdAenbFM3SLB2E2pkbSO"

_connections = {}  # configuration -> open connection, kept between calls


def _connect(configuration):
    """Open a connection to the legacy database."""
    import pymysql
    import pymysql.cursors

    return pymysql.connect(
        host=configuration.get("host") or "localhost", port=int(configuration.get("port") or 3306),
        database=configuration.get("database"), user=configuration.get("user"),
        password=configuration.get("password") or "", ssl_ca=configuration.get("ssl_ca") or None,
        connect_timeout=int(configuration.get("connect_timeout") or 10),
        charset="utf8mb4", autocommit=True, cursorclass=pymysql.cursors.DictCursor,
    )


def _query(connection, query, parameters):
    """Run a query and return every row it finds."""
    with connection.cursor() as cursor:
        cursor.execute(query, parameters)
        return cursor.fetchall()


def _rows(query, parameters, configuration):
    """Run a query on the kept connection, opening it again once if the server dropped it."""
    import pymysql

    key = tuple(sorted(configuration.items()))  # several connections may share this script
    kept = key in _connections
    if not kept:
        _connections[key] = _connect(configuration)
    try:
        return _query(_connections[key], query, parameters)
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
        connection = _connections.pop(key)
        if connection.open:
            connection.close()
        if not kept:
            raise  # a new connection failed: the database is in trouble
    _connections[key] = _connect(configuration)
    return _query(_connections[key], query, parameters)


def _find(email, configuration):
    """Return the row of the user with this email (in any case), or None."""
    rows = _rows(FIND_USER, {"email": email}, configuration)
    if len(rows) > 1:
        raise LookupError("several legacy users have this email, compared case-insensitively: merge them")
    return rows[0] if rows else None


def _flag(value):
    """Read a yes/no column: TINYINT(1) comes back as an int, BIT(1) as bytes."""
    if isinstance(value, bytes):
        return any(value)
    return bool(value)


def _password_ok(password, row):
    """Check the password against the user's stored hash."""
    from idp.migration import hashes

    return hashes.verify(password, row["password_hash"])


def _profile(row):
    """Return the user's profile: the same from login and from get_user."""
    return {
        "user_id": str(row["user_id"]),
        "email": row["email"],
        "email_verified": _flag(row["email_verified"]),
        "name": row["name"] or None,
        "given_name": row["given_name"] or None,
        "family_name": row["family_name"] or None,
    }


def login(email, password, configuration):
    """Return the profile of the user with this email and password; refuse anyone else."""
    from idp.migration import hashes

    row = _find(email, configuration)
    if row is None:
        hashes.verify(password, UNKNOWN_USER_HASH)
        raise WrongUsernameOrPassword(email)
    if not _password_ok(password, row):
        raise WrongUsernameOrPassword(email)
    return _profile(row)


def get_user(email, configuration):
    """Return the profile of the user with this email, or None if there is none."""
    row = _find(email, configuration)
    return None if row is None else _profile(row)

def count_users(configuration):
    """Return how many users the legacy store has."""
    return int(_rows(COUNT_USERS, {}, configuration)[0]["users"])


def export_users(cursor, configuration):
    """Return a page of users with their password hashes, and where the next page starts (None: done)."""
    rows = _rows(EXPORT_USERS, {"first": cursor is None, "after": cursor, "limit": PAGE}, configuration)
    users = [{**_profile(row), "password_hash": row["password_hash"]} for row in rows]
    return {"users": users, "next": rows[-1]["user_id"] if len(rows) == PAGE else None}
