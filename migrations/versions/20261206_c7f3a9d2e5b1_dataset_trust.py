"""Projects: licence, citation and language for dataset cards; chat shape settings.

Revision ID: c7f3a9d2e5b1
Revises: b4d2e8f1a6c3
Create Date: 2026-12-06 17:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'c7f3a9d2e5b1'
down_revision = 'b4d2e8f1a6c3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('license', sa.String(length=100), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('citation', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('language', sa.String(length=35), nullable=False, server_default='en'))
        batch_op.add_column(sa.Column('allow_assistant_first', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('always_messages', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('always_messages')
        batch_op.drop_column('allow_assistant_first')
        batch_op.drop_column('language')
        batch_op.drop_column('citation')
        batch_op.drop_column('license')
