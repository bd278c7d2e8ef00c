from __future__ import annotations

from pathlib import Path

from alembic import context

from app.config import load_config
from app.db import make_engine
from app.migrate import include_object_for
from app.models import Base

config = context.config
target_metadata = Base.metadata


def _engine():
    engine = config.attributes.get("engine")
    if engine is None:
        instance = Path(__file__).resolve().parent.parent / "instance"
        engine = make_engine(load_config(instance)["DATABASE_URL"])
    return engine


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object_for(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `groundwork db upgrade`")
run_migrations_online()
