"""log_events: Auth0-shaped log events

Revision ID: 0010
Revises: 0009

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'log_events',
        sa.Column('log_id', sa.String(length=64), nullable=False),
        sa.Column('date', sa.DateTime(timezone=True), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('connection', sa.String(length=128), nullable=True),
        sa.Column('connection_id', sa.String(length=64), nullable=True),
        sa.Column('client_id', sa.String(length=64), nullable=True),
        sa.Column('client_name', sa.String(length=255), nullable=True),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=512), nullable=True),
        sa.Column('hostname', sa.String(length=255), nullable=True),
        sa.Column('user_id', sa.String(length=255), nullable=True),
        sa.Column('user_name', sa.String(length=320), nullable=True),
        sa.Column('audience', sa.String(length=2048), nullable=True),
        sa.Column('scope', sa.Text(), nullable=True),
        sa.Column('strategy', sa.String(length=32), nullable=True),
        sa.Column('strategy_type', sa.String(length=32), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('log_id', name=op.f('pk_log_events')),
    )
    with op.batch_alter_table('log_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_events_date'), ['date'], unique=False)
        batch_op.create_index(batch_op.f('ix_log_events_type'), ['type'], unique=False)
        batch_op.create_index(batch_op.f('ix_log_events_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('log_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_log_events_user_id'))
        batch_op.drop_index(batch_op.f('ix_log_events_type'))
        batch_op.drop_index(batch_op.f('ix_log_events_date'))
    op.drop_table('log_events')
