"""Security: one live lease per trainer and project, session versions, one-time reset links,
and what a failed import needs to be undone and a stuck one to be noticed.

Revision ID: 3c9e5a17b2d4
Revises: f8624564e1d0
Create Date: 2026-11-29 19:38:33.774822
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models.base

revision = '3c9e5a17b2d4'
down_revision = 'f8624564e1d0'
branch_labels = None
depends_on = None


# The newest live lease of each trainer in each project: it stays; other live leases are extra.
_NEWEST = "SELECT max(id) FROM assignments WHERE status = 'active' GROUP BY trainer_id, project_id"


def _one_live_lease_each() -> None:
    """Before the index can exist: of a trainer's several live leases in a project (the race this
    migration closes), the newest stays and the others expire, giving their items' slots back."""
    affected = f"SELECT item_id FROM assignments WHERE status = 'active' AND id NOT IN ({_NEWEST})"
    op.execute(sa.text(
        "UPDATE items SET active_count = active_count - (SELECT count(*) FROM assignments a "
        f"WHERE a.item_id = items.id AND a.status = 'active' AND a.id NOT IN ({_NEWEST})) "
        f"WHERE id IN ({affected})"))
    op.execute(sa.text(
        "UPDATE items SET is_open = (done_count + active_count < "
        f"(SELECT overlap FROM projects p WHERE p.id = items.project_id)) WHERE id IN ({affected})"))
    op.execute(sa.text(
        f"UPDATE assignments SET status = 'expired', finished_at = expires_at WHERE status = 'active' "
        f"AND id NOT IN ({_NEWEST})"))


def upgrade() -> None:
    op.create_table('password_resets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', app.models.base.UTCDateTime(), nullable=False),
    sa.Column('used_at', app.models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_password_resets_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_resets_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash'))
    )
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_resets_user_id'), ['user_id'], unique=False)

    _one_live_lease_each()
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('uq_assignments_one_live_lease', ['trainer_id', 'project_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('progress_at', app.models.base.UTCDateTime(), nullable=True))

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('import_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_items_import', ['import_id'], unique=False,
                              sqlite_where=sa.text('import_id IS NOT NULL'), postgresql_where=sa.text('import_id IS NOT NULL'))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('clock_at', app.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('clock_at')
        batch_op.drop_column('session_version')

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_import', sqlite_where=sa.text('import_id IS NOT NULL'),
                            postgresql_where=sa.text('import_id IS NOT NULL'))
        batch_op.drop_column('import_id')

    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('progress_at')

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('uq_assignments_one_live_lease', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_resets_user_id'))

    op.drop_table('password_resets')
