"""Operations: readiness for the load balancer, metrics for Prometheus. (Liveness, ``/healthz``, is
``home.healthz``: it answers without touching the database or Redis.)"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.services import operations

from . import observability
from .access import public

bp = Blueprint("ops", __name__)


def _probe_engine():
    engine = current_app.extensions.get("groundwork_probe_engine")
    if engine is None:
        engine = operations.probe_engine(current_app.config["DATABASE_URL"], current_app.config["READY_TIMEOUT"])
        current_app.extensions["groundwork_probe_engine"] = engine
    return engine


def _failed(name: str, exc: Exception, what: str) -> str:
    current_app.logger.warning("readiness: %s failed: %s: %s", name, type(exc).__name__, str(exc).strip()[:300])
    return what


@bp.get("/readyz")
@public
def readyz():
    """200 when this process can serve: the database answers ``SELECT 1`` within ``READY_TIMEOUT``
    seconds, its schema is at the code's migration head, and Redis answers when ``REDIS_URL`` is set.
    503 otherwise, naming what failed. The reasons say what to do; connection details stay in the log."""
    checks: dict[str, str] = {}
    failed: list[str] = []
    try:
        database, migrations = operations.check_database(_probe_engine())
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database means "not ready"
        checks["database"] = _failed("database", exc, "unreachable")
        checks["migrations"] = "unknown (the database is unreachable)"
        failed += ["database", "migrations"]
    else:
        for name, check in (("database", database), ("migrations", migrations)):
            checks[name] = check.detail
            if not check.ok:
                failed.append(name)
    redis = current_app.extensions.get("groundwork_ops_redis")
    if redis is None:
        checks["redis"] = "not configured (jobs run in this process)"
    else:
        try:
            redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001 - refused, timed out, authentication: all "not ready"
            checks["redis"] = _failed("redis", exc, "unreachable")
            failed.append("redis")
    body = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
        response = jsonify(body)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    else:
        response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
@public
def metrics():
    """Prometheus' text format. Protected by ``METRICS_TOKEN`` or, without one, served only to
    loopback and private addresses (``observability.metrics_refusal``)."""
    refusal = observability.metrics_refusal()
    if refusal == 401:
        return Response("A metrics token is required: Authorization: Bearer <METRICS_TOKEN>\n", status=401,
                        mimetype="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if refusal:
        abort(refusal)  # the same page as any address that does not exist
    body = b"".join(generate_latest(registry) for registry in observability.registries(current_app))
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
