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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by copying it and dropping the old one; with foreign keys
            # on, that drop would cascade into every table that points at it (a project's items,
            # work and exports). The pragma only works outside a transaction, so it goes to the
            # driver before SQLAlchemy begins one.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
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
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.rollback()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
            if problems:
                raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {problems[:5]}")


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `groundwork db upgrade`")
run_migrations_online()
