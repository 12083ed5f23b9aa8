"""apis and client grants

Revision ID: 0008
Revises: 0007

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('apis',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('identifier', sa.String(length=2048), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apis')),
    sa.UniqueConstraint('identifier', name=op.f('uq_apis_identifier'))
    )
    op.create_table('client_grants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('api_id', sa.String(length=32), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['api_id'], ['apis.id'], name=op.f('fk_client_grants_api_id_apis'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_client_grants_client_id_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_grants')),
    sa.UniqueConstraint('client_id', 'api_id', name=op.f('uq_client_grants_client_id'))
    )
    with op.batch_alter_table('client_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_grants_api_id'), ['api_id'], unique=False)


def downgrade():
    with op.batch_alter_table('client_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_grants_api_id'))
    op.drop_table('client_grants')
    op.drop_table('apis')
