"""Log events in Auth0's shape: what happened (sign-ins, failures, sign-ups, password changes,
migrations, management writes), written in the transaction of the thing itself, kept for
LOG_RETENTION_DAYS and read through GET /api/v2/logs."""
