"""What operations sees of each request: its id, its line in the log, its count and latency in /metrics.

The request id comes from a sane ``X-Request-ID`` header (1–128 letters, digits and ``._:-``) or is
made here; it is echoed in the response's ``X-Request-ID`` and named on every log line of the request.

Metrics are labelled by the route's endpoint name (``work.submit``), never by the raw path, so an
address typed at random adds no series: everything that matched no route is ``endpoint="unmatched"``.
Methods outside the usual seven are ``method="other"``.

With several gunicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty folder, in the environment
before the workers start): each worker writes its counters there and /metrics adds them up
(``gunicorn.conf.py`` sets it up and marks a dead worker's files).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import time
import uuid

from flask import Flask, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

from app.db import get_session
from app.services import operations

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Probes answered every few seconds: their request line is DEBUG while they succeed, so it does not
# drown the log (a failing probe is INFO like any other request).
PROBES = frozenset({"home.healthz", "ops.readyz", "ops.metrics"})

# Seconds; the trainer pages aim at 0.2 s (p95), every page at 0.1 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

disable_created_metrics()  # no *_created series: half the lines, and Prometheus does not need them

REQUESTS = Counter("groundwork_http_requests", "HTTP requests by endpoint (the route's name), method and status",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("groundwork_http_request_duration_seconds",
                    "Time from the request's arrival to its response (before the body streams), by endpoint",
                    ["endpoint", "method"], buckets=LATENCY_BUCKETS)

request_log = logging.getLogger("groundwork.request")

# Where /metrics may be scraped from without a token: loopback and the private ranges.
INTERNAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def request_id() -> str | None:
    return g.get("request_id")


def _start() -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex


def _finish(response):
    started = g.pop("request_started", None)
    endpoint = request.endpoint or UNMATCHED
    method = request.method if request.method in METHODS else "other"
    status = response.status_code
    REQUESTS.labels(endpoint, method, str(status)).inc()
    duration = time.perf_counter() - started if started is not None else 0.0
    LATENCY.labels(endpoint, method).observe(duration)
    if g.get("request_id"):
        response.headers[REQUEST_ID_HEADER] = g.request_id
    level = logging.DEBUG if endpoint in PROBES and status < 400 else logging.INFO
    if request_log.isEnabledFor(level):
        request_log.log(level, "%s %s %s", request.method, endpoint, status,
                        extra={"status": status, "duration_ms": round(duration * 1000, 1)})
    return response


def register(app: Flask) -> None:
    """Before every other hook: the id and the clock start first, the count and the log line come last
    (after-request functions run in reverse order), so even a request another hook refused is counted.
    (The log format itself is set up by ``create_app``, for every app: ``app.logs``.)"""
    app.before_request(_start)
    app.after_request(_finish)
    if app.config.get("REDIS_URL"):
        from redis import Redis

        timeout = app.config.get("READY_TIMEOUT", 2.0)
        # Its own client with timeouts: a probe or a scrape never hangs on a Redis that went away.
        app.extensions["groundwork_ops_redis"] = Redis.from_url(
            app.config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout)
    else:
        app.extensions["groundwork_ops_redis"] = None
    app.extensions["groundwork_probe_engine"] = None


# --- who may read /metrics ------------------------------------------------------------------------


def _internal(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    return any(ip in network for network in INTERNAL_NETWORKS)


def metrics_refusal() -> int | None:
    """None when this request may read /metrics, else the status to answer.

    With ``METRICS_TOKEN`` set: ``Authorization: Bearer <token>`` (compared in constant time), else 401.
    Without: only a loopback or private address, and, unless ``TRUSTED_PROXIES`` says who forwards,
    no request that came through a proxy (a proxy on the same machine would make everyone look local);
    anyone else gets 404."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
        return None if ok else 401
    if not current_app.config.get("TRUSTED_PROXIES") and any(h in request.headers for h in FORWARDING_HEADERS):
        return 404
    return None if _internal(request.remote_addr) else 404


# --- the series computed at scrape time ------------------------------------------------------------


def _ops_redis(app: Flask):
    return app.extensions.get("groundwork_ops_redis")


class ScrapeCollector:
    """Gauges read when /metrics is asked for: jobs waiting, jobs failed, trainers at work. Each is
    one cheap read (LLEN, ZCARD, one indexed COUNT); one that fails is left out and logged."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from tasks import DEFAULT_QUEUE, queue_name

        app = self.app
        depth = GaugeMetricFamily("groundwork_queue_depth", "Jobs waiting to start (RQ queue length, or in-process "
                                  "jobs pending in this process)", labels=["queue", "backend"])
        failed = GaugeMetricFamily("groundwork_jobs_failed", "Failed jobs (RQ's failed-job registry, or in-process "
                                   "jobs that failed since this process started)", labels=["queue", "backend"])
        connection = _ops_redis(app)
        if connection is not None:
            from rq import Queue

            try:
                queue = Queue(queue_name(app, DEFAULT_QUEUE), connection=connection)
                waiting = queue.count
                dead = queue.failed_job_registry.get_job_count(cleanup=False)
            except Exception as exc:  # noqa: BLE001 - Redis away: the series is missing, /readyz says why
                app.logger.warning("metrics: Redis did not answer (%s); queue series left out", type(exc).__name__)
            else:
                depth.add_metric([DEFAULT_QUEUE, "rq"], waiting)
                failed.add_metric([DEFAULT_QUEUE, "rq"], dead)
        else:
            counts = app.extensions.get("groundwork_jobs_counts") or {}
            depth.add_metric([DEFAULT_QUEUE, "inline"], counts.get("pending", 0))
            failed.add_metric([DEFAULT_QUEUE, "inline"], counts.get("failed", 0))
        yield depth
        yield failed
        try:
            active = operations.active_trainers(get_session())
        except Exception as exc:  # noqa: BLE001 - the database away: left out, /readyz says why
            get_session().rollback()
            app.logger.warning("metrics: the database did not answer (%s); active trainers left out",
                               type(exc).__name__)
        else:
            yield GaugeMetricFamily("groundwork_active_trainers", "Trainers holding a live lease (an active, "
                                    "unexpired assignment)", value=active)


def registries(app: Flask) -> list[CollectorRegistry]:
    """What /metrics writes: this process's (or, in multiprocess mode, every worker's) request series and
    process metrics, then the scrape-time gauges."""
    from prometheus_client import REGISTRY, ProcessCollector

    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(ScrapeCollector(app))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)
        ProcessCollector(registry=scrape)  # the worker that answered: process metrics are not added up
        return [workers, scrape]
    return [REGISTRY, scrape]
