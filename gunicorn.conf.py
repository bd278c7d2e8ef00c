"""gunicorn for Groundwork in production: ``gunicorn -c gunicorn.conf.py 'app:create_app()'``.

gunicorn reads this file by itself when started in this folder. Its settings apply when
``GROUNDWORK_ENV=production``; otherwise (development, the benchmarks) gunicorn keeps its own defaults
and the command line alone decides. Each value can be set from the environment:

- ``GUNICORN_BIND`` (``127.0.0.1:8000``): the address the reverse proxy forwards to.
- ``WEB_CONCURRENCY`` (2 × cores + 1, at most 9): worker processes. Each is a full copy of the app
  with its own database pool, so workers × (pool size + overflow) must stay under PostgreSQL's
  ``max_connections``, with room for the RQ workers and ``groundwork`` commands.
- ``GUNICORN_THREADS`` (4): threads per worker (``gthread``). Requests spend most of their time
  waiting on the database, so threads serve more trainers per megabyte than processes.
- ``GUNICORN_TIMEOUT`` (60): seconds a request may take before its worker is restarted.
- ``GUNICORN_REUSE_PORT`` (off): ``1`` gives every worker a listening socket of its own
  (``SO_REUSEPORT``), and the kernel spreads new connections over them by a hash of their
  addresses: evenly when there are many, coarsely for a proxy that keeps only a few open. With the
  one shared socket, a keep-alive connection stays with whichever worker accepted it, and under load
  one worker can end up with most of them (its threads then queue for its interpreter lock while
  another core idles). The costs: a worker that exits (a restart, a timeout) drops the connections
  still waiting in its own socket's queue, where a shared socket would hand them to another worker;
  and a second gunicorn started by mistake on the same address shares the traffic instead of
  failing to bind. Any of ``1``, ``true``, ``yes``, ``on`` turns it on.
- ``PROMETHEUS_MULTIPROC_DIR``: where the workers write their metrics so that ``/metrics`` adds them
  up. With more than one worker and none given, a fresh temporary folder is made at start.
"""

from __future__ import annotations

import glob
import os
import tempfile

if os.environ.get("GROUNDWORK_ENV", "").strip().lower() == "production":
    bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
    workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1) + 1, 9))
    threads = int(os.environ.get("GUNICORN_THREADS") or 4)
    worker_class = "gthread"
    timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
    graceful_timeout = 30
    keepalive = 5  # seconds an idle keep-alive connection from the proxy stays open
    reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "").strip().lower() in ("1", "true", "yes", "on")
    # The app writes its own line per request (with the request id; LOG_FORMAT=json for a
    # collector); gunicorn's access log would say the same again without it.
    accesslog = None
    errorlog = "-"

    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Set before the workers start: they import the app, and prometheus-client, after the fork.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="groundwork-metrics-")


def on_starting(server) -> None:
    """Counters of a previous run would be added to this one's: start from an empty folder."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for path in glob.glob(os.path.join(folder, "*.db")):
            os.remove(path)


def child_exit(server, worker) -> None:
    """A worker that exited (restarted, killed) no longer reports its live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
