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
# How old a process's copy of the published keys (and the JWKS built from them) may get before it
# asks the database whether they changed: another process's rotation or revocation shows this late.
KEY_SET_MAX_AGE = 1.0
# How long a process reuses a client, a client's grants or the enabled post-login actions it read;
# another process's change to them shows this late.
CLIENT_CACHE_MAX_AGE = 1.0
# How long a process reuses a legacy store's count_users answer (a COUNT over a big legacy table is
# not free, and the dashboard's pages show it on every view); a changed script or configuration counts
# again at once.
LEGACY_COUNT_MAX_AGE = 60.0

# The connection whose users sign in to the dashboard (<issuer>/admin); `idp admins add` makes them admins.
ADMIN_CONNECTION = "Username-Password-Authentication"
# Signing in to the dashboard asks for the password again unless it was typed this many seconds ago
# (OIDC's max_age: an SSO session opened at an application days ago is not enough) …
ADMIN_REAUTHENTICATE_AFTER = 900
# … and a dashboard sign-in lasts at most this long, however busy the admin.
ADMIN_SESSION_LIFETIME = 8 * 3600

# Log events (GET /api/v2/logs) older than this many days are deleted (each process prunes hourly).
LOG_RETENTION_DAYS = 30
# Seconds a management API search (users or logs) may run before it is a 503; a costly query cannot
# hold a database connection for longer.
SEARCH_TIMEOUT = 10.0

# Password hashing: argon2id (RFC 9106 low-memory profile, argon2-cffi's defaults).
ARGON2_TIME_COST = 3
ARGON2_MEMORY_COST = 65536  # KiB
ARGON2_PARALLELISM = 4

# Accounts.
PASSWORD_MIN_LENGTH = 8
EMAIL_VERIFICATION_LIFETIME = 24 * 3600
PASSWORD_RESET_LIFETIME = 3600

# Mail: without SMTP_URL, mails are written to instance/outbox and their links logged.
SMTP_URL = ""  # smtp://user:password@host:587?starttls=1, smtps://host, smtp://host:25
MAIL_FROM = "idp <no-reply@localhost>"
SMTP_TIMEOUT = 10  # seconds for connecting and for each reply: a hanging server holds a sender no longer
# Every mail is stored in the database before the answer goes, and sent from there by a sender thread
# in each web process. A failed attempt is tried again after MAIL_RETRY_INITIAL seconds, then twice as
# long each time up to MAIL_RETRY_MAX; a mail still unsent MAIL_GIVE_UP_AFTER seconds after it was
# asked for is dropped and the failure logged (no emailed link lives longer than a day).
MAIL_RETRY_INITIAL = 15
MAIL_RETRY_MAX = 10 * 60
MAIL_GIVE_UP_AFTER = 24 * 3600
# A sender holds a mail this long; if it dies mid-send, another sends the mail after that. Keep it
# well above SMTP_TIMEOUT (one SMTP conversation is a dozen replies): a sender still sending past it
# may send the mail a second time.
MAIL_CLAIM_LEASE = 5 * 60
MAIL_POLL_INTERVAL = 5  # seconds between looks for mail queued by other processes or left by dead ones

# Shared counters (rate limits, lockout, the circuit breaker) in Redis; empty means the database's
# `counters` table, which every worker and host shares as well.
REDIS_URL = ""

# Per-IP limits (Flask-Limiter syntax); RATELIMIT_ENABLED=0 turns them off for load tests.
RATELIMIT_ENABLED = True
RATELIMIT_HEADERS_ENABLED = True
RATELIMIT_LOGIN = "20 per minute; 200 per hour"
RATELIMIT_SIGNUP = "10 per hour"
RATELIMIT_RESET = "10 per hour"
RATELIMIT_TOKEN = "300 per minute"

# Per-account protection against password guessing (always on): failures are counted over
# FAILURE_WINDOW seconds; after THROTTLE_AFTER of them each attempt waits twice as long as the last
# (up to THROTTLE_MAX_DELAY seconds); after LOCKOUT_THRESHOLD the account is locked for
# LOCKOUT_SECONDS or until a password reset, and its owner is told by mail.
FAILURE_WINDOW = 15 * 60
THROTTLE_AFTER = 3
THROTTLE_MAX_DELAY = 60
LOCKOUT_THRESHOLD = 10
LOCKOUT_SECONDS = 15 * 60

# Migration scripts: in each web process, a pool of SCRIPT_CONCURRENCY sandbox processes per
# connection, so that a connection runs at most that many calls at once there; a further call
# waits at most SCRIPT_QUEUE_WAIT seconds for one to end, then fails ("can't sign you in right
# now"). A legacy store that hangs holds that many server threads, never all of them.
SCRIPT_CONCURRENCY = 2
SCRIPT_QUEUE_WAIT = 1.0
SCRIPT_TIMEOUT = 20  # seconds of wall-clock time per call
# Post-login actions (idp/actions/) run in the same sandbox; all of a sign-in's actions together get
# at most this many seconds of wall-clock time.
ACTIONS_TIMEOUT = 20.0
SCRIPT_MEMORY_MB = 512  # address space of each of a script's processes
SCRIPT_CPU_SECONDS = 60
# The jail around the scripts (idp.migration.jail; README "The script sandbox"). "full" refuses to run
# scripts where the kernel lacks a mechanism (user/PID/mount/network namespaces, Landlock ABI 6,
# seccomp): logins of users not yet moved over then answer "can't sign you in right now", and the
# error is logged. "partial" accepts a weaker jail: what the kernel has, each lack logged per worker.
SCRIPT_JAIL = "full"
# "hosts": scripts reach only the host:port pairs their connection's configuration names (URLs, DSNs,
# host/port keys; a host named without a port: 5432, 3306, 1433, 1521, 27017, 80 and 443), through a
# connector outside the jail that checks each connect(); their names resolve through the jail's own
# /etc/hosts, written when a worker starts (no DNS and no UDP inside the jail).
# "ports": any host by address, on those ports only (TCP, by Landlock).
SCRIPT_NETWORK = "hosts"
SCRIPT_CONNECT = ""  # more "host:port" pairs, comma-separated, that every connection's scripts may reach
SCRIPT_READ = ""  # more files or folders, comma-separated, that every connection's scripts may read
SCRIPT_UID = 65534  # whom scripts run as when idp runs as root: best a uid and gid nothing else uses
SCRIPT_GID = 65534
SCRIPT_PROCESSES = 32  # processes and threads at once per worker (RLIMIT_NPROC, counted per jail)
SCRIPT_DISK_MB = 64  # the jail's private /tmp and /dev/shm (one tmpfs), and the largest file it writes
# The legacy store is deemed down after BREAKER_FAILURES script failures within BREAKER_WINDOW
# seconds; logins then fail fast for BREAKER_COOLDOWN seconds before one call may try again.
BREAKER_FAILURES = 5
BREAKER_WINDOW = 60
BREAKER_COOLDOWN = 30

# /healthz answers 503 when the database has not answered within this many seconds (at least 2
# for PostgreSQL, whose client counts whole seconds from 2).
HEALTHZ_TIMEOUT = 3

# Behind TLS-terminating proxies: how many of them stand in front of idp, and their addresses.
# X-Forwarded-For and -Proto are read (PROXY_HOPS deep) only on connections from TRUSTED_PROXIES.
PROXY_HOPS = 0
TRUSTED_PROXIES = "127.0.0.1, ::1"

# Cookies.
SESSION_COOKIE_NAME = "idp_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# CSRF tokens live as long as the login transaction they protect. Flask-WTF's Referer check under
# https is replaced by an Origin check (idp.web): browsers send no Referer under our Referrer-Policy.
WTF_CSRF_TIME_LIMIT = 3600
WTF_CSRF_SSL_STRICT = False

# hide_parameters: a failed statement's error message must not carry hashes or personal data.
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
