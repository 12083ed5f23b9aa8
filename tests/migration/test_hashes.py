"""The legacy-hash helpers, checked against published test vectors.

Every vector names its source next to it. Where no published vector exists the test says so and
builds its vector from the algorithm instead (ASP.NET Membership's HMAC variants, bcrypt's cut of a
multi-byte character at byte 72, WordPress' untruncated pre-hash).
"""

import base64
import contextlib
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from idp.migration import hashes
from idp.migration.hashes import (
    BCRYPT_MAX_BYTES,
    UnsupportedHash,
    verify,
    verify_aspnet_identity,
    verify_aspnet_membership,
    verify_bcrypt,
    verify_digest,
    verify_scrypt,
)

# libpass tests/test_handlers.py: UPASS_TABLE, the non-ASCII password its vectors use.
UPASS_TABLE = "t\u00e1\u0411\u2113\u0259"


def _wrong(password: str) -> str:
    return password + "x"


# -- bcrypt $2a$ $2b$ $2y$ -----------------------------------------------------------------------

BCRYPT_VECTORS = [
    # Openwall crypt_blowfish 1.2 test vectors, as carried by pyca/bcrypt tests/test_bcrypt.py
    # (_test_vectors) and libpass tests/test_handlers_bcrypt.py.
    ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"),
    ("", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"),
    # pyca/bcrypt tests/test_bcrypt.py (_test_vectors), $2b$.
    ("Kk4DQuMMfZL9o", "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm"),
    # php-src ext/standard/tests/password/password_verify.phpt, $2a$.
    ("rasmuslerdorf", "$2a$07$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hi"),
    # ircmaxell/password_compat test/Unit/PasswordHashTest.php testKnownSalt: PHP password_hash's $2y$.
    ("rasmuslerdorf", "$2y$07$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hi"),
    # ircmaxell/password_compat test/Unit/PasswordHashTest.php testRawSalt (PHP >= 5.5 result).
    ("test", "$2y$10$MTIzNDU2Nzg5MDEyMzQ1Nej0NmcAWSLR.oP7XOR9HD/vjUuOj100y"),
    # libpass tests/test_handlers_bcrypt.py ("ensure 2b support"): a UTF-8 password.
    (UPASS_TABLE, "$2b$05$Z17AXnnlpzddNUvnC6cZNOSwMA/8oNiKnHTHTwLlBijfucQQlHjaG"),
]

# Openwall crypt_blowfish 1.2 ("chars after 72 are ignored"), in pyca/bcrypt's _long_pw_vectors
# (salt only) and, with its full hash, libpass tests/test_handlers_bcrypt.py.
LONG_PASSWORD = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"
)
LONG_PASSWORD_HASH = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"


@pytest.mark.parametrize(("password", "stored"), BCRYPT_VECTORS)
def test_bcrypt_published_vectors(password: str, stored: str) -> None:
    assert verify(password, stored) is True
    assert verify_bcrypt(password, stored) is True
    assert verify(_wrong(password), stored) is False


def test_bcrypt_wrong_password_from_php_src() -> None:
    # php-src password_verify.phpt: 'rasmusler' against the same hash is false.
    assert verify("rasmusler", "$2a$07$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hi") is False


@pytest.mark.parametrize(
    "stored",
    [
        # ircmaxell/password_compat PasswordVerifyTest.php testInValidHash: last character changed.
        "$2a$07$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hj",
        # php-src password_verify.phpt / password_compat testSaltOnly: a salt, not a hash.
        "$2a$07$usesomesillystringforsalt$",
        # libpass known_malformed_hashes: a bad character, and a cost that is not zero-padded.
        "$2a$12$EXRkfkdmXn!gzds2SSitu.MW9.gAVqa9eLS1//RYtYCmB1eLHg.9q",
        "$2a$6$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.",
        # pyca/bcrypt test_checkpw_extra_data: a valid hash with trailing data, and truncated.
        "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEmextra",
        "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.",
        "$2y$",
        "$2y$99$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hi",
    ],
)
def test_bcrypt_malformed_hash_is_false(stored: str) -> None:
    assert verify("rasmuslerdorf", stored) is False
    assert verify_bcrypt("rasmuslerdorf", stored) is False


def test_bcrypt_reads_only_72_bytes_as_legacy_systems_did() -> None:
    assert len(LONG_PASSWORD.encode()) > BCRYPT_MAX_BYTES
    assert verify(LONG_PASSWORD, LONG_PASSWORD_HASH) is True
    assert verify_bcrypt(LONG_PASSWORD, LONG_PASSWORD_HASH) is True
    # Whatever follows byte 72 is ignored; the first 72 bytes all count.
    assert verify(LONG_PASSWORD[:BCRYPT_MAX_BYTES] + "something else", LONG_PASSWORD_HASH) is True
    assert verify(LONG_PASSWORD[: BCRYPT_MAX_BYTES - 1], LONG_PASSWORD_HASH) is False


def test_bcrypt_5_itself_refuses_long_passwords() -> None:
    # Why the helper truncates: bcrypt >= 5 raises instead of ignoring bytes past 72.
    with pytest.raises(ValueError):
        bcrypt.checkpw(LONG_PASSWORD.encode(), LONG_PASSWORD_HASH.encode())


def test_bcrypt_truncation_counts_bytes_not_characters() -> None:
    # No published vector: built here. 71 ASCII characters and a two-byte "é" make 73 bytes, so
    # byte 72 is the first half of the "é", which is what a C implementation hashed.
    password = "a" * 71 + "é"
    stored = bcrypt.hashpw(password.encode()[:BCRYPT_MAX_BYTES], bcrypt.gensalt(4)).decode()
    assert verify(password, stored) is True
    assert verify("a" * 71 + "è", stored) is True  # "è" starts with the same byte 0xc3
    assert verify("a" * 71, stored) is False


# -- WordPress 6.8+ $wp$2y$ ----------------------------------------------------------------------

# hashcat src/modules/module_35500.c ("Wordpress bcrypt(hmac-sha384($pass))"): ST_PASS and ST_HASH.
# WordPress' own tests (tests/phpunit/tests/auth.php) hash at run time and publish no fixed vector.
WORDPRESS_HASH = "$wp$2y$10$lzlQrRRhLSjz486bA9CKHuZRPoKz4uviT251Sq/r5OzKUBbrXwnQW"


def test_wordpress_published_vector() -> None:
    assert verify("hashcat", WORDPRESS_HASH) is True
    assert verify("hashcat!", WORDPRESS_HASH) is False


def test_wordpress_hash_is_over_the_prehash_not_the_password() -> None:
    assert verify("hashcat", WORDPRESS_HASH.removeprefix("$wp")) is False


@pytest.mark.parametrize(
    "stored",
    [
        "$wp$",
        "$wp$2y$10$",
        WORDPRESS_HASH[:-1],
        WORDPRESS_HASH + "x",
        "$wp$2y$10$lzlQrRRhLSjz486bA9CKHuZRPoKz4uviT251Sq/r5OzKUBbrXwn!W",
        "$wp" + WORDPRESS_HASH,
    ],
)
def test_wordpress_malformed_hash_is_false(stored: str) -> None:
    assert verify("hashcat", stored) is False


def test_wordpress_long_passwords_are_not_truncated() -> None:
    # Built here from wp_hash_password's algorithm (no published vector): the HMAC pre-hash
    # means WordPress, unlike plain bcrypt, tells apart passwords that share their first 72
    # bytes (WordPress' test_long_truncated_password_is_rejected checks the same).
    password = "a" * 73
    prehash = base64.b64encode(hmac.new(b"wp-sha384", password.encode(), hashlib.sha384).digest())
    stored = "$wp" + bcrypt.hashpw(prehash, bcrypt.gensalt(4, prefix=b"2b")).decode()
    assert verify(password, stored) is True
    assert verify("a" * 72, stored) is False
    # wp_check_password refuses passwords over 4096 bytes before hashing anything.
    assert verify("a" * 4097, stored) is False


# -- phpass $P$ $H$ ------------------------------------------------------------------------------

PHPASS_VECTORS = [
    # The phpass 0.3 test program (Openwall, test.php): "A correct portable hash for 'test12345'";
    # also in libpass tests/test_handlers.py phpass_test.
    ("test12345", "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"),
    # John the Ripper 1.7.9, via libpass tests/test_handlers.py phpass_test ($H$ is phpBB's ident;
    # "B" is WordPress' default cost).
    ("test1", "$H$9aaaaaSXBjgypwqm.JsMssPLiS8YQ00"),
    ("JohnRipper", "$P$B12345678L6Lpt4BxNotVIMILOa9u81"),
    # libpass tests/test_handlers.py phpass_test: a UTF-8 password, and the empty password.
    (UPASS_TABLE, "$P$7SMy8VxnfsIy2Sxm7fJxDSdil.h7TW."),
    ("", "$P$7JaFQsPzJSuenezefD/3jHgt5hVfNH0"),
]


@pytest.mark.parametrize(("password", "stored"), PHPASS_VECTORS)
def test_phpass_published_vectors(password: str, stored: str) -> None:
    assert verify(password, stored) is True
    assert verify(_wrong(password), stored) is False


def test_phpass_wrong_password_from_phpass_test_program() -> None:
    assert verify("test12346", "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0") is False


@pytest.mark.parametrize(
    "stored",
    [
        "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r!L0",  # libpass known_malformed_hashes: bad character
        "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L",
        "$P$",
        "$H$",
        "$P$9IQRaTwmf",
        "$P$~IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0",  # not a cost character
    ],
)
def test_phpass_malformed_hash_is_false(stored: str) -> None:
    assert verify("test12345", stored) is False


def test_phpass_refuses_passwords_over_4096_bytes() -> None:
    assert verify("a" * 4097, "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0") is False


# -- Django --------------------------------------------------------------------------------------

DJANGO_VECTORS = [
    # django/django tests/auth_tests/test_hashers.py (Django 4.1): test_pbkdf2 and
    # test_low_level_pbkdf2_sha1.
    ("lètmein", "pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c="),
    ("lètmein", "pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I="),
    # Same file: test_sha1, test_md5, test_unsalted_md5 (the "md5$$" form), test_unsalted_sha1.
    ("lètmein", "sha1$seasalt$cff36ea83f5706ce9aa7454e63e431fc726b2dc8"),
    ("lètmein", "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3"),
    ("lètmein", "md5$$88a434c88cca4e900f7874cd98123f43"),
    ("lètmein", "sha1$$6d138ca3ae545631b3abd71a4f076ce759c5700b"),
    # Same file, TestUtilsHashPassArgon2.test_argon2: old argon2i hashes without and with a version.
    (
        "secret",
        "argon2$argon2i$m=8,t=1,p=1$c29tZXNhbHQ$gwQOXSNhxiOxPOA0+PY10P9QFO4NAYysnqRt1GSQLE55m+2GYDt9FEjPMHhP2Cuf0nOEXXMocVrsJAtNSsKyfg",
    ),
    ("secret", "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q"),
]


@pytest.mark.parametrize(("password", "stored"), DJANGO_VECTORS)
def test_django_published_vectors(password: str, stored: str) -> None:
    assert verify(password, stored) is True
    # Django's tests use "lètmeinz" (and "wrong" for argon2) as the wrong password.
    assert verify("lètmeinz" if password == "lètmein" else "wrong", stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        "pbkdf2_sha256$390000$seasalt$",
        "pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c",  # unpadded
        "pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKg",  # a short digest
        "pbkdf2_sha256$390000$seasalt$!!!!",
        "pbkdf2_sha256$many$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
        "pbkdf2_sha256$0$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
        "pbkdf2_sha256$390000$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
        "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e",
        "md5$seasalt$not-hex",
        "sha1$seasalt",
        "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$",
    ],
)
def test_django_malformed_hash_is_false(stored: str) -> None:
    assert verify("lètmein", stored) is False


# -- SHA-crypt $6$ $5$ ---------------------------------------------------------------------------

SHA_CRYPT_VECTORS = [
    # Ulrich Drepper's SHA-crypt specification, as shipped in glibc crypt/sha512c-test.c.
    (
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    (
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "This is just a test",
        "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
    ),
    (
        "the minimum number is still observed",
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
    ),
    # The same specification's SHA-256 examples (glibc crypt/sha256c-test.c; libpass
    # tests/test_handlers.py quotes them from akkadia.org/drepper/SHA-crypt.txt).
    ("Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    ("Hello world!", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"),
]


@pytest.mark.parametrize(("password", "stored"), SHA_CRYPT_VECTORS)
def test_sha_crypt_published_vectors(password: str, stored: str) -> None:
    assert verify(password, stored) is True
    assert verify(_wrong(password), stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        "$6$saltstring$",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz!",
        # crypt writes the clamped count (rounds=1000); a stored rounds=10 is not its output.
        "$6$rounds=10$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
        "$6$",
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc",
    ],
)
def test_sha_crypt_malformed_hash_is_false(stored: str) -> None:
    assert verify("Hello world!", stored) is False


# -- argon2 --------------------------------------------------------------------------------------

ARGON2_VECTORS = [
    # hynek/argon2-cffi tests/test_low_level.py TEST_HASH_ID/I/D, made with the reference argon2 CLI
    # (password "password", salt "somesalt", t=2, m=65536, p=4).
    ("password", "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"),
    ("password", "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$IMit9qkFULCMA/ViizL57cnTLOa5DiVM9eMwpAvPwr4"),
    ("password", "$argon2d$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$cZn5d+rFh+ZfuRhm2iGUGgcrW5YLeM6q7L3vBsdmFA0"),
    # php-src ext/standard/tests/password/password_verify.phpt (and password_verify_argon2.phpt).
    (
        "test",
        "$argon2i$v=19$m=65536,t=3,p=1$OEVjWWs2Z3YvWlNZQ0ZmNw$JKin7ahjmh8JYvMyFcXri0Ss/Uvd3uYpD7MG6C/5Cy0",
    ),
]


@pytest.mark.parametrize(("password", "stored"), ARGON2_VECTORS)
def test_argon2_published_vectors(password: str, stored: str) -> None:
    assert verify(password, stored) is True


def test_argon2_wrong_password() -> None:
    # php-src password_verify.phpt: 'argon2' against the argon2i hash is false; argon2-cffi's
    # test_fail reverses the password.
    assert verify("argon2", ARGON2_VECTORS[3][1]) is False
    assert verify("drowssap", ARGON2_VECTORS[0][1]) is False


@pytest.mark.parametrize(
    "stored",
    [
        "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$",
        "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwC",
        "$argon2id$v=19$m=65536,t=2,p=4$!!!$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
        "$argon2id$v=19$m=x,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
        "$argon2id$",
        "$argon2id$garbage",
        "$argon2x$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
    ],
)
def test_argon2_malformed_hash_is_false(stored: str) -> None:
    assert verify("password", stored) is False


# -- ASP.NET Identity v2 / v3 --------------------------------------------------------------------

ASPNET_IDENTITY_VECTORS = [
    # dotnet/aspnetcore src/Identity/test/Identity.Test/PasswordHasherTest.cs, password "my password".
    # HashPassword_Version2 (salt 00 01 … 0f from its SequentialRandomNumberGenerator):
    "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg==",
    # HashPassword_Version3 / HashPassword_DefaultsToVersion3 (the revision defaulting to
    # HMACSHA256 and 10,000 iterations, as up to .NET 6):
    "AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+yWU7rLgUwPZb1Itsmra7cbxw2EFpwpVFIEtP+JIuUEw==",
    # VerifyHashedPassword_Version{2,3}CompatMode_SuccessCases, in order: v2; v3 SHA512 with 50
    # iterations; SHA512, 250 iterations, 512-bit subkey; SHA1, 250 iterations; SHA256, 250,000.
    "ANXrDknc7fGPpigibZXXZFMX4aoqz44JveK6jQuwY3eH/UyPhvr5xTPeGYEckLxz9A==",
    "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw",
    "AQAAAAIAAAD6AAAAIJbVi5wbMR+htSfFp8fTw8N8GOS/Sje+S/4YZcgBfU7EQuqv4OkVYmc4VJl9AGZzmRTxSkP7LtVi9IWy"
    "UxX8IAAfZ8v+ZfhjCcudtC1YERSqE1OEdXLW9VukPuJWBBjLuw==",
    "AQAAAAAAAAD6AAAAEAhftMyfTJylOlZT+eEotFXd1elee8ih5WsjXaR3PA9M",
    "AQAAAAEAA9CQAAAAIESkQuj2Du8Y+kbc5lcN/W/3NiAZFEm11P27nrSN5/tId+bR1SwV8CO1Jd72r4C08OLvplNlCDc3oQZ8"
    "efcW+jQ=",
]


@pytest.mark.parametrize("stored", ASPNET_IDENTITY_VECTORS)
def test_aspnet_identity_published_vectors(stored: str) -> None:
    assert verify_aspnet_identity("my password", stored) is True
    assert verify_aspnet_identity("my password!", stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        # PasswordHasherTest.cs VerifyHashedPassword_FailureCases, each failing for "my password":
        "AAABAgMEBQYHCAkKCwwNDg+uAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALtH1uJg==",  # v2, incorrect password
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggE=",  # v2, too short
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJgAAAAAAAAAAAAA=",  # v2, extra data
        "AQAAAAAAAAD6AAAAEAhftMyfTJyAAAAAAAAAAAAAAAAAAAih5WsjXaR3PA9M",  # v3, incorrect password
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4A=",  # v3, too short
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHwAAAAAAAAAAAA",  # v3, extra data
        # And malformed blobs:
        "",
        "not base64!",
        "AA==",  # a v2 marker and nothing else
        "AQ==",  # a v3 marker and nothing else
        "Ag" + "A" * 62,  # unknown format marker 0x02
        # v3 claiming a 4 GiB salt, and one with an unknown PRF (3):
        base64.b64encode(b"\x01" + (1).to_bytes(4, "big") + (1000).to_bytes(4, "big") + b"\xff" * 4).decode(),
        base64.b64encode(b"\x01\x00\x00\x00\x03\x00\x00\x03\xe8\x00\x00\x00\x10" + bytes(48)).decode(),
    ],
)
def test_aspnet_identity_failures_and_malformed_hashes_are_false(stored: str) -> None:
    assert verify_aspnet_identity("my password", stored) is False


def test_aspnet_identity_is_not_auto_detected() -> None:
    with pytest.raises(UnsupportedHash):
        verify("my password", ASPNET_IDENTITY_VECTORS[0])


def _aspnet_v3(
    password: str, prf: int, digest: str, iterations: int, salt: bytes, subkey_length: int = 32
) -> str:
    """Build an Identity v3 blob as PasswordHasher.HashPasswordV3 lays it out."""
    subkey = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations, subkey_length)
    header = b"\x01" + prf.to_bytes(4, "big") + iterations.to_bytes(4, "big") + len(salt).to_bytes(4, "big")
    return base64.b64encode(header + salt + subkey).decode()


def _aspnet_v2(password: str, salt: bytes) -> str:
    """Build an Identity v2 blob as PasswordHasher.HashPasswordV2 lays it out."""
    return base64.b64encode(
        b"\x00" + salt + hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 1000, 32)
    ).decode()


@pytest.mark.parametrize(
    ("password", "stored", "value_start"),
    [
        ("my password", ASPNET_IDENTITY_VECTORS[0], "$pbkdf2-sha1$i=1000,l=32$AAECAwQFBgcICQoLDA0ODw$"),
        ("my password", ASPNET_IDENTITY_VECTORS[1], "$pbkdf2-sha256$i=10000,l=32$AAECAwQFBgcICQoLDA0ODw$"),
        ("my password", ASPNET_IDENTITY_VECTORS[4], "$pbkdf2-sha512$i=250,l=64$"),
        ("my password", ASPNET_IDENTITY_VECTORS[5], "$pbkdf2-sha1$i=250,l=16$"),
        ("my password", ASPNET_IDENTITY_VECTORS[6], "$pbkdf2-sha256$i=250000,l=32$"),
        # Built here: v3 as .NET 6 writes it (SHA256, 10,000), as .NET 7+ does (SHA512, 100,000), and v2.
        (
            UPASS_TABLE,
            _aspnet_v3(UPASS_TABLE, 1, "sha256", 10_000, bytes(range(16))),
            "$pbkdf2-sha256$i=10000,",
        ),
        (
            UPASS_TABLE,
            _aspnet_v3(UPASS_TABLE, 2, "sha512", 100_000, bytes(range(16))),
            "$pbkdf2-sha512$i=100000,",
        ),
        (UPASS_TABLE, _aspnet_v2(UPASS_TABLE, bytes(range(16, 32))), "$pbkdf2-sha1$i=1000,l=32$"),
    ],
)
def test_aspnet_identity_custom_hash_verifies_as_identity_does(
    password: str, stored: str, value_start: str
) -> None:
    from idp.migration import auth0_hashes

    assert verify_aspnet_identity(password, stored) is True
    spec = hashes.aspnet_identity_custom_hash(stored)
    assert spec is not None and spec["algorithm"] == "pbkdf2"
    assert spec["hash"]["value"].startswith(value_start)
    auth0_hashes.check(spec)  # what an import checks
    assert auth0_hashes.verify(password, spec) is True
    assert auth0_hashes.verify(_wrong(password), spec) is False
    stored_json = hashes.AUTH0_CUSTOM + json.dumps(spec)  # as idp keeps an imported hash
    assert hashes.verify_imported(password, stored_json) is True
    assert hashes.verify_imported(_wrong(password), stored_json) is False


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "   ",
        b"\xff",
        "not base64!",
        "AA==",
        "AQ==",
        "Ag" + "A" * 62,
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggE=",  # v2, too short
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4A=",  # v3, too short
        base64.b64encode(
            b"\x01\x00\x00\x00\x03\x00\x00\x03\xe8\x00\x00\x00\x10" + bytes(48)
        ).decode(),  # PRF 3
        "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm",  # not Identity's
    ],
)
def test_aspnet_identity_custom_hash_is_none_without_a_usable_hash(stored: str | bytes | None) -> None:
    assert hashes.aspnet_identity_custom_hash(stored) is None


# -- ASP.NET Membership (SqlMembershipProvider, passwordFormat="Hashed") ---------------------------

MEMBERSHIP_PASSWORD = "3GrM4v[eYgK-UT"
MEMBERSHIP_SALT = "wZdnRVXWcvXZKY6HJmJqUg=="

# No vector published by Microsoft was found. These plain-hash vectors come from a third party:
# Benjlet/SqlMembershipAdapter tests/SqlMembershipAdapter.Tests/SqlMembershipEncryptionTests.cs,
# produced by its port of EncodePassword running on .NET's own SHA1/MD5/SHA256/SHA384/SHA512.
MEMBERSHIP_PLAIN_VECTORS = [
    ("SHA1", "Vz9mJxudAR4ZVJTNI4W+oH7m3X0="),
    ("MD5", "Ux6iZnp/kSSqFLjP+jT/Qw=="),
    ("SHA256", "Kqx+vXAfjf0esjMOR/Ls6rPijWFh3+ObJfA79YH30V8="),
    ("SHA384", "gJyk9LnmCJvQRUxTIbUt+KRohZRy8vN30MWSCuQ5ywnKYQy28Df5yQ7GZvgFSnD3"),
    (
        "SHA512",
        "3axEbdUmy8RM4eN/oIoeAtWhqcrerF2UCf9qtrMaQ3xhCVeuS82vKlNTaPaLAa7JCIHGSw7QXVPEoBJXRLWLFw==",
    ),
]

# UNCONFIRMED: no published vector exists for the keyed (HMAC) algorithms. These were built from
# SqlMembershipProvider.EncodePassword in the .NET Framework reference source, by the line-by-line
# port below, and have not been checked against a real .NET run.
LONG_SALT = base64.b64encode(bytes(range(80))).decode()  # longer than the 64-byte key: truncated
MEMBERSHIP_HMAC_VECTORS = [
    ("HMACSHA256", MEMBERSHIP_PASSWORD, MEMBERSHIP_SALT, "MAGeDSl8buhfSBPHliCQZBhnhrYaNECioDonpeBJqJ4="),
    ("HMACSHA1", MEMBERSHIP_PASSWORD, MEMBERSHIP_SALT, "N+DD1Hhj3a0gTSKF4RSbLaGAitI="),
    ("HMACMD5", MEMBERSHIP_PASSWORD, MEMBERSHIP_SALT, "vXkf9dgtqcL+sw+BAqxGcw=="),
    (
        "HMACSHA512",
        MEMBERSHIP_PASSWORD,
        MEMBERSHIP_SALT,
        "g8vNUKoscfMJhEZLn4hHx7T0+LkRoWdd8fND0SUul218ZQlGrMGQTSnQJAOYahUdLTpd5uXxWGcDaM9xrJYIpQ==",
    ),
    (
        "HMACSHA384",
        "pässwörd",
        MEMBERSHIP_SALT,
        "rm0tmtkf9FpLKGTf0gBskgQ/fC39uHbAG0O0h7oBHUebMzTjfsP2Ps3yZAaarQlv",
    ),
    ("HMACSHA256", MEMBERSHIP_PASSWORD, LONG_SALT, "S9FnP9vYQTeuQdipMYX4qHjV4lKFgT/AOykMzKabjm4="),
]

# The default key lengths of .NET's parameterless HMAC constructors (reference source:
# HMACSHA256() : this(Utils.GenerateRandom(64)), HMACSHA512() : this(Utils.GenerateRandom(128)), …).
_DOTNET_HMAC = {
    "HMACMD5": ("md5", 64),
    "HMACSHA1": ("sha1", 64),
    "HMACSHA256": ("sha256", 64),
    "HMACSHA384": ("sha384", 128),
    "HMACSHA512": ("sha512", 128),
}


def _dotnet_encode_password(password: str, salt_b64: str, algorithm: str) -> str:
    """Port EncodePassword's keyed branch statement by statement, as a second implementation."""
    b_in = password.encode("utf-16-le")  # Encoding.Unicode.GetBytes(pass)
    b_salt = base64.b64decode(salt_b64)  # Convert.FromBase64String(salt)
    digest, key_length = _DOTNET_HMAC[algorithm]
    if key_length == len(b_salt):
        key = b_salt
    elif key_length < len(b_salt):
        key = b_salt[:key_length]
    else:
        b_key = bytearray(key_length)
        position = 0
        while position < key_length:
            length = min(len(b_salt), key_length - position)
            b_key[position : position + length] = b_salt[:length]
            position += length
        key = bytes(b_key)
    return base64.b64encode(hmac.new(key, b_in, digest).digest()).decode()


@pytest.mark.parametrize(("algorithm", "stored"), MEMBERSHIP_PLAIN_VECTORS)
def test_aspnet_membership_plain_vectors(algorithm: str, stored: str) -> None:
    assert verify_aspnet_membership(MEMBERSHIP_PASSWORD, stored, MEMBERSHIP_SALT, algorithm) is True
    assert verify_aspnet_membership(_wrong(MEMBERSHIP_PASSWORD), stored, MEMBERSHIP_SALT, algorithm) is False


def test_aspnet_membership_defaults_to_sha1() -> None:
    # SqlMembershipProvider.GetHashAlgorithm: in the default Framework20 compatibility mode, SHA1
    # unless membership's hashAlgorithmType is set explicitly.
    assert verify_aspnet_membership(MEMBERSHIP_PASSWORD, "Vz9mJxudAR4ZVJTNI4W+oH7m3X0=", MEMBERSHIP_SALT)


@pytest.mark.parametrize(("algorithm", "password", "salt", "stored"), MEMBERSHIP_HMAC_VECTORS)
def test_aspnet_membership_hmac_vectors_built_from_the_reference_source(
    algorithm: str, password: str, salt: str, stored: str
) -> None:
    assert _dotnet_encode_password(password, salt, algorithm) == stored
    assert verify_aspnet_membership(password, stored, salt, algorithm) is True
    assert verify_aspnet_membership(password, stored, salt, algorithm.lower()) is True
    assert verify_aspnet_membership(_wrong(password), stored, salt, algorithm) is False


@pytest.mark.parametrize(
    ("stored", "salt"),
    [
        ("Vz9mJxudAR4ZVJTNI4W+oH7m3X0", MEMBERSHIP_SALT),  # unpadded
        ("Vz9mJxudAR4ZVJTNI4W+oH7m3X0=", "wZdnRVXWcvXZKY6HJmJqUg"),
        ("Vz9mJxudAR4ZVJTNI4W+oH7m", MEMBERSHIP_SALT),  # truncated
        ("", MEMBERSHIP_SALT),
        ("Vz9mJxudAR4ZVJTNI4W+oH7m3X0=", ""),
        ("not base64!", MEMBERSHIP_SALT),
        (None, None),
    ],
)
def test_aspnet_membership_malformed_is_false(stored: str | None, salt: str | None) -> None:
    assert verify_aspnet_membership(MEMBERSHIP_PASSWORD, stored, salt) is False


def test_aspnet_membership_unknown_algorithm_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="SHA3"):
        verify_aspnet_membership(MEMBERSHIP_PASSWORD, "Vz9mJxudAR4ZVJTNI4W+oH7m3X0=", MEMBERSHIP_SALT, "SHA3")


# -- plain and salted digests --------------------------------------------------------------------

DIGEST_VECTORS = [
    # RFC 1321 appendix A.5 (MD5 test suite).
    ("abc", "900150983cd24fb0d6963f7d28e17f72", {"algorithm": "md5"}),
    ("message digest", "f96b697d7cb7938d525a2f31aaf161d0", {"algorithm": "md5"}),
    # FIPS 180-2 appendices A.1, B.1 and C.1: the one-block message "abc".
    ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d", {"algorithm": "sha1"}),
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", {"algorithm": "sha256"}),
    (
        "abc",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        {"algorithm": "sha512"},
    ),
    # hashcat self-test hashes (ST_PASS "hashcat"): src/modules/module_00010.c md5($pass.$salt),
    # module_00120.c sha1($salt.$pass), module_01410.c sha256($pass.$salt),
    # module_01710.c sha512($pass.$salt).
    (
        "hashcat",
        "3d83c8e717ff0e7ecfe187f088d69954",
        {"algorithm": "md5", "salt": "343141", "salt_position": "suffix"},
    ),
    (
        "hashcat",
        "a428863972744b16afef28e0087fc094b44bb7b1",
        {"algorithm": "sha1", "salt": "465727565", "salt_position": "prefix"},
    ),
    (
        "hashcat",
        "5bb7456f43e3610363f68ad6de82b8b96f3fc9ad24e9d1f1f8d8bd89638db7c0",
        {"algorithm": "sha256", "salt": "12480864321", "salt_position": "suffix"},
    ),
    (
        "hashcat",
        "3f749c84d00c6f94a6651b5c195c71dacae08f3cea6fed760232856cef701f7b"
        "f60d7f38a587f69f159d4e4cbe00435aeb9c8c0a4927b252d76a744e16e87e91",
        {"algorithm": "sha512", "salt": b"388026522082", "salt_position": "suffix"},
    ),
    # django/django tests/auth_tests/test_hashers.py test_md5: md5(salt + password), hex.
    ("lètmein", "3f86d0d3d465b7b458c231bf3555c0e3", {"algorithm": "md5", "salt": "seasalt"}),
    # libpass tests/test_handlers.py ldap_sha1_test / ldap_md5_test (without "{SHA}"/"{MD5}"): base64.
    ("helloworld", "at+xg6SiyUovktq1redipHiJpaE=", {"algorithm": "sha1", "encoding": "base64"}),
    ("helloworld", "/F4DjTilcDIIVEHn/nAQsA==", {"algorithm": "md5", "encoding": "base64"}),
]


@pytest.mark.parametrize(("password", "stored", "options"), DIGEST_VECTORS)
def test_digest_published_vectors(password: str, stored: str, options: dict) -> None:
    assert verify_digest(password, stored, **options) is True
    assert verify_digest(_wrong(password), stored, **options) is False


def test_digest_salt_position_matters() -> None:
    # hashcat module_00010.c: md5($pass.$salt); with the salt in front it is another hash.
    assert verify_digest("hashcat", "3d83c8e717ff0e7ecfe187f088d69954", "md5", "343141", "prefix") is False


def test_digest_accepts_upper_case_hex_and_column_padding() -> None:
    assert verify_digest("abc", "900150983CD24FB0D6963F7D28E17F72  ") is True


@pytest.mark.parametrize(
    ("stored", "encoding"),
    [
        ("900150983cd24fb0d6963f7d28e17f7", "hex"),  # odd length
        ("900150983cd24fb0d6963f7d28e17f", "hex"),  # truncated
        ("zz0150983cd24fb0d6963f7d28e17f72", "hex"),
        ("", "hex"),
        (None, "hex"),
        ("at+xg6SiyUovktq1redipHiJpaE", "base64"),
        ("at+xg6SiyUovktq1r!dipHiJpaE=", "base64"),
    ],
)
def test_digest_malformed_is_false(stored: str | None, encoding: str) -> None:
    assert verify_digest("abc", stored, "md5", encoding=encoding) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"algorithm": "sha3_256"}, {"salt_position": "middle"}, {"encoding": "base32"}],
)
def test_digest_unknown_option_is_a_value_error(options: dict) -> None:
    with pytest.raises(ValueError):
        verify_digest("abc", "900150983cd24fb0d6963f7d28e17f72", **options)


# -- scrypt --------------------------------------------------------------------------------------

SCRYPT_VECTORS = [
    # RFC 7914 section 12, vectors 1-3 (the fourth, N = 2^20, needs 1 GiB and is left out).
    (
        "",
        "",
        16,
        1,
        1,
        "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
        "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906",
    ),
    (
        "password",
        "NaCl",
        1024,
        8,
        16,
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
    ),
    (
        "pleaseletmein",
        "SodiumChloride",
        16384,
        8,
        1,
        "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
        "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887",
    ),
]


@pytest.mark.parametrize(("password", "salt", "n", "r", "p", "stored"), SCRYPT_VECTORS)
def test_scrypt_rfc7914_vectors(password: str, salt: str, n: int, r: int, p: int, stored: str) -> None:
    assert verify_scrypt(password, stored, salt, n, r, p, 64) is True
    assert verify_scrypt(password, stored, salt.encode(), n, r, p, 64) is True
    assert verify_scrypt(_wrong(password), stored, salt, n, r, p, 64) is False


def test_scrypt_base64_encoding() -> None:
    # RFC 7914 vector 2, stored base64-encoded instead of hex (the key itself is the RFC's).
    password, salt, n, r, p, hexkey = SCRYPT_VECTORS[1]
    stored = base64.b64encode(bytes.fromhex(hexkey)).decode()
    assert verify_scrypt(password, stored, salt, n, r, p, 64, encoding="base64") is True


@pytest.mark.parametrize(
    ("stored", "dklen"),
    [
        # Truncated: scrypt's shorter outputs are prefixes of longer ones, which is why dklen is
        # required; a key cut short by a narrow column must not verify.
        ("77d6576238657b203b19ca42c18a0497", 64),
        ("not hex", 64),
        ("", 64),
        (SCRYPT_VECTORS[0][5], 32),  # dklen that disagrees with the stored key
    ],
)
def test_scrypt_malformed_is_false(stored: str, dklen: int) -> None:
    assert verify_scrypt("", stored, "", 16, 1, 1, dklen) is False


@pytest.mark.parametrize(("n", "r", "p"), [(15, 1, 1), (1, 1, 1), (16, 0, 1), (16, 1, 0)])
def test_scrypt_invalid_parameters_are_a_value_error(n: int, r: int, p: int) -> None:
    with pytest.raises(ValueError):
        verify_scrypt("", SCRYPT_VECTORS[0][5], "", n, r, p, 64)


# -- verify(): detection, refusal, robustness ----------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        "$1$rasmusle$rISCgZzpwk3UhDidwXvin0",  # md5-crypt (php-src password_get_info.phpt)
        "5f4dcc3b5aa765d61d8327deb882cf99",  # a bare MD5: which salt, which scheme? use verify_digest
        "{SHA}at+xg6SiyUovktq1redipHiJpaE=",
        "rl.3StKT.4T8M",  # DES crypt
        "$2x$04$012345678901234567890uIFHTofnopPZKYkOfK6Q1l5vKIQOSO3S",  # crypt_blowfish's buggy $2x$
        "plain text password",
        "bcrypt_sha256$$2b$12$abc",
    ],
)
def test_verify_refuses_unknown_formats(stored: str) -> None:
    with pytest.raises(UnsupportedHash) as raised:
        verify("password", stored)
    assert isinstance(raised.value, ValueError)
    # The message may name the scheme but never carries the hash itself.
    assert stored not in str(raised.value)
    assert stored[8:] not in str(raised.value)


def test_unsupported_hash_names_known_schemes_only() -> None:
    with pytest.raises(UnsupportedHash, match=r"md5-crypt \(\$1\$\)"):
        verify("password", "$1$rasmusle$rISCgZzpwk3UhDidwXvin0")
    # A legacy column may hold plaintext passwords: nothing of an unknown value is quoted back.
    with pytest.raises(UnsupportedHash) as raised:
        verify("password", "$uper$ecret")
    assert str(raised.value) == "unsupported password hash format"


@pytest.mark.parametrize("stored", [None, "", "   ", b"", b"\xff\xfe"])
def test_verify_missing_or_undecodable_hash_is_false(stored: str | bytes | None) -> None:
    assert verify("password", stored) is False


def test_verify_accepts_bytes_and_char_column_padding() -> None:
    stored = "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm"
    assert verify("Kk4DQuMMfZL9o", stored.encode()) is True
    assert verify("Kk4DQuMMfZL9o", stored + "      ") is True


def test_unencodable_password_is_false() -> None:
    # A lone surrogate cannot be encoded as UTF-8; no legacy system stored a hash of it.
    assert verify("\ud800", "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm") is False
    assert verify_digest("\ud800", "900150983cd24fb0d6963f7d28e17f72") is False
    assert verify_aspnet_identity("\ud800", ASPNET_IDENTITY_VECTORS[0]) is False


JUNK = [
    "$", "$$$$", "$2b$04$", "$wp$2y$04$", "$P$!", "$6$x$y$z", "$argon2id$$$$", "pbkdf2_sha256$$$$",
    "argon2$argon2id$", "md5$", "sha1$$", "\x00", "$2y$07$" + "\u00e9" * 53, "$6$rounds=$s$h",
]  # fmt: skip


@pytest.mark.parametrize("stored", JUNK)
def test_junk_never_raises_anything_but_unsupported_hash(stored: str) -> None:
    with contextlib.suppress(UnsupportedHash):
        assert verify("password", stored) is False
    assert verify_bcrypt("password", stored) is False
    assert verify_aspnet_identity("password", stored) is False
    assert verify_aspnet_membership("password", stored, stored) is False
    assert verify_digest("password", stored) is False
    assert verify_scrypt("password", stored, stored, 16, 1, 1, 64) is False


def test_module_is_self_contained_and_imports_heavy_libraries_lazily() -> None:
    # The sandbox loads the helpers outside the application: importing the file must pull in
    # neither Flask nor idp, nor (until a verifier runs) bcrypt, argon2 or passlib, and no logging.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('legacy_hashes', {str(Path(hashes.__file__))!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "loaded = sorted(m for m in ('flask', 'idp', 'bcrypt', 'argon2', 'passlib', 'logging')"
        " if m in sys.modules)\n"
        "print(loaded)\n"
        "print(module.verify('Kk4DQuMMfZL9o',"
        " '$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm'), 'bcrypt' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "True True"]


def test_public_surface() -> None:
    assert sorted(hashes.__all__) == sorted(
        [
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
    )
    for name in hashes.__all__:
        documented = getattr(hashes, name)
        if callable(documented):
            assert documented.__doc__ and "\n" not in documented.__doc__.strip(), name
