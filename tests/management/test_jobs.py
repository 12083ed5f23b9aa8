"""Auth0's bulk user imports: POST /api/v2/jobs/users-imports, GET /jobs/{id} and /jobs/{id}/errors,
and `idp users import`; jobs run in the background, resume after a crash, and never duplicate a user.
Every `custom_password_hash` algorithm is checked by signing in with the password it was made from."""

import base64
import hashlib
import hmac
import io
import json
import time
from datetime import timedelta
from typing import Any

import argon2
import bcrypt
import pytest
from passlib.crypto.digest import lookup_hash
from sqlalchemy import select

from idp.connections import jobs
from idp.connections.models import NATIVE_ID, Connection
from idp.db import db
from idp.users.models import User
from idp.users.passwords import verify_password
from tests.conftest import PASSWORD
from tests.management.conftest import LEGACY_ID, Api, management_token
from tests.support import eventually

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

OLD = "an old pässword from elsewhere"
SALT = "s4lt"


def digest(name: str, data: bytes) -> bytes:
    if name == "md4":
        return lookup_hash("md4").const(data).digest()
    return hashlib.new(name, data).digest()


def every_algorithm() -> dict[str, dict[str, Any]]:
    """A custom_password_hash of OLD for each algorithm of Auth0's schema, computed here."""
    salted = (SALT + OLD).encode()
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")  # noqa: E731  (PHC's base64)
    pbkdf2 = hashlib.pbkdf2_hmac("sha256", OLD.encode(), b"saltsalt", 1000, 32)
    ssha = hashlib.sha1(OLD.encode() + b"xyz").digest() + b"xyz"
    suffix = {"value": SALT, "position": "suffix"}
    return {
        "argon2": {"algorithm": "argon2", "hash": {"value": argon2.PasswordHasher(1, 64, 1).hash(OLD)}},
        "bcrypt": {"algorithm": "bcrypt", "salt": suffix, "hash": {
            "value": bcrypt.hashpw((OLD + SALT).encode(), bcrypt.gensalt(4)).decode()}},
        "hmac": {"algorithm": "hmac", "hash": {
            "value": hmac.new(b"k3y", OLD.encode(), "sha512").hexdigest(), "encoding": "hex",
            "digest": "sha512", "key": {"value": "k3y"}}},
        "ldap": {"algorithm": "ldap", "hash": {
            "value": "{SSHA}" + base64.b64encode(ssha).decode(), "encoding": "utf8"}},
        **{name: {"algorithm": name, "hash": {"value": digest(name, salted).hex(), "encoding": "hex"},
                  "salt": {"value": SALT}} for name in ("md4", "md5", "sha1")},
        "sha256": {"algorithm": "sha256", "password": {"encoding": "utf16le"}, "hash": {
            "value": base64.b64encode(digest("sha256", OLD.encode("utf-16-le"))).decode(),
            "encoding": "base64"}},
        "sha512": {"algorithm": "sha512", "salt": suffix, "hash": {
            "value": digest("sha512", (OLD + SALT).encode()).hex(), "encoding": "hex"}},
        "pbkdf2": {"algorithm": "pbkdf2", "hash": {
            "value": f"$pbkdf2-sha256$i=1000,l=32${b64(b'saltsalt')}${b64(pbkdf2)}", "encoding": "utf8"}},
        "scrypt": {"algorithm": "scrypt", "salt": {"value": SALT}, "keylen": 32, "cost": 1024, "hash": {
            "value": hashlib.scrypt(OLD.encode(), salt=SALT.encode(), n=1024, r=8, p=1, dklen=32).hex(),
            "encoding": "hex"}},
    }


def upload(api: Api, users: Any, token: str | None = None, raw: bytes | None = None, **fields: str) -> Any:
    data = {"users": (io.BytesIO(raw if raw is not None else json.dumps(users).encode()), "users.json"),
            "connection_id": NATIVE_ID, **fields}
    return api.client.post("/api/v2/jobs/users-imports", data=data, content_type="multipart/form-data",
                           headers={"Authorization": f"Bearer {token or api.token}"})


def finished(api: Api, job_id: str) -> dict[str, Any]:
    """Wait for the background runner to end a job; return it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


@pytest.fixture
def importer(app) -> Api:
    return Api(app.test_client(), management_token(app, scope="create:users read:users"))


def signs_in(browser, email: str, password: str) -> bool:
    browser.client.delete_cookie("idp_session")
    return browser.login("/u/login", email, password).status_code == 302


def test_every_custom_password_hash_signs_in_and_is_rehashed(app, importer, browser):
    hashes = every_algorithm()
    users = [{"email": f"{name}@file.example", "custom_password_hash": spec, "user_id": name}
             for name, spec in hashes.items()]
    accepted = upload(importer, users)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json
    assert job["status"] == "pending" and job["type"] == "users_import" and job["connection_id"] == NATIVE_ID
    done = finished(importer, job["id"])
    assert done["status"] == "completed", done
    assert done["summary"] == {"inserted": len(hashes), "updated": 0, "failed": 0, "total": len(hashes)}
    assert importer.get(f"/jobs/{job['id']}/errors").status_code == 204
    for name in hashes:
        user = db.session.get(User, f"{NATIVE_ID}|{name}")
        assert user is not None and user.password_hash.startswith("auth0-custom:"), name
        assert not signs_in(browser, user.email, "not " + OLD), name
        assert signs_in(browser, user.email, OLD), name
        db.session.expire_all()
        rehashed = db.session.get(User, user.id).password_hash
        assert rehashed.startswith("$argon2id$") and verify_password(rehashed, OLD), name
    assert importer.get("/users", q="migration.via:import").json[0]["migration"]["via"] == "import"


def test_duplicates_errors_and_upserts(app, importer, browser, people):
    users = [
        {"email": "new@file.example", "name": "New One",
         "password_hash": bcrypt.hashpw(OLD.encode(), bcrypt.gensalt(4)).decode(),
         "app_metadata": {"plan": "gold"}, "blocked": True},
        {"email": "Ada@Example.com", "name": "Another Ada"},  # already here
        {"email": "twice@file.example"}, {"email": "TWICE@file.example"},
        {"email": "not-an-email"}, {"email": "p@file.example", "password_hash": "plaintext"},
        {"email": "u@file.example", "username": "u"}, "not a user",
        {"email": "h@file.example", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "zz"}}},
    ]
    done = finished(importer, upload(importer, users).json["id"])
    assert done["summary"] == {"inserted": 2, "updated": 0, "failed": 7, "total": 9}
    errors = importer.get(f"/jobs/{done['id']}/errors").json
    codes = {(e["user"]["email"] if isinstance(e["user"], dict) else e["user"]): e["errors"][0]["code"]
             for e in errors}
    assert codes == {"Ada@Example.com": "DUPLICATED_USER", "TWICE@file.example": "DUPLICATED_USER",
                     "not-an-email": "FORMAT", "p@file.example": "NOT_PASSED", "u@file.example": "NOT_PASSED",
                     "not a user": "INVALID_TYPE", "h@file.example": "NOT_PASSED"}
    assert "plaintext" not in json.dumps(errors) and '"*****"' in json.dumps(errors)
    new = importer.get("/users-by-email", email="new@file.example").json[0]
    assert new["blocked"] is True and new["app_metadata"] == {"plan": "gold"}
    blocked = browser.login("/u/login", "new@file.example", OLD)
    assert blocked.status_code == 403 and "blocked" in blocked.text

    # With upsert, a user already here is updated with the file's upsertable fields (metadata replaced).
    again = [{"email": "ada@example.com", "name": "Ada, Countess", "app_metadata": {"tier": 9},
              "user_id": "ada-elsewhere"}]
    done = finished(importer, upload(importer, again, upsert="true").json["id"])
    assert done["summary"] == {"inserted": 0, "updated": 1, "failed": 0, "total": 1}
    ada = importer.get("/users/u-ada").json
    assert ada["name"] == "Ada, Countess" and ada["app_metadata"] == {"tier": 9}
    assert ada["user_metadata"] == {"lang": "en"}  # not in the file: kept
    # A lazily migrated user of a migrating connection is never duplicated by a file.
    legacy = [{"email": "alan@legacy.example", "user_id": "17"}]
    data = {"users": (io.BytesIO(json.dumps(legacy).encode()), "u.json"), "connection_id": LEGACY_ID}
    job = importer.client.post("/api/v2/jobs/users-imports", data=data, content_type="multipart/form-data",
                               headers={"Authorization": f"Bearer {importer.token}"}).json
    assert finished(importer, job["id"])["summary"]["failed"] == 1
    alans = importer.get("/users-by-email", email="alan@legacy.example").json
    assert [u["user_id"] for u in alans] == ["u-alan"]


@pytest.mark.parametrize(("fields", "raw", "message"), [
    ({}, b"", "Users file must not be empty."),
    ({}, b"[{\"email\": ", "not valid JSON"),
    ({}, b"{\"email\": \"a@b.c\"}", "must be a JSON array"),
    ({}, b"[] []", "not valid JSON"),
    ({"connection_id": "con_nope"}, b"[]", "The connection does not exist."),
    ({"upsert": "yes"}, b"[]", "'upsert' must be true or false"),
    ({"other": "x"}, b"[]", "Additional properties not allowed: other"),
])
def test_files_and_fields_we_refuse(importer, fields, raw, message):
    response = upload(importer, None, raw=raw, **fields)
    assert response.status_code == 400 and message in response.json["message"], response.text
    assert db.session.scalars(select(jobs.ImportJob)).all() == []


def test_scopes_and_unknown_jobs(app, importer):
    reader = management_token(app, scope="read:users")
    assert upload(importer, [], token=reader).status_code == 403
    assert importer.get("/jobs/job_0123456789abcdef").status_code == 404
    assert importer.get("/jobs/../users").status_code == 404
    missing = importer.client.post("/api/v2/jobs/users-imports", data={"connection_id": NATIVE_ID},
                                   content_type="multipart/form-data",
                                   headers={"Authorization": f"Bearer {importer.token}"})
    assert missing.status_code == 400
    assert missing.json["message"] == "Must provide 'users' file as multipart part."


def test_a_job_survives_a_crash(app, importer):
    users = [{"email": f"u{n:04d}@file.example"} for n in range(1200)]
    connection = db.session.get(Connection, NATIVE_ID)
    job = jobs.create(connection, io.BytesIO(json.dumps(users).encode()), upsert=False)
    assert job.total == 1200

    def crash(count: int) -> None:
        raise SystemExit("the process dies after its first page")

    with pytest.raises(SystemExit):
        jobs.run(job.id, progress=crash)
    db.session.rollback()
    stalled = db.session.get(jobs.ImportJob, job.id)
    assert (stalled.status, stalled.position, stalled.inserted) == ("processing", 500, 500)
    assert not jobs.run(job.id)  # its lease still holds: nobody else takes it yet
    stalled.lease_until = 0.0  # the lease runs out
    db.session.commit()

    # Another runner takes the job up, after the last whole page.
    assert jobs.run(job.id)
    done = importer.get(f"/jobs/{job.id}").json
    assert done["status"] == "completed"
    assert done["summary"] == {"inserted": 1200, "updated": 0, "failed": 0, "total": 1200}
    assert db.session.scalar(select(jobs.ImportChunk.job_id).limit(1)) is None  # the file is gone


def test_a_process_takes_up_unfinished_jobs_at_its_first_request(app, importer):
    connection = db.session.get(Connection, NATIVE_ID)
    job = jobs.create(connection, io.BytesIO(b'[{"email": "left@file.example"}]'), upsert=False)
    app.extensions.pop(jobs._CHECKED, None)  # as in a process started after the one that took the job died
    eventually(lambda: jobs._runner["thread"] is None)  # an earlier test's runner has wound down
    assert app.test_client().get("/healthz").status_code == 200
    assert jobs._runner["thread"] is None and app.extensions.get(jobs._CHECKED) is None  # probes never do
    assert app.test_client().get("/.well-known/openid-configuration").status_code == 200
    assert finished(importer, job.id)["summary"]["inserted"] == 1


def test_an_ended_job_is_kept_for_a_day(app, importer):
    ended = finished(importer, upload(importer, [{"email": "bad"}]).json["id"])
    assert importer.get(f"/jobs/{ended['id']}/errors").status_code == 200
    old = db.session.get(jobs.ImportJob, ended["id"])
    old.created_at -= jobs.KEPT + timedelta(seconds=1)
    db.session.commit()
    assert importer.get(f"/jobs/{ended['id']}").status_code == 404
    assert importer.get(f"/jobs/{ended['id']}/errors").status_code == 404
    finished(importer, upload(importer, [{"email": "next@file.example"}]).json["id"])  # a new job prunes
    db.session.expire_all()
    assert db.session.get(jobs.ImportJob, ended["id"]) is None
    assert db.session.scalar(select(jobs.ImportFailure.id).limit(1)) is None


def test_cli_imports_a_file(app, tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps([{"email": "cli@file.example", "password_hash": bcrypt.hashpw(
        PASSWORD.encode(), bcrypt.gensalt(4)).decode()}, {"email": "bad"}]))
    result = app.test_cli_runner().invoke(args=["users", "import", str(path), "--connection",
                                                "Username-Password-Authentication"])
    assert result.exit_code == 0, result.output
    assert "1 imported, 0 updated, 1 failed, 2 in all" in result.output and "bad: FORMAT" in result.output
    path.write_text("[")
    refused = app.test_cli_runner().invoke(args=["users", "import", str(path), "--connection",
                                                 "Username-Password-Authentication"])
    assert refused.exit_code == 1 and "not valid JSON" in refused.output
