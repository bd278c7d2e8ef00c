"""The trainer's loop over the REST API beside the HTMX workspace loop, in one run on gunicorn + SQLite.

    .venv/bin/python -m bench.api [--cycles 400] [--trainers 4] [--items 20000] [--workers 1]

One project (a label and a preference question over items with two responses), seeded into a
temporary SQLite database; gunicorn serves the app on 127.0.0.1 at a free port. Half the trainers
work through the API with a bearer token, half through the workspace with a session cookie and the
CSRF token, as the page does. The two loops alternate cycle by cycle (trainers in turn), so both
meet the same database as it fills:

- API, two requests: ``POST …/tasks/next`` then ``POST …/tasks/<id>/submit`` (JSON answers by letter);
- HTMX, two requests: ``GET /work/<slug>/task`` (the task fragment) then ``POST …/submit`` (form fields);
- and the one-request cycles each side really makes: the submit's answer already carries the next
  task (the API's ``next``, the workspace's fragment).

Prints median and p99 of each loop and the API/HTMX ratio. The database and its folder are removed
at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import orjson

from app.db import get_db
from app.services import api_tokens
from app.services import projects as project_service
from app.services import users as user_service
from bench.common import add_items, bench_app, percentile

PASSWORD = "bench-password-1"
SLUG = "api-bench"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMIT_RE = re.compile(r'hx-post="(/work/[^"]+/submit)"')
ANSWERS = {"label": "good", "pref": -1}
FORM = {"answer.label": "good", "answer.pref": "-1"}


class Connection:
    """One keep-alive connection with a cookie jar of one cookie."""

    def __init__(self, port: int, headers: dict | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""
        self.headers = headers or {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        h = {**self.headers, **(headers or {})}
        if self.cookie:
            h["Cookie"] = self.cookie
        self.conn.request(method, path, body=body, headers=h)
        response = self.conn.getresponse()
        data = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, data

    def form(self, path: str, fields: dict, headers: dict | None = None):
        return self.request("POST", path, urllib.parse.urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def json(self, path: str, value: dict | None = None):
        return self.request("POST", path, orjson.dumps(value or {}), {"Content-Type": "application/json"})


class ApiTrainer:
    def __init__(self, port: int, token: str):
        self.http = Connection(port, {"Authorization": f"Bearer {token}"})
        self.following: int | None = None

    def next_then_submit(self) -> None:
        status, body = self.http.json(f"/api/v1/projects/{SLUG}/tasks/next")
        assert status == 200, (status, body[:300])
        self.submit(orjson.loads(body)["assignment_id"])

    def submit(self, assignment_id: int | None = None) -> None:
        assignment_id = assignment_id or self.following
        status, body = self.http.json(f"/api/v1/projects/{SLUG}/tasks/{assignment_id}/submit", {"answers": ANSWERS})
        assert status == 201, (status, body[:300])
        self.following = orjson.loads(body)["next"]["assignment_id"]


class HtmxTrainer:
    def __init__(self, port: int, email: str):
        self.http = Connection(port)
        status, page = self.http.request("GET", "/login")
        token = TOKEN_RE.search(page.decode()).group(1)
        status, _ = self.http.form("/login", {"email": email, "password": PASSWORD, "csrf_token": token})
        assert status == 302, status
        status, page = self.http.request("GET", f"/work/{SLUG}")
        assert status == 200, status
        self.token = TOKEN_RE.search(page.decode()).group(1)
        self.htmx = {"HX-Request": "true", "X-CSRFToken": self.token}
        self.following = SUBMIT_RE.search(page.decode()).group(1)

    def task_then_submit(self) -> None:
        status, fragment = self.http.request("GET", f"/work/{SLUG}/task", headers=self.htmx)
        assert status == 200, status
        self.submit(SUBMIT_RE.search(fragment.decode()).group(1))

    def submit(self, url: str | None = None) -> None:
        status, fragment = self.http.form(url or self.following, {**FORM, "csrf_token": self.token}, self.htmx)
        assert status == 200, (status, fragment[:300])
        self.following = SUBMIT_RE.search(fragment.decode()).group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, folder: str, trainers: int, items: int) -> tuple[list[str], list[str]]:
    """The project, its items and trainers: (API tokens, workspace e-mails)."""
    app = bench_app(url, folder)
    with app.app_context():
        session = get_db().session_factory()
        project = project_service.create_project(
            session, name="API bench", slug=SLUG, status="active", overlap=1,
            questions=[{"key": "label", "type": "label", "title": "Label?", "options": {"labels": ["good", "bad"]}},
                       {"key": "pref", "type": "preference", "title": "Which is better?", "options": {"scale": 3}}],
        )
        add_items(session, project, items, responses=2)
        tokens, emails = [], []
        for n in range(trainers):
            for side in ("api", "htmx"):
                email = f"bench-{side}-{n}@example.test"
                user = user_service.create_user(session, email, f"Bench {side} {n}", PASSWORD, ["trainer"])
                project_service.add_member(session, project, user, "trainer")  # commits
                if side == "api":
                    tokens.append(api_tokens.create(session, user, "bench").secret)
                else:
                    emails.append(email)
        session.close()
        get_db().engine.dispose()
    return tokens, emails


def summary(samples: list[float]) -> tuple[float, float]:
    ms = [s * 1000 for s in samples]
    return statistics.median(ms), percentile(ms, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=400, help="cycles of each loop, each kind")
    parser.add_argument("--trainers", type=int, default=4, help="trainers on each side")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    args = parser.parse_args()
    if args.items < 4 * args.cycles + 40 * args.trainers:
        parser.error("--items must cover every cycle of both loops (at least 4 × cycles + 40 × trainers)")
    folder = tempfile.mkdtemp(prefix="gw-bench-api-")
    server = None
    try:
        url = f"sqlite:///{folder}/bench.sqlite3"
        tokens, emails = seed(url, folder, args.trainers, args.items)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "GROUNDWORK_ENV": "development",
               "LOGIN_MAX_FAILURES": "1000", "API_RATE_LIMIT": "1000000 per minute", "EXPORT_DIR": f"{folder}/exports"}
        env.pop("REDIS_URL", None)
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-w", str(args.workers),
             "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:create_app()"],
            env=env,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        api = [ApiTrainer(port, token) for token in tokens]
        htmx = [HtmxTrainer(port, email) for email in emails]
        for trainer in api:  # warm up: a lease each, and the code paths loaded
            trainer.next_then_submit()
        for trainer in htmx:
            trainer.task_then_submit()
        loops = {
            "API next → submit (2 requests)": lambda n: api[n % len(api)].next_then_submit(),
            "HTMX task → submit (2 requests)": lambda n: htmx[n % len(htmx)].task_then_submit(),
            "API submit → next (1 request)": lambda n: api[n % len(api)].submit(),
            "HTMX submit → next (1 request)": lambda n: htmx[n % len(htmx)].submit(),
        }
        samples: dict[str, list[float]] = {name: [] for name in loops}
        names = list(loops)
        for pair in (names[:2], names[2:]):
            for n in range(args.cycles):  # the two sides alternate, cycle by cycle
                for name in pair:
                    start = time.perf_counter()
                    loops[name](n)
                    samples[name].append(time.perf_counter() - start)
        with sqlite3.connect(f"{folder}/bench.sqlite3") as db:
            stored = db.execute("select count(*) from annotations").fetchone()[0]
        print(f"# bench/api.py — {time.strftime('%Y-%m-%d')} — Python {platform.python_version()}, gunicorn "
              f"{args.workers} worker(s), SQLite {sqlite3.sqlite_version}, {os.cpu_count()} cores; "
              f"{args.items:,} items, {args.trainers} trainers a side, {stored:,} answers stored")
        figures = {name: summary(s) for name, s in samples.items()}
        for name, (median, p99) in figures.items():
            print(f"{name:<34} {args.cycles} cycles: median {median:.2f} ms, p99 {p99:.2f} ms")
        for api_name, htmx_name in (names[:2], names[2:]):
            (am, ap), (hm, hp) = figures[api_name], figures[htmx_name]
            print(f"ratio API/HTMX, {api_name.split('(')[1].rstrip(')')}: median {am / hm:.2f}, p99 {ap / hp:.2f}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
