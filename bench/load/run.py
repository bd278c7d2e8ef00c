"""One load run: seed a fresh database, serve it, run the locust users headless for a bounded time,
print requests/s, p50/p95/p99 per endpoint and errors, then check the database.

    .venv/bin/python -m bench.load.run --db sqlite --users 50 --seconds 120
    .venv/bin/python -m bench.load.run --db postgres --users 500 --seconds 300 --think 20 120

Think time is real by default (20–120 s a task, a beat every 15 s). Exits 1 when the check finds a
problem or a request failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from bench.load import check as load_check
from bench.load.seed import seed
from bench.load.server import BIN, database, keepalive_of, scratch_folder, serve

LOCUSTFILE = os.path.join(os.path.dirname(__file__), "locustfile.py")


@dataclass
class Row:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


def read_stats(prefix: str) -> list[Row]:
    rows = []
    with open(f"{prefix}_stats.csv") as f:
        for r in csv.DictReader(f):
            if r["Name"] == "Aggregated" or int(r["Request Count"]) == 0:
                continue
            rows.append(Row(r["Name"], int(r["Request Count"]), int(r["Failure Count"]), float(r["Requests/s"]),
                            float(r["50%"]), float(r["95%"]), float(r["99%"])))
    return rows


def table(rows: list[Row]) -> str:
    lines = [f"{'endpoint':<22} {'requests':>9} {'errors':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"]
    for r in sorted(rows, key=lambda r: -r.requests):
        lines.append(f"{r.name:<22} {r.requests:>9,} {r.failures:>7,} {r.rps:>7.1f} {r.p50:>7.0f} {r.p95:>7.0f} {r.p99:>7.0f}")
    total = sum(r.requests for r in rows)
    lines.append(f"{'all':<22} {total:>9,} {sum(r.failures for r in rows):>7,} {sum(r.rps for r in rows):>7.1f}")
    return "\n".join(lines)


def locust_env(plan_path: str, acks_path: str, think: tuple[float, float], beat: float, reviewers: int,
               keepalive: float = 0) -> dict:
    return {**os.environ, "LOAD_PLAN": plan_path, "LOAD_ACKS": acks_path, "LOAD_THINK_MIN": str(think[0]),
            "LOAD_THINK_MAX": str(think[1]), "LOAD_BEAT_SECONDS": str(beat), "LOAD_REVIEWERS": str(reviewers),
            "LOAD_ADMINS": "1", "LOAD_SERVER_KEEPALIVE": str(keepalive)}


def run_load(base_url: str, folder: str, plan_path: str, users: int, seconds: int, spawn_rate: float,
             think: tuple[float, float], beat: float, reviewers: int, keepalive: float = 0) -> tuple[list[Row], str]:
    """Run locust headless against base_url (127.0.0.1 only); returns its stats and the acks file."""
    acks = os.path.join(folder, "acks.jsonl")
    prefix = os.path.join(folder, "locust")
    total = users + reviewers + 1
    subprocess.run(
        [os.path.join(BIN, "locust"), "-f", LOCUSTFILE, "--headless", "--host", base_url, "-u", str(total),
         "-r", str(spawn_rate), "-t", f"{seconds}s", "--csv", prefix, "--only-summary", "--stop-timeout", "5",
         "--loglevel", "WARNING", "--exit-code-on-error", "0"],
        env=locust_env(plan_path, acks, think, beat, reviewers, keepalive), check=True, cwd=folder,
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(folder, "locust.log"), "a"),
    )
    return read_stats(prefix), acks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--users", type=int, default=50, help="simulated trainers")
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--think", type=float, nargs=2, default=(20, 120), metavar=("MIN", "MAX"))
    parser.add_argument("--beat", type=float, default=15, help="seconds between heartbeats")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (database, logs, acks)")
    args = parser.parse_args()
    if args.users < 1 or args.seconds < 1:
        parser.error("--users and --seconds must be positive")
    folder = scratch_folder()
    try:
        with database(args.db, folder) as url:
            plan = seed(url, args.users, args.reviewers, instance_path=folder)
            plan_path = os.path.join(folder, "plan.json")
            with open(plan_path, "w") as f:
                json.dump(plan, f)
            with serve(args.db, url, folder) as (base_url, _):
                rows, acks = run_load(base_url, folder, plan_path, args.users, args.seconds, args.spawn_rate,
                                      tuple(args.think), args.beat, args.reviewers, keepalive_of(args.db))
            print(f"# {args.users} trainers, {args.reviewers} reviewers, 1 admin, {args.seconds} s, {args.db}, "
                  f"think {args.think[0]:g}–{args.think[1]:g} s, a beat every {args.beat:g} s")
            print(table(rows))
            problems, summary = load_check.check(url, acks)
        print()
        for name, value in summary.items():
            print(f"{name:<26} {value:,}")
        for problem in problems:
            print(f"  - {problem}")
        print("load check:", "FAILED" if problems else "passed")
        if problems or any(r.failures for r in rows):
            sys.exit(1)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
