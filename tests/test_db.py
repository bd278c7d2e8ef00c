"""The PostgreSQL engine's connection handling: a rested connection is pinged and replaced when dead; one
used a moment ago is not pinged, and a dead one fails its request once and the pool is replaced; and
``begin_write`` goes on with a transaction that has only read, but commits one that locked or wrote."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, select, text, update
from sqlalchemy.exc import OperationalError

from app.db import begin_write, make_engine
from app.models import User
from tests.conftest import POSTGRES_ADMIN_URL
from tests.factories import make_user

pytestmark = pytest.mark.postgres


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        admin.dispose()


def test_a_rested_connection_cut_meanwhile_is_replaced_before_use(postgres_url):
    engine = make_engine(postgres_url, ping_after=0)
    try:
        first = _backend_pid(engine)
        _terminate(first)  # the server went away while the connection sat in the pool
        assert _backend_pid(engine) != first  # no error: the ping found it dead and the pool reconnected
    finally:
        engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(postgres_url):
    engine = make_engine(postgres_url, ping_after=3600)
    pings: list[int] = []
    ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda dbapi_connection: pings.append(1) or ping(dbapi_connection)
    try:
        for _ in range(5):
            _backend_pid(engine)
        assert pings == []
    finally:
        engine.dispose()


def test_a_dead_connection_that_was_not_pinged_fails_once_then_the_pool_is_replaced(postgres_url):
    engine = make_engine(postgres_url, ping_after=3600)
    try:
        with engine.connect() as a, engine.connect() as b:  # two pooled connections
            pids = {a.execute(text("select pg_backend_pid()")).scalar_one(),
                    b.execute(text("select pg_backend_pid()")).scalar_one()}
        for pid in pids:
            _terminate(pid)
        with pytest.raises(OperationalError) as caught, engine.connect() as conn:
            conn.execute(text("select 1"))
        assert caught.value.connection_invalidated  # what web/errors answers with a 503
        # Every other connection of that age is replaced too: no second request meets a dead one.
        assert _backend_pid(engine) not in pids
        assert _backend_pid(engine) not in pids
    finally:
        engine.dispose()


POSTGRES_ONLY = pytest.mark.parametrize("database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                                        indirect=True)


def _commits(app) -> list[int]:
    from app.db import get_db

    with app.app_context():
        engine = get_db().engine
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return commits


@POSTGRES_ONLY
def test_begin_write_goes_on_with_a_transaction_that_only_read(app, session):
    user = make_user(session, "trainer")
    commits = _commits(app)
    session.execute(select(User.name).where(User.id == user.id))  # as the user loader reads
    connection = session.connection()
    begin_write(session)
    assert commits == [] and session.in_transaction() and session.connection() is connection


@POSTGRES_ONLY
def test_begin_write_commits_a_transaction_that_locked_or_wrote(app, session):
    user = make_user(session, "trainer")
    commits = _commits(app)
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    begin_write(session)  # the row lock ends here, as it always did
    assert commits == [1]
    session.execute(update(User).where(User.id == user.id).values(name="Renamed"))
    begin_write(session)  # a statement wrote: committed, as it always was
    assert commits == [1, 1]
