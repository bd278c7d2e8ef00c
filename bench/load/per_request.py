"""What one trainer request costs the server, in-process (no HTTP, no load): statements, database round
trips (statements, BEGIN on PostgreSQL, commits and rollbacks, and connection pings), CPU time, and
Python function calls (counted by cProfile in a pass of its own: a measure of the work that does not
drift with the machine's load, so two trees compare on a noisy day).

    .venv/bin/python -m bench.load.per_request --db sqlite|postgres [--requests 200]

The capacity of a box is about its cores divided by the sum, over the request mix, of rate × CPU;
on PostgreSQL each round trip also waits for the database process. Requests: a heartbeat 15 s after
the last (it counts that time and moves the trainer's clock), a submit through the HTMX door 15 s
after the last beat (counts the stretch, stores the answer, claims and renders the next task), and a
reload of the workspace (the live lease shown again).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import statistics
import time
from datetime import timedelta

from sqlalchemy import create_engine, event, select, update

from app import create_app
from app.db import get_db
from app.models import Assignment, User, utcnow
from bench.load.seed import seed
from bench.load.server import database, scratch_folder

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMIT_RE = re.compile(r'hx-post="(/work/[^"]+/submit)"')
BEAT_RE = re.compile(r'data-heartbeat-url="([^"]+)"')
BEAT_RE_ID = re.compile(r"/tasks/(\d+)/heartbeat")


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

    # A trainer's beat comes 15 s after the last one and counts that time (and a submit counts the
    # stretch since the last beat): before each, on a connection of its own that is not measured,
    # the task's heartbeat mark and the trainer's clock move 15 s back.
    side = create_engine(url)
    with side.begin() as conn:
        trainer_id = conn.scalar(select(User.id).where(User.email == plan["trainers"][0]))

    def rewind():
        assignment_id = int(BEAT_RE_ID.search(state["beat"]).group(1))
        with side.begin() as conn:
            mark = conn.scalar(select(Assignment.last_heartbeat_at).where(Assignment.id == assignment_id))
            back = (mark or utcnow()) - timedelta(seconds=15)  # a task just claimed: as if shown 15 s ago
            conn.execute(update(Assignment).where(Assignment.id == assignment_id).values(last_heartbeat_at=back))
            conn.execute(update(User).where(User.id == trainer_id).values(clock_at=back))

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
    # psycopg sends BEGIN as a round trip of its own; SQLite's is a statement (counted above).
    for name in ("commit", "rollback") + (("begin",) if engine.dialect.name == "postgresql" else ()):
        event.listen(engine, name, other)
    ping = engine.dialect.do_ping  # whoever pings (the pool, or our check of a rested connection) calls this

    def counted_ping(dbapi_connection):
        other()
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted_ping
    results = {}
    for name, fn, before in (("heartbeat", beat, rewind), ("submit (+ next task)", submit, rewind),
                             ("workspace reload", reload, None)):
        for _ in range(10):  # warm up
            fn()
        counts.update({"statements": 0, "round trips": 0})
        cpu, wall = [], []
        for _ in range(requests):
            if before is not None:
                event.remove(engine, "before_cursor_execute", statement)
                before()
                event.listen(engine, "before_cursor_execute", statement)
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        statements, trips = counts["statements"] / requests, counts["round trips"] / requests
        # Python function calls a request (cProfile, a pass of its own): unlike CPU time, the same on a
        # busy machine and a quiet one, so two trees compare on any day.
        profiler, profiled = cProfile.Profile(), max(1, requests // 4)
        for _ in range(profiled):
            if before is not None:
                before()
            profiler.enable()
            fn()
            profiler.disable()
        calls = pstats.Stats(profiler).total_calls / profiled
        results[name] = (statements, trips, statistics.median(cpu) * 1000, statistics.median(wall) * 1000, calls)
    engine.dispose()
    side.dispose()
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
    print(f"{'request':<22} {'statements':>10} {'round trips':>11} {'CPU ms':>7} {'wall ms':>8} {'Python calls':>12}"
          "  (CPU and wall: medians)")
    for name, (stmts, trips, cpu, wall, calls) in results.items():
        print(f"{name:<22} {stmts:>10.1f} {trips:>11.1f} {cpu:>7.2f} {wall:>8.2f} {calls:>12,.0f}")


if __name__ == "__main__":
    main()
