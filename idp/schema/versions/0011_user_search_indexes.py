"""users: indexes for the management API's search

Revision ID: 0011
Revises: 0010

"""
from alembic import op

# PostgreSQL only (14 and later), and not an index: statistics on the lower-cased names the search
# compares (`name:jo*` is `lower(name) LIKE 'jo%'`), without which the planner guesses such a filter
# keeps one row in two hundred and sorts a whole created_at range instead of walking it in order.
STATISTICS = 'st_users_lower_names'

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        # The default order of GET /api/v2/users (created_at, then id), and created_at ranges.
        batch_op.create_index('ix_users_created_at_id', ['created_at', 'id'], unique=False)
        # email:"..." and /users-by-email: the unique (connection_id, email_normalized) leads with the connection.
        batch_op.create_index(batch_op.f('ix_users_email_normalized'), ['email_normalized'], unique=False)
        batch_op.create_index(batch_op.f('ix_users_last_login_at'), ['last_login_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_users_migrated_via'), ['migrated_via'], unique=False)
    if _extended_statistics():
        op.execute(f'CREATE STATISTICS {STATISTICS} ON (lower(name)), (lower(given_name)), '
                   '(lower(family_name)), (lower(nickname)) FROM users')
        op.execute('ANALYZE users')


def downgrade():
    if _extended_statistics():
        op.execute(f'DROP STATISTICS IF EXISTS {STATISTICS}')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_migrated_via'))
        batch_op.drop_index(batch_op.f('ix_users_last_login_at'))
        batch_op.drop_index(batch_op.f('ix_users_email_normalized'))
        batch_op.drop_index('ix_users_created_at_id')


def _extended_statistics():
    """Say whether the database keeps statistics on expressions (PostgreSQL 14 and later)."""
    bind = op.get_bind()
    return bind.dialect.name == 'postgresql' and bind.dialect.server_version_info >= (14,)
