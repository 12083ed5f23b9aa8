"""MongoDB: find legacy users in a collection of your MongoDB database (pymongo).

pymongo is not installed with idp: install it where idp runs (pip install pymongo); until then
every call fails with "No module named 'pymongo'", and nothing is created.

Configuration keys:
    uri              a MongoDB connection string with its credentials and every host named, e.g.
                     "mongodb://idp-reader:PASSWORD@db1.example.net:27017,db2.example.net:27017/app
                     ?tls=true&replicaSet=rs0" (not mongodb+srv: the sandbox has no DNS, so SRV
                     records cannot be looked up; Atlas lists the hosts of its "standard" string);
                     give the reader the "read" role on the database, no more
    database         the database that holds the users collection (default: the one in the uri)
    connect_timeout  seconds to wait for a server (default 10)

Password hash: bcrypt in the `password` field, as Node's bcrypt and bcryptjs write it ("$2a$",
"$2b$"), or PHP ("$2y$"). The check is idp.migration.hashes.verify(), which recognises the format by
its prefix, so phpass, Django "pbkdf2_sha256$…", SHA-crypt and argon2 hashes work too, even mixed
in one collection. A hash it does not recognise is a failure of the legacy store (logged with the
format's name), not a wrong password. For other formats call another verifier from that module
(verify_digest, verify_scrypt…) in _password_ok() below. A missing hash never matches.

The collection: edit COLLECTION and the field names in FIELDS and _profile() below to match your
documents, e.g. {"_id": ObjectId(…), "email": "Ada@Example.com", "password": "$2b$10$…",
"name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace", "email_verified": true}.
The email is compared without regard to case through a collation (strength 2); on a big
collection give it an index with the same collation:
db.users.createIndex({email: 1}, {collation: {locale: "en", strength: 2}}). Two users whose
addresses differ only in case make the lookup fail (rather than pick one): merge them first.

Both scripts return the same profile for a user (_profile below), as they must: the user's id in
idp is "<connection id>|<user_id>", with user_id the text of the document's _id (24 hex digits for
an ObjectId), whichever of login and get_user brought them over. Check with
`idp connections test NAME --email E --password P`.

count_users and export_users let `idp migration status` say how many users are left and `idp migration
finish` move them over with their hashes (who then sign in with their old passwords). count_users
counts every document of COLLECTION; export_users pages through them in the order of _id, the field
that gives user_id (its index serves the sort), starting after the last user_id of the previous page.
_after() turns that user_id back into an ObjectId: if your _id values are strings or numbers, edit it
to return them as such (an _id it cannot read fails the export rather than end it early).

One client per configuration is kept between calls (the sandbox keeps a script's globals);
pymongo reconnects by itself and retries a read once after a network error.
"""

COLLECTION = "users"
EMAIL_FIELD = "email"
FIELDS = {"_id": 1, "email": 1, "password": 1, "name": 1, "given_name": 1, "family_name": 1,
          "email_verified": 1}
CASE_INSENSITIVE = {"locale": "en", "strength": 2}
PAGE = 1000  # users per page

# A bcrypt hash of a random password, checked when no user has the email, so that an unknown
# address takes as long as a wrong password. Use the cost of your own hashes (the "10").
UNKNOWN_USER_HASH = "$2y$10$nP7jC9WdHR4VozMgtLDIWe13F7alohAZFLdAenbFM3SLB2E2pkbSO"

_clients = {}  # configuration -> MongoClient, kept between calls


def _users(configuration):
    """Return the users collection through a client kept between calls."""
    import pymongo

    key = tuple(sorted(configuration.items()))  # several connections may share this script
    if key not in _clients:
        timeout_ms = int(float(configuration.get("connect_timeout") or 10) * 1000)
        _clients[key] = pymongo.MongoClient(
            configuration["uri"], appname="idp-migration",
            serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
        )
    client = _clients[key]
    if configuration.get("database"):
        return client[configuration["database"]][COLLECTION]
    return client.get_default_database()[COLLECTION]


def _after(cursor):
    """Return the _id a page starts after, from the previous page's last user_id (an ObjectId's text)."""
    from bson import ObjectId

    return ObjectId(cursor)


def _find(email, configuration):
    """Return the document of the user with this email (in any case), or None."""
    if not isinstance(email, str):
        raise TypeError("the email must be a string")  # never a query operator such as {"$ne": ""}
    cursor = _users(configuration).find({EMAIL_FIELD: email}, FIELDS, collation=CASE_INSENSITIVE, limit=2)
    documents = list(cursor)
    if len(documents) > 1:
        raise LookupError("several legacy users have this email, compared case-insensitively: merge them")
    return documents[0] if documents else None


def _password_ok(password, document):
    """Check the password against the user's stored hash."""
    from idp.migration import hashes

    return hashes.verify(password, document.get("password"))


def _profile(document):
    """Return the user's profile: the same from login and from get_user."""
    return {
        "user_id": str(document["_id"]),
        "email": document["email"],
        "email_verified": bool(document.get("email_verified")),
        "name": document.get("name") or None,
        "given_name": document.get("given_name") or None,
        "family_name": document.get("family_name") or None,
    }


def login(email, password, configuration):
    """Return the profile of the user with this email and password; refuse anyone else."""
    from idp.migration import hashes

    document = _find(email, configuration)
    if document is None:
        hashes.verify(password, UNKNOWN_USER_HASH)
        raise WrongUsernameOrPassword(email)
    if not _password_ok(password, document):
        raise WrongUsernameOrPassword(email)
    return _profile(document)


def get_user(email, configuration):
    """Return the profile of the user with this email, or None if there is none."""
    document = _find(email, configuration)
    return None if document is None else _profile(document)


def count_users(configuration):
    """Return how many users the legacy store has."""
    return int(_users(configuration).count_documents({}))


def export_users(cursor, configuration):
    """Return a page of users with their password hashes, and where the next page starts (None: done)."""
    query = {} if cursor is None else {"_id": {"$gt": _after(cursor)}}
    documents = list(_users(configuration).find(query, FIELDS, sort=[("_id", 1)], limit=PAGE))
    users = [{**_profile(document), "password_hash": document.get("password")} for document in documents]
    return {"users": users, "next": users[-1]["user_id"] if len(documents) == PAGE else None}
