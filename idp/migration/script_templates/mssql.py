"""SQL Server or Azure SQL: find legacy users of an ASP.NET (Core) Identity database (pymssql).

pymssql is not installed with idp: install it where idp runs (pip install "pymssql>=2.3"); until
then every call fails with "No module named 'pymssql'", and nothing is created.

Configuration keys:
    host             the server's name or address, e.g. "myserver.database.windows.net", or
                     "host\\instance" for a named instance
    port             (default 1433)
    database         the database that holds the AspNetUsers table
    user             a login that may SELECT from AspNetUsers: nothing more is needed
    password         that login's password
    encryption       TLS: "require" (Azure SQL demands it), "request" or "off" (default pymssql's)
    connect_timeout  seconds to wait for the server (default 10)

Password hash: ASP.NET Identity's PasswordHasher, the base64 blob in AspNetUsers.PasswordHash:
v3 ("AQAAAA…": PBKDF2 with HMAC-SHA256 and 10,000 rounds up to .NET 6, HMAC-SHA512 and 100,000
rounds from .NET 7; the blob says which) and v2 ("AAAAA…", ASP.NET Identity 2 on .NET Framework),
both checked by idp.migration.hashes.verify_aspnet_identity(). A NULL hash (a user who only ever
signed in with an external provider) never matches. For a hand-made users table with bcrypt or
the like, call hashes.verify() in _password_ok() instead; for the older ASP.NET Membership
schema (aspnet_Membership) use the aspnet_membership template.

The table: edit FIND_USER below to match your schema. It must return the columns named in its
SELECT list (rename yours with AS) and must keep %(email)s: the email always travels as a query
parameter, never inside the SQL text. Names are quoted with [brackets], which SQL Server reads as
identifiers whatever its QUOTED_IDENTIFIER setting. The lookup uses NormalizedEmail (Identity keeps
it upper-cased, with an index), so case is ignored. Two users with one normalized address make the
lookup fail (rather than pick one): merge them in the legacy store first.

Lockout: like Identity's SignInManager, login refuses a user whose lockout has not ended
(LockoutEnabled and LockoutEnd in the future) with "wrong email or password". get_user still
returns them: they exist, so sign-up with their address stays refused, and a password reset
(which proves they own the mailbox) moves them over, as Identity's own reset would let them back in.

Both scripts return the same profile for a user (_profile below), as they must: the user's id in
idp is "<connection id>|<user_id>" (Identity's Id, a string), whichever of login and get_user
brought them over. Check with `idp connections test NAME --email E --password P`.

count_users and export_users let `idp migration status` say how many users are left and `idp migration
finish` move them over with their hashes (who then sign in with their old passwords). Edit COUNT_USERS
and EXPORT_USERS to match FIND_USER: EXPORT_USERS pages through the table in the order of the column
that gives user_id (Identity's Id: text, ordered by the column's collation, which the comparison with
the previous page's last Id follows too), starting after the last user_id of the previous page.
idp does not read Identity's blobs as a password_hash, so each user's hash is exported as an Auth0
pbkdf2 custom_password_hash (idp.migration.hashes.aspnet_identity_custom_hash), which idp verifies
as Identity would; a user without one (NULL, or a blob Identity could not read either) moves over
without a password and sets one by a reset. A hash costlier than idp accepts from an import (see
idp.migration.auth0_hashes.PBKDF2_MAX_WORK) is reported among the users not imported. Lockouts are
not carried over: a user whose lockout has not ended is exported like any other, and can sign in
to idp once moved.

One connection per configuration is kept between calls (the sandbox keeps a script's globals) and
opened again once if the server dropped it.
"""

import contextlib

# Finds a user by email. Keep the column names after AS: the rest of the script reads them.
FIND_USER = """
    SELECT [Id] AS user_id, [Email] AS email, [PasswordHash] AS password_hash,
           [EmailConfirmed] AS email_verified, [UserName] AS nickname,
           CASE WHEN [LockoutEnabled] = 1 AND [LockoutEnd] > SYSDATETIMEOFFSET() THEN 1 ELSE 0 END
               AS locked_out
    FROM [dbo].[AspNetUsers]
    WHERE [NormalizedEmail] = UPPER(%(email)s)
"""

# Counts the legacy users.
COUNT_USERS = "SELECT COUNT(*) AS users FROM [dbo].[AspNetUsers]"

# A page of users with their hashes: the first page when %(first)s = 1, then those after %(after)s.
EXPORT_USERS = """
    SELECT TOP (%(limit)s)
           [Id] AS user_id, [Email] AS email, [PasswordHash] AS password_hash,
           [EmailConfirmed] AS email_verified, [UserName] AS nickname
    FROM [dbo].[AspNetUsers]
    WHERE %(first)s = 1 OR [Id] > %(after)s
    ORDER BY [Id]
"""
PAGE = 1000  # users per page

# An Identity v3 hash (SHA256, 10,000 rounds) of a random password, checked when no user has the
# email, so that an unknown address takes as long as a wrong password. Use one like your own hashes.
UNKNOWN_USER_HASH = "AQAAAAEAACcQAAAAEBNjGJnMNa4zSOzgWyvsh/KOo88+eOYE7vl+EPl+lKG0luT6LxXk80CKMf5y4KECKg=="

_connections = {}  # configuration -> open connection, kept between calls


def _connect(configuration):
    """Open a connection to the legacy database."""
    import pymssql

    options = {}
    if configuration.get("encryption"):
        options["encryption"] = configuration["encryption"]
    return pymssql.connect(
        server=configuration["host"], port=str(configuration.get("port") or 1433),
        database=configuration.get("database") or "", user=configuration.get("user"),
        password=configuration.get("password"), appname="idp-migration",
        login_timeout=int(configuration.get("connect_timeout") or 10), autocommit=True, **options,
    )


def _query(connection, query, parameters):
    """Run a query and return every row it finds."""
    cursor = connection.cursor(as_dict=True)
    try:
        cursor.execute(query, parameters)
        return cursor.fetchall()
    finally:
        cursor.close()


def _rows(query, parameters, configuration):
    """Run a query on the kept connection, opening it again once if the server dropped it."""
    import pymssql

    key = tuple(sorted(configuration.items()))  # several connections may share this script
    kept = key in _connections
    if not kept:
        _connections[key] = _connect(configuration)
    try:
        return _query(_connections[key], query, parameters)
    except (pymssql.OperationalError, pymssql.InterfaceError):
        with contextlib.suppress(pymssql.Error):  # it may be broken beyond closing
            _connections.pop(key).close()
        if not kept:
            raise  # a new connection failed: the database is in trouble
    _connections[key] = _connect(configuration)
    return _query(_connections[key], query, parameters)


def _find(email, configuration):
    """Return the row of the user with this email (in any case), or None."""
    rows = _rows(FIND_USER, {"email": email}, configuration)
    if len(rows) > 1:
        raise LookupError("several legacy users have this normalized email: merge them")
    return rows[0] if rows else None


def _password_ok(password, row):
    """Check the password against the user's stored hash."""
    from idp.migration import hashes

    return hashes.verify_aspnet_identity(password, row["password_hash"])


def _profile(row):
    """Return the user's profile: the same from login and from get_user."""
    return {
        "user_id": str(row["user_id"]),
        "email": row["email"],
        "email_verified": bool(row["email_verified"]),
        "nickname": row["nickname"] or None,
    }


def _exported(row):
    """Return the user's profile with their hash as an Auth0 custom_password_hash (left out without one)."""
    from idp.migration import hashes

    user = _profile(row)
    custom = hashes.aspnet_identity_custom_hash(row["password_hash"])
    if custom is not None:
        user["custom_password_hash"] = custom
    return user


def login(email, password, configuration):
    """Return the profile of the user with this email and password; refuse anyone else."""
    from idp.migration import hashes

    row = _find(email, configuration)
    if row is None:
        hashes.verify_aspnet_identity(password, UNKNOWN_USER_HASH)
        raise WrongUsernameOrPassword(email)
    if not _password_ok(password, row) or row["locked_out"]:
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
    users = [_exported(row) for row in rows]
    return {"users": users, "next": rows[-1]["user_id"] if len(rows) == PAGE else None}
