"""ASP.NET Membership: find legacy users of SqlMembershipProvider's schema (aspnet_Membership).

The schema that aspnet_regsql.exe made for ASP.NET 2.0-4.x sites: aspnet_Applications,
aspnet_Users (UserId, UserName) and aspnet_Membership (UserId, Email, LoweredEmail, Password,
PasswordSalt, PasswordFormat, IsApproved, IsLockedOut). Usually on SQL Server, read with pymssql
(not installed with idp: pip install "pymssql>=2.3"); a copy of the schema moved to PostgreSQL
can be read with psycopg instead (driver "psycopg").

Configuration keys:
    driver            "pymssql" (default: SQL Server, Azure SQL) or "psycopg" (PostgreSQL)
    host              the server's name or address, e.g. "sqlserver.example.com" or "host\\instance"
    port              (default 1433 with pymssql, 5432 with psycopg)
    database          the database that holds the aspnet_ tables
    user              a login that may SELECT from those tables: nothing more is needed
    password          that login's password
    encryption        pymssql only: TLS, "require" (Azure SQL demands it), "request" or "off"
    connect_timeout   seconds to wait for the server (default 10)
    application_name  the site's applicationName (web.config <membership><providers>); needed when
                      the database holds several applications, which may share an address
    hash_algorithm    how PasswordFormat 1 (Hashed) passwords were hashed: "SHA1" (default) or
                      "HMACSHA256", and also MD5, SHA256, SHA384, SHA512, HMACSHA1, HMACSHA384,
                      HMACSHA512. It is the hashAlgorithmType of <membership> if set, otherwise the
                      <machineKey validation="…"> algorithm: SHA1 up to .NET 3.5, HMACSHA256 by
                      default from .NET 4.0 (with <machineKey validation="SHA1"> it stays SHA1)

Password hash: SqlMembershipProvider's EncodePassword, checked by
idp.migration.hashes.verify_aspnet_membership(): for PasswordFormat 1 (Hashed) Password is
base64(hash(salt || UTF-16LE(password))) with the base64 PasswordSalt, or for an HMAC algorithm
the HMAC of UTF-16LE(password) keyed with the salt. PasswordFormat 0 (Clear) is compared as it
stands. PasswordFormat 2 (Encrypted) needs the site's machineKey and is not handled: such a user
gets "we can't sign you in right now" (logged) until you decrypt the passwords or change the
script.

Locked-out and unapproved users: like Membership.ValidateUser, login answers "wrong email or
password" for a user with IsLockedOut = 1 or IsApproved = 0, even with the right password.
get_user returns them anyway, as an Auth0 get_user script would: they exist, so a sign-up with their
address stays refused (rather than making a second account for it), and a password reset, which
proves they own the mailbox, moves them over with the new password, the way an administrator's
UnlockUser and a reset would let them back in. app_metadata keeps both flags (aspnet_approved,
aspnet_locked_out) as they were when the user moved over. If IsApproved = 0 means "banned" on
your site rather than "not confirmed yet", block those users in idp after they move (their
app_metadata.aspnet_approved is false).

email_verified: Membership keeps no confirmation flag. Set APPROVAL_CONFIRMS_EMAIL to True if the
site approved accounts (IsApproved = 1) only once the address was confirmed; otherwise users
arrive unverified.

The tables: FIND_USER below holds the query twice, quoted for each database: [brackets] for SQL
Server (identifiers whatever its QUOTED_IDENTIFIER setting), "double quotes" for PostgreSQL
(where the mixed-case names were created quoted and unquoted ones fold to lower case). Both keep
%(email)s and %(application)s: values always travel as query parameters, never inside the SQL
text. The lookup uses LoweredEmail, so case is ignored. Two users with one address in the
applications searched make the lookup fail (rather than pick one): set application_name.

Both scripts return the same profile for a user (_profile below), as they must: the user's id in
idp is "<connection id>|<UserId>", the GUID in lower case, whichever of login and get_user
brought them over. Check with `idp connections test NAME --email E --password P`.

count_users and export_users let `idp migration status` say how many members are left and `idp
migration finish` move them over with their hashes, in the applications FIND_USER searches. A Hashed
password travels as an Auth0 custom_password_hash that idp verifies as SqlMembershipProvider did (plain
SHA384, which that format cannot describe, travels without one); a Clear one is hashed on the way
(salted SHA-256, then argon2id at the first sign-in). Members who cannot sign in today travel without a
password, and a reset lets them in as it does lazily: Encrypted passwords, locked-out and unapproved
members. EXPORT_USERS pages through the members in the order of UserId, starting after the last UserId
of the previous page.

One connection per configuration is kept between calls (the sandbox keeps a script's globals) and
opened again once if the server dropped it.
"""

import contextlib
import hmac
import uuid

# Finds a user by email. Keep the column names after AS: the rest of the script reads them.
# %(application)s is the lower-cased application_name, or NULL to search every application.
FIND_USER = {
    "pymssql": """
        SELECT m.[UserId] AS user_id, m.[Email] AS email, u.[UserName] AS user_name,
               m.[Password] AS password, m.[PasswordSalt] AS password_salt,
               m.[PasswordFormat] AS password_format,
               m.[IsApproved] AS is_approved, m.[IsLockedOut] AS is_locked_out
        FROM [dbo].[aspnet_Membership] AS m
        JOIN [dbo].[aspnet_Users] AS u ON u.[UserId] = m.[UserId]
        JOIN [dbo].[aspnet_Applications] AS a ON a.[ApplicationId] = m.[ApplicationId]
        WHERE m.[LoweredEmail] = LOWER(%(email)s)
          AND a.[LoweredApplicationName] = COALESCE(%(application)s, a.[LoweredApplicationName])
    """,
    "psycopg": """
        SELECT m."UserId" AS user_id, m."Email" AS email, u."UserName" AS user_name,
               m."Password" AS password, m."PasswordSalt" AS password_salt,
               m."PasswordFormat" AS password_format,
               m."IsApproved" AS is_approved, m."IsLockedOut" AS is_locked_out
        FROM "aspnet_Membership" AS m
        JOIN "aspnet_Users" AS u ON u."UserId" = m."UserId"
        JOIN "aspnet_Applications" AS a ON a."ApplicationId" = m."ApplicationId"
        WHERE m."LoweredEmail" = LOWER(%(email)s)
          AND a."LoweredApplicationName" = COALESCE(%(application)s, a."LoweredApplicationName")
    """,
}

# Counts the members, and pages through them with their passwords: the first page when %(first)s is 1,
# then those after %(after)s.
COUNT_USERS = {
    "pymssql": """
        SELECT COUNT(*) AS users
        FROM [dbo].[aspnet_Membership] AS m
        JOIN [dbo].[aspnet_Applications] AS a ON a.[ApplicationId] = m.[ApplicationId]
        WHERE a.[LoweredApplicationName] = COALESCE(%(application)s, a.[LoweredApplicationName])
    """,
    "psycopg": """
        SELECT COUNT(*) AS users
        FROM "aspnet_Membership" AS m
        JOIN "aspnet_Applications" AS a ON a."ApplicationId" = m."ApplicationId"
        WHERE a."LoweredApplicationName" = COALESCE(%(application)s, a."LoweredApplicationName")
    """,
}
EXPORT_USERS = {
    "pymssql": """
        SELECT TOP (%(limit)s) m.[UserId] AS user_id, m.[Email] AS email, u.[UserName] AS user_name,
               m.[Password] AS password, m.[PasswordSalt] AS password_salt,
               m.[PasswordFormat] AS password_format,
               m.[IsApproved] AS is_approved, m.[IsLockedOut] AS is_locked_out
        FROM [dbo].[aspnet_Membership] AS m
        JOIN [dbo].[aspnet_Users] AS u ON u.[UserId] = m.[UserId]
        JOIN [dbo].[aspnet_Applications] AS a ON a.[ApplicationId] = m.[ApplicationId]
        WHERE (%(first)s = 1 OR m.[UserId] > %(after)s)
          AND a.[LoweredApplicationName] = COALESCE(%(application)s, a.[LoweredApplicationName])
        ORDER BY m.[UserId]
    """,
    "psycopg": """
        SELECT m."UserId" AS user_id, m."Email" AS email, u."UserName" AS user_name,
               m."Password" AS password, m."PasswordSalt" AS password_salt,
               m."PasswordFormat" AS password_format,
               m."IsApproved" AS is_approved, m."IsLockedOut" AS is_locked_out
        FROM "aspnet_Membership" AS m
        JOIN "aspnet_Users" AS u ON u."UserId" = m."UserId"
        JOIN "aspnet_Applications" AS a ON a."ApplicationId" = m."ApplicationId"
        WHERE (%(first)s = 1 OR m."UserId" > %(after)s::uuid)
          AND a."LoweredApplicationName" = COALESCE(%(application)s, a."LoweredApplicationName")
        ORDER BY m."UserId"
        LIMIT %(limit)s
    """,
}
PAGE = 1000  # members per page

CLEAR, HASHED, ENCRYPTED = 0, 1, 2  # aspnet_Membership.PasswordFormat
APPROVAL_CONFIRMS_EMAIL = False

_connections = {}  # configuration -> open connection, kept between calls


def _driver(configuration):
    """Return the configured driver's name."""
    driver = configuration.get("driver") or "pymssql"
    if driver not in FIND_USER:
        raise ValueError(f"the configuration key `driver` must be one of {', '.join(FIND_USER)}")
    return driver


def _connect(configuration):
    """Open a connection to the legacy database."""
    timeout = int(configuration.get("connect_timeout") or 10)
    if _driver(configuration) == "psycopg":
        import psycopg
        from psycopg.rows import dict_row

        return psycopg.connect(
            host=configuration.get("host") or "localhost", port=configuration.get("port") or 5432,
            dbname=configuration.get("database"), user=configuration.get("user"),
            password=configuration.get("password"), connect_timeout=timeout,
            application_name="idp-migration", autocommit=True, row_factory=dict_row, prepare_threshold=None,
        )
    import pymssql

    options = {}
    if configuration.get("encryption"):
        options["encryption"] = configuration["encryption"]
    return pymssql.connect(
        server=configuration["host"], port=str(configuration.get("port") or 1433),
        database=configuration.get("database") or "", user=configuration.get("user"),
        password=configuration.get("password"), appname="idp-migration", login_timeout=timeout,
        autocommit=True, as_dict=True, **options,
    )


def _connection_errors(configuration):
    """Return the exceptions by which the driver says the connection broke."""
    if _driver(configuration) == "psycopg":
        import psycopg

        return (psycopg.OperationalError,)
    import pymssql

    return (pymssql.OperationalError, pymssql.InterfaceError)


def _query(connection, queries, parameters, configuration):
    """Run the driver's query of `queries` in the applications searched and return every row."""
    application = (configuration.get("application_name") or "").lower() or None
    cursor = connection.cursor()
    try:
        cursor.execute(queries[_driver(configuration)], {**parameters, "application": application})
        return cursor.fetchall()
    finally:
        cursor.close()


def _rows(queries, parameters, configuration):
    """Run a query on the kept connection, opening it again once if the server dropped it."""
    key = tuple(sorted(configuration.items()))  # several connections may share this script
    kept = key in _connections
    if not kept:
        _connections[key] = _connect(configuration)
    try:
        return _query(_connections[key], queries, parameters, configuration)
    except _connection_errors(configuration):
        with contextlib.suppress(Exception):  # it may be broken beyond closing
            _connections.pop(key).close()
        if not kept:
            raise  # a new connection failed: the database is in trouble
    _connections[key] = _connect(configuration)
    return _query(_connections[key], queries, parameters, configuration)


def _find(email, configuration):
    """Return the row of the user with this email (in any case), or None."""
    rows = _rows(FIND_USER, {"email": email}, configuration)
    if len(rows) > 1:
        raise LookupError("several legacy users have this email: set the configuration key "
                          "`application_name`, or merge them")
    return rows[0] if rows else None


def _password_ok(password, row, configuration):
    """Check the password as SqlMembershipProvider stored it."""
    from idp.migration import hashes

    if row["password_format"] == HASHED:
        algorithm = configuration.get("hash_algorithm") or "SHA1"
        return hashes.verify_aspnet_membership(password, row["password"], row["password_salt"], algorithm)
    if row["password_format"] == CLEAR:
        return hmac.compare_digest(password.encode(), (row["password"] or "").encode())
    raise ValueError(f"PasswordFormat {row['password_format']} (2 is Encrypted, with the site's "
                     "machineKey) is not handled by this script")


def _user_id(value):
    """Return a uniqueidentifier as lower-case text, whichever type the driver gave it as."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return str(uuid.UUID(bytes_le=value))  # SQL Server's byte order
    return str(uuid.UUID(str(value)))


def _profile(row):
    """Return the user's profile: the same from login and from get_user."""
    approved = bool(row["is_approved"])
    return {
        "user_id": _user_id(row["user_id"]),
        "email": row["email"],
        "email_verified": APPROVAL_CONFIRMS_EMAIL and approved,
        "nickname": row["user_name"],
        "app_metadata": {"aspnet_approved": approved, "aspnet_locked_out": bool(row["is_locked_out"])},
    }


def login(email, password, configuration):
    """Return the profile of the user with this email and password; refuse anyone else."""
    row = _find(email, configuration)
    if row is None:
        # No decoy hash to check, as the other templates do: these hashes take microseconds.
        raise WrongUsernameOrPassword(email)
    if not _password_ok(password, row, configuration):
        raise WrongUsernameOrPassword(email)
    if row["is_locked_out"] or not row["is_approved"]:
        raise WrongUsernameOrPassword(email)
    return _profile(row)


def get_user(email, configuration):
    """Return the profile of the user with this email, or None if there is none."""
    row = _find(email, configuration)
    return None if row is None else _profile(row)


def count_users(configuration):
    """Return how many members the applications searched have."""
    return int(_rows(COUNT_USERS, {}, configuration)[0]["users"])


def _exported_hash(row, configuration):
    """Return the member's password as an Auth0 custom_password_hash, or None when they travel without one."""
    import hashlib
    import os

    from idp.migration import hashes

    if row["is_locked_out"] or not row["is_approved"]:
        return None  # login refuses them: a reset lets them in, as it does lazily
    if row["password_format"] == HASHED:
        algorithm = configuration.get("hash_algorithm") or "SHA1"
        return hashes.aspnet_membership_custom_hash(row["password"], row["password_salt"], algorithm)
    if row["password_format"] == CLEAR and row["password"]:
        salt = os.urandom(16)
        digest = hashlib.sha256(salt + row["password"].encode()).hexdigest()
        return {"algorithm": "sha256", "hash": {"value": digest, "encoding": "hex"},
                "salt": {"value": salt.hex(), "encoding": "hex", "position": "prefix"}}
    return None  # Encrypted: only the site's machineKey could read it


def export_users(cursor, configuration):
    """Return a page of members with their passwords, and where the next page starts (None: done)."""
    parameters = {"first": int(cursor is None), "after": cursor, "limit": PAGE}
    rows = _rows(EXPORT_USERS, parameters, configuration)
    users = []
    for row in rows:
        user = _profile(row)
        custom = _exported_hash(row, configuration)
        if custom is not None:
            user["custom_password_hash"] = custom
        users.append(user)
    return {"users": users, "next": users[-1]["user_id"] if len(rows) == PAGE else None}
