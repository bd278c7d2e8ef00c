"""Background jobs: the ``enqueue()`` adapter and the RQ worker.

With ``REDIS_URL`` set, jobs go to an RQ queue and run in ``groundwork worker`` processes. Without
it, the same call runs the job in one of two background threads of this process (like two
workers: a long import does not hold up an export), so the zero-setup install needs no Redis. Jobs get ids and plain values, never ORM
objects.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, g

from app.errors import plain_reason

DEFAULT_QUEUE = "default"
INLINE_WORKERS = 2


@dataclass
class JobHandle:
    """What ``enqueue()`` returns, whichever way the job runs."""

    id: str
    backend: str  # "rq" or "inline"
    status: str  # queued / started / finished / failed
    result: Any = None
    error: str | None = None
    rq_job: Any = field(default=None, repr=False)
    future: Future | None = field(default=None, repr=False)

    def refresh(self) -> JobHandle:
        if self.rq_job is not None:
            self.rq_job.refresh()
            self.status = self.rq_job.get_status(refresh=False).value
            self.result = self.rq_job.return_value(refresh=False)
        return self

    def wait(self, timeout: float | None = None) -> JobHandle:
        """Block until an in-process job has finished (RQ jobs: refresh only)."""
        if self.future is not None:
            self.future.result(timeout)
        return self.refresh()


def init_app(app: Flask) -> None:
    app.extensions["groundwork_redis"] = None
    if app.config.get("REDIS_URL"):
        from redis import Redis

        app.extensions["groundwork_redis"] = Redis.from_url(app.config["REDIS_URL"])
    app.extensions["groundwork_jobs"] = None
    app.extensions["groundwork_jobs_lock"] = threading.Lock()


def redis_connection(app: Flask | None = None):
    return (app or current_app).extensions.get("groundwork_redis")


def queue_name(app: Flask | None = None, name: str = DEFAULT_QUEUE) -> str:
    return (app or current_app).config["REDIS_PREFIX"] + name


def get_queue(app: Flask | None = None, name: str = DEFAULT_QUEUE):
    from rq import Queue

    return Queue(queue_name(app, name), connection=redis_connection(app))


def _executor(app: Flask) -> ThreadPoolExecutor:
    with app.extensions["groundwork_jobs_lock"]:
        if app.extensions["groundwork_jobs"] is None:
            app.extensions["groundwork_jobs"] = ThreadPoolExecutor(max_workers=INLINE_WORKERS, thread_name_prefix="groundwork-job")
        return app.extensions["groundwork_jobs"]


def _hand_over() -> None:
    """End the caller's transaction before a job is handed on. The job runs in another thread or
    process: it must see everything the caller committed, and must not wait on a lock the caller
    still holds (a request that changes state holds SQLite's write lock from its first statement,
    and a request may wait for an in-process job). The services that create a job's rows commit
    them; a caller holding changes it has not committed is a bug, refused rather than committed."""
    session = g.get("db_session")
    if session is None or not session.in_transaction():
        return
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise RuntimeError("enqueue() while the caller holds changes it has not committed")
    session.commit()  # nothing of the caller's is pending: this only ends the transaction


def enqueue(func: Callable, *args, job_timeout: int = 3600, queue: str = DEFAULT_QUEUE, **kwargs) -> JobHandle:
    """Run ``func(*args, **kwargs)`` in the background: on RQ when Redis is configured, else in a thread.
    The caller's transaction ends first (``_hand_over``)."""
    _hand_over()
    if redis_connection() is not None:
        job = get_queue(name=queue).enqueue(func, *args, job_timeout=job_timeout, **kwargs)
        return JobHandle(id=job.id, backend="rq", status="queued", rq_job=job)
    app = current_app._get_current_object()
    handle = JobHandle(id=uuid.uuid4().hex, backend="inline", status="queued")

    def run():
        handle.status = "started"
        with app.app_context():
            try:
                handle.result = func(*args, **kwargs)
                handle.status = "finished"
            except Exception as exc:  # the caller sees the failure on the handle, as with RQ
                app.logger.exception("background job %s failed", getattr(func, "__name__", func))
                handle.status = "failed"
                handle.error = plain_reason(exc)

    handle.future = _executor(app).submit(run)
    return handle


def run_worker(app: Flask, queues: list[str] | None = None, burst: bool = False, simple: bool = False) -> bool:
    """Work the app's queues inside its app context (jobs find the database through it)."""
    from rq import Queue, SimpleWorker, Worker

    connection = redis_connection(app)
    if connection is None:
        raise RuntimeError("REDIS_URL is not set: jobs run in-process, there is nothing for a worker to do")
    names = [queue_name(app, q) for q in (queues or [DEFAULT_QUEUE])]
    worker_class = SimpleWorker if simple else Worker
    with app.app_context():
        worker = worker_class([Queue(n, connection=connection) for n in names], connection=connection)
        return worker.work(burst=burst, with_scheduler=not burst)
