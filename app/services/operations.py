"""What the operations endpoints ask of the database: is it there, is its schema the code's, and how
many trainers hold a live lease. Each is one cheap statement, safe to run on every probe or scrape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.migrate import alembic_config
from app.models import Assignment, utcnow


@dataclass(frozen=True)
class Check:
    """One readiness check: ``ok``, and a short reason a person can act on when it is not."""

    ok: bool
    detail: str = "ok"


def probe_engine(url: str, timeout: float) -> Engine:
    """An engine for readiness probes, apart from the app's pool: no pool (a probe never waits for a
    connection that busy requests hold), connecting and each statement bounded by ``timeout``."""
    if url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool, connect_args={"timeout": timeout})
    millis = max(1, int(timeout * 1000))
    return create_engine(url, poolclass=NullPool,
                         connect_args={"connect_timeout": max(1, round(timeout)),
                                       "options": f"-c statement_timeout={millis}"})


@lru_cache(maxsize=1)
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(the migration heads this code expects, every revision it knows), read once per process."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())


def code_heads() -> frozenset[str]:
    return _revisions()[0]


def check_database(engine: Engine) -> tuple[Check, Check]:
    """(the database answers ``SELECT 1``, its schema is at the code's migration head). A database
    that cannot be reached fails both; the exception is the caller's to log."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        # Alembic's version table read directly: its MigrationContext logs two lines per probe.
        current = frozenset(
            conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            if inspect(conn).has_table("alembic_version") else ()
        )
    heads, known = _revisions()
    if current == heads:
        return Check(True), Check(True)
    if not current:
        return Check(True), Check(False, "the database has no schema yet: run `groundwork db upgrade`")
    unknown = current - known
    if unknown:
        return Check(True), Check(False, "the database is at a revision this code does not know "
                                         f"({', '.join(sorted(unknown))}): deploy the matching code")
    return Check(True), Check(False, f"migrations are behind ({', '.join(sorted(current))} → "
                                     f"{', '.join(sorted(heads))}): run `groundwork db upgrade`")


def active_trainers(session: Session, now: datetime | None = None) -> int:
    """Trainers holding at least one live lease (an active assignment not yet expired): one COUNT over
    the partial index of active assignments, as many rows as there are people at work."""
    now = now or utcnow()
    return session.scalar(
        select(func.count(func.distinct(Assignment.trainer_id)))
        .where(Assignment.status == "active", Assignment.expires_at > now)
    ) or 0
