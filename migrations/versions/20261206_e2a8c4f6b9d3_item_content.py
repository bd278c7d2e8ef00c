"""Items: a content hash (turns and the set of response texts, spacing and invisible characters
normalised), indexed per project, so repeated items are refused at import and left out of training
files; and whether an item is one user turn, so exports know a project holds chats without a scan.

Revision ID: e2a8c4f6b9d3
Revises: c7f3a9d2e5b1
Create Date: 2026-12-06 18:10:00
"""
from __future__ import annotations

import hashlib
import unicodedata

import orjson
import sqlalchemy as sa
from alembic import op

revision = 'e2a8c4f6b9d3'
down_revision = 'c7f3a9d2e5b1'
branch_labels = None
depends_on = None

BATCH = 5000
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), " ")


def _plain(text: str) -> str:  # projects.plain_text as of this revision
    return " ".join(unicodedata.normalize("NFC", text).translate(_INVISIBLE).split())


def _hash(context, responses) -> str:  # projects.content_hash as of this revision
    key = [[[m["role"], _plain(m["content"])] for m in context], sorted(_plain(r["text"]) for r in responses)]
    return hashlib.sha256(orjson.dumps(key)).hexdigest()[:32]


def _json(value):
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_hash', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('single_turn', sa.Boolean(), nullable=True))
        batch_op.create_index('ix_items_content', ['project_id', 'is_gold', 'content_hash'], unique=False)
        batch_op.create_index('ix_items_chats', ['project_id'], unique=False,
                              sqlite_where=sa.text('single_turn IS false'),
                              postgresql_where=sa.text('single_turn IS false'))
    bind = op.get_bind()
    items = sa.table('items', sa.column('id', sa.Integer), sa.column('context', sa.JSON),
                     sa.column('responses', sa.JSON), sa.column('content_hash', sa.String),
                     sa.column('single_turn', sa.Boolean))
    last = 0
    while True:
        rows = bind.execute(sa.select(items.c.id, items.c.context, items.c.responses)
                            .where(items.c.id > last).order_by(items.c.id).limit(BATCH)).all()
        if not rows:
            break
        values = []
        for item_id, context, responses in rows:
            context, responses = _json(context) or [], _json(responses) or []
            values.append({'item_id': item_id, 'hash': _hash(context, responses),
                           'single': len(context) == 1 and context[0]["role"] == "user"})
        bind.execute(sa.update(items).where(items.c.id == sa.bindparam('item_id'))
                     .values(content_hash=sa.bindparam('hash'), single_turn=sa.bindparam('single')), values)
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_chats')
        batch_op.drop_index('ix_items_content')
        batch_op.drop_column('single_turn')
        batch_op.drop_column('content_hash')
