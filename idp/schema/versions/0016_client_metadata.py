"""clients: client_metadata (Auth0's, read by post-login actions as event.client.metadata)

Revision ID: 0016
Revises: 0015

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_metadata', sa.JSON(), server_default='{}', nullable=False))


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('client_metadata')
