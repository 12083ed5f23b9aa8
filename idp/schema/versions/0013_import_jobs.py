"""import_jobs, import_chunks, import_failures: Auth0's bulk user imports; users: blocked

Revision ID: 0013
Revises: 0012

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'import_jobs',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('connection_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('upsert', sa.Boolean(), nullable=False),
        sa.Column('external_id', sa.String(length=255), nullable=True),
        sa.Column('send_completion_email', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('inserted', sa.Integer(), nullable=False),
        sa.Column('updated', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('status_details', sa.Text(), nullable=True),
        sa.Column('claim', sa.String(length=32), nullable=True),
        sa.Column('lease_until', sa.Double(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['connection_id'], ['connections.id'],
                                name=op.f('fk_import_jobs_connection_id_connections'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs')),
    )
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_jobs_status'), ['status'], unique=False)
    op.create_table(
        'import_chunks',
        sa.Column('job_id', sa.String(length=64), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('fk_import_chunks_job_id_import_jobs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'seq', name=op.f('pk_import_chunks')),
    )
    op.create_table(
        'import_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.String(length=64), nullable=False),
        sa.Column('user', sa.JSON(), nullable=False),
        sa.Column('errors', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'],
                                name=op.f('fk_import_failures_job_id_import_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_failures')),
    )
    with op.batch_alter_table('import_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_failures_job_id'), ['job_id'], unique=False)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blocked', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('blocked')
    op.drop_table('import_failures')
    op.drop_table('import_chunks')
    op.drop_table('import_jobs')
