"""users: admin (who may use the dashboard); clients: dashboard (idp's own dashboard client)

Revision ID: 0014
Revises: 0013

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admin', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dashboard', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('dashboard')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('admin')
