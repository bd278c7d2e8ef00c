"""Indexes that keep the pages' cost flat as a project grows: a trainer's work in a project by
claim time (open pay weeks read only their own range, approved weeks nothing), a project's work by
claim time (its first week), an annotation's exclusion beside its assignment (the pay sums read the
index alone), and the items' progress counters (the progress figures read the index alone).

Revision ID: d5b7e9a1c3f4
Revises: e2a8c4f6b9d3
Create Date: 2026-12-06 20:00:00
"""
from __future__ import annotations

from alembic import op

revision = 'd5b7e9a1c3f4'
down_revision = 'e2a8c4f6b9d3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_trainer_project_assigned', ['trainer_id', 'project_id', 'assigned_at'],
                              unique=False)
        batch_op.create_index('ix_assignments_project_assigned', ['project_id', 'assigned_at'], unique=False)
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.create_index('ix_annotations_assignment_excluded', ['assignment_id', 'excluded'], unique=False)
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_project_progress', ['project_id', 'is_gold', 'done_count', 'active_count'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_project_progress')
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.drop_index('ix_annotations_assignment_excluded')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_assignments_project_assigned')
        batch_op.drop_index('ix_assignments_trainer_project_assigned')
