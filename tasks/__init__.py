"""Background jobs: the ``enqueue()`` adapter and the RQ worker.

With ``REDIS_URL`` set, jobs go to an RQ queue and run in ``groundwork worker`` processes. Without
it, the same call runs the job in one of two background threads of this process (like two
workers: a long import does not hold up an export; webhook deliveries have two threads of their own,
as they have a queue of their own on RQ), so the zero-setup install needs no Redis. Jobs get ids and plain values, never ORM
objects. ``enqueue_in()`` runs one later: on RQ's scheduler (``groundwork worker`` runs it), or on a
timer thread of this process.

Webhook deliveries need no call at all: ``init_app`` listens to the app's sessions, and after any
commit that emitted deliveries (``services.webhooks.emit``, the outbox) it queues their delivery.

Redis being down never fails the request that queues a job: ``enqueue()`` logs it and returns a
handle whose status is "delayed" (so does Redis or RQ refusing the hand-over, ``handover_failures``:
the caller's work is committed by then, and must not be reported as failed; a caller whose job is
not remembered anywhere tells its user). Every job's work is remembered in the database (a queued version
or import, a pending delivery, statistics that are due), and ``sweep_overdue`` — at the start of
every ``groundwork worker`` and then once a minute — queues again whatever waited longer than a
minute. A job with a ``job_key`` (exports, imports) is queued under that id, so a sweep never queues
a second copy of one that is still waiting or running; processes asking for one that has finished
take turns under a short Redis lock to remove it and queue it again, and RQ's atomic ``unique``
enqueue refuses a second copy should a turn outlast its lock, so it is queued once.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import event

from app.errors import plain_reason

DEFAULT_QUEUE = "default"
# Webhook deliveries have a queue (and, in-process, threads) of their own: a receiver that answers
# slowly or never holds up other deliveries at most, never an export, an import or the statistics.
WEBHOOK_QUEUE = "webhooks"
QUEUES = (DEFAULT_QUEUE, WEBHOOK_QUEUE)
INLINE_WORKERS = 2
SWEEP_EVERY_SECONDS = 60  # at most this often a delivery job also picks up overdue webhook deliveries
REDIS_CONNECT_TIMEOUT = 2  # seconds: an unreachable Redis must not hold a request for long
LIVE_STATES = ("queued", "started", "scheduled", "deferred")  # a keyed job in one of these is not queued again


@dataclass
class JobHandle:
    """What ``enqueue()`` returns, whichever way the job runs."""

    id: str
    backend: str  # "rq" or "inline"
    status: str  # queued / started / finished / failed; "delayed" when Redis could not take it (see error)
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

        app.extensions["groundwork_redis"] = Redis.from_url(app.config["REDIS_URL"],
                                                            socket_connect_timeout=REDIS_CONNECT_TIMEOUT)
    app.extensions["groundwork_jobs"] = None
    app.extensions["groundwork_jobs_counts"] = {"pending": 0, "failed": 0}  # in-process jobs (/metrics)
    app.extensions["groundwork_jobs_lock"] = threading.Lock()
    app.extensions["groundwork_timers"] = set()
    app.extensions["groundwork_webhook_sweep"] = None
    _watch_outbox(app)


def _watch_outbox(app: Flask) -> None:
    """Deliver what a transaction emitted once it has committed: the outbox of every session of the
    app's factory (requests, jobs, the command line) is taken after its commit and its deliveries are
    queued; after a rollback it is dropped (those rows never existed)."""
    from app.services import webhooks

    factory = app.extensions["groundwork_db"].session_factory
    # The listener lives in the session class's event registry, which the app itself keeps alive (app
    # → factory → class): a strong reference from the listener back to the app would keep every app
    # a process ever made (the test suite makes one per test) and all it holds.
    app_ref = weakref.ref(app)

    def after_commit(session) -> None:
        ids = webhooks.take_outbox(session)
        live = app_ref()
        if ids and live is not None:
            dispatch_deliveries(live, ids)

    def after_rollback(session) -> None:
        webhooks.take_outbox(session)

    event.listen(factory, "after_commit", after_commit)
    event.listen(factory, "after_rollback", after_rollback)


def dispatch_deliveries(app: Flask, delivery_ids: list[int]) -> None:
    """Queue the delivery of committed webhook deliveries (and, at most once a minute, of any overdue
    ones). Never raises: the commit has happened; a delivery that cannot be queued now stays pending
    and the next sweep sends it."""
    from .jobs import deliver_webhooks

    now = time.monotonic()
    last = app.extensions.get("groundwork_webhook_sweep")
    sweep = last is None or now - last >= SWEEP_EVERY_SECONDS
    if sweep:
        app.extensions["groundwork_webhook_sweep"] = now
    try:
        _submit(app, deliver_webhooks, (list(delivery_ids),), {"sweep": sweep}, WEBHOOK_QUEUE)
    except Exception:  # noqa: BLE001 - Redis unreachable, a shut-down pool: the sweep catches up
        app.logger.exception("could not queue webhook deliveries %s; the next sweep sends them", delivery_ids)


def redis_connection(app: Flask | None = None):
    return (app or current_app).extensions.get("groundwork_redis")


def queue_name(app: Flask | None = None, name: str = DEFAULT_QUEUE) -> str:
    return (app or current_app).config["REDIS_PREFIX"] + name


def get_queue(app: Flask | None = None, name: str = DEFAULT_QUEUE):
    from rq import Queue

    return Queue(queue_name(app, name), connection=redis_connection(app))


def _executor(app: Flask, queue: str = DEFAULT_QUEUE) -> ThreadPoolExecutor:
    """The in-process threads of a queue: two for the default queue, two for webhook deliveries."""
    name = "groundwork_jobs" if queue != WEBHOOK_QUEUE else "groundwork_webhook_jobs"
    with app.extensions["groundwork_jobs_lock"]:
        if app.extensions.get(name) is None:
            app.extensions[name] = ThreadPoolExecutor(max_workers=INLINE_WORKERS,
                                                      thread_name_prefix=f"groundwork-{queue}")
        return app.extensions[name]


def stop_inline_jobs(app: Flask, cancel: bool = False) -> None:
    """Wait for the in-process jobs of every queue to end (``cancel``: those not started never run);
    a job queued afterwards starts fresh threads."""
    if cancel:
        cancel_scheduled(app)  # and those waiting on a timer never start
    for name in ("groundwork_jobs", "groundwork_webhook_jobs"):
        executor = app.extensions.get(name)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=cancel)
            app.extensions[name] = None


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
    return _submit(current_app._get_current_object(), func, args, kwargs, queue, job_timeout)


def enqueue_in(seconds: float, func: Callable, *args, job_timeout: int = 3600, queue: str = DEFAULT_QUEUE,
               **kwargs) -> JobHandle:
    """Run ``func(*args, **kwargs)`` in the background after ``seconds`` (at once when 0 or less).

    With Redis the job waits in RQ's scheduled registry until a worker's scheduler moves it onto the
    queue (``groundwork worker`` runs one). Without, a daemon timer of this process submits it to the
    in-process pool; a timer dies with its process, so whatever it is for must be found again later
    (webhook retries are: a delivery left pending past its time is overdue, and the sweep sends it)."""
    _hand_over()
    app = current_app._get_current_object()
    if seconds <= 0:
        return _submit(app, func, args, kwargs, queue, job_timeout)
    if redis_connection(app) is not None:
        try:
            job = get_queue(app, queue).enqueue_in(timedelta(seconds=seconds), func, *args, job_timeout=job_timeout,
                                                   meta=_meta(), **kwargs)
        except redis_down():
            return _delayed(app, func, args)
        except handover_failures() as exc:
            return _not_handed_over(app, func, args, exc)
        return JobHandle(id=job.id, backend="rq", status="scheduled", rq_job=job)
    handle = JobHandle(id=uuid.uuid4().hex, backend="inline", status="scheduled")
    timers: set = app.extensions["groundwork_timers"]

    def fire() -> None:
        timers.discard(timer)
        try:
            _run_inline(app, handle, func, args, kwargs, queue)
        except Exception:  # noqa: BLE001 - the pool was shut down (the app is going away)
            app.logger.exception("could not start the delayed job %s", getattr(func, "__name__", func))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timers.add(timer)
    timer.start()
    return handle


def cancel_scheduled(app: Flask) -> int:
    """Stop the in-process timers of jobs not yet started (an app shutting down, a test ending)."""
    timers: set = app.extensions["groundwork_timers"]
    count = 0
    for timer in list(timers):
        timer.cancel()
        timers.discard(timer)
        count += 1
    return count


def _submit(app: Flask, func: Callable, args: tuple, kwargs: dict, queue: str = DEFAULT_QUEUE,
            job_timeout: int = 3600) -> JobHandle:
    """Hand a job on now, without touching the caller's session (``enqueue`` ends it first). With
    Redis down the job is "delayed": its rows say what is left to do, and the sweep queues it later."""
    if redis_connection(app) is not None:
        try:
            return _submit_rq(app, func, args, kwargs, queue, job_timeout)
        except redis_down():
            return _delayed(app, func, args)
        except handover_failures() as exc:
            return _not_handed_over(app, func, args, exc)
    handle = JobHandle(id=uuid.uuid4().hex, backend="inline", status="queued")
    _run_inline(app, handle, func, args, kwargs, queue)
    return handle


@functools.cache
def redis_down() -> tuple[type[BaseException], ...]:
    """What an unreachable Redis raises. Imported on first use (an ``except`` clause evaluates it only
    when something was raised), so a process without Redis never loads the client."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return RedisConnectionError, RedisTimeoutError


class QueueingBusy(Exception):
    """Another process held the turn to queue this keyed job for longer than this one waits."""


@functools.cache
def handover_failures() -> tuple[type[BaseException], ...]:
    """What Redis or RQ raise when they refuse a job (beyond being unreachable: out of memory, a
    read-only replica, a job record that changed meanwhile). Imported on first use."""
    from redis.exceptions import RedisError
    from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError

    return RedisError, InvalidJobOperation, NoSuchJobError, DuplicateJobError, QueueingBusy


def _not_handed_over(app: Flask, func: Callable, args: tuple, exc: BaseException) -> JobHandle:
    """Log why the job was not queued (with the traceback); the handle says so in plain words."""
    busy = isinstance(exc, QueueingBusy)
    (app.logger.warning if busy else app.logger.exception)(
        "could not queue job %s%r: %s; delayed", getattr(func, "__name__", func), args, exc)
    reason = str(exc) if busy else "the job queue refused it (the server's log says why)"
    return JobHandle(id="", backend="rq", status="delayed", error=reason)


def _delayed(app: Flask, func: Callable, args: tuple) -> JobHandle:
    app.logger.warning("Redis is unreachable: job %s%r is delayed until the sweep queues it again",
                       getattr(func, "__name__", func), args)
    return JobHandle(id="", backend="rq", status="delayed", error="the job queue is unreachable")


def _meta() -> dict | None:
    """The request id of the request that queued a job, for the worker's log lines."""
    request_id = g.get("request_id") if has_app_context() else None
    return {"request_id": request_id} if request_id else None


# How long a process may hold, and wait for, the turn to queue a keyed job (seconds).
QUEUEING_LOCK_SECONDS = 10
QUEUEING_WAIT_SECONDS = 1


def _submit_rq(app: Flask, func: Callable, args: tuple, kwargs: dict, queue: str, job_timeout: int) -> JobHandle:
    """Queue on RQ. A job whose function has a ``job_key`` gets that id (prefixed): while a job of
    that id is waiting or running, the same job is not queued twice (the sweep may ask again).

    Every web process asks for the same keyed job at once when it falls due (each submit checks
    whether the project's statistics are). A job waiting or running answers at once; removing a
    finished one and queueing it again happen under a lock of that id, one process at a time, and
    the enqueue itself is RQ's atomic ``unique`` one, so the job is queued once."""
    connection = redis_connection(app)
    key = getattr(func, "job_key", None)
    if key is None:
        job = get_queue(app, queue).enqueue(func, *args, job_timeout=job_timeout, meta=_meta(), **kwargs)
        return JobHandle(id=job.id, backend="rq", status="queued", rq_job=job)
    from redis.exceptions import LockError, RedisError
    from rq.exceptions import DuplicateJobError

    with app.app_context():
        # RQ ids take letters, digits, "_" and "-" only.
        job_id = re.sub(r"[^A-Za-z0-9_-]", "_", app.config["REDIS_PREFIX"] + key(*args, **kwargs))
    live = _live(_fetch_job(job_id, connection))
    if live is not None:  # the usual answer while a job is due: no lock taken
        return live
    lock = connection.lock(f"{app.config['REDIS_PREFIX']}queueing:{job_id}", timeout=QUEUEING_LOCK_SECONDS,
                           sleep=0.01, blocking_timeout=QUEUEING_WAIT_SECONDS)
    if not lock.acquire():
        live = _live(_fetch_job(job_id, connection))
        if live is not None:
            return live
        raise QueueingBusy(f"another process held the turn to queue {job_id} for over {QUEUEING_WAIT_SECONDS} s")
    try:
        existing = _fetch_job(job_id, connection)
        if existing is not None:
            live = _live(existing)
            if live is not None:  # queued by the process whose turn came first
                return live
            _delete_job(existing)  # finished, failed or stopped: this id is run again
        try:
            job = get_queue(app, queue).enqueue(func, *args, job_timeout=job_timeout, job_id=job_id, meta=_meta(),
                                                unique=True, **kwargs)
        except DuplicateJobError:  # queued meanwhile by a process whose turn outlasted its lock
            live = _live(_fetch_job(job_id, connection))
            if live is None:
                raise
            return live
        return JobHandle(id=job.id, backend="rq", status="queued", rq_job=job)
    finally:
        try:
            lock.release()
        except LockError:
            app.logger.warning("the turn to queue %s outlasted its %s s lock", job_id, QUEUEING_LOCK_SECONDS)
        except RedisError:  # the lock expires by itself; the job's fate was decided above
            pass


def _live(job) -> JobHandle | None:
    """A handle on ``job`` when it is waiting or running, else None."""
    if job is None:
        return None
    status = job.get_status(refresh=False)
    if status is not None and status.value in LIVE_STATES:
        return JobHandle(id=job.id, backend="rq", status=status.value, rq_job=job)
    return None


def _fetch_job(job_id: str, connection):
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        return Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None


def _delete_job(job) -> None:
    """Remove a finished job; one whose record expired (RQ keeps a result for a while) is gone already
    (RQ's ``delete`` then fails reading its status)."""
    from rq.exceptions import InvalidJobOperation

    try:
        job.delete()
    except InvalidJobOperation:
        pass


def _run_inline(app: Flask, handle: JobHandle, func: Callable, args: tuple, kwargs: dict,
                queue: str = DEFAULT_QUEUE) -> None:
    handle.status = "queued"
    counts = app.extensions["groundwork_jobs_counts"]
    lock = app.extensions["groundwork_jobs_lock"]
    request_id = g.get("request_id") if has_app_context() else None
    with lock:
        counts["pending"] += 1

    def run():
        with lock:
            counts["pending"] -= 1
        handle.status = "started"
        with app.app_context():
            g.request_id = request_id  # the log lines of the job name the request that queued it
            try:
                handle.result = func(*args, **kwargs)
                handle.status = "finished"
            except Exception as exc:  # the caller sees the failure on the handle, as with RQ
                app.logger.exception("background job %s failed", getattr(func, "__name__", func))
                handle.status = "failed"
                handle.error = plain_reason(exc)
                with lock:
                    counts["failed"] += 1

    handle.future = _executor(app, queue).submit(run)


def queue_sweep(app: Flask) -> JobHandle:
    """Queue ``sweep_overdue`` (one at a time: it has a job key). Never raises: Redis may be down."""
    from .jobs import sweep_overdue

    try:
        return _submit(app, sweep_overdue, (), {})
    except Exception:  # noqa: BLE001 - the database may be down too; the next minute tries again
        app.logger.exception("could not queue the sweep of overdue jobs")
        return JobHandle(id="", backend="rq", status="delayed")


def run_worker(app: Flask, queues: list[str] | None = None, burst: bool = False, simple: bool = False) -> bool:
    """Work the app's queues inside its app context (jobs find the database through it). The worker
    queues ``sweep_overdue`` when it starts and then once a minute (RQ's maintenance hook), so work a
    dead process or an unreachable Redis left behind is picked up again."""
    from rq import Queue, SimpleWorker, Worker

    connection = redis_connection(app)
    if connection is None:
        raise RuntimeError("REDIS_URL is not set: jobs run in-process, there is nothing for a worker to do")
    names = [queue_name(app, q) for q in (queues or QUEUES)]  # in order: a job waiting on the first goes first
    base = SimpleWorker if simple else Worker

    class SweepingWorker(base):
        def run_maintenance_tasks(self):
            super().run_maintenance_tasks()
            queue_sweep(app)

    # What a dead process left (a lost dispatch, a version whose worker was killed) is looked at first.
    with app.app_context():
        queue_sweep(app)
        worker = SweepingWorker([Queue(n, connection=connection) for n in names], connection=connection,
                                maintenance_interval=SWEEP_EVERY_SECONDS)
        return worker.work(burst=burst, with_scheduler=not burst)
