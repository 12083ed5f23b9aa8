"""SQLite: find legacy users in a table of an SQLite database file (the standard library's sqlite3).

Configuration keys:
    path   the absolute path of the database file, readable by the user idp runs as; it is
           opened read-only, and a missing file is a failure of the legacy store, never "no user"

Password hash: bcrypt, "$2y$" (PHP's password_hash), "$2a$" or "$2b$". The check is
idp.migration.hashes.verify(), which recognises the format by its prefix, so WordPress "$wp$",
phpass "$P$"/"$H$", Django "pbkdf2_sha256$…", SHA-crypt "$5$"/"$6$" and argon2 hashes work
unchanged, even mixed in one table. A hash it does not recognise is a failure of the legacy store
(logged with the format's name), not a wrong password. For other formats call another verifier
from that module (verify_digest, verify_scrypt…) in _password_ok() below.

The table: edit FIND_USER below to match your schema. It must return the columns named in its
SELECT list (rename yours with AS) and must keep :email: the email always travels as a query
parameter, never inside the SQL text. The lookup ignores case (SQLite's lower() folds ASCII
letters only). Two users whose addresses differ only in case make the lookup fail (rather than
pick one): merge them in the legacy store first.

Both scripts return the same profile for a user (_profile below), as they must: the user's id in
idp is "<connection id>|<user_id>", whichever of login and get_user brought them over. Check with
`idp connections test NAME --email E --password P`.

count_users and export_users let `idp migration status` say how many users are left and `idp migration
finish` move them over with their hashes (who then sign in with their old passwords). Edit COUNT_USERS
and EXPORT_USERS to match FIND_USER: EXPORT_USERS pages through the table in the order of the column
that gives user_id (its primary key, say), starting after the last user_id of the previous page.

The file is opened for each call and closed after it: that is cheap for SQLite, and a file that
was replaced (a restored backup) is never read through a stale handle.
"""

import contextlib
import os
import sqlite3
from urllib.parse import quote

# Finds a user by email. Keep the column names after AS: the rest of the script reads them.
FIND_USER = """
    SELECT id AS user_id, email, password_hash, email_verified, name, given_name, family_name
    FROM users
    WHERE lower(email) = lower(:email)
"""

# Counts the legacy users.
COUNT_USERS = "SELECT count(*) AS users FROM users"

# A page of users with their hashes: the first page when :first, then those after :after.
EXPORT_USERS = """
    SELECT id AS user_id, email, password_hash, email_verified, name, given_name, family_name
    FROM users
    WHERE :first OR id > :after
    ORDER BY id
    LIMIT :limit
"""
PAGE = 1000  # users per page

# A bcrypt hash of a random password, checked when no user has the email, so that an unknown
# address takes as long as a wrong password. Use the cost of your own hashes (the "10").
UNKNOWN_USER_HASH = "$2y$10$nP7jC9WdHR4VozMgtLDIWe13F7alohAZFLdAenbFM3SLB2E2pkbSO"


def _open(configuration):
    """Open the database file read-only."""
    path = configuration["path"]
    # Scripts run in a directory of their own, so a relative path would point somewhere unexpected.
    if not os.path.isabs(path):
        raise ValueError("the configuration key `path` must be an absolute path")
    # mode=ro: never create an empty database where the file is missing (every user would vanish).
    database = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5)
    database.row_factory = sqlite3.Row
    return database


def _rows(query, parameters, configuration):
    """Run a query and return every row it finds."""
    with contextlib.closing(_open(configuration)) as database:
        return database.execute(query, parameters).fetchall()


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
    rows = _rows(EXPORT_USERS, {"first": cursor is None, "after": cursor, "limit": PAGE}, configuration)
    users = [{**_profile(row), "password_hash": row["password_hash"]} for row in rows]
    return {"users": users, "next": rows[-1]["user_id"] if len(rows) == PAGE else None}
