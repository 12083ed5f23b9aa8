"""Verify passwords against the hashes legacy user stores keep.

Migration scripts import this module inside the sandbox, so it imports only the standard library
at module level, and ``bcrypt``, ``argon2`` (argon2-cffi) and ``passlib`` (libpass, the maintained
fork of passlib) lazily, inside the functions that need them. It never logs, and it compares every
secret with ``hmac.compare_digest`` (or the library's own constant-time check).

A malformed stored hash is a wrong password: every function returns ``False`` for it rather than
raising. Only :func:`verify` raises, :class:`UnsupportedHash`, when it does not recognise the
format at all, and the explicit verifiers raise ``ValueError`` for an unknown *option* (an
algorithm or encoding name) or impossible scrypt costs, which are mistakes in the script rather
than in the data. No message ever contains a password or any part of a hash.

Formats recognised by :func:`verify`, with where the tests' vectors come from:

``$2a$`` ``$2b$`` ``$2y$`` bcrypt
    PHP ``password_hash`` writes ``$2y$``; all three are the same algorithm for UTF-8 input.
    bcrypt only ever reads the first 72 bytes of a password and legacy systems silently ignored
    the rest; bcrypt 5 raises instead, so the password's UTF-8 bytes are truncated to 72 here,
    exactly as the system that wrote the hash did. Vectors: Openwall crypt_blowfish (via pyca/bcrypt
    and libpass tests), pyca/bcrypt ``tests/test_bcrypt.py``, php-src ``password_verify.phpt``,
    ircmaxell/password_compat.
``$wp$2y$`` WordPress 6.8+
    bcrypt of ``base64(HMAC-SHA384(key="wp-sha384", password))``, checked against the hash with
    the leading ``$wp`` removed (``wp_check_password`` in wp-includes/pluggable.php). WordPress
    rejects passwords over 4096 bytes, and so does this. Vector: hashcat's self-test hash for mode
    35500 (WordPress' own tests generate their hashes at run time and publish none).
``$P$`` ``$H$`` phpass portable hashes (WordPress < 6.8, phpBB 3, Drupal 7 imports)
    Verified with libpass. Vectors: the phpass 0.3 test program (Openwall), John the Ripper via
    libpass' tests.
``pbkdf2_sha256$`` ``pbkdf2_sha1$`` ``argon2$`` ``md5$`` ``sha1$`` Django
    ``algorithm$iterations$salt$base64(PBKDF2(password, salt as UTF-8 text, iterations))``;
    Django's ``argon2$`` wraps a standard argon2 hash; ``md5$salt$hex``/``sha1$salt$hex`` are
    ``digest(salt + password)``, unsalted when the salt is empty. Vectors: Django's
    ``tests/auth_tests/test_hashers.py``.
``$6$`` ``$5$`` SHA-crypt (glibc, /etc/shadow)
    Verified with libpass (the stdlib ``crypt`` module is gone in Python 3.13). Vectors: Ulrich
    Drepper's SHA-crypt specification, as shipped in glibc ``crypt/sha512c-test.c``.
``$argon2id$`` ``$argon2i$`` ``$argon2d$`` argon2
    Verified with argon2-cffi. Vectors: argon2-cffi's tests (made with the reference argon2 CLI)
    and php-src ``password_verify.phpt``.

Formats that cannot be told apart by their shape have their own verifiers:

:func:`verify_aspnet_identity`
    ASP.NET (Core) Identity ``PasswordHasher``, a base64 blob. v2 is
    ``0x00 || salt(16) || PBKDF2-HMAC-SHA1(password, salt, 1000, 32)``; v3 is
    ``0x01 || prf (u32 big-endian: 0 SHA1, 1 SHA256, 2 SHA512) || iterations (u32) ||
    salt length (u32) || salt || subkey``. Vectors: dotnet/aspnetcore
    ``src/Identity/test/Identity.Test/PasswordHasherTest.cs``. For an import (a script's
    export_users), :func:`aspnet_identity_custom_hash` rewrites the same blob as an Auth0 pbkdf2
    ``custom_password_hash``, ``$pbkdf2-<digest>$i=<iterations>,l=<subkey length>$<salt>$<subkey>``.
:func:`verify_aspnet_membership`
    ``SqlMembershipProvider`` with ``passwordFormat="Hashed"`` (the ``aspnet_Membership`` table's
    ``Password`` and ``PasswordSalt`` columns). A plain algorithm hashes
    ``base64decode(salt) || UTF-16LE(password)``; a keyed (HMAC) algorithm uses the salt bytes,
    repeated or truncated to the algorithm's default key size (64 bytes, 128 for HMACSHA384/512),
    as the key over ``UTF-16LE(password)``. Read from ``EncodePassword`` in the .NET Framework
    reference source; no published vector exists, so its tests are built from that algorithm.
:func:`verify_digest`
    Plain or salted md5/sha1/sha256/sha384/sha512, hex or base64. A bare 32-hex-digit string
    could be any of several schemes, so :func:`verify` refuses to guess. Vectors: RFC 1321,
    FIPS 180-2, hashcat's self-test hashes, Django.
:func:`verify_scrypt`
    Raw scrypt with its salt and costs kept beside the key. ``dklen`` is required: a shorter
    scrypt output is a prefix of a longer one, so without it a key cut short by a narrow column
    would still verify. Vectors: RFC 7914 section 12.

Not handled: ASP.NET Membership's ``Clear`` and ``Encrypted`` formats (the latter needs the
site's machineKey), .NET 2.0's legacy HMACSHA384/512 block size, crypt_blowfish's buggy ``$2x$``,
md5-crypt ``$1$`` and the other crypt(3) schemes :func:`verify` names when it refuses them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import struct
from collections.abc import Callable
from typing import Any, Literal

__all__ = [
    "BCRYPT_MAX_BYTES",
    "UnsupportedHash",
    "aspnet_identity_custom_hash",
    "aspnet_membership_custom_hash",
    "verify",
    "verify_aspnet_identity",
    "verify_aspnet_membership",
    "verify_bcrypt",
    "verify_digest",
    "verify_scrypt",
]

#: bcrypt reads at most this many bytes of a password; longer ones are truncated to it.
BCRYPT_MAX_BYTES = 72

# phpass (CheckPassword) and WordPress (wp_check_password) refuse longer passwords outright.
_PHPASS_MAX_BYTES = 4096

DigestAlgorithm = Literal["md5", "sha1", "sha256", "sha384", "sha512"]
Encoding = Literal["hex", "base64"]
AUTH0_CUSTOM = "auth0-custom:"  # before the JSON of an imported Auth0 custom_password_hash

_DIGESTS: frozenset[str] = frozenset({"md5", "sha1", "sha256", "sha384", "sha512"})

# SqlMembershipProvider algorithm name -> (hashlib name, HMAC key size or None for a plain hash).
# The key sizes are those of the .NET classes' parameterless constructors (HMACSHA1/HMACMD5/
# HMACSHA256: 64 random bytes, HMACSHA384/HMACSHA512: 128), which EncodePassword overwrites.
_MEMBERSHIP: dict[str, tuple[str, int | None]] = {
    "MD5": ("md5", None),
    "SHA1": ("sha1", None),
    "SHA256": ("sha256", None),
    "SHA384": ("sha384", None),
    "SHA512": ("sha512", None),
    "HMACMD5": ("md5", 64),
    "HMACSHA1": ("sha1", 64),
    "HMACSHA256": ("sha256", 64),
    "HMACSHA384": ("sha384", 128),
    "HMACSHA512": ("sha512", 128),
}

_ASPNET_PRFS: dict[int, str] = {0: "sha1", 1: "sha256", 2: "sha512"}

_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_PHPASS = re.compile(r"\$[PH]\$[./0-9A-Za-z]{31}")
_SHA_CRYPT = re.compile(r"\$[56]\$(rounds=\d{1,9}\$)?[^$:\s]{0,16}\$[./0-9A-Za-z]{43,86}")
_DJANGO_PBKDF2 = re.compile(r"pbkdf2_(sha256|sha1)\$(\d{1,9})\$([^$]*)\$([A-Za-z0-9+/]+={0,2})")
_DJANGO_DIGEST = re.compile(r"(md5|sha1)\$([^$]*)\$([0-9a-fA-F]+)")
_ARGON2 = re.compile(r"\$argon2(id|i|d)\$\S+")

# Schemes verify() refuses but can name. Only these identifiers are ever quoted back: the start of
# an arbitrary string could be a plaintext password.
_KNOWN_UNSUPPORTED: dict[str, str] = {
    "$1$": "md5-crypt",
    "$apr1$": "Apache md5-crypt",
    "$md5$": "Sun md5-crypt",
    "$sha1$": "NetBSD sha1-crypt",
    "$2$": "original bcrypt",
    "$2x$": "crypt_blowfish's buggy $2x$ bcrypt",
    "$3$": "FreeBSD NT hash",
    "$y$": "yescrypt",
    "$gy$": "gost-yescrypt",
    "$7$": "scrypt (crypt format)",
    "bcrypt$": "Django bcrypt",
    "bcrypt_sha256$": "Django bcrypt_sha256",
    "scrypt$": "Django scrypt",
}


class UnsupportedHash(ValueError):
    """Raised by :func:`verify` for a stored hash whose format it does not recognise."""


def verify(password: str, stored: str | bytes | None) -> bool:
    """Check a password against a legacy hash, detecting the format from its prefix."""
    text = _text(stored)
    if text is None:
        return False
    verifier = _verifier(text)
    if verifier is None:
        raise UnsupportedHash(_describe(text))
    return verifier(password, text)


def recognised(stored: str) -> bool:
    """Say whether :func:`verify` knows the format of a stored hash (by its prefix; nothing is computed)."""
    return _verifier(stored) is not None


def verify_imported(password: str, stored: str) -> bool:
    """Check a password against a hash a user was imported with: any format :func:`verify` knows, or an
    Auth0 ``custom_password_hash`` kept as ``AUTH0_CUSTOM`` followed by its JSON."""
    if stored.startswith(AUTH0_CUSTOM):
        from idp.migration import auth0_hashes  # which imports this module

        try:
            spec = json.loads(stored.removeprefix(AUTH0_CUSTOM))
        except ValueError:
            return False
        return isinstance(spec, dict) and auth0_hashes.verify(password, spec)
    try:
        return verify(password, stored)
    except UnsupportedHash:
        return False


def _verifier(text: str) -> Callable[[str, str], bool] | None:
    """Return the verifier of a hash's format, told by its prefix, or None."""
    if text.startswith("argon2$argon2"):
        # Django's Argon2PasswordHasher stores "argon2" + a standard "$argon2…" hash.
        return lambda password, text: _verify_argon2(password, text.removeprefix("argon2"))
    return next((verifier for prefixes, verifier in _VERIFIERS if text.startswith(prefixes)), None)


def verify_bcrypt(password: str, stored: str | bytes | None) -> bool:
    """Check a password against a ``$2a$``/``$2b$``/``$2y$`` bcrypt hash, as legacy systems did."""
    text = _text(stored)
    secret = _utf8(password)
    if text is None or secret is None or not _BCRYPT.fullmatch(text):
        return False
    return _bcrypt_check(secret, text)


def verify_aspnet_identity(password: str, stored_b64: str | bytes | None) -> bool:
    """Check a password against an ASP.NET Identity v2 or v3 ``PasswordHash``."""
    parsed = _aspnet_identity(stored_b64)
    secret = _utf8(password)
    if parsed is None or secret is None:
        return False
    digest_name, iterations, salt, expected = parsed
    return _equal(hashlib.pbkdf2_hmac(digest_name, secret, salt, iterations, len(expected)), expected)


def aspnet_identity_custom_hash(stored_b64: str | bytes | None) -> dict[str, Any] | None:
    """Return an ASP.NET Identity ``PasswordHash`` as Auth0's pbkdf2 ``custom_password_hash``, or None."""
    parsed = _aspnet_identity(stored_b64)
    if parsed is None:
        return None
    digest_name, iterations, salt, expected = parsed
    value = f"$pbkdf2-{digest_name}$i={iterations},l={len(expected)}${_phc_b64(salt)}${_phc_b64(expected)}"
    return {"algorithm": "pbkdf2", "hash": {"value": value, "encoding": "utf8"}}


def verify_aspnet_membership(
    password: str,
    hash_b64: str | bytes | None,
    salt_b64: str | bytes | None,
    algorithm: str = "SHA1",
) -> bool:
    """Check a password against an ASP.NET Membership ``Password``/``PasswordSalt`` pair."""
    try:
        digest_name, key_size = _MEMBERSHIP[algorithm.upper()]
    except KeyError:
        raise ValueError(f"unknown ASP.NET Membership hash algorithm {algorithm!r}") from None
    expected = _b64decode(hash_b64)
    salt = _b64decode(salt_b64)
    try:
        message = password.encode("utf-16-le")  # .NET Encoding.Unicode
    except UnicodeEncodeError:
        return False
    # SqlMembershipProvider always writes a salt (16 random bytes); an empty one is not its data.
    if not expected or not salt:
        return False
    if key_size is None:
        actual = hashlib.new(digest_name, salt + message).digest()
    else:
        # EncodePassword: the salt becomes the key, truncated or repeated to the default key size.
        key = (salt * (key_size // len(salt) + 1))[:key_size]
        actual = hmac.new(key, message, digest_name).digest()
    return _equal(actual, expected)


def aspnet_membership_custom_hash(
    hash_b64: str | None, salt_b64: str | None, algorithm: str = "SHA1",
) -> dict[str, Any] | None:
    """Return a ``Password``/``PasswordSalt`` pair as an Auth0 ``custom_password_hash``; None without one."""
    try:
        digest_name, key_size = _MEMBERSHIP[algorithm.upper()]
    except KeyError:
        raise ValueError(f"unknown ASP.NET Membership hash algorithm {algorithm!r}") from None
    expected, salt = _b64decode(hash_b64), _b64decode(salt_b64)
    if not expected or not salt or (key_size is None and digest_name == "sha384"):
        return None  # no hash to keep, or one Auth0's schema cannot describe (plain SHA384)
    password = {"encoding": "utf16le"}  # .NET Encoding.Unicode
    value = base64.b64encode(expected).decode()
    if key_size is None:
        salted = {"value": base64.b64encode(salt).decode(), "encoding": "base64", "position": "prefix"}
        return {"algorithm": digest_name, "hash": {"value": value, "encoding": "base64"}, "salt": salted,
                "password": password}
    key = (salt * (key_size // len(salt) + 1))[:key_size]  # as verify_aspnet_membership makes it
    return {"algorithm": "hmac", "password": password,
            "hash": {"value": value, "encoding": "base64", "digest": digest_name,
                     "key": {"value": base64.b64encode(key).decode(), "encoding": "base64"}}}


def verify_digest(
    password: str,
    stored: str | bytes | None,
    algorithm: DigestAlgorithm = "md5",
    salt: str | bytes = "",
    salt_position: Literal["prefix", "suffix"] = "prefix",
    encoding: Encoding = "hex",
) -> bool:
    """Check a password against ``digest(salt + password)`` or ``digest(password + salt)``."""
    if algorithm not in _DIGESTS:
        raise ValueError(f"unknown digest algorithm {algorithm!r}")
    if salt_position not in ("prefix", "suffix"):
        raise ValueError(f"salt_position must be 'prefix' or 'suffix', not {salt_position!r}")
    salt_bytes = _salt_bytes(salt)
    expected = _decode(stored, encoding)
    secret = _utf8(password)
    if not expected or secret is None or salt_bytes is None:
        return False
    message = salt_bytes + secret if salt_position == "prefix" else secret + salt_bytes
    return _equal(hashlib.new(algorithm, message).digest(), expected)


def verify_scrypt(
    password: str,
    stored: str | bytes | None,
    salt: str | bytes,
    n: int,
    r: int,
    p: int,
    dklen: int,
    encoding: Encoding = "hex",
) -> bool:
    """Check a password against a raw scrypt key whose salt and cost parameters are kept apart."""
    if n < 2 or n & (n - 1) or r < 1 or p < 1:
        raise ValueError("scrypt needs n a power of two above 1, and r and p of at least 1")
    expected = _decode(stored, encoding)
    secret = _utf8(password)
    salt_bytes = _salt_bytes(salt)
    if not expected or secret is None or salt_bytes is None:
        return False
    # Required because scrypt with a shorter dklen yields a prefix of the longer key: without it a
    # key truncated by a too-narrow column would still verify.
    if dklen != len(expected):
        return False
    # Room for scrypt's V array (128*r*N) and B blocks (128*r*p), within OpenSSL's int limit.
    maxmem = min(128 * r * (n + p + 2) + 1024 * 1024, 0x7FFFFFFF)
    derived = hashlib.scrypt(secret, salt=salt_bytes, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)
    return _equal(derived, expected)


# -- formats reached through verify() ------------------------------------------------------------


def _verify_wordpress(password: str, text: str) -> bool:
    secret = _utf8(password)
    bcrypt_hash = text.removeprefix("$wp")
    if secret is None or len(secret) > _PHPASS_MAX_BYTES or not _BCRYPT.fullmatch(bcrypt_hash):
        return False
    prehash = base64.b64encode(hmac.new(b"wp-sha384", secret, hashlib.sha384).digest())
    return _bcrypt_check(prehash, bcrypt_hash)


def _verify_phpass(password: str, text: str) -> bool:
    secret = _utf8(password)
    if secret is None or len(secret) > _PHPASS_MAX_BYTES or not _PHPASS.fullmatch(text):
        return False
    from passlib.hash import phpass

    try:
        return bool(phpass.verify(secret, text))
    except (ValueError, TypeError, IndexError):
        return False


def _verify_sha_crypt(password: str, text: str) -> bool:
    secret = _utf8(password)
    if secret is None or not _SHA_CRYPT.fullmatch(text):
        return False
    from passlib.hash import sha256_crypt, sha512_crypt

    handler = sha512_crypt if text.startswith("$6$") else sha256_crypt
    try:
        return bool(handler.verify(secret, text))
    except (ValueError, TypeError, IndexError):
        return False


def _verify_argon2(password: str, text: str) -> bool:
    if not _ARGON2.fullmatch(text):
        return False
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        # The hasher's own parameters only matter for hashing; verify reads them from the hash.
        return PasswordHasher().verify(text, password)
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False


def _verify_django_pbkdf2(password: str, text: str) -> bool:
    match = _DJANGO_PBKDF2.fullmatch(text)
    secret = _utf8(password)
    if match is None or secret is None:
        return False
    digest_name, iterations, salt, encoded = match.groups()
    expected = _b64decode(encoded)
    if expected is None or len(expected) != hashlib.new(digest_name).digest_size or int(iterations) < 1:
        return False
    derived = hashlib.pbkdf2_hmac(digest_name, secret, salt.encode(), int(iterations))
    return _equal(derived, expected)


def _verify_django_digest(password: str, text: str) -> bool:
    # Django's MD5PasswordHasher/SHA1PasswordHasher: hexdigest(salt + password); "" salt = unsalted.
    match = _DJANGO_DIGEST.fullmatch(text)
    secret = _utf8(password)
    if match is None or secret is None:
        return False
    digest_name, salt, hexdigest = match.groups()
    expected = bytes.fromhex(hexdigest) if len(hexdigest) % 2 == 0 else b""
    return _equal(hashlib.new(digest_name, salt.encode() + secret).digest(), expected)


# -- helpers -------------------------------------------------------------------------------------


def _aspnet_identity(stored_b64: str | bytes | None) -> tuple[str, int, bytes, bytes] | None:
    """Decode an ASP.NET Identity ``PasswordHash`` into (digest, iterations, salt, subkey), or None."""
    blob = _b64decode(stored_b64)
    if not blob:
        return None
    if blob[0] == 0x00:
        # v2: fixed parameters, exact length (PasswordHasher.VerifyHashedPasswordV2).
        if len(blob) != 1 + 16 + 32:
            return None
        return "sha1", 1000, blob[1:17], blob[17:]
    if blob[0] == 0x01:
        if len(blob) < 13:
            return None
        prf, iterations, salt_length = struct.unpack(">III", blob[1:13])
        salt, expected = blob[13 : 13 + salt_length], blob[13 + salt_length :]
        # The same floor as VerifyHashedPasswordV3: at least 128-bit salt and subkey.
        if prf not in _ASPNET_PRFS or len(salt) != salt_length or salt_length < 16 or len(expected) < 16:
            return None
        # .NET reads the count into a signed int; anything above that fails there too.
        if not 1 <= iterations <= 0x7FFFFFFF:
            return None
        return _ASPNET_PRFS[prf], iterations, salt, expected
    return None


def _phc_b64(data: bytes) -> str:
    """Encode bytes as the PHC string format's B64: the standard alphabet without padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _bcrypt_check(secret: bytes, bcrypt_hash: str) -> bool:
    import bcrypt

    try:
        return bcrypt.checkpw(secret[:BCRYPT_MAX_BYTES], bcrypt_hash.encode("ascii"))
    except ValueError:  # bcrypt's "Invalid salt" for a hash that only looks right
        return False


def _equal(actual: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(actual, expected)


def _text(stored: str | bytes | None) -> str | None:
    """Return the stored hash as text without the padding a CHAR column adds, or None if unusable."""
    if isinstance(stored, bytes | bytearray):
        try:
            stored = bytes(stored).decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(stored, str):
        return None
    stored = stored.strip()
    return stored or None


def _utf8(password: str) -> bytes | None:
    try:
        return password.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        return None


def _salt_bytes(salt: str | bytes) -> bytes | None:
    if isinstance(salt, bytes | bytearray):
        return bytes(salt)
    return _utf8(salt)


def _b64decode(stored: str | bytes | None) -> bytes | None:
    text = _text(stored)
    if text is None:
        return None
    try:
        # Like .NET's Convert.FromBase64String: whitespace ignored, padding required.
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _decode(stored: str | bytes | None, encoding: Encoding) -> bytes | None:
    if encoding == "base64":
        return _b64decode(stored)
    if encoding != "hex":
        raise ValueError(f"encoding must be 'hex' or 'base64', not {encoding!r}")
    text = _text(stored)
    if text is None:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _describe(text: str) -> str:
    for prefix, name in _KNOWN_UNSUPPORTED.items():
        if text.startswith(prefix):
            return f"unsupported password hash format: {name} ({prefix})"
    return "unsupported password hash format"


# Self-describing formats, by prefix (Django's argon2 aside: see _verifier).
_VERIFIERS: list[tuple[tuple[str, ...], Callable[[str, str], bool]]] = [
    (("$wp$",), _verify_wordpress),
    (("$2a$", "$2b$", "$2y$"), verify_bcrypt),
    (("$P$", "$H$"), _verify_phpass),
    (("$6$", "$5$"), _verify_sha_crypt),
    (("$argon2",), _verify_argon2),
    (("pbkdf2_sha256$", "pbkdf2_sha1$"), _verify_django_pbkdf2),
    (("md5$", "sha1$"), _verify_django_digest),
]
