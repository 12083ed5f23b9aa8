"""Auth0 ``custom_password_hash`` objects: every algorithm and option, and every refusal of check().

Each vector names its source. Published vectors: RFC 1320 (MD4), RFC 1321 (MD5), FIPS 180-2 (SHA),
RFC 2202 / RFC 4231 / RFC 2286 (HMAC), RFC 6070 (PBKDF2-HMAC-SHA1), RFC 7914 (scrypt), the OpenLDAP
Administrator's Guide ({SSHA}), Openwall crypt_blowfish (bcrypt), argon2-cffi and Django (argon2).
The rest are computed here with the standard library, bcrypt or argon2-cffi from Auth0's documented
construction, as the test next to them says.
"""

import base64
import hashlib
import hmac
from typing import Any

import bcrypt
import pytest
from argon2 import Type
from argon2.low_level import hash_secret
from hypothesis import given, settings
from hypothesis import strategies as st

from idp.migration import auth0_hashes
from idp.migration.auth0_hashes import (
    BCRYPT_MAX_COST,
    PBKDF2_MAX_WORK,
    InvalidSpec,
    check,
    verify,
)

ROOT = "custom_password_hash"
JEFE = b"what do ya want for nothing?"


def _spec(algorithm: str, value: str, encoding: str | None = None, **extra: Any) -> dict[str, Any]:
    hash_spec: dict[str, Any] = {"value": value}
    if encoding is not None:
        hash_spec["encoding"] = encoding
    for name in ("digest", "key"):
        if name in extra:
            hash_spec[name] = extra.pop(name)
    return {"algorithm": algorithm, "hash": hash_spec, **extra}


def _b64(data: bytes, urlsafe: bool = False, padded: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if padded else text.rstrip("=")


def _phc_b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _has(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:
        return False
    return True


def _md4(data: bytes) -> bytes:
    return auth0_hashes._digest("md4", "test")(data).digest()


def _assert_verifies(spec: dict[str, Any], password: str, wrong: str | None = None) -> None:
    check(spec)
    assert verify(password, spec) is True
    assert verify(wrong if wrong is not None else password + "x", spec) is False


# -- md4 md5 sha1 sha256 sha512 -------------------------------------------------------------------

DIGEST_VECTORS = [
    # RFC 1320 appendix A.5.
    ("md4", "", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    ("md4", "abc", "a448017aaf21d8525fc10ae87aa6729d"),
    ("md4", "message digest", "d9130a8164549fe818874806e1c7014b"),
    ("md4", "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
     "e33b4ddc9c38f2199c3e7b164fcc0536"),
    # RFC 1321 appendix A.5.
    ("md5", "abc", "900150983cd24fb0d6963f7d28e17f72"),
    ("md5", "message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    # FIPS 180-2 appendices A, B and C ("abc").
    ("sha1", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("sha512", "abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
]


@pytest.mark.parametrize(("algorithm", "password", "hexdigest"), DIGEST_VECTORS)
def test_unsalted_digest_published_vectors(algorithm: str, password: str, hexdigest: str) -> None:
    _assert_verifies(_spec(algorithm, hexdigest, "hex"), password)
    _assert_verifies(_spec(algorithm, hexdigest.upper(), "hex"), password)  # Auth0 takes either case
    _assert_verifies(_spec(algorithm, _b64(bytes.fromhex(hexdigest)), "base64"), password)


def test_md4_comes_from_hashlib_or_libpass() -> None:
    # RFC 1320 A.5: the provider (hashlib's, or libpass' pure Python one under OpenSSL 3) is right.
    assert _md4(b"abcdefghijklmnopqrstuvwxyz").hex() == "d79e1c308aa5bbcdeea8ed63df412da9"
    if not _has("md4"):
        from passlib.crypto._md4 import md4

        assert auth0_hashes._constructor("md4") is md4


@pytest.mark.parametrize("algorithm", ["md4", "md5", "sha1", "sha256", "sha512"])
@pytest.mark.parametrize("position", ["prefix", "suffix", None])
@pytest.mark.parametrize("salt_encoding", ["utf8", "hex", "base64", None])
def test_salted_digest(algorithm: str, position: str | None, salt_encoding: str | None) -> None:
    # Auth0: digest(salt + password) for prefix (the default), digest(password + salt) for suffix.
    salt_bytes = "sàlt-€".encode()
    salt_value = {"utf8": "sàlt-€", None: "sàlt-€", "hex": salt_bytes.hex(), "base64": _b64(salt_bytes)}
    password = "pässword"
    message = password.encode() + salt_bytes if position == "suffix" else salt_bytes + password.encode()
    digest = _md4(message) if algorithm == "md4" else hashlib.new(algorithm, message).digest()
    salt: dict[str, Any] = {"value": salt_value[salt_encoding]}
    if salt_encoding is not None:
        salt["encoding"] = salt_encoding
    if position is not None:
        salt["position"] = position
    _assert_verifies(_spec(algorithm, digest.hex(), "hex", salt=salt), password)
    _assert_verifies(_spec(algorithm, _b64(digest), "base64", salt=salt), password)
    # The other position does not verify.
    other = {**salt, "position": "prefix" if position == "suffix" else "suffix"}
    assert verify(password, _spec(algorithm, digest.hex(), "hex", salt=other)) is False


def test_auth0_documented_sha256_shape() -> None:
    # The shape of Auth0's sha256 example (its hash value is elided in the docs, so computed here).
    digest = hashlib.sha256(b"abc123" + b"hunter2").hexdigest()
    spec = {"algorithm": "sha256", "hash": {"value": digest, "encoding": "hex"},
            "salt": {"value": "abc123", "position": "prefix"}}
    _assert_verifies(spec, "hunter2")


@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_base64_variants(urlsafe: bool, padded: bool) -> None:
    # Node's Buffer reads standard and url-safe base64, padded or not; pick bytes that need -_ and =.
    password = next(f"pw{i}" for i in range(1000)
                    if {"+", "/"} & set(_b64(hashlib.sha256(f"pw{i}".encode()).digest())))
    digest = hashlib.sha256(password.encode()).digest()
    _assert_verifies(_spec("sha256", _b64(digest, urlsafe, padded), "base64"), password)


# -- password encodings ---------------------------------------------------------------------------

# "€" is U+20AC (low byte 0xAC); "𝄞" is the surrogate pair D834 DD1E (low bytes 0x34 0x1E).
PASSWORD = "pä€𝄞"
PASSWORD_BYTES = {
    "utf8": PASSWORD.encode("utf-8"),
    "utf16le": PASSWORD.encode("utf-16-le"),
    "ucs2": PASSWORD.encode("utf-16-le"),
    "latin1": b"p\xe4\xac\x34\x1e",
    "binary": b"p\xe4\xac\x34\x1e",
    "ascii": b"p\xe4\xac\x34\x1e",  # Node: the same as latin1 when encoding a string
}


@pytest.mark.parametrize("encoding", sorted(PASSWORD_BYTES))
def test_password_encodings(encoding: str) -> None:
    # Built from Node's Buffer.from(string, encoding), as the docs of Node's buffer module describe it.
    digest = hashlib.sha1(PASSWORD_BYTES[encoding]).hexdigest()
    spec = _spec("sha1", digest, "hex", password={"encoding": encoding})
    _assert_verifies(spec, PASSWORD, wrong="pä€")
    if encoding != "utf8":
        assert verify(PASSWORD, _spec("sha1", digest, "hex")) is False  # utf8 is the default


def test_lone_surrogate_is_u_fffd_in_utf8() -> None:
    # Node writes U+FFFD (EF BF BD) for a lone surrogate; Python would refuse to encode it.
    digest = hashlib.md5(b"a\xef\xbf\xbdb").hexdigest()
    _assert_verifies(_spec("md5", digest, "hex"), "a\ud800b")


# -- hmac -----------------------------------------------------------------------------------------

HMAC_VECTORS = [
    # RFC 2202 test case 2 (key "Jefe").
    ("md5", "750c783e6ab0b503eaa86e310a5db738"),
    ("sha1", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    # RFC 4231 test case 2.
    ("sha224", "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"),
    ("sha256", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("sha384", "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec373"
               "6322445e8e2240ca5e69e2c78b3239ecfab21649"),
    ("sha512", "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
               "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
]


@pytest.mark.parametrize(("digest", "hexmac"), HMAC_VECTORS)
def test_hmac_published_vectors(digest: str, hexmac: str) -> None:
    password = JEFE.decode()
    for key in ({"value": "Jefe"}, {"value": "Jefe", "encoding": "utf8"},
                {"value": b"Jefe".hex(), "encoding": "hex"}, {"value": _b64(b"Jefe"), "encoding": "base64"}):
        _assert_verifies(_spec("hmac", hexmac, "hex", digest=digest, key=key), password)
    _assert_verifies(_spec("hmac", _b64(bytes.fromhex(hexmac)), "base64", digest=digest,
                           key={"value": "Jefe"}), password)


def test_hmac_ripemd160() -> None:
    spec = _spec("hmac", "dda6c0213a485a9e24f4742064a7f033b43c4069", "hex",  # RFC 2286 test case 2
                 digest="ripemd160", key={"value": "Jefe"})
    if _has("ripemd160"):
        _assert_verifies(spec, JEFE.decode())
    else:
        _assert_refused(spec, f"{ROOT}.hash.digest", "cannot verify")


def test_hmac_md4() -> None:
    # No published HMAC-MD4 vector: RFC 2104's HMAC from the stdlib over the RFC 1320-checked MD4.
    md4 = auth0_hashes._digest("md4", "test")
    mac = hmac.new(b"Jefe", JEFE, md4).hexdigest()
    _assert_verifies(_spec("hmac", mac, "hex", digest="md4", key={"value": "Jefe"}), JEFE.decode())


def test_hmac_whirlpool() -> None:
    key = {"value": "Jefe"}
    if _has("whirlpool"):
        mac = hmac.new(b"Jefe", JEFE, "whirlpool").hexdigest()
        _assert_verifies(_spec("hmac", mac, "hex", digest="whirlpool", key=key), JEFE.decode())
    else:
        _assert_refused(_spec("hmac", "00" * 64, "hex", digest="whirlpool", key=key),
                        f"{ROOT}.hash.digest", "this build cannot verify whirlpool")


@pytest.mark.parametrize("position", ["prefix", "suffix"])
def test_hmac_over_salted_password(position: str) -> None:
    # Computed: HMAC(key, salt + password) for prefix, HMAC(key, password + salt) for suffix.
    message = b"NaCl" + b"pw" if position == "prefix" else b"pw" + b"NaCl"
    mac = hmac.new(b"k3y", message, "sha256").hexdigest()
    spec = _spec("hmac", mac, "hex", digest="sha256", key={"value": "k3y"},
                 salt={"value": "NaCl", "position": position})
    _assert_verifies(spec, "pw")


# -- ldap -----------------------------------------------------------------------------------------


def test_ldap_openldap_ssha_example() -> None:
    # OpenLDAP Software Administrator's Guide, "SSHA password storage scheme": the password "secret".
    _assert_verifies(_spec("ldap", "{SSHA}DkMTwBl+a/3DQTxCYEApdUtNXGgdUac3", "utf8"), "secret")
    _assert_verifies(_spec("ldap", "{ssha}DkMTwBl+a/3DQTxCYEApdUtNXGgdUac3"), "secret")  # any case


@pytest.mark.parametrize(("scheme", "digest", "salted"), [
    ("MD5", "md5", False), ("SMD5", "md5", True), ("SHA", "sha1", False), ("SSHA", "sha1", True),
    ("SHA256", "sha256", False), ("SSHA256", "sha256", True), ("SHA384", "sha384", False),
    ("SSHA384", "sha384", True), ("SHA512", "sha512", False), ("SSHA512", "sha512", True),
])
def test_ldap_schemes(scheme: str, digest: str, salted: bool) -> None:
    # Computed per RFC 2307 / OpenLDAP: base64(digest(password + salt) + salt), unsalted without it.
    salt = b"\x01\x02\xfe\xff" if salted else b""
    value = "{" + scheme + "}" + _b64(hashlib.new(digest, b"secret" + salt).digest() + salt)
    _assert_verifies(_spec("ldap", value, "utf8"), "secret")
    _assert_verifies(_spec("ldap", value.replace(scheme, scheme.lower())), "secret")


# -- pbkdf2 ---------------------------------------------------------------------------------------


def _phc(digest: str, iterations: int, length: int, salt: bytes, derived: bytes) -> str:
    return f"$pbkdf2-{digest}$i={iterations},l={length}${_phc_b64(salt)}${_phc_b64(derived)}"


@pytest.mark.parametrize(("iterations", "hexkey"), [
    # RFC 6070 section 2: P = "password", S = "salt", dkLen = 20.
    (1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
    (2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
    (4096, "4b007901b765489abead49d926f721d065a429c1"),
])
def test_pbkdf2_rfc6070(iterations: int, hexkey: str) -> None:
    value = _phc("sha1", iterations, 20, b"salt", bytes.fromhex(hexkey))
    _assert_verifies(_spec("pbkdf2", value, "utf8"), "password")
    # The pure-Python PBKDF2 (used for MD4) gives the same keys.
    derived = auth0_hashes._pbkdf2_python(hashlib.sha1, b"password", b"salt", iterations, 20)
    assert derived.hex() == hexkey


@pytest.mark.parametrize("digest", ["md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512"])
def test_pbkdf2_digests(digest: str) -> None:
    # Computed with hashlib.pbkdf2_hmac; l=64 takes several blocks of the shorter digests.
    if not _has(digest):
        pytest.skip(f"no {digest} in this build")
    derived = hashlib.pbkdf2_hmac(digest, "pässword".encode(), b"\x00salt\xff", 50, 64)
    _assert_verifies(_spec("pbkdf2", _phc(digest, 50, 64, b"\x00salt\xff", derived), "utf8"), "pässword")


def test_pbkdf2_md4() -> None:
    # No published PBKDF2-MD4 vector: RFC 8018 section 5.2 written out here over the stdlib's HMAC.
    md4 = auth0_hashes._digest("md4", "test")

    def prf(data: bytes) -> bytes:
        return hmac.new(b"pw", data, md4).digest()

    blocks = b""
    for index in (1, 2):
        u = prf(b"NaCl" + index.to_bytes(4, "big"))
        total = u
        for _ in range(9):
            u = prf(u)
            total = bytes(a ^ b for a, b in zip(total, u, strict=True))
        blocks += total
    _assert_verifies(_spec("pbkdf2", _phc("md4", 10, 20, b"NaCl", blocks[:20])), "pw")


def test_pbkdf2_defaults_and_parameter_order() -> None:
    # Auth0's defaults are i=100000, l=64; the parameters may come in either order or be left out.
    salt = _phc_b64(b"salt")
    default = _phc_b64(hashlib.pbkdf2_hmac("sha512", b"pw", b"salt", 100_000, 64))
    _assert_verifies(_spec("pbkdf2", f"$pbkdf2-sha512${salt}${default}", "utf8"), "pw")
    cheap = _phc_b64(hashlib.pbkdf2_hmac("sha512", b"pw", b"salt", 10, 64))
    for value in (f"$pbkdf2-sha512$i=10${salt}${cheap}", f"$pbkdf2-sha512$l=64,i=10${salt}${cheap}"):
        _assert_verifies(_spec("pbkdf2", value, "utf8"), "pw")


def test_pbkdf2_pure_python_md4_is_held_to_a_smaller_budget() -> None:
    # Auth0's own documented shape, $pbkdf2-md4$i=100000,l=64, costs seconds in pure Python.
    value = f"$pbkdf2-md4$i=100000,l=64${_phc_b64(b'salt')}${_phc_b64(bytes(64))}"
    if _has("md4") and auth0_hashes._native_pbkdf2("md4"):
        check(_spec("pbkdf2", value))
    else:
        _assert_refused(_spec("pbkdf2", value), f"{ROOT}.hash.value", "pure-Python md4")


# -- scrypt ---------------------------------------------------------------------------------------

SCRYPT_VECTORS = [
    # RFC 7914 section 12.
    ("", "", 16, 1, 1, "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
                       "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"),
    ("password", "NaCl", 1024, 8, 16, "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
                                      "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"),
]


@pytest.mark.parametrize(("password", "salt", "n", "r", "p", "hexkey"), SCRYPT_VECTORS)
def test_scrypt_rfc7914(password: str, salt: str, n: int, r: int, p: int, hexkey: str) -> None:
    spec = _spec("scrypt", hexkey, "hex", salt={"value": salt}, keylen=64, cost=n, blockSize=r,
                 parallelization=p)
    _assert_verifies(spec, password)
    spec["hash"] = {"value": _b64(bytes.fromhex(hexkey)), "encoding": "base64"}
    spec["salt"] = {"value": salt.encode().hex(), "encoding": "hex"}
    _assert_verifies(spec, password)


def test_scrypt_defaults() -> None:
    # Computed: Node's crypto.scrypt defaults, cost 16384, blockSize 8, parallelization 1.
    derived = hashlib.scrypt(b"pw", salt=b"s4lt", n=16384, r=8, p=1, dklen=32)
    spec = _spec("scrypt", _b64(derived), "base64", salt={"value": _b64(b"s4lt"), "encoding": "base64"},
                 keylen=32)
    _assert_verifies(spec, "pw")


# -- bcrypt ---------------------------------------------------------------------------------------


def test_bcrypt_published_vector() -> None:
    # Openwall crypt_blowfish 1.2 test vectors (as carried by pyca/bcrypt tests/test_bcrypt.py).
    _assert_verifies(_spec("bcrypt", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "utf8"),
                     "U*U")
    _assert_verifies(_spec("bcrypt", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"), "U*U")


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
@pytest.mark.parametrize("position", ["prefix", "suffix"])
def test_bcrypt_with_salt(prefix: str, position: str) -> None:
    # Computed with bcrypt: the salt joins the password at its position, then bcrypt.
    message = b"pepper" + b"pw" if position == "prefix" else b"pw" + b"pepper"
    hashed = bcrypt.hashpw(message, bcrypt.gensalt(4)).decode().replace("$2b$", prefix)
    spec = _spec("bcrypt", hashed, "utf8", salt={"value": "pepper", "position": position})
    _assert_verifies(spec, "pw")


def test_bcrypt_salt_counts_toward_72_bytes() -> None:
    # bcrypt reads 72 bytes of salt + password: with a 70-byte salt only 2 password bytes matter.
    salt = "s" * 70
    hashed = bcrypt.hashpw(salt.encode() + b"pw", bcrypt.gensalt(4)).decode()
    spec = _spec("bcrypt", hashed, "utf8", salt={"value": salt})
    assert verify("pw", spec) is True
    assert verify("pw and anything after", spec) is True
    assert verify("px", spec) is False


# -- argon2 ---------------------------------------------------------------------------------------

ARGON2_PUBLISHED = [
    # hynek/argon2-cffi tests/test_low_level.py TEST_HASH_ID (made with the reference argon2 CLI).
    ("password", "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"),
    # (Its argon2i and argon2d twins cost as much again each; the variants are computed cheaply below.)
    # Django tests/auth_tests/test_hashers.py, test_argon2 (an argon2i hash without the "argon2" prefix).
    ("secret", "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q"),
]


@pytest.mark.parametrize(("password", "value"), ARGON2_PUBLISHED)
def test_argon2_published_vectors(password: str, value: str) -> None:
    _assert_verifies(_spec("argon2", value, "utf8"), password)


@pytest.mark.parametrize("kind", [Type.ID, Type.I, Type.D])
def test_argon2_variants_and_password_encoding(kind: Type) -> None:
    # Computed with argon2-cffi at cheap costs; the password is hashed in its declared encoding.
    value = hash_secret("pä€".encode("utf-16-le"), b"somesalt", time_cost=1, memory_cost=8, parallelism=1,
                        hash_len=16, type=kind).decode()
    _assert_verifies(_spec("argon2", value, "utf8", password={"encoding": "ucs2"}), "pä€")
    assert verify("pä€", _spec("argon2", value, "utf8")) is False


# -- check() refusals -----------------------------------------------------------------------------

SECRET = "SECRETVALUE"
BCRYPT_HASH = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
MD5_HEX = "900150983cd24fb0d6963f7d28e17f72"
ARGON2_HASH = ARGON2_PUBLISHED[1][1]
PBKDF2_HASH = _phc("sha1", 1, 20, b"salt", bytes.fromhex("0c60c80f961f0e71f3a9b524af6012062fe037a6"))
SCRYPT_OK = {"keylen": 64, "cost": 16, "blockSize": 1, "parallelization": 1}
SCRYPT_HEX = SCRYPT_VECTORS[0][5]
HMAC_HEX = HMAC_VECTORS[3][1]


def _assert_refused(spec: object, path: str, words: str = "") -> InvalidSpec:
    with pytest.raises(InvalidSpec) as raised:
        check(spec)
    assert raised.value.path == path
    assert str(raised.value) == raised.value.message
    assert words in raised.value.message
    assert SECRET not in str(raised.value)
    assert isinstance(raised.value, ValueError)
    if isinstance(spec, dict):
        assert verify("password", spec) is False
    return raised.value


REFUSALS: list[tuple[str, object, str]] = [
    # Shape and required properties.
    ("not an object", [SECRET], ROOT),
    ("not an object (string)", SECRET, ROOT),
    ("no algorithm", {"hash": {"value": MD5_HEX, "encoding": "hex"}}, f"{ROOT}.algorithm"),
    ("no hash", {"algorithm": "md5"}, f"{ROOT}.hash"),
    ("hash a string", {"algorithm": "bcrypt", "hash": BCRYPT_HASH}, f"{ROOT}.hash"),
    ("no hash value", _spec("md5", MD5_HEX, "hex") | {"hash": {"encoding": "hex"}}, f"{ROOT}.hash.value"),
    ("salt without value", _spec("md5", MD5_HEX, "hex", salt={"position": "prefix"}), f"{ROOT}.salt.value"),
    ("key without value", _spec("hmac", HMAC_HEX, "hex", digest="sha256", key={"encoding": "utf8"}),
     f"{ROOT}.hash.key.value"),
    # Additional properties.
    ("extra top property", _spec("md5", MD5_HEX, "hex", iterations=SECRET), f"{ROOT}.iterations"),
    ("extra hash property", {"algorithm": "md5", "hash": {"value": MD5_HEX, "encoding": "hex", "x": 1}},
     f"{ROOT}.hash.x"),
    ("extra salt property", _spec("md5", MD5_HEX, "hex", salt={"value": "s", "length": 1}),
     f"{ROOT}.salt.length"),
    ("extra key property", _spec("hmac", HMAC_HEX, "hex", digest="sha256", key={"value": "k", "alg": "x"}),
     f"{ROOT}.hash.key.alg"),
    ("extra password property", _spec("md5", MD5_HEX, "hex", password={"encoding": "utf8", "nfc": True}),
     f"{ROOT}.password.nfc"),
    ("property name not shown", _spec("md5", MD5_HEX, "hex") | {SECRET + " !": 1}, ROOT),
    # Types.
    ("algorithm a number", _spec("md5", MD5_HEX, "hex") | {"algorithm": 5}, f"{ROOT}.algorithm"),
    ("hash value a number", {"algorithm": "md5", "hash": {"value": 5, "encoding": "hex"}},
     f"{ROOT}.hash.value"),
    ("salt not an object", _spec("md5", MD5_HEX, "hex", salt=SECRET), f"{ROOT}.salt"),
    ("salt value a list", _spec("md5", MD5_HEX, "hex", salt={"value": [SECRET]}), f"{ROOT}.salt.value"),
    ("key not an object", _spec("hmac", HMAC_HEX, "hex", digest="sha256", key=SECRET), f"{ROOT}.hash.key"),
    ("password not an object", _spec("md5", MD5_HEX, "hex", password="utf8"), f"{ROOT}.password"),
    ("keylen a string", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"keylen": "64"})),
     f"{ROOT}.keylen"),
    ("cost a float", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"cost": 16.0})), f"{ROOT}.cost"),
    ("blockSize a bool", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"blockSize": True})),
     f"{ROOT}.blockSize"),
    ("value too long", _spec("md5", "0" * 5000, "hex"), f"{ROOT}.hash.value"),
    # Unknown names.
    ("unknown algorithm", _spec(SECRET, MD5_HEX, "hex"), f"{ROOT}.algorithm"),
    ("crypt is no algorithm", _spec("crypt", MD5_HEX, "hex"), f"{ROOT}.algorithm"),
    ("unknown hash encoding", _spec("md5", MD5_HEX, SECRET), f"{ROOT}.hash.encoding"),
    ("upper-case encoding name", _spec("md5", MD5_HEX, "HEX"), f"{ROOT}.hash.encoding"),
    ("unknown digest", _spec("hmac", HMAC_HEX, "hex", digest=SECRET, key={"value": "k"}),
     f"{ROOT}.hash.digest"),
    ("unknown salt encoding", _spec("md5", MD5_HEX, "hex", salt={"value": "s", "encoding": "latin1"}),
     f"{ROOT}.salt.encoding"),
    ("unknown salt position", _spec("md5", MD5_HEX, "hex", salt={"value": "s", "position": "middle"}),
     f"{ROOT}.salt.position"),
    ("unknown key encoding",
     _spec("hmac", HMAC_HEX, "hex", digest="sha256", key={"value": "k", "encoding": "b64"}),
     f"{ROOT}.hash.key.encoding"),
    ("unknown password encoding", _spec("md5", MD5_HEX, "hex", password={"encoding": "utf-8"}),
     f"{ROOT}.password.encoding"),
    # Encodings each algorithm refuses.
    ("argon2 hex", _spec("argon2", ARGON2_HASH, "hex"), f"{ROOT}.hash.encoding"),
    ("bcrypt base64", _spec("bcrypt", BCRYPT_HASH, "base64"), f"{ROOT}.hash.encoding"),
    ("ldap hex", _spec("ldap", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "hex"), f"{ROOT}.hash.encoding"),
    ("pbkdf2 base64", _spec("pbkdf2", PBKDF2_HASH, "base64"), f"{ROOT}.hash.encoding"),
    ("md5 utf8", _spec("md5", MD5_HEX, "utf8"), f"{ROOT}.hash.encoding"),
    ("md5 default utf8", _spec("md5", MD5_HEX), f"{ROOT}.hash.encoding"),
    ("hmac utf8", _spec("hmac", HMAC_HEX, "utf8", digest="sha256", key={"value": "k"}),
     f"{ROOT}.hash.encoding"),
    ("scrypt utf8", _spec("scrypt", SCRYPT_HEX, "utf8", **SCRYPT_OK), f"{ROOT}.hash.encoding"),
    # Salts where the salt is inside the hash.
    ("argon2 salt", _spec("argon2", ARGON2_HASH, "utf8", salt={"value": "s"}), f"{ROOT}.salt"),
    ("ldap salt", _spec("ldap", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "utf8", salt={"value": "s"}),
     f"{ROOT}.salt"),
    ("pbkdf2 salt", _spec("pbkdf2", PBKDF2_HASH, "utf8", salt={"value": "s"}), f"{ROOT}.salt"),
    # hmac's required digest and key.
    ("hmac without digest", _spec("hmac", HMAC_HEX, "hex", key={"value": "k"}), f"{ROOT}.hash.digest"),
    ("hmac without key", _spec("hmac", HMAC_HEX, "hex", digest="sha256"), f"{ROOT}.hash.key"),
    # Malformed values.
    ("odd hex", _spec("md5", MD5_HEX[:-1], "hex"), f"{ROOT}.hash.value"),
    ("hex with spaces", _spec("md5", MD5_HEX[:16] + " " + MD5_HEX[16:], "hex"), f"{ROOT}.hash.value"),
    ("bad base64", _spec("md5", "!!" + _b64(bytes(16)), "base64"), f"{ROOT}.hash.value"),
    ("base64 bad length", _spec("md5", "A" * 21, "base64"), f"{ROOT}.hash.value"),
    ("digest of the wrong length", _spec("sha256", MD5_HEX, "hex"), f"{ROOT}.hash.value"),
    ("hmac of the wrong length", _spec("hmac", MD5_HEX, "hex", digest="sha256", key={"value": "k"}),
     f"{ROOT}.hash.value"),
    ("bad salt hex", _spec("md5", MD5_HEX, "hex", salt={"value": "zz", "encoding": "hex"}),
     f"{ROOT}.salt.value"),
    ("salt lone surrogate", _spec("md5", MD5_HEX, "hex", salt={"value": "\ud800"}), f"{ROOT}.salt.value"),
    ("bad key base64",
     _spec("hmac", HMAC_HEX, "hex", digest="sha256", key={"value": "a", "encoding": "base64"}),
     f"{ROOT}.hash.key.value"),
    ("bcrypt not bcrypt", _spec("bcrypt", SECRET), f"{ROOT}.hash.value"),
    ("bcrypt $2x$", _spec("bcrypt", BCRYPT_HASH.replace("$2a$", "$2x$")), f"{ROOT}.hash.value"),
    ("argon2 not PHC", _spec("argon2", SECRET, "utf8"), f"{ROOT}.hash.value"),
    ("argon2 bad base64", _spec("argon2", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$Y", "utf8"),
     f"{ROOT}.hash.value"),
    ("ldap crypt", _spec("ldap", "{CRYPT}$1$" + SECRET, "utf8"), f"{ROOT}.hash.value"),
    ("ldap no scheme", _spec("ldap", SECRET, "utf8"), f"{ROOT}.hash.value"),
    ("ldap short digest", _spec("ldap", "{SHA}" + _b64(bytes(19)), "utf8"), f"{ROOT}.hash.value"),
    ("ldap long unsalted", _spec("ldap", "{SHA}" + _b64(bytes(24)), "utf8"), f"{ROOT}.hash.value"),
    ("ldap bad base64", _spec("ldap", "{SSHA}" + SECRET + "!", "utf8"), f"{ROOT}.hash.value"),
    ("pbkdf2 not PHC", _spec("pbkdf2", "pbkdf2_sha256$1$salt$" + SECRET, "utf8"), f"{ROOT}.hash.value"),
    ("pbkdf2 unknown digest", _spec("pbkdf2", PBKDF2_HASH.replace("sha1", "sha3"), "utf8"),
     f"{ROOT}.hash.value"),
    ("pbkdf2 unknown parameter", _spec("pbkdf2", PBKDF2_HASH.replace("i=1,", "i=1,r=2,"), "utf8"),
     f"{ROOT}.hash.value"),
    ("pbkdf2 repeated parameter", _spec("pbkdf2", PBKDF2_HASH.replace("i=1,", "i=1,i=2,"), "utf8"),
     f"{ROOT}.hash.value"),
    ("pbkdf2 zero iterations", _spec("pbkdf2", PBKDF2_HASH.replace("i=1,", "i=0,"), "utf8"),
     f"{ROOT}.hash.value"),
    ("pbkdf2 l is not the hash's length", _spec("pbkdf2", PBKDF2_HASH.replace("l=20", "l=19"), "utf8"),
     f"{ROOT}.hash.value"),
    ("pbkdf2 padded base64", _spec("pbkdf2", PBKDF2_HASH.replace("$c2FsdA$", "$c2FsdA==$"), "utf8"),
     f"{ROOT}.hash.value"),
    ("scrypt without keylen", _spec("scrypt", SCRYPT_HEX, "hex", cost=16), f"{ROOT}.keylen"),
    ("scrypt keylen is not the hash's", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"keylen": 32})),
     f"{ROOT}.hash.value"),
    ("scrypt cost not a power of two", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"cost": 17})),
     f"{ROOT}.cost"),
    ("scrypt cost 1", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"cost": 1})), f"{ROOT}.cost"),
    ("scrypt blockSize 0", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"blockSize": 0})),
     f"{ROOT}.blockSize"),
    ("scrypt parallelization 0", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"parallelization": 0})),
     f"{ROOT}.parallelization"),
    ("scrypt keylen 0", _spec("scrypt", "", "hex", **(SCRYPT_OK | {"keylen": 0})), f"{ROOT}.keylen"),
    # Costs over the limits.
    ("bcrypt cost 31", _spec("bcrypt", BCRYPT_HASH.replace("$05$", "$31$")), f"{ROOT}.hash.value"),
    ("bcrypt cost over the limit", _spec("bcrypt", BCRYPT_HASH.replace("$05$", f"${BCRYPT_MAX_COST + 1}$")),
     f"{ROOT}.hash.value"),
    ("argon2 4 GiB", _spec("argon2", ARGON2_HASH.replace("m=8", "m=4194304")), f"{ROOT}.hash.value"),
    ("argon2 many passes", _spec("argon2", ARGON2_HASH.replace("m=8,t=1", "m=65536,t=100")),
     f"{ROOT}.hash.value"),
    ("argon2 many lanes", _spec("argon2", ARGON2_HASH.replace("m=8,t=1,p=1", "m=8192,t=1,p=255")),
     f"{ROOT}.hash.value"),
    ("pbkdf2 iterations", _spec("pbkdf2", PBKDF2_HASH.replace("i=1,", f"i={PBKDF2_MAX_WORK + 1},")),
     f"{ROOT}.hash.value"),
    ("pbkdf2 long key", _spec("pbkdf2", PBKDF2_HASH.replace("l=20", "l=100000")), f"{ROOT}.hash.value"),
    ("scrypt 1 GiB", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"cost": 2**20, "blockSize": 8})),
     f"{ROOT}.cost"),
    ("scrypt work",
     _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"cost": 2**14, "parallelization": 1000})),
     f"{ROOT}.parallelization"),
    ("scrypt keylen", _spec("scrypt", SCRYPT_HEX, "hex", **(SCRYPT_OK | {"keylen": 10**6})),
     f"{ROOT}.keylen"),
]


@pytest.mark.parametrize(("case", "spec", "path"), REFUSALS, ids=[case for case, _, _ in REFUSALS])
def test_check_refuses(case: str, spec: object, path: str) -> None:
    _assert_refused(spec, path)


def test_refusals_never_quote_values() -> None:
    error = _assert_refused(_spec("md5", SECRET, "hex", salt={"value": SECRET}), f"{ROOT}.hash.value")
    assert error.message == "is not hex"


def test_hash_encoding_may_be_left_out_for_bcrypt() -> None:
    # Files in the wild give bcrypt as {"value": ...} alone; the schema sets no required encoding.
    check({"algorithm": "bcrypt", "hash": {"value": BCRYPT_HASH}})


def test_verify_of_a_non_string_password_is_false() -> None:
    spec = _spec("md5", MD5_HEX, "hex")
    assert verify(b"abc", spec) is False  # type: ignore[arg-type]
    assert verify("abc", spec) is True


# -- verify() never raises ------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (st.lists(children, max_size=3)
                      | st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=8,
)
_texts = st.sampled_from([
    "", "00", MD5_HEX, MD5_HEX.upper(), "zz", "A===", "Jefe", "c2FsdA", BCRYPT_HASH, ARGON2_HASH, PBKDF2_HASH,
    "{SSHA}DkMTwBl+a/3DQTxCYEApdUtNXGgdUac3", "{CRYPT}x", "$pbkdf2-md4$i=3,l=16$$", "\ud800", SCRYPT_HEX,
]) | st.text(max_size=20)
_small = st.sampled_from([0, 1, 2, 16, 17, 64, -1, 2**20, True]) | _json


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(None), strategy)


@st.composite
def _specs(draw: st.DrawFn) -> object:
    """Specs close enough to Auth0's schema to get past the first checks, with JSON noise mixed in."""
    names = {
        "algorithm": st.sampled_from(auth0_hashes._ALGORITHMS) | _json,
        "hash": st.fixed_dictionaries({}, optional={
            "value": _texts, "encoding": st.sampled_from(["hex", "base64", "utf8", "x"]) | _json,
            "digest": st.sampled_from(auth0_hashes._DIGESTS) | _json,
            "key": st.fixed_dictionaries({}, optional={"value": _texts, "encoding": _json}) | _json,
        }) | _json,
        "salt": st.fixed_dictionaries({}, optional={
            "value": _texts, "encoding": st.sampled_from(["hex", "base64", "utf8"]) | _json,
            "position": st.sampled_from(["prefix", "suffix"]) | _json,
        }) | _json,
        "password": st.fixed_dictionaries({}, optional={
            "encoding": st.sampled_from(auth0_hashes._PASSWORD_ENCODINGS) | _json}) | _json,
        "keylen": _small, "cost": _small, "blockSize": _small, "parallelization": _small, "extra": _json,
    }
    spec = {}
    for name, strategy in names.items():
        value = draw(_maybe(strategy))
        if value is not None:
            spec[name] = value
    return draw(st.one_of(st.just(spec), _json))


@settings(max_examples=200, deadline=None)
@given(password=st.text(max_size=20), spec=_specs())
def test_verify_never_raises(password: str, spec: Any) -> None:
    assert verify(password, spec) in (True, False)
    try:
        check(spec)
    except InvalidSpec as error:
        assert error.path.startswith(ROOT)
