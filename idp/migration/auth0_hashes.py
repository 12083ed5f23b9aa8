"""Verify passwords against the ``custom_password_hash`` objects of Auth0's bulk-import users file.

Like :mod:`idp.migration.hashes`, this module is imported inside the script sandbox: it imports only
the standard library at module level, and ``bcrypt``, ``argon2`` (argon2-cffi) and ``passlib``
(libpass) lazily, inside the functions that need them. It never logs, compares every secret with
``hmac.compare_digest`` (or the library's own constant-time check), and no message ever contains a
password or any part of a hash, salt or key.

:func:`check` validates an object against Auth0's schema (bulk-user-import-schema) and its
per-algorithm rules, raising :class:`InvalidSpec` with the offending path, so an import can reject
one user with a clear reason. :func:`verify` returns ``False`` for anything :func:`check` refuses.

Byte-level behaviour follows the Node.js code Auth0 runs: ``password.encoding`` and the ``base64``,
``hex`` and ``utf8`` value encodings are Node ``Buffer`` encodings (``ascii``, ``latin1`` and
``binary`` keep the low byte of each UTF-16 code unit; ``ucs2`` is ``utf16le``; base64 may be
url-safe and unpadded; hex may be upper- or lower-case). A salt is concatenated with the password
before hashing, in front (``prefix``, the default) or behind (``suffix``); scrypt takes it as its
salt instead.

Digests hashlib lacks under OpenSSL 3 come from elsewhere or not at all: MD4 from libpass'
pure-Python implementation (so PBKDF2-MD4 is held to a far smaller cost, see
:data:`PBKDF2_MAX_WORK_PURE_PYTHON`); RIPEMD-160 and Whirlpool only from hashlib, and when this build
has neither :func:`check` refuses them as digests it cannot verify.

Costs are bounded so a hostile file cannot spend minutes of CPU or gigabytes of memory on one
sign-in; :func:`check` refuses anything above the limits below.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

from idp.migration.hashes import BCRYPT_MAX_BYTES

__all__ = [
    "ARGON2_MAX_MEMORY_KIB",
    "ARGON2_MAX_PARALLELISM",
    "ARGON2_MAX_WORK",
    "BCRYPT_MAX_COST",
    "MAX_VALUE_CHARS",
    "PBKDF2_MAX_KEY_LENGTH",
    "PBKDF2_MAX_WORK",
    "PBKDF2_MAX_WORK_PURE_PYTHON",
    "SCRYPT_MAX_KEYLEN",
    "SCRYPT_MAX_MEMORY",
    "SCRYPT_MAX_WORK",
    "InvalidSpec",
    "check",
    "verify",
]

#: Highest bcrypt cost accepted (2**15 rounds, about two seconds).
BCRYPT_MAX_COST = 15
#: Highest argon2 memory cost, in KiB (256 MiB).
ARGON2_MAX_MEMORY_KIB = 256 * 1024
#: Highest argon2 memory cost times time cost, in KiB passes (about a second of work).
ARGON2_MAX_WORK = 1024 * 1024
#: Highest argon2 parallelism (lanes).
ARGON2_MAX_PARALLELISM = 16
#: Highest PBKDF2 iterations times output blocks with a native (OpenSSL) digest.
PBKDF2_MAX_WORK = 4_000_000
#: The same for a digest only available in pure Python (MD4 from libpass): about a second.
PBKDF2_MAX_WORK_PURE_PYTHON = 10_000
#: Longest PBKDF2 derived key (``l``), in bytes.
PBKDF2_MAX_KEY_LENGTH = 512
#: Most memory scrypt may use for its V array (128 * cost * blockSize bytes).
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024
#: Highest scrypt cost * blockSize * parallelization (the default 16384 * 8 * 1 is 2**17).
SCRYPT_MAX_WORK = 2**22
#: Longest scrypt ``keylen``, in bytes.
SCRYPT_MAX_KEYLEN = 1024
#: Longest hash, salt or key value, in characters.
MAX_VALUE_CHARS = 4096

_ROOT = "custom_password_hash"
_ALGORITHMS = (
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2", "scrypt",
)
_VALUE_ENCODINGS = ("base64", "hex", "utf8")
_PASSWORD_ENCODINGS = ("ascii", "utf8", "utf16le", "ucs2", "latin1", "binary")
_DIGESTS = ("md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool")
_POSITIONS = ("prefix", "suffix")

_SCRYPT_KEYS = ("keylen", "cost", "blockSize", "parallelization")
_TOP_KEYS = frozenset({"algorithm", "hash", "salt", "password", *_SCRYPT_KEYS})
_HASH_KEYS = frozenset({"value", "encoding", "digest", "key"})
_KEY_KEYS = frozenset({"value", "encoding"})
_SALT_KEYS = frozenset({"value", "encoding", "position"})
_PASSWORD_KEYS = frozenset({"encoding"})

# RFC 2307 scheme (upper-case) -> (hashlib name, salted).
_LDAP_SCHEMES: dict[str, tuple[str, bool]] = {
    "MD5": ("md5", False),
    "SMD5": ("md5", True),
    "SHA": ("sha1", False),
    "SSHA": ("sha1", True),
    "SHA256": ("sha256", False),
    "SSHA256": ("sha256", True),
    "SHA384": ("sha384", False),
    "SSHA384": ("sha384", True),
    "SHA512": ("sha512", False),
    "SSHA512": ("sha512", True),
}

_B64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_PHC_B64 = re.compile(r"[A-Za-z0-9+/]*")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_ARGON2 = re.compile(
    r"\$argon2(?:id|i|d)\$(?:v=(?:16|19)\$)?m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})"
    r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)
_PBKDF2 = re.compile(
    r"\$pbkdf2-([a-z0-9]{1,16})(?:\$([a-z]=\d{1,10}(?:,[a-z]=\d{1,10})*))?\$([^$]*)\$([^$]*)"
)
_LDAP = re.compile(r"\{([A-Za-z0-9]{1,10})\}(.*)", re.DOTALL)
_PROPERTY_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")

# A parsed spec: given the password's bytes in the spec's password encoding, says whether they match.
Verifier = Callable[[bytes], bool]


class InvalidSpec(ValueError):
    """A ``custom_password_hash`` object Auth0's schema or per-algorithm rules refuse."""

    def __init__(self, path: str, message: str) -> None:
        # The message alone, as callers quote .path beside it ("`custom_password_hash.salt`: ...").
        super().__init__(message)
        self.path = path
        self.message = message


def check(spec: object) -> None:
    """Raise :class:`InvalidSpec` unless ``spec`` is a ``custom_password_hash`` this module can verify."""
    _parse(spec)


def verify(password: str, spec: dict[str, Any]) -> bool:
    """Return whether ``password`` matches a ``custom_password_hash`` object; False for a bad one."""
    try:
        encoding, verifier = _parse(spec)
    except InvalidSpec:
        return False
    secret = _encode_password(password, encoding)
    if secret is None:
        return False
    return verifier(secret)


# -- parsing: schema ------------------------------------------------------------------------------


def _parse(spec: object) -> tuple[str, Verifier]:
    """Validate a spec and return its password encoding and a verifier for the encoded password."""
    top = _object(spec, _ROOT, _TOP_KEYS)
    algorithm = _enum(top, "algorithm", _ROOT, _ALGORITHMS, required=True) or ""
    hash_path = f"{_ROOT}.hash"
    if "hash" not in top:
        raise InvalidSpec(hash_path, "is required")
    hash_spec = _object(top["hash"], hash_path, _HASH_KEYS)
    if "value" not in hash_spec:
        raise InvalidSpec(f"{hash_path}.value", "is required")
    value = _string(hash_spec["value"], f"{hash_path}.value")
    # The schema does not require it and files in the wild leave it out for bcrypt; as utf8, the
    # algorithms that need hex or base64 still refuse its absence.
    hash_encoding = _enum(hash_spec, "encoding", hash_path, _VALUE_ENCODINGS) or "utf8"
    digest = _enum(hash_spec, "digest", hash_path, _DIGESTS)
    key = _key(hash_spec.get("key"), f"{hash_path}.key") if "key" in hash_spec else None
    salt, suffix = _salt(top["salt"]) if "salt" in top else (None, False)
    password_encoding = "utf8"
    if "password" in top:
        password = _object(top["password"], f"{_ROOT}.password", _PASSWORD_KEYS)
        password_encoding = _enum(password, "encoding", f"{_ROOT}.password", _PASSWORD_ENCODINGS) or "utf8"
    scrypt_costs = {name: _integer(top, name) for name in _SCRYPT_KEYS}

    if algorithm in ("argon2", "bcrypt", "ldap", "pbkdf2"):
        _require_encoding(hash_encoding, algorithm, ("utf8",))
    else:
        _require_encoding(hash_encoding, algorithm, ("hex", "base64"))
    if algorithm in ("argon2", "ldap", "pbkdf2") and salt is not None:
        raise InvalidSpec(f"{_ROOT}.salt", f"is not allowed with {algorithm}: the salt is inside the hash")

    if algorithm == "argon2":
        return password_encoding, _parse_argon2(value)
    if algorithm == "bcrypt":
        return password_encoding, _parse_bcrypt(value, salt or b"", suffix)
    if algorithm == "ldap":
        return password_encoding, _parse_ldap(value)
    if algorithm == "pbkdf2":
        return password_encoding, _parse_pbkdf2(value)
    expected = _decode(value, hash_encoding, f"{hash_path}.value")
    if algorithm == "scrypt":
        return password_encoding, _parse_scrypt(expected, salt or b"", scrypt_costs)
    if algorithm == "hmac":
        if digest is None:
            raise InvalidSpec(f"{hash_path}.digest", "is required with hmac")
        if key is None:
            raise InvalidSpec(f"{hash_path}.key", "is required with hmac")
        constructor = _digest(digest, f"{hash_path}.digest")
        _require_length(expected, constructor().digest_size, f"{hash_path}.value", f"HMAC-{digest}")
        hmac_key = key
        return password_encoding, _salted(
            lambda message: hmac.new(hmac_key, message, constructor).digest(), expected, salt or b"", suffix
        )
    constructor = _digest(algorithm, f"{_ROOT}.algorithm")
    _require_length(expected, constructor().digest_size, f"{hash_path}.value", algorithm)
    return password_encoding, _salted(
        lambda message: constructor(message).digest(), expected, salt or b"", suffix
    )


def _object(value: object, path: str, allowed: frozenset[str]) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidSpec(path, "must be an object")
    for name in value:
        if name not in allowed:
            # Property names are not secrets, but a garbled file could put anything there.
            shown = name if isinstance(name, str) and _PROPERTY_NAME.fullmatch(name) else None
            if shown is None:
                raise InvalidSpec(path, "has a property the schema does not allow")
            raise InvalidSpec(f"{path}.{shown}", "is not a property the schema allows")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidSpec(path, "must be a string")
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidSpec(path, f"is longer than {MAX_VALUE_CHARS} characters")
    return value


def _enum(parent: Mapping[str, object], name: str, path: str, allowed: tuple[str, ...],
          required: bool = False) -> str | None:
    path = f"{path}.{name}"
    if name not in parent:
        if required:
            raise InvalidSpec(path, "is required")
        return None
    value = parent[name]
    if not isinstance(value, str):
        raise InvalidSpec(path, "must be a string")
    if value not in allowed:
        # Never quote the value back: only the names it should have been.
        raise InvalidSpec(path, "must be one of " + ", ".join(allowed))
    return value


def _integer(parent: Mapping[str, object], name: str) -> int | None:
    if name not in parent:
        return None
    value = parent[name]
    # bool is an int in Python but not an integer in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidSpec(f"{_ROOT}.{name}", "must be an integer")
    return value


def _key(value: object, path: str) -> bytes:
    key = _object(value, path, _KEY_KEYS)
    if "value" not in key:
        raise InvalidSpec(f"{path}.value", "is required")
    encoding = _enum(key, "encoding", path, _VALUE_ENCODINGS) or "utf8"
    return _decode(_string(key["value"], f"{path}.value"), encoding, f"{path}.value")


def _salt(value: object) -> tuple[bytes, bool]:
    path = f"{_ROOT}.salt"
    salt = _object(value, path, _SALT_KEYS)
    if "value" not in salt:
        raise InvalidSpec(f"{path}.value", "is required")
    encoding = _enum(salt, "encoding", path, _VALUE_ENCODINGS) or "utf8"
    position = _enum(salt, "position", path, _POSITIONS) or "prefix"
    return _decode(_string(salt["value"], f"{path}.value"), encoding, f"{path}.value"), position == "suffix"


def _require_encoding(encoding: str, algorithm: str, allowed: tuple[str, ...]) -> None:
    if encoding not in allowed:
        raise InvalidSpec(f"{_ROOT}.hash.encoding", f"must be {' or '.join(allowed)} with {algorithm}")


def _require_length(expected: bytes, size: int, path: str, what: str) -> None:
    if len(expected) != size:
        raise InvalidSpec(path, f"must decode to {size} bytes, the length of {what}")


# -- parsing: per algorithm -----------------------------------------------------------------------


def _parse_argon2(value: str) -> Verifier:
    path = f"{_ROOT}.hash.value"
    match = _ARGON2.fullmatch(value)
    if match is None:
        raise InvalidSpec(path, "must be an argon2 PHC string ($argon2id$v=19$m=..,t=..,p=..$salt$hash)")
    memory, time, lanes = (int(group) for group in match.group(1, 2, 3))
    if not (1 <= lanes <= ARGON2_MAX_PARALLELISM and 8 * lanes <= memory <= ARGON2_MAX_MEMORY_KIB
            and time >= 1 and memory * time <= ARGON2_MAX_WORK):
        raise InvalidSpec(path, f"argon2 costs out of range: p at most {ARGON2_MAX_PARALLELISM}, m at most "
                                f"{ARGON2_MAX_MEMORY_KIB} KiB and m*t at most {ARGON2_MAX_WORK}")
    if _b64_unpadded(match.group(4)) is None or _b64_unpadded(match.group(5)) is None:
        raise InvalidSpec(path, "argon2 salt or hash is not valid base64")

    def verifier(secret: bytes) -> bool:
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            # The hasher's own parameters only matter for hashing; verify reads them from the hash.
            return PasswordHasher().verify(value, secret)
        except (VerificationError, InvalidHashError, ValueError, TypeError):
            return False

    return verifier


def _parse_bcrypt(value: str, salt: bytes, suffix: bool) -> Verifier:
    path = f"{_ROOT}.hash.value"
    match = _BCRYPT.fullmatch(value)
    if match is None:
        raise InvalidSpec(path, "must be a $2a$, $2b$ or $2y$ bcrypt hash")
    if not 4 <= int(match.group(1)) <= BCRYPT_MAX_COST:
        raise InvalidSpec(path, f"bcrypt cost must be between 4 and {BCRYPT_MAX_COST}")
    hashed = value.encode("ascii")

    def verifier(secret: bytes) -> bool:
        import bcrypt

        message = secret + salt if suffix else salt + secret
        try:
            # bcrypt reads 72 bytes; Node's bcrypt ignored the rest, bcrypt 5 raises instead.
            return bcrypt.checkpw(message[:BCRYPT_MAX_BYTES], hashed)
        except ValueError:  # "Invalid salt" for a hash that only looks right
            return False

    return verifier


def _parse_ldap(value: str) -> Verifier:
    path = f"{_ROOT}.hash.value"
    match = _LDAP.fullmatch(value)
    scheme = match.group(1).upper() if match else None
    if match is None or scheme not in _LDAP_SCHEMES:
        raise InvalidSpec(path, "must be an RFC 2307 value with scheme " + ", ".join(
            "{" + name + "}" for name in _LDAP_SCHEMES))
    digest_name, salted = _LDAP_SCHEMES[scheme]
    blob = _b64(match.group(2))
    size = hashlib.new(digest_name).digest_size
    if blob is None or (len(blob) < size if salted else len(blob) != size):
        raise InvalidSpec(path, f"is not a base64 {{{scheme}}} digest")
    expected, salt = blob[:size], blob[size:]
    # RFC 2307 / OpenLDAP: the salt follows the password, and follows the digest in the value.
    return _salted(lambda message: hashlib.new(digest_name, message).digest(), expected, salt, True)


def _parse_pbkdf2(value: str) -> Verifier:
    path = f"{_ROOT}.hash.value"
    match = _PBKDF2.fullmatch(value)
    if match is None:
        raise InvalidSpec(path, "must be a PHC string $pbkdf2-<digest>$i=<iterations>,l=<length>$salt$hash")
    digest_name, params, salt_text, hash_text = match.groups()
    if digest_name not in _DIGESTS:
        raise InvalidSpec(path, "pbkdf2 digest must be one of " + ", ".join(_DIGESTS))
    constructor = _digest(digest_name, path)
    settings = {"i": 100_000, "l": 64}  # Auth0's defaults
    seen: set[str] = set()
    for pair in (params or "").split(",") if params else ():
        name, number = pair.split("=")
        if name not in settings or name in seen:
            raise InvalidSpec(path, "pbkdf2 parameters must be i and l, each at most once")
        seen.add(name)
        settings[name] = int(number)
    iterations, length = settings["i"], settings["l"]
    salt, expected = _b64_unpadded(salt_text), _b64_unpadded(hash_text)
    if salt is None or expected is None:
        raise InvalidSpec(path, "pbkdf2 salt and hash must be base64 without padding")
    native = _native_pbkdf2(digest_name)
    budget = PBKDF2_MAX_WORK if native else PBKDF2_MAX_WORK_PURE_PYTHON
    size = constructor().digest_size
    blocks = -(-length // size)
    if not 1 <= length <= PBKDF2_MAX_KEY_LENGTH:
        raise InvalidSpec(path, f"pbkdf2 l must be between 1 and {PBKDF2_MAX_KEY_LENGTH}")
    if iterations < 1 or iterations * blocks > budget:
        reason = "" if native else f" (this build has only a pure-Python {digest_name})"
        raise InvalidSpec(path, f"pbkdf2 i times output blocks must be between 1 and {budget}{reason}")
    # A shorter derived key is a prefix of a longer one: the hash must be exactly l bytes.
    if len(expected) != length:
        raise InvalidSpec(path, "pbkdf2 hash is not l bytes long")

    def verifier(secret: bytes) -> bool:
        if native:
            derived = hashlib.pbkdf2_hmac(digest_name, secret, salt, iterations, length)
        else:
            derived = _pbkdf2_python(constructor, secret, salt, iterations, length)
        return hmac.compare_digest(derived, expected)

    return verifier


def _parse_scrypt(expected: bytes, salt: bytes, costs: Mapping[str, int | None]) -> Verifier:
    keylen = costs["keylen"]
    if keylen is None:
        raise InvalidSpec(f"{_ROOT}.keylen", "is required with scrypt")
    # Node's crypto.scrypt defaults.
    n = 16384 if costs["cost"] is None else costs["cost"]
    r = 8 if costs["blockSize"] is None else costs["blockSize"]
    p = 1 if costs["parallelization"] is None else costs["parallelization"]
    if not 1 <= keylen <= SCRYPT_MAX_KEYLEN:
        raise InvalidSpec(f"{_ROOT}.keylen", f"must be between 1 and {SCRYPT_MAX_KEYLEN}")
    if n < 2 or n & (n - 1):
        raise InvalidSpec(f"{_ROOT}.cost", "must be a power of two above 1")
    if r < 1:
        raise InvalidSpec(f"{_ROOT}.blockSize", "must be at least 1")
    if p < 1:
        raise InvalidSpec(f"{_ROOT}.parallelization", "must be at least 1")
    if 128 * n * r > SCRYPT_MAX_MEMORY:
        raise InvalidSpec(f"{_ROOT}.cost",
                          f"128 * cost * blockSize must be at most {SCRYPT_MAX_MEMORY} bytes")
    if n * r * p > SCRYPT_MAX_WORK:
        raise InvalidSpec(f"{_ROOT}.parallelization",
                          f"cost * blockSize * parallelization must be at most {SCRYPT_MAX_WORK}")
    # A shorter scrypt key is a prefix of a longer one: keylen must be the hash's own length.
    if len(expected) != keylen:
        raise InvalidSpec(f"{_ROOT}.hash.value", "is not keylen bytes long")
    # Room for scrypt's V array (128*r*N) and B blocks (128*r*p), as hashes.verify_scrypt allows.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024

    def verifier(secret: bytes) -> bool:
        try:
            derived = hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=keylen)
        except ValueError:  # OpenSSL could not get the memory (a jail's limit, say)
            return False
        return hmac.compare_digest(derived, expected)

    return verifier


# -- helpers --------------------------------------------------------------------------------------


def _salted(digest: Callable[[bytes], bytes], expected: bytes, salt: bytes, suffix: bool) -> Verifier:
    def verifier(secret: bytes) -> bool:
        message = secret + salt if suffix else salt + secret
        return hmac.compare_digest(digest(message), expected)

    return verifier


def _digest(name: str, path: str) -> Callable[..., Any]:
    constructor = _constructor(name)
    if constructor is None:
        raise InvalidSpec(path, f"this build cannot verify {name} digests (its OpenSSL lacks {name})")
    return constructor


def _constructor(name: str) -> Callable[..., Any] | None:
    """Return a hashlib-style constructor for a digest, or None when this build has none."""
    try:
        hashlib.new(name)
    except ValueError:  # OpenSSL 3 keeps md4, ripemd160 and whirlpool in its unloaded legacy provider
        if name != "md4":
            return None
        from passlib.crypto.digest import lookup_hash

        info = lookup_hash("md4", required=False)
        return info.const if info.supported else None

    def constructor(data: bytes = b"") -> Any:
        return hashlib.new(name, data)

    return constructor


def _native_pbkdf2(name: str) -> bool:
    try:
        hashlib.pbkdf2_hmac(name, b"", b"", 1, 1)
    except ValueError:
        return False
    return True


def _pbkdf2_python(constructor: Callable[..., Any], secret: bytes, salt: bytes, iterations: int,
                   length: int) -> bytes:
    """PBKDF2-HMAC (RFC 8018 section 5.2) for a digest OpenSSL does not provide."""
    prf = hmac.new(secret, digestmod=constructor)
    size = prf.digest_size
    blocks = []
    for index in range(1, -(-length // size) + 1):
        mac = prf.copy()
        mac.update(salt + struct.pack(">I", index))
        block = mac.digest()
        total = int.from_bytes(block, "big")
        for _ in range(iterations - 1):
            # Copying the keyed state saves rehashing the key's two blocks every round.
            mac = prf.copy()
            mac.update(block)
            block = mac.digest()
            total ^= int.from_bytes(block, "big")
        blocks.append(total.to_bytes(size, "big"))
    return b"".join(blocks)[:length]


def _encode_password(password: object, encoding: str) -> bytes | None:
    """Return the password's bytes as Node's ``Buffer.from(password, encoding)`` makes them."""
    if not isinstance(password, str):
        return None
    # Node strings are UTF-16; surrogatepass keeps lone surrogates as the code units Node sees.
    units = password.encode("utf-16-le", "surrogatepass")
    if encoding in ("utf16le", "ucs2"):
        return units
    if encoding in ("ascii", "latin1", "binary"):
        return units[0::2]  # the low byte of every code unit
    # Node's UTF-8 encoder writes U+FFFD for a lone surrogate; the UTF-16 decoder's "replace" does too.
    return units.decode("utf-16-le", "replace").encode("utf-8")


def _decode(value: str, encoding: str, path: str) -> bytes:
    if encoding == "utf8":
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidSpec(path, "is not valid Unicode") from None
    if encoding == "hex":
        if not _HEX.fullmatch(value):
            raise InvalidSpec(path, "is not hex")
        return bytes.fromhex(value)
    decoded = _b64(value)
    if decoded is None:
        raise InvalidSpec(path, "is not base64")
    return decoded


def _b64(value: str) -> bytes | None:
    """Decode standard or url-safe base64, padded or not, as Node's Buffer does; None if malformed."""
    if not _B64.fullmatch(value):
        return None
    body = value.rstrip("=")
    if len(body) % 4 == 1 or (len(value) != len(body) and len(value) % 4):
        return None
    body = body.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64_unpadded(value: str) -> bytes | None:
    """Decode the PHC string format's B64: the standard alphabet without padding."""
    if not _PHC_B64.fullmatch(value) or len(value) % 4 == 1:
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
