"""authorization requests

Revision ID: 0002
Revises: 0001

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('authorization_requests',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('browser', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consented', sa.Boolean(), nullable=False),
    sa.Column('denied', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorization_requests'))
    )
    with op.batch_alter_table('authorization_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_requests_expires_at'), ['expires_at'], unique=False)




def downgrade():

    with op.batch_alter_table('authorization_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_requests_expires_at'))

    op.drop_table('authorization_requests')

