"""Start and stop what a load run targets, on 127.0.0.1: the default SQLite setup (``groundwork run``,
as ``make run`` serves) or gunicorn + PostgreSQL + Redis with RQ workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

from bench.common import scratch_database
from bench.load.cpu import process_tree

BIN = os.path.dirname(sys.executable)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# gunicorn on a small box: two workers per core, threads for the requests that wait on the database
# (fewer threads per interpreter lock held the submit's tail better than a worker per core × 8).
GUNICORN_WORKERS = int(os.environ.get("LOAD_GUNICORN_WORKERS", str(2 * (os.cpu_count() or 2))))
GUNICORN_THREADS = int(os.environ.get("LOAD_GUNICORN_THREADS", "4"))
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new connections
# over them; with one shared socket, whichever worker wakes first takes a keep-alive client for good.
GUNICORN_REUSE_PORT = os.environ.get("LOAD_GUNICORN_REUSE_PORT", "1") != "0"
# Seconds gunicorn keeps an idle keep-alive connection open (the production gunicorn.conf.py's value).
GUNICORN_KEEPALIVE = 5
RQ_WORKERS = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database(kind: str, folder: str):
    """A fresh database URL of this kind for one run (SQLite in the run's folder); a PostgreSQL database
    is dropped afterwards."""
    return scratch_database(kind, folder, prefix="groundwork_load")


def _wait_for(port: int, processes: list[subprocess.Popen], seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        for p in processes:
            if p.poll() is not None:
                raise RuntimeError(f"the server exited with {p.returncode} before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {seconds:.0f} s")


def _wait_for_workers(master: int, count: int, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while len(process_tree(master)) - 1 < count:
        if time.time() > deadline:
            raise RuntimeError(f"gunicorn did not start its {count} workers within {seconds:.0f} s")
        time.sleep(0.2)


def keepalive_of(kind: str) -> float:
    """Seconds the server keeps an idle connection before closing it (0: until the client closes it,
    as the threaded development server does): the load clients open a new connection rather than
    send on one the server may be closing (see ``locustfile.Signed``)."""
    return 0 if kind == "sqlite" else GUNICORN_KEEPALIVE


@contextmanager
def serve(kind: str, database_url: str, folder: str, log=None):
    """Serve the app on a free port of 127.0.0.1; yields the base URL. SQLite: ``groundwork run``
    (the development server, threaded, in-process jobs). PostgreSQL: gunicorn with
    GUNICORN_WORKERS × GUNICORN_THREADS, jobs through Redis and an RQ worker. The processes run in
    the scratch folder, so only the command line configures them (no gunicorn.conf.py is read)."""
    port = free_port()
    # Every simulated client signs in from 127.0.0.1: the login throttle's per-address count (attempts
    # in flight count until they succeed) must allow thousands of them at once.
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "load-test", "GROUNDWORK_ENV": "development",
           "EXPORT_DIR": os.path.join(folder, "exports"), "LOGIN_MAX_FAILURES": "100000"}
    env.pop("REDIS_URL", None)
    log = log or open(os.path.join(folder, "server.log"), "a")
    processes: list[subprocess.Popen] = []
    if kind == "sqlite":
        processes.append(subprocess.Popen(
            [os.path.join(BIN, "groundwork"), "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder))
    else:
        env["REDIS_URL"] = REDIS_URL
        env["REDIS_PREFIX"] = f"groundwork-load-{uuid.uuid4().hex[:8]}:"
        processes.append(subprocess.Popen(
            [os.path.join(BIN, "gunicorn"), "-w", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS),
             "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "4096",
             "--keep-alive", str(GUNICORN_KEEPALIVE),
             *(["--reuse-port"] if GUNICORN_REUSE_PORT else []), "app:create_app()"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder))
        for _ in range(RQ_WORKERS):
            processes.append(subprocess.Popen([os.path.join(BIN, "groundwork"), "worker"], env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True, cwd=folder))
    try:
        _wait_for(port, processes)
        if kind != "sqlite":  # with a socket per worker the port answers once the first worker is up
            _wait_for_workers(processes[0].pid, GUNICORN_WORKERS)
        yield f"http://127.0.0.1:{port}", processes
    finally:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def scratch_folder() -> str:
    return tempfile.mkdtemp(prefix="gw-load-")
