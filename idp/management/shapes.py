"""Auth0's user object: what the management API answers and `idp users list/show --json` print."""

from datetime import UTC, datetime
from typing import Any

from idp.users.models import User

PROVIDER = "auth0"  # every connection of ours is a database connection, as Auth0 names their provider


def iso_time(moment: datetime | None) -> str | None:
    """Format a timestamp as Auth0 does: UTC, milliseconds, Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_object(user: User, connection_name: str) -> dict[str, Any]:
    """Return a user in Auth0's shape (never the password hash); `migration` only on moved-over users."""
    data: dict[str, Any] = {
        "user_id": user.id, "email": user.email, "email_verified": bool(user.email_verified),
        "name": user.name, "given_name": user.given_name, "family_name": user.family_name,
        "nickname": user.nickname, "picture": user.picture,
        "identities": [{"connection": connection_name, "provider": PROVIDER, "user_id": user.id,
                        "isSocial": False}],
        "created_at": iso_time(user.created_at), "updated_at": iso_time(user.updated_at),
        "last_login": iso_time(user.last_login_at), "logins_count": user.logins_count or 0,
        "last_ip": user.last_ip, "app_metadata": user.app_metadata or {},
        "user_metadata": user.user_metadata or {}, "blocked": user.blocked,
    }
    if user.migrated_at is not None:
        data["migration"] = {"via": user.migrated_via, "at": iso_time(user.migrated_at)}
    return data
