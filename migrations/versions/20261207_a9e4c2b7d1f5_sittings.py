"""A trainer's sitting kept on the membership: the latest submit and the tasks submitted since the last
long pause, so "done this session" reads one row instead of walking back through the trainer's answers
on every task shown. Filled from the answers as they stand.

Revision ID: a9e4c2b7d1f5
Revises: f3c1a7e5d9b2
Create Date: 2026-12-07 06:00:00
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import app.models.base

revision = 'a9e4c2b7d1f5'
down_revision = 'f3c1a7e5d9b2'
branch_labels = None
depends_on = None

SITTING_GAP = timedelta(minutes=30)  # assignment.SITTING_GAP as of this revision
CHUNK = 500

members = sa.table('project_members', sa.column('id', sa.Integer), sa.column('project_id', sa.Integer),
                   sa.column('user_id', sa.Integer), sa.column('role', sa.String),
                   sa.column('last_submitted_at', sa.DateTime), sa.column('sitting_tasks', sa.Integer))
annotations = sa.table('annotations', sa.column('project_id', sa.Integer), sa.column('trainer_id', sa.Integer),
                       sa.column('submitted_at', sa.DateTime))


def _trailing_sitting(connection, project_id: int, trainer_id: int) -> int:
    """How many answers the member's last sitting holds: back from the latest until a longer pause."""
    count, previous = 0, None
    while True:
        times = connection.execute(
            sa.select(annotations.c.submitted_at)
            .where(annotations.c.project_id == project_id, annotations.c.trainer_id == trainer_id)
            .order_by(annotations.c.submitted_at.desc()).limit(CHUNK).offset(count)
        ).scalars().all()
        for submitted_at in times:
            if previous is not None and previous - submitted_at > SITTING_GAP:
                return count
            count, previous = count + 1, submitted_at
        if len(times) < CHUNK:
            return count


def upgrade() -> None:
    op.add_column('project_members', sa.Column('last_submitted_at', app.models.base.UTCDateTime(), nullable=True))
    op.add_column('project_members', sa.Column('sitting_tasks', sa.Integer(), server_default='0', nullable=False))
    connection = op.get_bind()
    latest = (sa.select(sa.func.max(annotations.c.submitted_at))
              .where(annotations.c.trainer_id == members.c.user_id, annotations.c.project_id == members.c.project_id)
              .scalar_subquery())
    connection.execute(members.update().where(members.c.role == 'trainer').values(last_submitted_at=latest))
    # Only a sitting still going on needs counting: one whose last answer is older than the gap shows
    # 0 and the member's next submit starts a new one, whatever it held. So this reads the answers of
    # the trainers at work in the last half hour, not of everyone who ever worked.
    going_on = datetime.now(UTC).replace(tzinfo=None) - SITTING_GAP
    rows = connection.execute(
        sa.select(members.c.id, members.c.project_id, members.c.user_id)
        .where(members.c.role == 'trainer', members.c.last_submitted_at >= going_on)
    ).all()
    for member_id, project_id, trainer_id in rows:
        connection.execute(members.update().where(members.c.id == member_id)
                           .values(sitting_tasks=_trailing_sitting(connection, project_id, trainer_id)))


def downgrade() -> None:
    with op.batch_alter_table('project_members') as batch:
        batch.drop_column('sitting_tasks')
        batch.drop_column('last_submitted_at')
