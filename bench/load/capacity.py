"""Capacity: step the number of simulated trainers until a trainer endpoint's p95 passes 200 ms or a
request fails, and print the largest count that held.

    .venv/bin/python -m bench.load.capacity --db sqlite
    .venv/bin/python -m bench.load.capacity --db postgres

SQLite is served as ``make run`` serves (``groundwork run``, jobs in-process); PostgreSQL by gunicorn
(two workers per core, 4 threads each, a listening socket per worker: ``LOAD_GUNICORN_WORKERS``,
``LOAD_GUNICORN_THREADS``, ``LOAD_GUNICORN_REUSE_PORT=0`` for one shared socket) with jobs through
Redis and an RQ worker. One locust process
drives every step (trainers sign in once, when they join): each step spawns up to its count, lets
the newcomers settle, then measures. Think time is real by default (20–120 s a task, a beat every
15 s: about 0.08 requests a second per trainer); ``--time-scale S`` divides think time and beat
interval by S and runs 1/S of the users, so each step offers the request rate of its trainer count
with fewer simulated sessions (the table says which). Locust runs on the same machine and takes
CPU from the server: its share is printed. The database is checked after the last step
(``bench.load.check``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

from bench.load import check as load_check
from bench.load.cpu import cpu_seconds, process_tree
from bench.load.seed import seed
from bench.load.server import (
    BIN,
    GUNICORN_REUSE_PORT,
    GUNICORN_THREADS,
    GUNICORN_WORKERS,
    database,
    keepalive_of,
    scratch_folder,
    serve,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS_FILE = os.path.join(os.path.dirname(__file__), "steps.py")
DEFAULT_STEPS = {"sqlite": [50, 100, 200, 300, 400, 500, 750, 1000],
                 "postgres": [100, 250, 500, 1000, 1500, 2000, 2500, 3000, 4000]}
TRAINER_ENDPOINTS = ("heartbeat", "heartbeat (resume)", "submit", "claim /work/[slug]", "skip", "earnings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--steps", help="trainer counts, comma-separated (default: per database)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="divide think time and beat interval by this, and run 1/this of the users")
    parser.add_argument("--settle", type=float, default=30, help="seconds after a step's ramp before measuring")
    parser.add_argument("--measure", type=float, default=120, help="seconds measured per step")
    parser.add_argument("--spawn-rate", type=float, default=2,
                        help="new trainers a second while a step ramps (each signs in: a password hash)")
    parser.add_argument("--gate-ms", type=float, default=200)
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (database, server and locust logs) and print its path")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")] if args.steps else DEFAULT_STEPS[args.db]
    if args.time_scale < 1 or any(s < 1 for s in steps):
        parser.error("--time-scale must be at least 1 and every step positive")
    scale = args.time_scale
    users = [max(1, round(s / scale)) for s in steps]
    folder = scratch_folder()
    out = os.path.join(folder, "steps.jsonl")
    try:
        with database(args.db, folder) as url:
            plan = seed(url, max(users), reviewers=2, instance_path=folder)
            plan_path = os.path.join(folder, "plan.json")
            with open(plan_path, "w") as f:
                json.dump(plan, f)
            acks = os.path.join(folder, "acks.jsonl")
            with serve(args.db, url, folder) as (base_url, processes):
                env = {**os.environ, "PYTHONPATH": ROOT, "LOAD_PLAN": plan_path, "LOAD_ACKS": acks,
                       "LOAD_THINK_MIN": str(20 / scale), "LOAD_THINK_MAX": str(120 / scale),
                       "LOAD_BEAT_SECONDS": str(15 / scale), "LOAD_REVIEWERS": "2", "LOAD_ADMINS": "1",
                       # A walk-away lasts the lease (real minutes, not scaled): fewer of them keep
                       # the share of time trainers spend away what it is at real think times.
                       "LOAD_LAPSE_SHARE": str(0.03 / scale),
                       "LOAD_STEPS": ",".join(map(str, users)), "LOAD_SPAWN_RATE": str(args.spawn_rate),
                       "LOAD_SETTLE": str(args.settle), "LOAD_MEASURE": str(args.measure),
                       "LOAD_GATE_MS": str(args.gate_ms), "LOAD_STEPS_OUT": out,
                       "LOAD_SERVER_KEEPALIVE": str(keepalive_of(args.db)),
                       "LOAD_SERVER_PIDS": ",".join(str(p.pid) for p in processes)}
                server_pids = [p for proc in processes for p in process_tree(proc.pid)]
                web_workers = [p for p in process_tree(processes[0].pid) if p != processes[0].pid]
                worker_cpu = [cpu_seconds([p]) for p in web_workers]
                server_cpu, started = cpu_seconds(server_pids), time.time()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                with open(os.path.join(folder, "locust.log"), "a") as log:
                    subprocess.run(
                        [os.path.join(BIN, "locust"), "-f", STEPS_FILE, "--headless", "--host", base_url,
                         "--loglevel", "WARNING", "--only-summary", "--exit-code-on-error", "0"],
                        env=env, check=True, cwd=folder, stdout=log, stderr=log)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall = time.time() - started
                server_cpu = cpu_seconds([p for proc in processes for p in process_tree(proc.pid)]) - server_cpu
                worker_cpu = [cpu_seconds([p]) - before_p for p, before_p in zip(web_workers, worker_cpu, strict=True)]
            locust_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            problems, summary = load_check.check(url, acks)
        with open(out) as f:
            results = [json.loads(line) for line in f]
        report(args, results, scale, wall, locust_cpu, server_cpu, problems, summary, worker_cpu)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def report(args, results, scale, wall, locust_cpu, server_cpu, problems, summary, worker_cpu=()) -> None:
    load = os.getloadavg()
    setup = ("SQLite, groundwork run (threaded development server, in-process jobs)" if args.db == "sqlite"
             else f"PostgreSQL, gunicorn {GUNICORN_WORKERS} workers × {GUNICORN_THREADS} threads"
                   f"{' (reuse-port)' if GUNICORN_REUSE_PORT else ''}, Redis + 1 RQ worker")
    print(f"# bench.load.capacity — {time.strftime('%Y-%m-%d %H:%M')} — {setup}")
    print(f"# {os.cpu_count()} cores, Python {platform.python_version()}, load average at the end "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; locust on the same machine")
    think = f"think {20 / scale:g}–{120 / scale:g} s, a beat every {15 / scale:g} s"
    print(f"# {think}" + (f" (time scale {scale:g}: each simulated user stands for {scale:g} trainers)"
                          if scale != 1 else " (real think times)")
          + f"; {args.measure:g} s measured per step after {args.settle:g} s settling; gate: p95 ≤ "
            f"{args.gate_ms:g} ms and no errors on trainer endpoints")
    print()
    names = [n.replace("claim /work/[slug]", "claim").replace("heartbeat (resume)", "resume") for n in TRAINER_ENDPOINTS]
    print(f"{'trainers':>8} {'users':>5} {'req/s':>6} {'per':>6} {'err':>4}  "
          + " ".join(f"{n:>10}" for n in names) + f" {'server':>6} {'locust':>6} {'load':>5}  held")
    print(f"{'':>8} {'':>5} {'':>6} {'trainer':>6} {'':>4}  " + " ".join(f"{'p50/p95':>10}" for _ in names)
          + f" {'cores':>6} {'cores':>6} {'avg':>5}")
    best = None
    for r in results:
        if r.get("note"):
            print(f"{r['trainers'] * scale:>8,.0f} {r['trainers']:>5,}  NO: {r['note']}")
            continue
        eps = r["endpoints"]
        rps = sum(v["rps"] for k, v in eps.items() if k in TRAINER_ENDPOINTS)
        cells = [f"{eps[n]['p50']:.0f}/{eps[n]['p95']:.0f}" if n in eps else "-" for n in TRAINER_ENDPOINTS]
        print(f"{r['trainers'] * scale:>8,.0f} {r['trainers']:>5,} {rps:>6.1f} {rps / (r['trainers'] * scale):>6.3f} "
              f"{r['failures']:>4}  " + " ".join(f"{c:>10}" for c in cells)
              + f" {r['server_cores']:>6.2f} {r['locust_cores']:>6.2f} {r['load']:>5.1f}  {'yes' if r['held'] else 'NO'}")
        for e in r.get("errors", ()):  # why a step failed, when it did
            print(f"{'':>8} {'':>5}  {e['count']:,} × {e['endpoint']}: {e['error']}")
        if r["held"]:
            best = r["trainers"] * scale
    print()
    print(f"locust used {locust_cpu:.0f} s of CPU and the server {server_cpu:.0f} s over {wall:.0f} s of wall "
          f"time ({locust_cpu / wall:.2f} and {server_cpu / wall:.2f} cores)")
    if worker_cpu:  # how evenly the web workers shared the requests
        print("gunicorn workers, cores each: " + ", ".join(f"{c / wall:.2f}" for c in sorted(worker_cpu, reverse=True)))
    print(f"largest count that held: {best:,.0f} trainers" if best else "no step held")
    print(f"load check after the run: {'passed' if not problems else 'FAILED'} "
          f"({summary['acknowledged submits']:,} acknowledged submits, {summary['answers stored']:,} answers, "
          f"{summary['seconds on finished work']:,} s counted on finished work = {summary['seconds paid']:,} s paid)")
    for problem in problems:
        print(f"  - {problem}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
