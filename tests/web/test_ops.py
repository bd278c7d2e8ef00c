"""Operations endpoints: /healthz, /readyz, /metrics (and who may read it), the request id, JSON logs."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import text

from app import logs
from app.migrate import alembic_config
from app.models import utcnow
from app.services import assignment as queue
from app.services import operations
from tests.conftest import REDIS_URL, build_app, get_db_engine, login
from tests.factories import PASSWORD, make_label_project, make_user

# Nothing listens on port 1 of this machine: a database or Redis "down" without stopping anything shared.
CLOSED_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/groundwork"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def stamp():
    """Mark an app's test schema (made from the models) as migrated to a revision; the version table
    goes afterwards (the PostgreSQL test database outlives the test)."""
    stamped = []

    def stamp(app, revision: str = "head") -> None:
        command.stamp(alembic_config(get_db_engine(app)), revision)
        stamped.append(app)

    yield stamp
    for app in stamped:
        with get_db_engine(app).begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def samples(body: str, name: str) -> dict[tuple, float]:
    """``{labels: value}`` of one metric in Prometheus' text format."""
    found = {}
    for line in body.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(1) or "")))
            found[labels] = float(match.group(2))
    return found


def scrape(client, **kwargs) -> str:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.content_type.startswith("text/plain; version=")
    return response.get_data(as_text=True)


# --- /healthz ----------------------------------------------------------------------------------------


def test_healthz_answers_without_the_database(tmp_path):
    app = build_app(CLOSED_POSTGRES, tmp_path, REDIS_URL=CLOSED_REDIS)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


# --- /readyz -----------------------------------------------------------------------------------------


def test_readyz_is_ready_on_a_migrated_database(app, client, stamp):
    stamp(app)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ok"
    assert response.json["checks"]["database"] == "ok" and response.json["checks"]["migrations"] == "ok"
    assert response.json["checks"]["redis"].startswith("not configured")
    assert "failed" not in response.json


def test_readyz_fails_on_a_schema_that_is_not_at_head(app, client, stamp):
    response = client.get("/readyz")  # tables made from the models, never migrated
    assert response.status_code == 503
    assert response.json["failed"] == ["migrations"] and "groundwork db upgrade" in response.json["checks"]["migrations"]
    assert response.headers["Retry-After"] == "5"

    from alembic.script import ScriptDirectory

    head = sorted(operations.code_heads())[0]
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    stamp(app, previous)  # one revision back
    response = client.get("/readyz")
    assert response.status_code == 503 and "behind" in response.json["checks"]["migrations"]

    with get_db_engine(app).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "does not know (f00dfeedbeef)" in response.json["checks"]["migrations"]


@pytest.mark.postgres
@pytest.mark.parametrize("url", [CLOSED_POSTGRES, "missing-database"])
def test_readyz_fails_when_postgresql_is_down(url, postgres_url, tmp_path):
    if url == "missing-database":  # the server answers, the database is not there
        url = postgres_url.rsplit("/", 1)[0] + "/groundwork_no_such_database"
    app = build_app(url, tmp_path)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["failed"] == ["database", "migrations"]
    assert response.json["checks"]["database"] == "unreachable"
    assert "127.0.0.1" not in response.get_data(as_text=True)  # connection details stay in the log


@pytest.mark.redis
def test_readyz_fails_when_redis_is_down_and_passes_when_it_answers(redis_app, tmp_path, database_url, stamp):
    stamp(redis_app)
    response = redis_app.test_client().get("/readyz")
    assert response.status_code == 200 and response.json["checks"]["redis"] == "ok"

    down = build_app(database_url, tmp_path / "down", REDIS_URL=CLOSED_REDIS)
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["failed"] == ["redis"] and response.json["checks"]["redis"] == "unreachable"


# --- /metrics ----------------------------------------------------------------------------------------


def test_metrics_count_requests_by_endpoint_and_status_with_latency(app, client):
    before = samples(scrape(client), "groundwork_http_requests_total")
    key = (("endpoint", "home.healthz"), ("method", "GET"), ("status", "200"))
    for _ in range(3):
        client.get("/healthz")
    client.get("/login")
    body = scrape(client)
    after = samples(body, "groundwork_http_requests_total")
    assert after[key] - before.get(key, 0) == 3
    assert after[(("endpoint", "auth.login"), ("method", "GET"), ("status", "200"))] >= 1
    counts = samples(body, "groundwork_http_request_duration_seconds_count")
    assert counts[(("endpoint", "home.healthz"), ("method", "GET"))] >= 3
    buckets = samples(body, "groundwork_http_request_duration_seconds_bucket")
    assert (("endpoint", "home.healthz"), ("le", "+Inf"), ("method", "GET")) in buckets
    assert "process_resident_memory_bytes" in body  # process metrics


def test_unknown_addresses_add_no_label_per_path(app, client):
    client.get("/no/such/page/0")
    before = samples(scrape(client), "groundwork_http_requests_total")
    for n in range(25):
        client.get(f"/no/such/page/{n}?x={n}")
        client.open(f"/another/{n}", method="BREW")
    after = samples(scrape(client), "groundwork_http_requests_total")
    new = set(after) - set(before)
    assert all(dict(labels)["endpoint"] == "unmatched" for labels in new)
    assert len(new) <= 1  # at most one series: unmatched, method "other", status 404
    assert after[(("endpoint", "unmatched"), ("method", "GET"), ("status", "404"))] \
        - before[(("endpoint", "unmatched"), ("method", "GET"), ("status", "404"))] == 25
    assert not any("no/such" in value or "BREW" in value for labels in after for _, value in labels)


def test_active_trainers_counts_live_leases_once_per_trainer(app, client, session):
    trainers = [make_user(session, "trainer") for _ in range(3)]
    first = make_label_project(session, items=4, trainers=trainers)
    second = make_label_project(session, items=4, trainers=trainers[:1])
    session.commit()
    queue.next_task(session, trainers[0].id, first)
    queue.next_task(session, trainers[0].id, second)  # two leases, one trainer
    lapsed = queue.next_task(session, trainers[1].id, first)
    lapsed.expires_at = utcnow() - timedelta(seconds=1)  # stopped working: the lease ran out
    session.commit()
    assert samples(scrape(client), "groundwork_active_trainers") == {(): 1.0}
    queue.next_task(session, trainers[2].id, first)
    assert samples(scrape(client), "groundwork_active_trainers") == {(): 2.0}


def test_in_process_queue_series(app, client):
    body = scrape(client)
    assert samples(body, "groundwork_queue_depth") == {(("backend", "inline"), ("queue", "default")): 0.0}
    assert (("backend", "inline"), ("queue", "default")) in samples(body, "groundwork_jobs_failed")


def fail_on_purpose():
    raise RuntimeError("this job fails on purpose")


def test_in_process_jobs_waiting_and_failed(app, client):
    import threading

    from tasks import INLINE_WORKERS, enqueue

    key = (("backend", "inline"), ("queue", "default"))
    release = threading.Event()
    with app.app_context():
        busy = [enqueue(release.wait, 30) for _ in range(INLINE_WORKERS)]  # every job thread taken
        waiting = enqueue(fail_on_purpose)
    try:
        assert samples(scrape(client), "groundwork_queue_depth")[key] == 1
    finally:
        release.set()
    for handle in busy:
        handle.wait(30)
    assert waiting.wait(30).status == "failed"
    body = scrape(client)
    assert samples(body, "groundwork_queue_depth")[key] == 0
    assert samples(body, "groundwork_jobs_failed")[key] == 1


@pytest.mark.redis
def test_rq_queue_depth_and_failed_jobs(redis_app, rq_worker):
    from tasks import enqueue

    client = redis_app.test_client()
    key = (("backend", "rq"), ("queue", "default"))
    assert samples(scrape(client), "groundwork_queue_depth")[key] == 0
    with redis_app.app_context():
        enqueue(fail_on_purpose)
        enqueue(fail_on_purpose)
    body = scrape(client)
    assert samples(body, "groundwork_queue_depth")[key] == 2
    assert samples(body, "groundwork_jobs_failed")[key] == 0
    rq_worker(redis_app)
    body = scrape(client)
    assert samples(body, "groundwork_queue_depth")[key] == 0
    assert samples(body, "groundwork_jobs_failed")[key] == 2


def test_metrics_answer_with_the_database_and_redis_down(tmp_path):
    app = build_app(CLOSED_POSTGRES, tmp_path, REDIS_URL=CLOSED_REDIS)
    body = scrape(app.test_client())
    assert "groundwork_http_requests_total" in body  # what this process knows is still served
    assert "groundwork_active_trainers " not in body and not samples(body, "groundwork_queue_depth")


def test_metrics_with_a_token_need_it(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'm.sqlite3'}", tmp_path, METRICS_TOKEN="s3cret-metrics-token-0123")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401  # even from loopback
    response = client.get("/metrics", headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Basic s3cret-metrics-token-0123"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token-0123"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token-0123"},
                      environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200


@pytest.mark.parametrize(("address", "status"), [
    ("127.0.0.1", 200), ("::1", 200), ("10.2.3.4", 200), ("172.20.0.5", 200), ("192.168.1.20", 200),
    ("fd00::5", 200), ("::ffff:127.0.0.1", 200),
    ("203.0.113.9", 404), ("172.32.0.1", 404), ("2001:db8::1", 404), ("", 404),
])
def test_metrics_without_a_token_serve_internal_addresses_only(tmp_path, address, status):
    app = build_app(f"sqlite:///{tmp_path / 'm.sqlite3'}", tmp_path)
    response = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == status


def test_metrics_through_a_proxy(tmp_path):
    # No proxy declared: a forwarded request may come from anyone (a proxy on this machine looks local).
    app = build_app(f"sqlite:///{tmp_path / 'm.sqlite3'}", tmp_path / "a")
    client = app.test_client()
    assert client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.5"}).status_code == 404
    assert client.get("/metrics", headers={"X-Real-IP": "127.0.0.1"}).status_code == 404
    # One proxy declared: the forwarded address is the client's, and it decides.
    app = build_app(f"sqlite:///{tmp_path / 'm.sqlite3'}", tmp_path / "b", TRUSTED_PROXIES=1)
    client = app.test_client()
    assert client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.5"}).status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404


# --- the request id and JSON logs --------------------------------------------------------------------


@pytest.mark.parametrize(("given", "kept"), [
    ("3f2a9c1e-77b0-4c1b-9f3e-2a9d8c7b6a5f", True), ("lb.1234:abc_DEF-9", True), ("x" * 128, True),
    ("x" * 129, False), ("", False), ("bad id", False), ("-leading-dash", False), ("a\u00e9b", False),
    ("ok\tX-Evil: 1", False), ("a/../b", False), ("<script>", False),
])
def test_request_id_is_taken_when_sane_and_made_otherwise(app, client, given, kept):
    response = client.get("/healthz", headers={"X-Request-ID": given} if given else {})
    echoed = response.headers["X-Request-ID"]
    if kept:
        assert echoed == given
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_every_response_has_its_own_request_id(app, client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5
    assert client.get("/no/such/page").headers["X-Request-ID"]  # errors too


@pytest.fixture
def json_app(database_url, tmp_path, app):
    """The app with JSON logs on (the ``app`` fixture's database and schema)."""
    json_app = build_app(database_url, tmp_path / "json", LOG_FORMAT="json", LOG_LEVEL="INFO")
    yield json_app
    logs.remove(json_app)


def log_lines(captured: str) -> list[dict]:
    lines = [line for line in captured.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_logs_name_the_request_and_the_user(json_app, session, capsys):
    trainer = make_user(session, "trainer")
    session.commit()
    client = json_app.test_client()
    capsys.readouterr()
    client.get("/login", headers={"X-Request-ID": "sign-in-page-42"})
    login(client, trainer.email, PASSWORD)
    response = client.get("/work/", headers={"X-Request-ID": "trainer-page-7"})
    assert response.status_code == 200
    lines = log_lines(capsys.readouterr().err)
    page = [line for line in lines if line.get("request_id") == "sign-in-page-42"]
    assert page == [page[0]] and page[0]["logger"] == "groundwork.request"
    assert page[0]["endpoint"] == "auth.login" and page[0]["method"] == "GET"
    assert page[0]["status"] == 200 and isinstance(page[0]["duration_ms"], float)
    assert page[0]["level"] == "INFO" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", page[0]["time"])
    assert "user_id" not in page[0]
    page = [line for line in lines if line.get("request_id") == "trainer-page-7"]
    assert page and page[-1]["endpoint"] == "work.index" and page[-1]["user_id"] == trainer.id


def test_json_logs_carry_exceptions_with_their_traceback(json_app, capsys):
    def explode():
        raise RuntimeError("the view broke")

    explode.access_roles = ("public",)
    json_app.add_url_rule("/explode", "explode", explode)
    capsys.readouterr()
    response = json_app.test_client().get("/explode", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "boom-1"
    lines = [line for line in log_lines(capsys.readouterr().err) if line.get("request_id") == "boom-1"]
    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["message"] == "unhandled error" and error["exception"] == "RuntimeError"
    assert "Traceback (most recent call last)" in error["traceback"] and "the view broke" in error["traceback"]
    assert error["endpoint"] == "explode"
    assert lines[-1]["logger"] == "groundwork.request" and lines[-1]["status"] == 500


def test_probes_log_only_when_they_fail(json_app, stamp, capsys):
    client = json_app.test_client()
    capsys.readouterr()
    assert client.get("/readyz", headers={"X-Request-ID": "probe-8"}).status_code == 503  # not migrated
    stamp(json_app)
    assert client.get("/readyz", headers={"X-Request-ID": "probe-9"}).status_code == 200
    assert client.get("/healthz", headers={"X-Request-ID": "probe-10"}).status_code == 200
    assert client.get("/metrics", headers={"X-Request-ID": "probe-11"}).status_code == 200
    lines = log_lines(capsys.readouterr().err)
    assert [(line["request_id"], line["status"]) for line in lines if line.get("request_id", "").startswith("probe-")] \
        == [("probe-8", 503)], lines


def log_inside_a_job():
    logging.getLogger("groundwork.test").warning("inside the job")


@pytest.mark.redis
def test_json_logs_of_an_rq_job_name_the_job_and_the_request(redis_app, redis_prefix, database_url, tmp_path,
                                                              rq_worker, capsys):
    from tasks import get_queue

    app = build_app(database_url, tmp_path / "json", REDIS_URL=REDIS_URL, REDIS_PREFIX=redis_prefix,
                    LOG_FORMAT="json")
    try:
        job = get_queue(app).enqueue(log_inside_a_job, meta={"request_id": "queued-by-7"})
        capsys.readouterr()
        rq_worker(app)
        lines = [line for line in log_lines(capsys.readouterr().err) if line["logger"] == "groundwork.test"]
        assert lines == [{**lines[0], "message": "inside the job", "job_id": job.id, "request_id": "queued-by-7"}]
    finally:
        logs.remove(app)


def test_json_logs_of_an_in_process_job_name_the_request_that_queued_it(json_app, capsys):
    from tasks import enqueue

    capsys.readouterr()
    with json_app.test_request_context("/", headers={"X-Request-ID": "queued-by-8"}):
        json_app.preprocess_request()  # the request's hooks: its id
        handle = enqueue(log_inside_a_job)
    handle.wait(30)
    lines = [line for line in log_lines(capsys.readouterr().err) if line["logger"] == "groundwork.test"]
    assert [line["request_id"] for line in lines] == ["queued-by-8"]


def test_text_logs_are_the_default(app):
    assert app.config["LOG_FORMAT"] == "text"
    assert not any(isinstance(h, logs._StderrHandler) for h in logging.getLogger().handlers)


# --- HSTS --------------------------------------------------------------------------------------------


def test_hsts_is_sent_over_https_only_when_set(tmp_path):
    off = build_app(f"sqlite:///{tmp_path / 'h.sqlite3'}", tmp_path / "off").test_client()
    assert "Strict-Transport-Security" not in off.get("/healthz", base_url="https://localhost").headers
    app = build_app(f"sqlite:///{tmp_path / 'h.sqlite3'}", tmp_path / "on", HSTS_SECONDS=31536000)
    client = app.test_client()
    assert client.get("/healthz", base_url="https://localhost").headers["Strict-Transport-Security"] \
        == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/healthz").headers  # plain HTTP: browsers ignore it


# --- several gunicorn workers ------------------------------------------------------------------------


def _listening_sockets(port: int) -> int:
    """How many sockets listen on this port of 127.0.0.1 (Linux: /proc/net/tcp, state 0A)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return sum(1 for line in f.readlines()[1:] if line.split()[1] == local and line.split()[3] == "0A")


@pytest.mark.slow
@pytest.mark.parametrize("reuse_port", ["0", "1"], ids=["shared-socket", "socket-per-worker"])
def test_metrics_add_up_every_gunicorn_worker(tmp_path, reuse_port):
    """gunicorn with two workers and gunicorn.conf.py: whichever worker answers /metrics reports the
    requests both served, whether the workers share one listening socket or each has its own."""
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from tests.conftest import _empty_sqlite_schema

    root = Path(__file__).resolve().parents[2]
    database = tmp_path / "gunicorn.sqlite3"
    shutil.copyfile(_empty_sqlite_schema(), database)
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"")  # a previous run's file: removed at start
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GROUNDWORK_ENV": "production", "SECRET_KEY": "test", "DATABASE_URL": f"sqlite:///{database}",
           "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2", "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_REUSE_PORT": reuse_port,
           "PROMETHEUS_MULTIPROC_DIR": str(folder), "EXPORT_DIR": str(tmp_path / "exports")}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c",
                               str(root / "gunicorn.conf.py"), "app:create_app()"], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.1)
        key = (("endpoint", "home.healthz"), ("method", "GET"), ("status", "200"))
        before = samples(urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode(),
                         "groundwork_http_requests_total")[key]  # the start-up probes
        served = 0
        pids = set()
        with ThreadPoolExecutor(16) as pool:
            while len(pids) < 2 and served < 2000:  # bursts of parallel requests, until both workers served
                # With a socket per worker, a connection the kernel gave to a worker still loading the
                # app waits in that worker's queue until it is ready (on a busy machine, seconds).
                list(pool.map(lambda _: urllib.request.urlopen(f"{base}/healthz", timeout=60).read(), range(50)))
                served += 50
                pids = {p.stem.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")}
        assert len(pids) == 2 and "999999" not in pids, pids
        assert _listening_sockets(port) == (2 if reuse_port == "1" else 1)
        for _ in range(4):  # each scrape may land on either worker: every one reports the sum
            body = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
            assert samples(body, "groundwork_http_requests_total")[key] == before + served
            assert "process_resident_memory_bytes" in body
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
