"""Fixtures: the app on SQLite and on PostgreSQL, a Redis key space, an RQ worker, a live server.

Servers are real. When PostgreSQL or Redis cannot be reached the tests that need them are skipped
with a loud reason — except under CI=true, where an unreachable server fails the run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import uuid

import pytest
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.util import LRUCache
from werkzeug.routing import Rule

import app.db as _app_db
from app import create_app
from app.db import get_db
from app.models import Base
from app.services import users as _users

# Argon2 with its production cost takes ~60 ms a hash; the suite makes thousands of accounts. Tests
# hash with the cheapest parameters (the same algorithm and code path, only faster).
_users._hasher = _users.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_users._DUMMY_HASH = _users._hasher.hash("groundwork-timing-equaliser")

# Werkzeug compiles two URL-builder functions for every rule of every app (a third of the time
# create_app takes); the suite makes an app per test, always with the same rules. A builder depends
# only on the rule's text, its parsed parts and its defaults (the rule itself is an argument), so one
# compiled per distinct rule serves every app of the test process: the same function, made once.
_builders: dict = {}
_compile_builder = Rule._compile_builder


def _cached_builder(self, append_unknown: bool = True):
    try:
        key = (self.rule, self.host, self.subdomain, tuple(self._trace),
               tuple(sorted((self.defaults or {}).items())), append_unknown)
        hash(key)
    except TypeError:  # unhashable defaults: compile as werkzeug does
        return _compile_builder(self, append_unknown)
    if key not in _builders:
        _builders[key] = _compile_builder(self, append_unknown)
    return _builders[key]


Rule._compile_builder = _cached_builder

# Parsing a rule's text into its parts and converters is the rest of that time. It depends only on the
# text, where the rule sits (host, subdomain, slashes) and the map's converters, so a rule's parse is
# made once per test process and each later app's rule takes a copy of its lists (and the converters,
# which keep no state of their own).
_parses: dict = {}
_compile_rule = Rule.compile


def _cached_compile(self) -> None:
    try:
        key = (self.rule, self.host, self.subdomain, self.merge_slashes, self.map.host_matching,
               tuple(sorted(self.map.converters.items())))
        hash(key)
    except TypeError:
        return _compile_rule(self)
    parsed = _parses.get(key)
    if parsed is None:
        _compile_rule(self)
        _parses[key] = (list(self._parts), list(self._trace), dict(self._converters))
        return None
    self._parts, self._trace, self._converters = list(parsed[0]), list(parsed[1]), dict(parsed[2])
    self.arguments.update(self._converters)
    self._build = self._compile_builder(False).__get__(self, None)
    self._build_unknown = self._compile_builder(True).__get__(self, None)
    return None


Rule.compile = _cached_compile


class _SharedCompiledCache:
    """SQLAlchemy keeps compiled SQL per engine, keyed by the dialect object; the suite makes an engine
    per test, so every test compiled the same statements again (a fifth of its time). Engines of one
    dialect class and server version compile alike, so they share one cache here (keyed by the class
    and version instead of the instance) — as the ORM's own per-mapper cache is shared by engines."""

    _store = LRUCache(5000)  # the whole suite compiles a few hundred distinct statements a process

    @staticmethod
    def _key(key):
        return (type(key[0]), key[0].server_version_info, *key[1:])

    def get(self, key, default=None):
        return self._store.get(self._key(key), default)

    def __setitem__(self, key, value) -> None:
        self._store[self._key(key)] = value

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:  # other engines go on using it
        pass


_create_engine = _app_db.create_engine


def _engine_with_shared_cache(url, **kwargs):
    engine = _create_engine(url, **kwargs)
    if engine._compiled_cache is not None:
        engine._compiled_cache = _SharedCompiledCache()
    return engine


_app_db.create_engine = _engine_with_shared_cache


class _SharedBytecode(BytecodeCache):
    """Templates compiled once per test process, not once per app (Jinja's own cache interface: the key
    holds the template's name and a checksum of its source)."""

    def __init__(self):
        self.codes: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.codes:
            bucket.bytecode_from_string(self.codes[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.codes[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _SharedBytecode()

CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"


def unavailable(reason: str):
    """Skip loudly on a developer machine; fail under CI, where every server must be there."""
    if CI:
        pytest.fail(f"{reason} — CI=true requires it", pytrace=False)
    pytest.skip(f"!!! NOT RUN: {reason} !!!")


# --- PostgreSQL: one database per test run, created here and dropped at the end -------------------


@pytest.fixture(scope="session")
def postgres_url():
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not reachable"
        admin.dispose()
        unavailable(f"PostgreSQL at {make_url(POSTGRES_ADMIN_URL).render_as_string()} is unreachable ({exc.__class__.__name__})")
    name = f"groundwork_test_{RUN_ID}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    """Where the test's database lives. On PostgreSQL the run's database keeps the model's schema
    between tests that use ``app`` (emptied, not rebuilt); a test that builds its own schema from
    this url (migrations) gets the database with nothing in it, as on a fresh SQLite file."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    if not {"app", "redis_app"} & set(request.fixturenames):
        engine = create_engine(url)
        drop_postgres_schema(engine)
        engine.dispose()
    return url


def build_app(database_url: str, tmp_path, **overrides):
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "REDIS_URL": None,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "API_RATE_LIMIT": "100000 per minute",  # the rate-limit tests set their own
        "WEBHOOK_MAX_ATTEMPTS": 1,  # no retry timer outlives its test; the webhook tests set their own
        **overrides,
    }
    app = create_app(config)
    app.jinja_env.bytecode_cache = _TEMPLATES
    return app


@contextlib.contextmanager
def redis_away_app(database_url: str, tmp_path):
    """The app with Redis configured at a port nobody listens on, its schema created (and dropped
    afterwards): every job hand-over finds Redis unreachable."""
    import socket

    from app.models import Base

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app = build_app(database_url, tmp_path, REDIS_URL=f"redis://127.0.0.1:{closed_port}/0")
    with app.app_context():
        engine = _app_db.get_db().engine
    Base.metadata.create_all(engine)
    try:
        yield app
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


_EMPTY_SQLITE: list = []  # the empty schema as a SQLite file, made once per test process


def _empty_sqlite_schema():
    """A SQLite file holding the empty schema: copying it is quicker than creating every table."""
    if not _EMPTY_SQLITE:
        import tempfile

        from app.db import make_engine

        path = os.path.join(tempfile.mkdtemp(prefix="groundwork-schema-"), "empty.sqlite3")
        atexit.register(shutil.rmtree, os.path.dirname(path), True)  # one per test process, gone with it
        engine = make_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _EMPTY_SQLITE.append(path)
    return _EMPTY_SQLITE[0]


# What PostgreSQL's catalog holds in the public schema: its relations (tables, indexes, sequences),
# every live column with its type, and its constraints. Equal to the figure taken after create_all
# means the schema is still the model's.
_PG_FINGERPRINT = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'),
       (SELECT md5(coalesce(string_agg(c.relname || '.' || a.attname || ':'
                                       || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull,
                                       ',' ORDER BY c.relname, a.attnum), ''))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped),
       (SELECT count(*) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
        WHERE n.nspname = 'public')
"""
_PG_SCHEMAS: dict[str, tuple[tuple, str]] = {}  # database → (fingerprint, the statements that empty it)


def drop_postgres_schema(engine) -> None:
    """Nothing left in the database's public schema: tables, types, sequences, alembic's version."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def empty_postgres_schema(engine) -> None:
    """Leave the model's schema on ``engine``'s database, every table empty and every sequence
    restarted. Creating and dropping every table took ~350 ms a test; deleting the rows of a schema
    that is still the model's takes ~8 ms. A test that changed the schema (dropped tables, ran the
    migrations) changes the fingerprint, and the schema is made again from the models."""
    key = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        seen = tuple(conn.exec_driver_sql(_PG_FINGERPRINT).one())
    known = _PG_SCHEMAS.get(key)
    if known is not None and known[0] == seen:
        with engine.begin() as conn:
            conn.exec_driver_sql(known[1])
        return
    drop_postgres_schema(engine)
    Base.metadata.create_all(engine)
    with engine.connect() as conn:
        fingerprint = tuple(conn.exec_driver_sql(_PG_FINGERPRINT).one())
        sequences = conn.exec_driver_sql(
            "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'").scalars()
        restarts = [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences]
    deletes = [f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)]
    _PG_SCHEMAS[key] = (fingerprint, "; ".join(deletes + restarts))


def _schema_app(database_url: str, tmp_path, **overrides):
    """Yield an app on an empty schema: SQLite's copied from a file made once, before the app opens it;
    PostgreSQL's emptied in place, and emptied again afterwards for the next test (a SQLite file goes
    with the test's temporary folder)."""
    sqlite = database_url.startswith("sqlite:///")
    if sqlite:
        shutil.copyfile(_empty_sqlite_schema(), database_url.removeprefix("sqlite:///"))
    app = build_app(database_url, tmp_path, **overrides)
    engine = get_db_engine(app)
    if not sqlite:
        empty_postgres_schema(engine)
    yield app
    from tasks import stop_inline_jobs

    stop_inline_jobs(app, cancel=True)  # in-process jobs end before their tables are emptied
    if not sqlite:
        empty_postgres_schema(engine)
    engine.dispose()


@pytest.fixture
def app(database_url, tmp_path):
    """The app on a fresh, empty schema (tables from the models; migrations have their own tests)."""
    yield from _schema_app(database_url, tmp_path)


def get_db_engine(app):
    with app.app_context():
        return get_db().engine


@pytest.fixture
def session(app):
    """A session of the app's database, outside any app context so that every request made with
    ``client`` gets its own context (and ``g``), as in production. Commit to make rows visible."""
    with app.app_context():
        factory = get_db().session_factory
    s = factory()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- Redis: a key space of our own ------------------------------------------------------------------


@pytest.fixture
def redis_conn():
    from redis import Redis

    conn = Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis at {REDIS_URL} is unreachable ({exc.__class__.__name__})")
    yield conn
    conn.close()


@pytest.fixture
def redis_prefix(redis_conn):
    """A unique prefix for every key and queue a test makes; its keys are deleted afterwards."""
    prefix = f"gwtest:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    job_ids = set()
    for key in redis_conn.scan_iter(match=f"*{prefix}*"):
        if key.startswith(b"rq:") and redis_conn.type(key) in (b"zset", b"list"):
            kind = redis_conn.type(key)
            members = redis_conn.zrange(key, 0, -1) if kind == b"zset" else redis_conn.lrange(key, 0, -1)
            job_ids.update(m.decode().split(":")[0] for m in members)
        redis_conn.delete(key)
    for job_id in job_ids:
        redis_conn.delete(f"rq:job:{job_id}", f"rq:results:{job_id}", f"rq:job:{job_id}:dependents")
    for member in redis_conn.smembers("rq:queues"):
        if prefix.encode() in member:
            redis_conn.srem("rq:queues", member)


@pytest.fixture
def redis_app(database_url, tmp_path, redis_prefix):
    """The app with Redis configured: jobs go to an RQ queue in the test's own key space."""
    yield from _schema_app(database_url, tmp_path, REDIS_URL=REDIS_URL, REDIS_PREFIX=redis_prefix)


@pytest.fixture
def rq_worker():
    """Run a SimpleWorker (no fork: it shares this process's database) over the app's queues."""
    from tasks import run_worker

    def work(app):
        return run_worker(app, burst=True, simple=True)

    return work


# --- Helpers shared by web tests -------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str, password: str):
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


# --- Chromium: Debian's, driven by Playwright ---------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def pytest_collection_modifyitems(config, items):
    """The long tests first (the fuzzing, the browser's, the whole demo's), the many short ones after:
    pytest-xdist hands tests out in this order, so the short ones fill both cores to the end instead of
    one core finishing a long test alone while the other waits. The Makefile runs it with
    ``--dist worksteal``: a worker that runs out takes tests still queued for the other, where the
    default hands out fixed batches and one worker could sit idle for minutes at the end."""
    def weight(item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("browser") else 2

    items.sort(key=weight)  # stable: the order within each kind stays as collected
