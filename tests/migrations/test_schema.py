"""Migrations are code: `upgrade head` from empty gives exactly the models' schema, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import make_engine
from app.migrate import current_revision, downgrade, include_object_for, upgrade
from app.models import Base


def test_upgrade_from_empty_matches_the_models_and_downgrades_cleanly(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert current_revision(engine) is not None
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": include_object_for(conn.dialect.name)}
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
