"""connections: count_users and export_users scripts, the export's cursor; users: longer password hashes

Revision ID: 0012
Revises: 0011

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('count_users_script', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('export_users_script', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('export_cursor', sa.Text(), nullable=True))
    # An imported legacy hash (an Auth0 custom_password_hash above all) can be longer than argon2id's.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('password_hash', existing_type=sa.String(length=255), type_=sa.Text(),
                              existing_nullable=True)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('password_hash', existing_type=sa.Text(), type_=sa.String(length=255),
                              existing_nullable=True)
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('export_cursor')
        batch_op.drop_column('export_users_script')
        batch_op.drop_column('count_users_script')
