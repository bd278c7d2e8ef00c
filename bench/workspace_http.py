"""The trainer's loop over HTTP: next task → submit, against gunicorn (one worker, SQLite).

    .venv/bin/python -m bench.workspace_http [--cycles 200]

Measures (a) the HTMX cycle the workspace really makes — one POST that stores the answer and
returns the next task — and (b) a two-request cycle: GET the task fragment, then POST the answer.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from app.db import get_db
from app.services import projects as project_service
from app.services import users as user_service
from bench.common import add_items, bench_app, summary_ms

PASSWORD = "bench-password-1"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMIT_RE = re.compile(r'hx-post="(/work/[^"]+/submit)"')


class Client:
    """One keep-alive connection with a cookie jar of one cookie: enough for this loop."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        body = urllib.parse.urlencode(form) if form is not None else None
        h = {"Cookie": self.cookie, **(headers or {})}
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=h)
        response = self.conn.getresponse()
        data = response.read().decode()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="gw-bench-http-")
    url = f"sqlite:///{folder}/bench.sqlite3"
    app = bench_app(url, folder)
    with app.app_context():
        session = get_db().session_factory()
        trainer = user_service.create_user(session, "bench-trainer@example.test", "Bench Trainer", PASSWORD, ["trainer"])
        project = project_service.create_project(
            session, name="HTTP bench", slug="http-bench", status="active", overlap=1,
            questions=[{"key": "label", "type": "label", "title": "Label?", "options": {"labels": ["good", "bad"]}}],
        )
        project_service.add_member(session, project, trainer, "trainer")  # each of these commits
        add_items(session, project, 5000)
        session.close()

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "GROUNDWORK_ENV": "development",
           "LOGIN_MAX_FAILURES": "1000"}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "app:create_app()"],
        env=env,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        client = Client(port)
        status, page = client.request("GET", "/login")
        token = TOKEN_RE.search(page).group(1)
        status, _ = client.request("POST", "/login", {"email": "bench-trainer@example.test", "password": PASSWORD,
                                                      "csrf_token": token})
        assert status == 302, status
        status, page = client.request("GET", "/work/http-bench")
        assert status == 200, status
        token = TOKEN_RE.search(page).group(1)
        htmx = {"HX-Request": "true", "X-CSRFToken": token}
        submit_url = SUBMIT_RE.search(page).group(1)

        def cycle_htmx() -> None:
            nonlocal submit_url
            status, fragment = client.request("POST", submit_url, {"answer.label": "good", "csrf_token": token}, htmx)
            assert status == 200, (status, fragment[:300])
            submit_url = SUBMIT_RE.search(fragment).group(1)

        def cycle_two_requests() -> None:
            status, fragment = client.request("GET", "/work/http-bench/task", headers=htmx)
            assert status == 200
            url = SUBMIT_RE.search(fragment).group(1)
            status, _ = client.request("POST", url, {"answer.label": "bad", "csrf_token": token}, htmx)
            assert status == 200

        for _ in range(10):  # warm up
            cycle_htmx()
        results = {}
        for name, fn in (("htmx submit→next (1 request)", cycle_htmx), ("next then submit (2 requests)", cycle_two_requests)):
            samples = []
            for _ in range(args.cycles):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            results[name] = samples
        print(f"# bench/workspace_http.py — {time.strftime('%Y-%m-%d')} — Python {platform.python_version()}, "
              f"gunicorn 1 worker, SQLite, {os.cpu_count()} cores")
        for name, samples in results.items():
            print(f"{name:<32} {args.cycles} cycles: {summary_ms(samples)}; "
                  f"{1 / statistics.median(samples):.0f} cycles/s at the median")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
