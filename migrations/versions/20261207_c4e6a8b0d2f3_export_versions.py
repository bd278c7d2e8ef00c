"""Dataset versions numbered per project (1, 2, 3…), not by the id they share with every other
project's: what pages, cards and citations call a version. Existing versions are numbered in the
order they were made.

Revision ID: c4e6a8b0d2f3
Revises: b8d2f4a6c9e1
Create Date: 2026-12-07 18:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'c4e6a8b0d2f3'
down_revision = 'b8d2f4a6c9e1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dataset_exports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=True))
    bind = op.get_bind()
    exports = sa.table('dataset_exports', sa.column('id', sa.Integer), sa.column('project_id', sa.Integer),
                       sa.column('version', sa.Integer))
    numbered = sa.select(exports.c.id, sa.func.row_number().over(partition_by=exports.c.project_id,
                                                                  order_by=exports.c.id).label('n')).subquery()
    rows = bind.execute(sa.select(numbered.c.id, numbered.c.n)).all()
    if rows:
        bind.execute(sa.update(exports).where(exports.c.id == sa.bindparam('export_id'))
                     .values(version=sa.bindparam('n')), [{'export_id': i, 'n': n} for i, n in rows])
    with op.batch_alter_table('dataset_exports', schema=None) as batch_op:
        batch_op.alter_column('version', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_dataset_exports_project_version', ['project_id', 'version'])


def downgrade() -> None:
    with op.batch_alter_table('dataset_exports', schema=None) as batch_op:
        batch_op.drop_constraint('uq_dataset_exports_project_version', type_='unique')
        batch_op.drop_column('version')
