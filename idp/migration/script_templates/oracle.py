"""Oracle Database: find legacy users in a table of your Oracle database (python-oracledb, Thin mode).

python-oracledb is not installed with idp: install it where idp runs (pip install oracledb); until
then every call fails with "No module named 'oracledb'", and nothing is created. Its Thin mode
needs no Oracle Client libraries.

Configuration keys:
    dsn              an Easy Connect string or a TNS alias, e.g. "dbhost.example.com:1521/ORCLPDB1",
                     or "tcps://dbhost.example.com:2484/ORCLPDB1" for TLS
    user             a schema user that may SELECT from the users table: nothing more is needed
    password         that user's password
    connect_timeout  seconds to wait for the server (default 10)

Password hash: bcrypt ("$2a$", "$2b$", "$2y$", as Java's Spring Security and jBCrypt, or PHP,
write them) or SHA-crypt ("$5$", "$6$", as glibc's crypt writes them). The check is
idp.migration.hashes.verify(), which recognises the format by its prefix, so phpass, Django
"pbkdf2_sha256$…" and argon2 hashes work too, even mixed in one table. A hash it does not
recognise is a failure of the legacy store (logged with the format's name), not a wrong password.
For other formats call another verifier from that module (verify_digest, verify_scrypt…) in
_password_ok() below. A NULL hash never matches.

The table: edit FIND_USER below to match your schema. It must return the columns named in its
SELECT list (rename yours with AS; Oracle reports them in capitals, which the script folds) and
must keep :email: the email always travels as a bind variable, never inside the SQL text. The
lookup ignores case; on a big table give it an index: CREATE INDEX users_lower_email ON users
(LOWER(email)). Two users whose addresses differ only in case make the lookup fail (rather than
pick one): merge them in the legacy store first.

Both scripts return the same profile for a user (_profile below), as they must: the user's id in
idp is "<connection id>|<user_id>", whichever of login and get_user brought them over. Check with
`idp connections test NAME --email E --password P`.

count_users and export_users let `idp migration status` say how many users are left and `idp migration
finish` move them over with their hashes (who then sign in with their old passwords). Edit COUNT_USERS
and EXPORT_USERS to match FIND_USER: EXPORT_USERS pages through the table in the order of the column
that gives user_id (its primary key, say), starting after the last user_id of the previous page. Its
FETCH FIRST needs Oracle Database 12c or later.

One connection per configuration is kept between calls (the sandbox keeps a script's globals) and
opened again once if the server dropped it.
"""

# Finds a user by email. Keep the column names after AS: the rest of the script reads them.
# TO_CHAR: the id as text, spelled the same way whatever the column's type (NUMBER, VARCHAR2).
FIND_USER = """
    SELECT TO_CHAR(id) AS user_id, email, password_hash, email_verified, name, given_name, family_name
    FROM users
    WHERE LOWER(email) = LOWER(:email)
"""

# Counts the legacy users.
COUNT_USERS = "SELECT COUNT(*) AS users FROM users"

# A page of users with their hashes: the first page when :first = 1, then those after :after.
EXPORT_USERS = """
    SELECT TO_CHAR(id) AS user_id, email, password_hash, email_verified, name, given_name, family_name
    FROM users
    WHERE :first = 1 OR id > :after
    ORDER BY id
    FETCH FIRST :limit ROWS ONLY
"""
PAGE = 1000  # users per page

# A bcrypt hash of a random password, checked when no user has the email, so that an unknown
# address takes as long as a wrong password. Use the cost of your own hashes (the "10").
UNKNOWN_USER_HASH = "$2y$10$nP7jC9WdHR4VozMgtLDIWe13F7alohAZFLdAenbFM3SLB2E2pkbSO"

_connections = {}  # configuration -> open connection, kept between calls


def _connect(configuration):
    """Open a connection to the legacy database."""
    import oracledb

    return oracledb.connect(
        dsn=configuration["dsn"], user=configuration.get("user"), password=configuration.get("password"),
        tcp_connect_timeout=float(configuration.get("connect_timeout") or 10),
    )


def _query(connection, query, parameters):
    """Run a query and return every row it finds, as dicts keyed by lower-case column names."""
    with connection.cursor() as cursor:
        cursor.execute(query, parameters)
        names = [column[0].lower() for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _rows(query, parameters, configuration):
    """Run a query on the kept connection, opening it again once if the server dropped it."""
    import oracledb

    key = tuple(sorted(configuration.items()))  # several connections may share this script
    kept = key in _connections
    if not kept:
        _connections[key] = _connect(configuration)
    connection = _connections[key]
    try:
        return _query(connection, query, parameters)
    except oracledb.Error:
        # A connection that still looks healthy got a real error (a wrong column name, say): report it.
        if not kept or connection.is_healthy():
            raise
        del _connections[key]
    _connections[key] = _connect(configuration)
    return _query(_connections[key], query, parameters)


def _find(email, configuration):
    """Return the row of the user with this email (in any case), or None."""
    rows = _rows(FIND_USER, {"email": email}, configuration)
    if len(rows) > 1:
        raise LookupError("several legacy users have this email, compared case-insensitively: merge them")
    return rows[0] if rows else None


def _password_ok(password, row):
    """Check the password against the user's stored hash."""
    from idp.migration import hashes

    return hashes.verify(password, row["password_hash"])


def _profile(row):
    """Return the user's profile: the same from login and from get_user."""
    return {
        "user_id": str(row["user_id"]),
        "email": row["email"],
        "email_verified": bool(row["email_verified"]),
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
    rows = _rows(EXPORT_USERS, {"first": int(cursor is None), "after": cursor, "limit": PAGE}, configuration)
    users = [{**_profile(row), "password_hash": row["password_hash"]} for row in rows]
    return {"users": users, "next": rows[-1]["user_id"] if len(rows) == PAGE else None}
