"""Engine and session handling: one SQLAlchemy Session per app context, closed on teardown."""

from __future__ import annotations

import logging
import os
import re
import time
import weakref
from contextlib import contextmanager

import orjson
from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import ColumnElement, Engine, Table, bindparam, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker

from .bounds import guard_flushes

# Execution option a service sets before its first statement to get a SQLite write lock up front.
SQLITE_BEGIN = "sqlite_begin"
# Connection info key (PostgreSQL): True while the transaction has run nothing but plain SELECTs.
READS_ONLY = "groundwork_reads_only"
_LOCKING_READ = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.IGNORECASE)


def _json_dumps(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


# A pooled PostgreSQL connection that rested longer than this is pinged before use (see _ping_rested).
PING_AFTER_IDLE_SECONDS = 1.0


def make_engine(url: str, echo: bool = False, ping_after: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    # orjson for JSON columns: imports and exports move millions of them.
    common = {"echo": echo, "json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **common)
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20, **common)
        _ping_rested(engine, ping_after)
        _note_plain_reads(engine)
    _ENGINES.add(engine)
    return engine


# A forked RQ worker must not reuse the parent's sockets: after a fork the child drops every pool
# (without closing the parent's connections). One hook for the process, over a weak set: an engine
# held by the hook itself would live as long as the process (the suite makes one per test).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control from the driver so we can choose BEGIN vs BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function("gw_lower", 1, _gw_lower, deterministic=True)  # ``folded``

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "immediate" else "BEGIN")


def _ping_rested(engine: Engine, after: float) -> None:
    """Ping a pooled connection before use when it rested in the pool over ``after`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip (and CPU on both sides) per
    transaction, most of a heartbeat's on a busy server. A connection put back a moment ago is alive
    as far as a ping can tell anyway, so only one that rested is pinged (a restart while the server
    was quiet, an idle timeout on the way). A dead one fails the ping and the whole pool is replaced
    before the request uses it. Without the ping, a request that meets a connection cut since its
    last use fails on its first statement: SQLAlchemy then replaces every pooled connection, and the
    request is answered 503 with Retry-After (``web/errors``) — as are the requests the outage cut
    in flight, which no ping can save."""

    @event.listens_for(engine, "checkin")
    def _rested_from(_dbapi_connection, record):
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):
        returned = record.info.get("checked_in_at")  # none: a new connection, nothing to check
        if returned is None or time.monotonic() - returned <= after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError(str(exc)) from exc  # the pool reconnects and tries again
            raise


def _note_plain_reads(engine: Engine) -> None:
    """Mark each transaction that has only read (no write, no locking read) so far: ``begin_write``
    lets such a transaction go on instead of committing it and checking a connection out again."""

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.info[READS_ONLY] = True

    @event.listens_for(engine, "before_cursor_execute")
    def _on_statement(conn, _cursor, statement, _parameters, _context, _executemany):
        if conn.info.get(READS_ONLY) and (statement.lstrip()[:6].upper() != "SELECT"
                                          or _LOCKING_READ.search(statement)):
            conn.info[READS_ONLY] = False


def is_deadlock(exc: BaseException) -> bool:
    """PostgreSQL chose this transaction to break a deadlock (or a serialization failure): retryable."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in ("40P01", "40001")


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def insert_for(session: Session, table: Table):
    """An INSERT with the ON CONFLICT clauses of the session's database (both speak them)."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


_ADDING_UPSERTS: dict[tuple[str, str], object] = {}


def adding_upsert(session: Session, table: Table, key: tuple[str, ...], added: tuple[str, ...]):
    """"Insert this row, or add its ``added`` columns to the row with the same ``key``": one statement
    for counter rows kept on the write path, with a bound parameter per column (named as the column),
    built once per table and database kind since every submit runs it."""
    cache_key = (table.name, session.get_bind().dialect.name)
    stmt = _ADDING_UPSERTS.get(cache_key)
    if stmt is None:
        insert = insert_for(session, table).values({name: bindparam(name) for name in (*key, *added)})
        stmt = _ADDING_UPSERTS[cache_key] = insert.on_conflict_do_update(
            index_elements=[table.c[name] for name in key],
            set_={name: table.c[name] + insert.excluded[name] for name in added})
    return stmt


def begin_write(session: Session) -> None:
    """Start a fresh transaction that already holds the write lock on SQLite.

    SQLite in WAL mode fails a deferred transaction that read before another writer committed
    (SQLITE_BUSY_SNAPSHOT) instead of waiting; taking the lock first makes writers queue politely.
    PostgreSQL needs nothing: row locks are taken by the statements themselves.

    It ends the transaction in progress, which must hold no changes: a service never commits what
    its caller has not finished (that would be a partial write). A SQLite transaction that began
    IMMEDIATE (every state-changing request's) already holds the lock since its first read and goes on;
    so does a PostgreSQL transaction that has only run plain SELECTs (no write, no row lock).
    """
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise RuntimeError("begin_write() would commit changes the caller has not finished")
    if is_sqlite(session) and session.in_transaction():
        if session.connection().get_execution_options().get(SQLITE_BEGIN) == "immediate":
            return  # this transaction took the write lock with its first statement: nothing can be stale
    if session.in_transaction():
        if not is_sqlite(session) and session.connection().info.get(READS_ONLY):
            # Each statement reads its own snapshot (READ COMMITTED) and nothing is written or locked
            # yet: the transaction can go on, on the same connection (most requests read the signed-in
            # user first; committing would cost a round trip, and a checkout and its ping more).
            return
        session.commit()
    if is_sqlite(session):
        session.connection(execution_options={SQLITE_BEGIN: "immediate"})


class Database:
    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session_factory: sessionmaker[Session] | None = None

    def init_app(self, app: Flask) -> None:
        self.engine = make_engine(app.config["DATABASE_URL"], echo=app.config.get("SQL_ECHO", False),
                                  ping_after=app.config.get("DATABASE_PING_AFTER_SECONDS", PING_AFTER_IDLE_SECONDS))
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        guard_flushes(self.session_factory)
        # For state-changing requests on SQLite every transaction takes the write lock up front: a
        # request reads (the user, the project) before it writes, and a reading transaction cannot
        # become a writing one once another connection has committed.
        self.writer_engine = (
            self.engine.execution_options(**{SQLITE_BEGIN: "immediate"})
            if self.engine.dialect.name == "sqlite"
            else self.engine
        )
        app.extensions["groundwork_db"] = self
        app.teardown_appcontext(self._close_session)

    @staticmethod
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            try:
                session.close()
            except DBAPIError as exc:
                # The connection died under the request (a database restart): its rollback fails. The
                # response is already made; drop the connection so the pool never hands it out again.
                logging.getLogger(__name__).warning("closing a session on a dead connection: %s", exc.orig)
                session.invalidate()


def get_db() -> Database:
    return current_app.extensions["groundwork_db"]


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_session() -> Session:
    """The session of the current app context (request, CLI command or job)."""
    if "db_session" not in g:
        db = get_db()
        if has_request_context() and request.method in WRITE_METHODS:
            g.db_session = db.session_factory(bind=db.writer_engine)
        else:
            g.db_session = db.session_factory()
    return g.db_session


@contextmanager
def session_scope():
    """A session outside any app context, committed on success (CLI helpers and scripts)."""
    session = get_db().session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class unindexed(ColumnElement):
    """A column SQLite must not pick an index for (``+column``; the column itself elsewhere): its planner
    has no statistics, and takes an index for any term it can. An export's snapshot bound on
    ``submitted_at`` holds for every annotation, yet SQLite took the (project, submitted_at) index for
    it and sorted the whole project in a temporary b-tree; the verdicts newer than a project's figures
    are few, yet SQLite walked the project's annotations to find them rather than the newer verdicts."""

    inherit_cache = True

    def __init__(self, column):
        self.column = column
        self.type = column.type


@compiles(unindexed)
def _unindexed(element, compiler, **kw):
    return compiler.process(element.column, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    return "+" + compiler.process(element.column, **kw)


class folded(ColumnElement):
    """A text in lower case the same way on both databases: PostgreSQL's ``lower`` knows every script,
    SQLite's only ASCII, so on SQLite it is ``gw_lower`` (Python's ``str.lower``, registered on every
    connection). A search for "émile" finds "Émile" on either."""

    inherit_cache = True

    def __init__(self, column):
        self.column = column
        self.type = column.type


@compiles(folded)
def _folded(element, compiler, **kw):
    return "lower(" + compiler.process(element.column, **kw) + ")"


@compiles(folded, "sqlite")
def _folded_sqlite(element, compiler, **kw):
    return "gw_lower(" + compiler.process(element.column, **kw) + ")"


def _gw_lower(text):
    return text.lower() if isinstance(text, str) else text
