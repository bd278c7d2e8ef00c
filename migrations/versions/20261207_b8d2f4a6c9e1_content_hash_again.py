"""Items: every content hash made again with the rule as it now stands (``projects.content_hash``).
The texts are now read with look-alike compatibility forms as their plain letters (full-width
"Ｈｉ" is "Hi", the ligature "ﬁ" is "fi") and with every invisible character as a space (the first
hashes knew six of them), so items that only differ that way share a hash: the importer refuses
the second, and exports leave it out. Only the rows whose hash changes are written.

This revision calls the application's own rule rather than a frozen copy: the hashes must equal
what the importer computes for new items, and running it again under a later rule only brings
them up to that rule (a change of the rule adds a revision like this one).

Revision ID: b8d2f4a6c9e1
Revises: a9e4c2b7d1f5
Create Date: 2026-12-07 18:30:00
"""
from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = 'b8d2f4a6c9e1'
down_revision = 'a9e4c2b7d1f5'
branch_labels = None
depends_on = None

BATCH = 5000


def _json(value):
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def upgrade() -> None:
    from app.services.projects import content_hash

    bind = op.get_bind()
    items = sa.table('items', sa.column('id', sa.Integer), sa.column('context', sa.JSON),
                     sa.column('responses', sa.JSON), sa.column('content_hash', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(items.c.id, items.c.context, items.c.responses, items.c.content_hash)
                            .where(items.c.id > last).order_by(items.c.id).limit(BATCH)).all()
        if not rows:
            break
        changed = []
        for item_id, context, responses, old in rows:
            new = content_hash(_json(context) or [], _json(responses) or [])
            if new != old:
                changed.append({'item_id': item_id, 'hash': new})
        if changed:
            bind.execute(sa.update(items).where(items.c.id == sa.bindparam('item_id'))
                         .values(content_hash=sa.bindparam('hash')), changed)
        last = rows[-1][0]


def downgrade() -> None:
    pass  # the hashes stay as they are: the older rule's would only find fewer repeats
