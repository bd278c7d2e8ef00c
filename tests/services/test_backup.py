"""`groundwork db backup` and `db restore` (app/services/backup.py), on SQLite and PostgreSQL: the
demo's database and export folder come back row for row and byte for byte after a change and after
a wipe; files that are not Groundwork backups, backups of the other database kind and schemas newer
than the code are refused with a reason and change nothing; a database holding data is replaced
only after a yes; only the configured database is touched."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine, inspect, select, text, update
from sqlalchemy.engine import make_url

from app.db import get_db
from app.migrate import upgrade
from app.models import Base, User
from app.services import backup
from app.services.demo import seed_demo
from tests.conftest import DATABASES, POSTGRES_ADMIN_URL, build_app

# --- helpers ----------------------------------------------------------------------------------------


def drop_everything(engine) -> None:
    names = inspect(engine).get_table_names()
    if not names:
        return
    if engine.dialect.name == "sqlite":
        reflected = MetaData()
        reflected.reflect(engine)
        reflected.drop_all(engine)  # in dependency order
        return
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE " + ", ".join(quote(n) for n in names) + " CASCADE")


def table_rows(engine) -> dict[str, list[tuple]]:
    """Every row of every table of the models, and alembic_version, in primary-key order."""
    version = Table("alembic_version", MetaData(), autoload_with=engine)
    rows = {}
    with engine.connect() as conn:
        for table in [*Base.metadata.sorted_tables, version]:
            rows[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
    return rows


def folder_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".partial" not in p.relative_to(folder).parts}


def rewrite_manifest(source: Path, target: Path, **changes) -> None:
    """A copy of a backup whose manifest says something else."""
    with tarfile.open(source, "r:") as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            body = old.extractfile(member) if member.isfile() else None
            if member.name == backup.MANIFEST:
                manifest = {**json.loads(body.read()), **changes}
                data = json.dumps(manifest).encode()
                member.size, body = len(data), io.BytesIO(data)
            new.addfile(member, body)


@pytest.fixture(params=DATABASES)
def migrated(request, tmp_path):
    """An app on a database built by the migrations (so alembic_version is there), with its own
    export folder; PostgreSQL uses the run's database and leaves it empty again."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    app = build_app(url, tmp_path, EXPORT_DIR=str(tmp_path / "exports"))
    with app.app_context():
        engine = get_db().engine
    drop_everything(engine)  # whatever an earlier test on the run's database left
    upgrade(engine)
    yield app
    engine.dispose()
    cleanup = create_engine(url)
    drop_everything(cleanup)
    cleanup.dispose()


def factory_of(app):
    with app.app_context():
        return get_db().session_factory, get_db().engine


# --- the round trip -----------------------------------------------------------------------------------


@pytest.mark.slow  # seeds the whole demo, with its dataset versions
def test_backup_and_restore_bring_back_every_row_and_export_file(migrated, tmp_path):
    app = migrated
    factory, engine = factory_of(app)
    export_dir = Path(app.config["EXPORT_DIR"])
    with factory() as session:
        seed_demo(session, factory, export_dir, app.config["SECRET_KEY"])
    before, files = table_rows(engine), folder_files(export_dir)
    assert len(files) >= 4 and all(before[name] for name in ("users", "projects", "items", "annotations",
                                                              "dataset_exports", "alembic_version"))
    sentinel = None
    if engine.dialect.name == "postgresql":  # a neighbouring database that restoring must not touch
        sentinel = f"groundwork_sentinel_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{sentinel}"'))
        sentinel_url = make_url(POSTGRES_ADMIN_URL).set(database=sentinel)
        neighbour = create_engine(sentinel_url)
        with neighbour.begin() as conn:
            conn.execute(text("CREATE TABLE users (id int primary key, email text)"))
            conn.execute(text("INSERT INTO users VALUES (1, 'neighbour@example.test')"))
    runner = app.test_cli_runner()
    try:
        file = tmp_path / "groundwork.backup"
        made = runner.invoke(args=["db", "backup", str(file)])
        assert made.exit_code == 0, made.output
        assert "export file(s)" in made.output and file.is_file()
        manifest = backup.read_manifest(file)
        assert manifest.database == engine.dialect.name and manifest.revision == before["alembic_version"][0][0]
        assert manifest.export_files == len(files) and manifest.tables == sorted([*Base.metadata.tables, "alembic_version"])
        assert not list(tmp_path.glob(".groundwork-backup-*"))  # its scratch folder went

        # Changed: a renamed person, a new person, an export file gone and a stray one.
        with factory() as session:
            session.execute(update(User).where(User.id == 1).values(name="Renamed"))
            session.add(User(email="new@example.test", name="New", password_hash="x"))
            session.commit()
        first = sorted(export_dir.rglob("*.jsonl"))[0]
        first.unlink()
        (export_dir / "stray.txt").write_text("not from the backup")
        changed = table_rows(engine)

        refused = runner.invoke(args=["db", "restore", str(file)], input="n\n")
        assert refused.exit_code == 1 and "holds data" in refused.output and "Aborted" in refused.output
        assert table_rows(engine) == changed and (export_dir / "stray.txt").exists()

        restored = runner.invoke(args=["db", "restore", str(file)], input="y\n")
        assert restored.exit_code == 0, restored.output
        assert table_rows(engine) == before
        assert folder_files(export_dir) == files

        # Wiped: no table at all; an empty database is replaced without asking.
        drop_everything(engine)
        again = runner.invoke(args=["db", "restore", str(file)])
        assert again.exit_code == 0, again.output
        assert table_rows(engine) == before and folder_files(export_dir) == files
        assert not list(tmp_path.glob(".groundwork-restore-*"))

        # The restored database goes on: new rows get fresh ids (PostgreSQL's sequences came back too).
        with factory() as session:
            person = User(email="after@example.test", name="After", password_hash="x")
            session.add(person)
            session.commit()
            assert person.id > max(row[0] for row in before["users"])
        if sentinel is not None:
            with neighbour.connect() as conn:
                assert conn.execute(text("SELECT email FROM users")).all() == [("neighbour@example.test",)]
    finally:
        if sentinel is not None:
            neighbour.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{sentinel}" WITH (FORCE)'))
            admin.dispose()


# --- what restore refuses ------------------------------------------------------------------------------


@pytest.fixture
def small(migrated, tmp_path):
    """A migrated database with one person and one export file, and its backup."""
    factory, engine = factory_of(migrated)
    with factory() as session:
        session.add(User(email="one@example.test", name="One", password_hash="x"))
        session.commit()
    export_dir = Path(migrated.config["EXPORT_DIR"])
    (export_dir / "1" / "1").mkdir(parents=True)
    (export_dir / "1" / "1" / "train.jsonl").write_bytes(b'{"a": 1}\n')
    file = tmp_path / "small.backup"
    result = migrated.test_cli_runner().invoke(args=["db", "backup", str(file)])
    assert result.exit_code == 0, result.output
    return migrated, engine, file


def test_a_file_that_is_not_a_backup_is_refused_and_changes_nothing(small, tmp_path):
    app, engine, _file = small
    before = table_rows(engine)
    runner = app.test_cli_runner()
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a tar at all" * 100)
    plain_tar = tmp_path / "plain.tar"
    with tarfile.open(plain_tar, "w") as tar:
        tar.add(junk, arcname="notes.txt")
    for path in (junk, plain_tar):
        result = runner.invoke(args=["db", "restore", "--yes", str(path)])
        assert result.exit_code == 1 and "is not a Groundwork backup" in result.output, result.output
    missing = runner.invoke(args=["db", "restore", "--yes", str(tmp_path / "nowhere.backup")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert table_rows(engine) == before


def test_a_backup_of_the_other_database_kind_is_refused(small, tmp_path):
    app, engine, file = small
    other = "postgresql" if engine.dialect.name == "sqlite" else "sqlite"
    forged = tmp_path / "other-kind.backup"
    rewrite_manifest(file, forged, database=other)
    before = table_rows(engine)
    result = app.test_cli_runner().invoke(args=["db", "restore", "--yes", str(forged)])
    assert result.exit_code == 1
    assert f"this is a backup of a {other} database; the configured database is {engine.dialect.name}" in result.output
    assert table_rows(engine) == before


def test_a_newer_schema_is_refused(small, tmp_path):
    app, engine, file = small
    forged = tmp_path / "newer.backup"
    rewrite_manifest(file, forged, revision="ffffffffffff", groundwork_version="9.0.0")
    before = table_rows(engine)
    result = app.test_cli_runner().invoke(args=["db", "restore", "--yes", str(forged)])
    assert result.exit_code == 1
    assert "revision ffffffffffff) is newer than this code knows (made by Groundwork 9.0.0)" in result.output
    assert table_rows(engine) == before


def test_restore_with_yes_replaces_data_without_asking(small):
    app, engine, file = small
    before = table_rows(engine)
    factory, _ = factory_of(app)
    with factory() as session:
        session.add(User(email="two@example.test", name="Two", password_hash="x"))
        session.commit()
    result = app.test_cli_runner().invoke(args=["db", "restore", "--yes", str(file)])
    assert result.exit_code == 0, result.output
    assert table_rows(engine) == before
    assert (Path(app.config["EXPORT_DIR"]) / "1" / "1" / "train.jsonl").read_bytes() == b'{"a": 1}\n'


def test_backup_names_a_missing_folder_and_missing_postgres_tools(tmp_path, monkeypatch):
    with pytest.raises(backup.BackupError, match="does not exist"):
        backup.create_backup(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path, tmp_path / "no" / "b.backup", "0")
    with pytest.raises(backup.BackupError, match="cannot go inside the export folder"):
        backup.create_backup(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path, tmp_path / "b.backup", "0")
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump here
    with pytest.raises(backup.BackupError, match="pg_dump was not found on PATH"):
        backup.create_backup("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path / "exports",
                             tmp_path / "b.backup", "0")
    assert not list(tmp_path.glob("*.backup"))
