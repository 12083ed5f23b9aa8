"""Who may use the dashboard: the `admin` flag on users, each change recorded in the log."""

from typing import Any

from sqlalchemy import select

from idp.connections.models import Connection
from idp.db import db
from idp.events import log as events
from idp.users.models import User

COMMAND_LINE = {"channel": "cli"}  # who changed it, when an operator ran `idp admins …`


def set_admin(user: User, admin: bool, by: dict[str, Any]) -> bool:
    """Make a user an admin or not, with a `sapi` event naming who did it; say whether anything changed."""
    if user.admin == admin:
        return False
    user.admin = admin
    connection = db.session.get(Connection, user.connection_id)
    events.record(events.SUCCESS_API, "Admin added" if admin else "Admin removed",
                  connection=connection.name if connection else None, connection_id=user.connection_id,
                  user_id=user.id, user_name=user.email,
                  details={"admin": admin, "user": {"user_id": user.id, "email": user.email}, "by": by},
                  database=False)
    db.session.commit()
    return True


def list_admins() -> list[User]:
    """Return the admins, oldest first."""
    return list(db.session.scalars(select(User).where(User.admin.is_(True))
                                   .order_by(User.created_at, User.id)))
