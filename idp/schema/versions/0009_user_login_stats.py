"""users: migrated_via, logins_count, last_ip

Revision ID: 0009
Revises: 0008

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('migrated_via', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('logins_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_ip', sa.String(length=64), nullable=True))
    # Users moved over before this column: the way each came is in their migration event.
    op.execute(
        "UPDATE users SET migrated_via = (SELECT e.source FROM migration_events e"
        " WHERE e.user_id = users.id AND e.type = 'migrated' ORDER BY e.id LIMIT 1)"
        " WHERE migrated_at IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('last_ip')
        batch_op.drop_column('logins_count')
        batch_op.drop_column('migrated_via')
