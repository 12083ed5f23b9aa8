"""connections

Revision ID: 0004
Revises: 0003

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('connections',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('migrating', sa.Boolean(), nullable=False),
    sa.Column('login_script', sa.Text(), nullable=True),
    sa.Column('get_user_script', sa.Text(), nullable=True),
    sa.Column('configuration_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('disconnected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connections')),
    sa.UniqueConstraint('name', name=op.f('uq_connections_name'))
    )
    connections = sa.table('connections', sa.column('id', sa.String), sa.column('name', sa.String),
                           sa.column('migrating', sa.Boolean), sa.column('created_at', sa.DateTime(timezone=True)))
    # Every deployment has the native database connection; existing users and clients belong to it.
    op.bulk_insert(connections, [{'id': 'con_native', 'name': 'Username-Password-Authentication',
                                  'migrating': False, 'created_at': datetime.now(UTC)}])
    op.create_table('migration_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_migration_events_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_migration_events'))
    )
    with op.batch_alter_table('migration_events', schema=None) as batch_op:
        batch_op.create_index('ix_migration_events_connection_at', ['connection_id', 'at'], unique=False)

    with op.batch_alter_table('account_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('connection_id', sa.String(length=64), nullable=False, server_default='con_native'))
        batch_op.alter_column('user_id',
               existing_type=sa.VARCHAR(length=255),
               nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_account_tokens_connection_id_connections'), 'connections', ['connection_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('connection_id', sa.String(length=64), nullable=False, server_default='con_native'))
        batch_op.create_foreign_key(batch_op.f('fk_clients_connection_id_connections'), 'connections', ['connection_id'], ['id'])

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('connection_id', sa.String(length=64), nullable=False, server_default='con_native'))
        batch_op.add_column(sa.Column('user_metadata', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('app_metadata', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('migrated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('legacy_id', sa.String(length=255), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_users_email_normalized'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_users_connection_id'), ['connection_id', 'email_normalized'])
        batch_op.create_foreign_key(batch_op.f('fk_users_connection_id_connections'), 'connections', ['connection_id'], ['id'])




def downgrade():

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_connection_id_connections'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_users_connection_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_users_email_normalized'), ['email_normalized'])
        batch_op.drop_column('legacy_id')
        batch_op.drop_column('migrated_at')
        batch_op.drop_column('app_metadata')
        batch_op.drop_column('user_metadata')
        batch_op.drop_column('connection_id')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_clients_connection_id_connections'), type_='foreignkey')
        batch_op.drop_column('connection_id')

    with op.batch_alter_table('account_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_account_tokens_connection_id_connections'), type_='foreignkey')
        batch_op.alter_column('user_id',
               existing_type=sa.VARCHAR(length=255),
               nullable=False)
        batch_op.drop_column('connection_id')

    with op.batch_alter_table('migration_events', schema=None) as batch_op:
        batch_op.drop_index('ix_migration_events_connection_at')

    op.drop_table('migration_events')
    op.drop_table('connections')

