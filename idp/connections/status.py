"""What `idp migration status` reports: who moved over, how, when, and what failed lately."""

from typing import Any

from sqlalchemy import func, select

from idp.connections.legacy import MIGRATED, PROFILE_REJECTED, SCRIPT_ERROR
from idp.connections.models import Connection, MigrationEvent
from idp.db import db

RECENT = 10


def status(connection: Connection) -> dict[str, Any]:
    """Return a connection's migration progress."""
    rows = db.session.execute(
        select(MigrationEvent.source, func.count()).where(
            MigrationEvent.connection_id == connection.id, MigrationEvent.type == MIGRATED)
        .group_by(MigrationEvent.source)
    )
    by_source = {str(source): count for source, count in rows}
    last = db.session.scalar(select(func.max(MigrationEvent.at)).where(
        MigrationEvent.connection_id == connection.id, MigrationEvent.type == MIGRATED))
    failures = db.session.scalars(
        select(MigrationEvent).where(MigrationEvent.connection_id == connection.id,
                                     MigrationEvent.type.in_((SCRIPT_ERROR, PROFILE_REJECTED)))
        .order_by(MigrationEvent.at.desc(), MigrationEvent.id.desc()).limit(RECENT)
    )
    return {
        "connection": connection.name,
        "migrated": sum(by_source.values()),
        "by_source": dict(sorted(by_source.items())),
        "last_migrated_at": last.isoformat() if last else None,
        "disconnected_at": connection.disconnected_at.isoformat() if connection.disconnected_at else None,
        "recent_failures": [event.as_dict() for event in failures],
    }
