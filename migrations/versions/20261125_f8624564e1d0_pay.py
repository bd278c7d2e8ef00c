"""Pay: approved timesheets, adjustments, and the budget and quality-bonus settings of projects.

Revision ID: f8624564e1d0
Revises: 121d4eaca778
Create Date: 2026-11-25 21:05:08.237414
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models.base

revision = 'f8624564e1d0'
down_revision = '121d4eaca778'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pay_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trainer_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('for_week', sa.Date(), nullable=True),
    sa.Column('billable_seconds', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_pay_adjustments_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_pay_adjustments_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trainer_id'], ['users.id'], name=op.f('fk_pay_adjustments_trainer_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pay_adjustments'))
    )
    with op.batch_alter_table('pay_adjustments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pay_adjustments_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_pay_adjustments_trainer_week', ['trainer_id', 'week_start'], unique=False)

    op.create_table('timesheets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trainer_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('billable_seconds', sa.BigInteger(), nullable=False),
    sa.Column('rate_cents', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('approved_by', sa.Integer(), nullable=True),
    sa.Column('approved_at', app.models.base.UTCDateTime(), nullable=True),
    sa.Column('paid_reference', sa.String(length=200), nullable=True),
    sa.Column('paid_at', app.models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['approved_by'], ['users.id'], name=op.f('fk_timesheets_approved_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_timesheets_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trainer_id'], ['users.id'], name=op.f('fk_timesheets_trainer_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timesheets')),
    sa.UniqueConstraint('trainer_id', 'project_id', 'week_start', name=op.f('uq_timesheets_trainer_id_project_id_week_start'))
    )
    with op.batch_alter_table('timesheets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_timesheets_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_timesheets_week_status', ['week_start', 'status'], unique=False)

    with op.batch_alter_table('projects', schema=None) as batch_op:
        # Existing projects keep the default (pause at 100 % of a budget).
        batch_op.add_column(sa.Column('pause_at_budget', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('paused_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('quality_bonus_percent', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('quality_bonus_min_accuracy', sa.Float(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('quality_bonus_min_accuracy')
        batch_op.drop_column('quality_bonus_percent')
        batch_op.drop_column('paused_reason')
        batch_op.drop_column('pause_at_budget')

    with op.batch_alter_table('timesheets', schema=None) as batch_op:
        batch_op.drop_index('ix_timesheets_week_status')
        batch_op.drop_index(batch_op.f('ix_timesheets_project_id'))

    op.drop_table('timesheets')
    with op.batch_alter_table('pay_adjustments', schema=None) as batch_op:
        batch_op.drop_index('ix_pay_adjustments_trainer_week')
        batch_op.drop_index(batch_op.f('ix_pay_adjustments_project_id'))

    op.drop_table('pay_adjustments')
