"""Nothing process-wide keeps an app or its engine alive: once the last reference goes, both are
collected (with their pool, compiled SQL and templates). A listener on a session class or an at-fork
hook holding one strongly would keep every app a process made."""

from __future__ import annotations

import gc
import os
import shutil
import weakref

from tests.conftest import _empty_sqlite_schema, build_app, get_db_engine


def _used_app(tmp_path):
    shutil.copyfile(_empty_sqlite_schema(), tmp_path / "life.sqlite3")
    app = build_app(f"sqlite:///{tmp_path / 'life.sqlite3'}", tmp_path)
    assert app.test_client().get("/login").status_code == 200  # a request, a session, a commit
    engine = get_db_engine(app)
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")
    return weakref.ref(app), weakref.ref(engine)


def test_an_app_and_its_engine_are_collected_once_dropped(tmp_path):
    app, engine = _used_app(tmp_path)
    engine().dispose()
    gc.collect()
    assert app() is None, "something process-wide still holds the app"
    assert engine() is None, "something process-wide still holds the engine"


def test_a_forked_child_still_drops_the_pools_it_inherited(tmp_path):
    from app.db import _ENGINES

    app, engine = _used_app(tmp_path)
    assert engine() in _ENGINES
    pid = os.fork()
    if pid == 0:  # the child: the at-fork hook has dropped the inherited pool without closing it
        os._exit(0 if engine().pool.checkedin() == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert engine().pool.checkedin() >= 1  # the parent's connection is still its own
