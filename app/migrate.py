"""Alembic, driven from code: `groundwork db upgrade`, the tests and `make run` all come here."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from .config import ROOT


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# Indexes with a DESC column: SQLite's reflection cannot report the direction, so autogenerate on
# SQLite would always see them as changed. PostgreSQL compares them fully.
DESC_INDEXES = {"ix_items_queue"}


def include_object_for(dialect_name: str):
    def include_object(obj, name, type_, reflected, compare_to):
        return not (dialect_name == "sqlite" and type_ == "index" and name in DESC_INDEXES)

    return include_object
