"""Auth0's bulk user imports under /api/v2/: POST /jobs/users-imports (multipart: the users file and the
connection), GET /jobs/{id} and GET /jobs/{id}/errors. Jobs run in the background (connections.jobs)."""

import re

from flask import Response, jsonify, request
from sqlalchemy import select

from idp.connections import jobs, users_file
from idp.connections.jobs import ImportFailure, ImportJob
from idp.connections.models import Connection
from idp.db import db
from idp.management.api import CREATE_USERS, READ_USERS, ApiError, bp, flag, requires

JOB_ID = re.compile(r"^job_[0-9a-f]{16}$")
FIELDS = {"users", "connection_id", "upsert", "external_id", "send_completion_email"}


@bp.post("/jobs/users-imports")
@requires(CREATE_USERS)
def import_users() -> tuple[Response, int]:
    """Take an Auth0 users file for a connection; 202 with the job, which runs in the background."""
    if not request.mimetype.startswith("multipart/form-data"):
        raise ApiError(400, "Payload validation error: the body must be multipart/form-data", "invalid_body")
    unknown = sorted((set(request.form) | set(request.files)) - FIELDS)
    if unknown:
        raise ApiError(400, "Payload validation error: 'Additional properties not allowed: "
                            f"{unknown[0][:64]}'", "invalid_body")
    upload = request.files.get("users")
    if upload is None:
        raise ApiError(400, "Must provide 'users' file as multipart part.", "invalid_body")
    connection_id = request.form.get("connection_id")
    if not connection_id:
        raise ApiError(400, "Must provide 'connection_id' as multipart part.", "invalid_body")
    external_id = request.form.get("external_id")
    if external_id is not None and len(external_id) > 255:
        raise ApiError(400, "Payload validation error: 'external_id' is longer than 255 characters",
                       "invalid_body")
    upsert = flag(request.form, "upsert", False, body=True)
    mail = flag(request.form, "send_completion_email", True, body=True)
    connection = db.session.get(Connection, connection_id) if len(connection_id) <= 64 else None
    if connection is None:
        raise ApiError(400, "The connection does not exist.", "inexistent_connection")
    try:
        job = jobs.create(connection, upload.stream, upsert=upsert, external_id=external_id,
                          send_completion_email=mail)
    except users_file.FileInvalid as error:
        message = str(error).replace("the file is empty", "Users file must not be empty.")
        raise ApiError(400, message[:1].upper() + message[1:], "invalid_body") from None
    created = job.as_dict(connection.name)  # as created: this process's runner may claim it at once
    jobs.start()
    return jsonify(created), 202


def _job(job_id: str) -> ImportJob:
    job = jobs.get(job_id) if JOB_ID.match(job_id) else None
    if job is None:
        raise ApiError(404, "The job does not exist.", "inexistent_job")
    return job


@bp.get("/jobs/<job_id>")
@requires(CREATE_USERS, READ_USERS)
def get_job(job_id: str) -> Response:
    """A job's status, and its summary once it has ended."""
    job = _job(job_id)
    connection = db.session.get(Connection, job.connection_id)
    return jsonify(job.as_dict(connection.name if connection else None))


@bp.get("/jobs/<job_id>/errors")
@requires(CREATE_USERS, READ_USERS)
def job_errors(job_id: str) -> Response | tuple[str, int]:
    """The users a job did not import and why (hashes redacted); 204 when there are none."""
    job = _job(job_id)
    failures = db.session.scalars(select(ImportFailure).where(ImportFailure.job_id == job.id)
                                  .order_by(ImportFailure.id)).all()
    if not failures:
        return "", 204
    return jsonify([{"user": failure.user, "errors": failure.errors} for failure in failures])
