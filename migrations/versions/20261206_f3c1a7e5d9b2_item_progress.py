"""A project's item progress kept on the write path (items, complete, not started, answers; gold apart),
in shards so that trainers submitting at once update different rows; filled from the items as they
stand.

Revision ID: f3c1a7e5d9b2
Revises: d5b7e9a1c3f4
Create Date: 2026-12-06 23:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'f3c1a7e5d9b2'
down_revision = 'd5b7e9a1c3f4'
branch_labels = None
depends_on = None

SHARDS = 16  # assignment.PROGRESS_SHARDS as of this revision


def upgrade() -> None:
    op.create_table(
        'item_progress',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('is_gold', sa.Boolean(), nullable=False),
        sa.Column('shard', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('items', sa.Integer(), nullable=False),
        sa.Column('complete', sa.Integer(), nullable=False),
        sa.Column('not_started', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'is_gold', 'shard'),
    )
    # One statement per database, whatever the size: each project's items grouped by gold and shard.
    op.execute(
        "INSERT INTO item_progress (project_id, is_gold, shard, items, complete, not_started, done) "
        f"SELECT i.project_id, i.is_gold, i.id % {SHARDS}, COUNT(*), "
        "SUM(CASE WHEN i.done_count >= p.overlap THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN i.done_count = 0 AND i.active_count = 0 THEN 1 ELSE 0 END), "
        "SUM(i.done_count) "
        "FROM items i JOIN projects p ON p.id = i.project_id "
        f"GROUP BY i.project_id, i.is_gold, i.id % {SHARDS}"
    )


def downgrade() -> None:
    op.drop_table('item_progress')
