"""Changes made on the dashboard, recorded in the log as the management API's are, naming the admin."""

from typing import Any

from flask import g

from idp.events import log as events


def by_admin() -> dict[str, Any]:
    """Who made a change, for the log event's `details.by`: the signed-in admin, on the dashboard."""
    return {"channel": "dashboard", "user_id": g.admin.id, "email": g.admin.email}


def record(description: str, details: dict[str, Any], **fields: Any) -> None:
    """Add the `sapi` event of a change the dashboard made to the session; the caller commits it with the
    change, or rolls both back."""
    events.record(events.SUCCESS_API, description, details={**details, "by": by_admin()}, database=False,
                  **fields)
