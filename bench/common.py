"""Shared set-up for the benchmarks: a throw-away database filled fast with Core inserts."""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import tempfile
import time
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from app import create_app
from app.db import get_db
from app.models import Base, Item, ProjectMember, User, UserRole

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(kind: str, folder: str | None = None, prefix: str = "groundwork_bench"):
    """Yield a database URL of the given kind ('sqlite', else PostgreSQL); drop it afterwards. A SQLite
    file goes in ``folder`` when given (the caller removes it), else in a temporary folder of its own."""
    if kind == "sqlite":
        if folder is not None:
            yield f"sqlite:///{folder}/bench.sqlite3"
            return
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite:///{scratch}/bench.sqlite3"
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_app(url: str, folder: str | None = None):
    """An app on ``url`` with its tables; without a ``folder`` its instance folder is a temporary one,
    removed when the benchmark's process ends."""
    if folder is None:
        folder = tempfile.mkdtemp(prefix="gw-bench-")
        atexit.register(shutil.rmtree, folder, True)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "REDIS_URL": None, "INSTANCE_PATH": folder})
    with app.app_context():
        Base.metadata.create_all(get_db().engine)
    return app


def add_trainers(session, project, count: int) -> list[int]:
    """Trainers without argon2 hashing (the benchmarks never sign in through the login form)."""
    ids = []
    for n in range(count):
        user = User(email=f"bench{n}-{uuid.uuid4().hex[:6]}@example.test", name=f"Bench {n}", password_hash="x")
        user.role_rows = [UserRole(role="trainer")]
        session.add(user)
        session.flush()
        session.add(ProjectMember(project_id=project.id, user_id=user.id, role="trainer", status="active"))
        ids.append(user.id)
    session.commit()
    return ids


def add_trainers_bulk(session, project, count: int) -> list[int]:
    """Many trainers at once with Core inserts (thousands, for claim-throughput runs)."""
    tag = uuid.uuid4().hex[:6]
    session.execute(insert(User), [
        {"email": f"bulk{n}-{tag}@example.test", "name": f"Bulk {n}", "password_hash": "x", "status": "active"}
        for n in range(count)
    ])
    ids = list(session.scalars(select(User.id).where(User.email.like(f"bulk%-{tag}@example.test")).order_by(User.id)))
    session.execute(insert(UserRole), [{"user_id": i, "role": "trainer"} for i in ids])
    session.execute(insert(ProjectMember), [
        {"project_id": project.id, "user_id": i, "role": "trainer", "status": "active"} for i in ids
    ])
    session.commit()
    return ids


def add_items(session, project, count: int, responses: int = 1, batch: int = 10_000) -> None:
    rows = []
    for n in range(count):
        rows.append({
            "project_id": project.id, "external_id": f"b-{n}",
            "context": [{"role": "user", "content": f"Prompt {n}: explain something in detail."}],
            "responses": [{"id": f"r{i}", "text": f"Response {i} to prompt {n}."} for i in range(1, responses + 1)],
            "meta": {}, "is_gold": False, "priority": 0, "done_count": 0, "active_count": 0, "is_open": True,
        })
        if len(rows) == batch:
            session.execute(insert(Item), rows)
            rows.clear()
    if rows:
        session.execute(insert(Item), rows)
    session.commit()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (f"median {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
            f"max {max(ms):.2f} ms over {len(ms)}")


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
