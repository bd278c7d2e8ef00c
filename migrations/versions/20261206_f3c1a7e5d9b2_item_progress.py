"""Counters kept on the write path, filled from the data as it stands: a project's item progress
(items, complete, not started, answers; gold apart), in shards so that trainers submitting at once
update different rows; and billable seconds per trainer × project × week, which the open pay weeks read.
The review queue's index gains the claim order, so the most urgent annotation is the first row read.

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


    op.create_table(
        'billable_weeks',
        sa.Column('trainer_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('week_start', sa.Date(), nullable=False),
        sa.Column('seconds', sa.BigInteger(), nullable=False),
        sa.Column('tasks', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['trainer_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('trainer_id', 'project_id', 'week_start'),
    )
    op.create_index('ix_billable_weeks_project_week', 'billable_weeks', ['project_id', 'week_start'], unique=False)
    op.create_index('ix_billable_weeks_week', 'billable_weeks', ['week_start'], unique=False)
    # pay's rule as of this revision: submitted and skipped work, capped per task, not excluded, in the
    # week (UTC, from Monday) it was claimed.
    week = ("CAST(date_trunc('week', a.assigned_at) AS date)" if op.get_bind().dialect.name == "postgresql"
            else "date(a.assigned_at, 'weekday 0', '-6 days')")
    op.execute(
        "INSERT INTO billable_weeks (trainer_id, project_id, week_start, seconds, tasks) "
        f"SELECT a.trainer_id, a.project_id, {week}, "
        "SUM(CASE WHEN a.active_seconds > p.max_billable_seconds_per_task THEN p.max_billable_seconds_per_task "
        "ELSE a.active_seconds END), COUNT(*) "
        "FROM assignments a JOIN projects p ON p.id = a.project_id "
        "LEFT JOIN annotations n ON n.assignment_id = a.id "
        "WHERE a.status IN ('submitted', 'skipped') AND (n.id IS NULL OR n.excluded = false) "
        f"GROUP BY a.trainer_id, a.project_id, {week}"
    )


    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.drop_index('ix_annotations_review_queue')
        batch_op.create_index('ix_annotations_review_order',
                              ['project_id', 'review_status', 'review_reason', 'submitted_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.drop_index('ix_annotations_review_order')
        batch_op.create_index('ix_annotations_review_queue', ['project_id', 'review_status', 'review_reason'],
                              unique=False)
    op.drop_index('ix_billable_weeks_week', table_name='billable_weeks')
    op.drop_index('ix_billable_weeks_project_week', table_name='billable_weeks')
    op.drop_table('billable_weeks')
    op.drop_table('item_progress')
