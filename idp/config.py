"""Documented defaults; deployments override them in instance/config.py or IDP_* variables."""

# The issuer URL exactly as relying parties see it (no trailing slash).
ISSUER = "http://127.0.0.1:5000"

# Our own database. Empty means a SQLite file in the instance folder.
DATABASE_URL = ""

# Signs session cookies and CSRF tokens. Never defaulted: `idp init` writes one.
SECRET_KEY = None

# Fernet key that encrypts signing keys at rest. Empty means the file keys/kek.
KEY_ENCRYPTION_KEY = ""
KEYS_DIR = ""  # empty means <project>/keys beside the instance folder

# Lifetimes, in seconds.
AUTHORIZATION_CODE_LIFETIME = 60
ACCESS_TOKEN_LIFETIME = 3600
ID_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
SESSION_LIFETIME = 7 * 24 * 3600
LOGIN_TRANSACTION_LIFETIME = 3600

# Signing keys.
SIGNING_KEY_SIZE = 2048
KEY_ROTATION_PERIOD = 30 * 24 * 3600
JWKS_MAX_AGE = 3600  # Cache-Control on the JWKS; a `next` key is published this long before it signs
KEY_MAINTENANCE_INTERVAL = 60  # how often each process checks for a due rotation or an expired key

# Password hashing: argon2id (RFC 9106 low-memory profile, argon2-cffi's defaults).
ARGON2_TIME_COST = 3
ARGON2_MEMORY_COST = 65536  # KiB
ARGON2_PARALLELISM = 4

# Cookies.
SESSION_COOKIE_NAME = "idp_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# CSRF tokens live as long as the login transaction they protect.
WTF_CSRF_TIME_LIMIT = 3600

SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
