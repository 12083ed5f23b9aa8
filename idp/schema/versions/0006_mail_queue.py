"""mail queue

Revision ID: 0006
Revises: 0005

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mail_queue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=255), nullable=True),
    sa.Column('label', sa.String(length=512), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('due_at', sa.Double(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claim', sa.String(length=32), nullable=True),
    sa.Column('last_error', sa.String(length=1024), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_queue'))
    )
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_queue_due_at'), ['due_at'], unique=False)


def downgrade():
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_queue_due_at'))

    op.drop_table('mail_queue')
