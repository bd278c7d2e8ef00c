"""What one trainer request costs the server, in-process (no HTTP, no load): statements, database round
trips (statements, commits and rollbacks, and connection pings) and CPU time.

    .venv/bin/python -m bench.load.per_request --db sqlite|postgres [--requests 200]

The capacity of a box is about its cores divided by the sum, over the request mix, of rate × CPU;
on PostgreSQL each round trip also waits for the database process. Requests: a heartbeat, a submit
through the HTMX door (stores the answer and claims and renders the next task), and a reload of the
workspace (the live lease shown again).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import time

from sqlalchemy import event

from app import create_app
from app.db import get_db
from bench.load.seed import seed
from bench.load.server import database, scratch_folder

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMIT_RE = re.compile(r'hx-post="(/work/[^"]+/submit)"')
BEAT_RE = re.compile(r'data-heartbeat-url="([^"]+)"')


def measure(url: str, folder: str, requests: int) -> dict[str, tuple[float, float, float, float]]:
    plan = seed(url, trainers=2, reviewers=1, items=requests * 2 + 100, overlap=1, instance_path=folder)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "per-request", "REDIS_URL": None,
                      "INSTANCE_PATH": folder})
    client = app.test_client()
    token = TOKEN_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"email": plan["trainers"][0], "password": plan["password"], "csrf_token": token})
    page = client.get(f"/work/{plan['slug']}").get_data(as_text=True)
    token = TOKEN_RE.search(page).group(1)
    state = {"submit": SUBMIT_RE.search(page).group(1), "beat": BEAT_RE.search(page).group(1)}
    headers = {"X-CSRFToken": token, "HX-Request": "true"}

    def beat():
        assert client.post(state["beat"], headers=headers).status_code == 200

    def submit():
        r = client.post(state["submit"], data={"answer.label": "good", "answer.score": "3", "csrf_token": token},
                        headers=headers)
        assert r.status_code == 200, r.status_code
        fragment = r.get_data(as_text=True)
        state["submit"], state["beat"] = SUBMIT_RE.search(fragment).group(1), BEAT_RE.search(fragment).group(1)

    def reload():
        assert client.get(f"/work/{plan['slug']}").status_code == 200

    with app.app_context():
        engine = get_db().engine
    counts = {"statements": 0, "round trips": 0}

    def statement(*_a):
        counts["statements"] += 1
        counts["round trips"] += 1

    def other(*_a):
        counts["round trips"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    for name in ("commit", "rollback"):
        event.listen(engine, name, other)
    ping = engine.dialect.do_ping  # whoever pings (the pool, or our check of a rested connection) calls this

    def counted_ping(dbapi_connection):
        other()
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted_ping
    results = {}
    for name, fn in (("heartbeat", beat), ("submit (+ next task)", submit), ("workspace reload", reload)):
        for _ in range(10):  # warm up
            fn()
        counts.update({"statements": 0, "round trips": 0})
        cpu, wall = [], []
        for _ in range(requests):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        results[name] = (counts["statements"] / requests, counts["round trips"] / requests,
                         statistics.median(cpu) * 1000, statistics.median(wall) * 1000)
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if not 1 <= args.requests <= 100_000:
        parser.error("--requests must be between 1 and 100000")
    folder = scratch_folder()
    try:
        with database(args.db, folder) as url:
            results = measure(url, folder, args.requests)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"# bench.load.per_request — {time.strftime('%Y-%m-%d %H:%M')} — {args.db}, {args.requests} requests "
          f"each, in-process; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'request':<22} {'statements':>10} {'round trips':>11} {'CPU ms':>7} {'wall ms':>8}  (medians)")
    for name, (stmts, trips, cpu, wall) in results.items():
        print(f"{name:<22} {stmts:>10.1f} {trips:>11.1f} {cpu:>7.2f} {wall:>8.2f}")


if __name__ == "__main__":
    main()
