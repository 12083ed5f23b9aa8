"""The Alembic migrations build exactly the schema the models describe, and undo cleanly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from idp import SCHEMA
from idp.db import db

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def differences() -> list:
    """Return what autogenerate would change to make the database match the models."""
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), db.metadata)


def test_migrations_match_the_models_and_reverse(app):
    assert differences() == []
    db.session.remove()
    downgrade(directory=SCHEMA, revision="base")
    upgrade(directory=SCHEMA)
    assert differences() == []
