"""Backups: the database and the export folder in one file, and putting them back.

A backup is one uncompressed tar holding, in this order:

- ``manifest.json``: the format (``groundwork-backup``, version 1), the Groundwork version that made
  it, the database kind (``sqlite`` or ``postgresql``), the schema's Alembic revision, the instant it
  was made (UTC), the tables the dump holds and how many export files came with it;
- ``database.sqlite3`` (SQLite, copied through SQLite's online backup API: a consistent snapshot,
  safe while the app runs) or ``database.dump`` (PostgreSQL, ``pg_dump`` in its custom format);
- ``exports/``: the export folder (the finished dataset versions; the ``.partial`` folder of runs in
  progress stays out). It is read after the database, so every version the database calls finished
  is in it.

Restoring checks the manifest first and refuses a file that is not a Groundwork backup, a backup of
the other database kind, or a schema this code does not know (made by a newer Groundwork), changing
nothing. Then it replaces the database (SQLite through the backup API again; PostgreSQL by dropping
the tables of the configured database and ``pg_restore`` into it, both in one ``psql`` transaction,
so a failed restore leaves the database as it was) and the export folder (unpacked beside it, then
swapped in). Only the configured database is touched. The service knows nothing of Flask: it gets
the database URL and the folders.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

from app.errors import ValidationError

FORMAT = "groundwork-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
POSTGRES_MEMBER = "database.dump"
EXPORTS_MEMBER = "exports"
SKIPPED_EXPORT_FOLDERS = (".partial",)  # runs in progress (exporting.TMP_FOLDER): not versions yet
MANIFEST_MAX_BYTES = 1 << 20
TOOL_TIMEOUT = None  # a dump of a large database takes as long as it takes


class BackupError(ValidationError):
    """A backup that cannot be made or a file that cannot be restored, with the reason."""

    def __init__(self, message: str) -> None:
        super().__init__({"file": message})
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Manifest:
    format: str
    format_version: int
    groundwork_version: str
    database: str
    revision: str | None
    created_at: str
    tables: list[str]
    export_files: int


def database_kind(url: str | URL) -> str:
    """``sqlite`` or ``postgresql``, from a database URL; anything else is refused."""
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL, not {name}")
    return name


def _sqlite_path(url: str | URL) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing on disk to back up or restore")
    return Path(database)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} was not found on PATH; install the PostgreSQL client tools "
                          f"(the same major version as the server) to back up or restore PostgreSQL")
    return found


def _libpq(url: str | URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the PostgreSQL tools, and the environment carrying the password
    (so it never shows in the process list)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str], what: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, capture_output=True, timeout=TOOL_TIMEOUT, **kwargs)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BackupError(f"{what} failed: " + (detail[-1] if detail else f"exit status {done.returncode}"))
    return done


def _tables_and_revision(url: str | URL) -> tuple[list[str], str | None]:
    engine = create_engine(url)
    try:
        names = sorted(inspect(engine).get_table_names())
        revision = None
        if "alembic_version" in names:
            with engine.connect() as conn:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return names, revision
    finally:
        engine.dispose()


def is_empty(url: str | URL) -> bool:
    """True when no table of the database holds a row (a fresh or wiped database)."""
    engine = create_engine(url)
    try:
        names = inspect(engine).get_table_names()
        with engine.connect() as conn:
            for name in names:
                if name == "alembic_version":
                    continue
                quoted = engine.dialect.identifier_preparer.quote(name)
                if conn.execute(text(f"SELECT 1 FROM {quoted} LIMIT 1")).first() is not None:
                    return False
        return True
    finally:
        engine.dispose()


def _export_files(export_dir: Path) -> list[Path]:
    """The files of the export folder a backup carries, relative to it, in a stable order."""
    if not export_dir.is_dir():
        return []
    found = []
    for folder, dirs, files in os.walk(export_dir):
        if Path(folder) == export_dir:
            dirs[:] = [d for d in dirs if d not in SKIPPED_EXPORT_FOLDERS]
        dirs.sort()
        found.extend(Path(folder, name).relative_to(export_dir) for name in sorted(files))
    return found


def create_backup(database_url: str, export_dir: str | os.PathLike, target: str | os.PathLike,
                  groundwork_version: str) -> Manifest:
    """Write one backup file at ``target``: the manifest, the database, the export folder. The file
    appears complete or not at all (written beside it, then renamed). Changes nothing else."""
    kind = database_kind(database_url)
    target = Path(target)
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    if target.is_dir():
        raise BackupError(f"{target} is a folder; give a file name")
    export_dir = Path(export_dir)
    if target.resolve().is_relative_to(export_dir.resolve()):
        raise BackupError(f"the backup cannot go inside the export folder it copies ({export_dir})")
    with tempfile.TemporaryDirectory(prefix=".groundwork-backup-", dir=target.parent) as scratch:
        scratch = Path(scratch)
        if kind == "sqlite":
            source = _sqlite_path(database_url)
            if not source.is_file():
                raise BackupError(f"the SQLite database {source} does not exist")
            member, dump = SQLITE_MEMBER, scratch / SQLITE_MEMBER
            with sqlite3.connect(source) as live, sqlite3.connect(dump) as copy:
                live.backup(copy)
            live.close()
            copy.close()
        else:
            member, dump = POSTGRES_MEMBER, scratch / POSTGRES_MEMBER
            conninfo, env = _libpq(database_url)
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}",
                  f"--dbname={conninfo}"], env, "pg_dump")
        tables, revision = _tables_from_dump(kind, dump, database_url)
        files = _export_files(export_dir)
        manifest = Manifest(
            format=FORMAT, format_version=FORMAT_VERSION, groundwork_version=groundwork_version,
            database=kind, revision=revision, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tables=tables, export_files=len(files),
        )
        partial = scratch / "backup.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            body = json.dumps(asdict(manifest), indent=2).encode()
            now = int(datetime.now(UTC).timestamp())
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), now, 0o644
            tar.addfile(info, io.BytesIO(body))
            tar.add(dump, arcname=member)
            info = tarfile.TarInfo(EXPORTS_MEMBER)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
            for relative in files:
                tar.add(export_dir / relative, arcname=f"{EXPORTS_MEMBER}/{relative.as_posix()}", recursive=False)
        os.replace(partial, target)
    return manifest


def _tables_from_dump(kind: str, dump: Path, database_url: str) -> tuple[list[str], str | None]:
    """The tables and revision the dump itself holds (not the live database, which may have moved on)."""
    if kind == "sqlite":
        return _tables_and_revision(f"sqlite:///{dump}")
    _conninfo, env = _libpq(database_url)
    listing = _run([_tool("pg_restore"), "--list", str(dump)], env, "pg_restore --list").stdout.decode()
    # A table's line: "215; 1259 16390 TABLE public annotations owner".
    tables = sorted({match.group(1) for match in re.finditer(r"^\d+; \d+ \d+ TABLE (?!DATA )\S+ (\S+)", listing, re.M)})
    script = _run([_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(dump)],
                  env, "pg_restore").stdout.decode()
    rows = script.split("alembic_version (version_num) FROM stdin;\n", 1)
    revision = rows[1].split("\n", 1)[0] if len(rows) == 2 else None
    return tables, (None if revision in (None, "\\.") else revision)


def read_manifest(source: str | os.PathLike) -> Manifest:
    """The manifest of a backup file; refuses anything else with a reason."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    try:
        with tarfile.open(source, "r:") as tar:
            member = tar.next()
            if member is None or member.name != MANIFEST or not member.isfile() or member.size > MANIFEST_MAX_BYTES:
                raise BackupError(f"{source} is not a Groundwork backup (no manifest at its start)")
            raw = json.loads(tar.extractfile(member).read())
    except (tarfile.TarError, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{source} is not a Groundwork backup ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BackupError(f"{source} is not a Groundwork backup (its manifest names no backup format)")
    if raw.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{source} is a backup of format version {raw.get('format_version')}; this "
                          f"Groundwork reads version {FORMAT_VERSION}")
    try:
        return Manifest(**{name: raw[name] for name in Manifest.__dataclass_fields__})
    except KeyError as exc:
        raise BackupError(f"{source} has an incomplete manifest (no {exc.args[0]})") from None


def check_restorable(manifest: Manifest, database_url: str, known_revisions: Sequence[str]) -> None:
    """Refuse, with the reason, a backup that cannot go into this database with this code."""
    kind = database_kind(database_url)
    if manifest.database != kind:
        raise BackupError(f"this is a backup of a {manifest.database} database; the configured database "
                          f"is {kind} (restore it into a {manifest.database} database)")
    if manifest.revision is None:
        raise BackupError("the backup's database has no schema revision (it was never migrated)")
    if manifest.revision not in known_revisions:
        raise BackupError(f"the backup's schema (revision {manifest.revision}) is newer than this code knows "
                          f"(made by Groundwork {manifest.groundwork_version}); upgrade Groundwork first")


def restore_backup(source: str | os.PathLike, database_url: str, export_dir: str | os.PathLike,
                   known_revisions: Sequence[str]) -> Manifest:
    """Replace the database and the export folder with a backup's. Checks everything it can before
    changing anything; the caller asks the person first when the database holds data (``is_empty``).
    Close the app's connections before calling (on SQLite they would keep the old pages)."""
    manifest = read_manifest(source)
    check_restorable(manifest, database_url, known_revisions)
    export_dir = Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".groundwork-restore-", dir=export_dir.parent) as scratch:
        scratch = Path(scratch)
        unpacked = scratch / "unpacked"
        with tarfile.open(source, "r:") as tar:
            names = set(tar.getnames())
            member = SQLITE_MEMBER if manifest.database == "sqlite" else POSTGRES_MEMBER
            if member not in names:
                raise BackupError(f"{source} holds no database ({member} is missing)")
            try:
                tar.extractall(unpacked, filter="data")
            except tarfile.FilterError as exc:
                raise BackupError(f"{source} holds an unsafe entry: {exc}") from None
        dump = unpacked / member
        if manifest.database == "sqlite":
            _restore_sqlite(dump, database_url)
        else:
            _restore_postgres(dump, database_url, scratch)
        _swap_exports(unpacked / EXPORTS_MEMBER, export_dir, scratch)
    return manifest


def _restore_sqlite(dump: Path, database_url: str) -> None:
    target = _sqlite_path(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(dump) as copy:
        integrity = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            raise BackupError(f"the backup's SQLite database is damaged ({integrity})")
        live = sqlite3.connect(target, timeout=30)
        try:
            copy.backup(live)  # page by page under the destination's lock: all of it or none
        finally:
            live.close()
    copy.close()


def _restore_postgres(dump: Path, database_url: str, scratch: Path) -> None:
    conninfo, env = _libpq(database_url)
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    # pg_restore writes the whole script first (a damaged dump stops here, before anything changes);
    # then every table of the configured database's schema goes, whatever revision it is at, and the
    # script runs, in one psql transaction: a failure anywhere leaves the database as it was.
    script = scratch / "restore.sql"
    _run([pg_restore, "--no-owner", "--no-privileges", f"--file={script}", str(dump)], env,
         "pg_restore (nothing was changed)")
    tables, _revision = _tables_and_revision(database_url)
    engine = create_engine(database_url)
    quote = engine.dialect.identifier_preparer.quote
    engine.dispose()
    drop = ("DROP TABLE IF EXISTS " + ", ".join(quote(t) for t in tables) + " CASCADE;") if tables else "SELECT 1;"
    _run([psql, "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
          f"--dbname={conninfo}", "--command", drop, f"--file={script}"], env,
         "restoring into PostgreSQL (nothing was changed)")
    script.unlink()


def _swap_exports(unpacked: Path, export_dir: Path, scratch: Path) -> None:
    """Put the backup's export folder in place of the current one (a folder of runs in progress
    goes: the restored database does not know them)."""
    if not unpacked.is_dir():
        unpacked.mkdir(parents=True)
    old = scratch / f"old-{uuid.uuid4().hex[:8]}"
    if export_dir.exists():
        os.rename(export_dir, old)
    try:
        os.rename(unpacked, export_dir)
    except OSError:
        if old.exists():
            os.rename(old, export_dir)
        raise
