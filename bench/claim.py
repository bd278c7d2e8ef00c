"""Queue claim speed: latency on a 100k-item project (SQLite and PostgreSQL) at several fill levels,
and throughput with 8 concurrent claimers on PostgreSQL.

    .venv/bin/python -m bench.claim [--items 100000] [--claims 1000] [--skip-postgres]

Each measured claim is `next_task` for a trainer with no open task (so it really claims); the
trainer then submits, untimed, so the next call claims again.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import time

from sqlalchemy import update

from app.db import get_db
from app.models import Item, Project
from app.services import assignment as queue
from app.services import projects as project_service
from bench.common import (
    Timer,
    add_items,
    add_trainers,
    add_trainers_bulk,
    bench_app,
    scratch_database,
    summary_ms,
)

QUESTION = [{"key": "label", "type": "label", "title": "Label", "options": {"labels": ["yes", "no"]}}]


def build(url: str, items: int, trainers: int, overlap: int = 1):
    app = bench_app(url)
    with app.app_context():
        session = get_db().session_factory()
        project = project_service.create_project(
            session, name="Bench", slug="bench", status="active", overlap=overlap, questions=QUESTION
        )  # commits
        add_items(session, project, items)
        ids = add_trainers(session, project, trainers)
        session.close()
    return app, ids


def fill(app, fraction: float, items: int, overlap: int) -> None:
    """Mark the oldest share of items as complete, as if the project were that far along."""
    with app.app_context():
        session = get_db().session_factory()
        session.execute(update(Item).where(Item.id <= int(items * fraction)).values(done_count=overlap, is_open=False))
        session.commit()
        session.close()


def claim_latency(app, trainer_ids: list[int], claims: int) -> list[float]:
    samples = []
    with app.app_context():
        session = get_db().session_factory()
        project = session.query(Project).filter_by(slug="bench").one()
        for n in range(claims):
            trainer = trainer_ids[n % len(trainer_ids)]
            with Timer() as t:
                a = queue.next_task(session, trainer, project)
            samples.append(t.seconds)
            queue.submit(session, a.id, trainer, {"label": "yes"})
        session.close()
    return samples


def _claimer(url: str, folder: str, trainer_id: int, seconds: float, start_at: float, out) -> None:
    from bench.common import bench_app as make

    app = make(url, folder)
    count = 0
    with app.app_context():
        session = get_db().session_factory()
        project = session.query(Project).filter_by(slug="bench").one()
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            a = queue.next_task(session, trainer_id, project)
            if a is None:
                break
            queue.submit(session, a.id, trainer_id, {"label": "yes"})
            count += 1
        session.close()
    out.put(count)


def _fresh_claimer(url: str, folder: str, trainer_ids: list[int], seconds: float, start_at: float, out) -> None:
    """Claims only: every call is a different trainer taking their first task."""
    from bench.common import bench_app as make

    app = make(url, folder)
    count = 0
    with app.app_context():
        session = get_db().session_factory()
        project = session.query(Project).filter_by(slug="bench").one()
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        for trainer_id in trainer_ids:
            if time.time() >= end:
                break
            if queue.next_task(session, trainer_id, project) is None:
                break
            count += 1
        session.close()
    out.put(count)


def concurrent_throughput(url: str, trainer_ids, seconds: float = 10.0, target=None) -> tuple[int, float]:
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="gw-bench-")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0  # let every process import and connect first
    procs = [ctx.Process(target=target or _claimer, args=(url, folder, t, seconds, start_at, out)) for t in trainer_ids]
    try:
        for p in procs:
            p.start()
        total = sum(out.get() for _ in procs)
        for p in procs:
            p.join()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return total, total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-latency", action="store_true", help="only the concurrency runs")
    args = parser.parse_args()
    print(f"# bench/claim.py — {time.strftime('%Y-%m-%d')} — Python {platform.python_version()}, "
          f"{mp.cpu_count()} cores")
    kinds = [] if args.skip_latency else ["sqlite"] + ([] if args.skip_postgres else ["postgresql"])
    for kind in kinds:
        for fraction in (0.0, 0.5, 0.9):
            with scratch_database(kind) as url:
                app, trainers = build(url, args.items, trainers=20)
                fill(app, fraction, args.items, overlap=1)
                samples = claim_latency(app, trainers, args.claims)
                print(f"{kind:<10} claim latency, {args.items:,} items, {int(fraction * 100):>2}% complete: "
                      f"{summary_ms(samples)}")
    if not args.skip_postgres:
        with scratch_database("postgresql") as url:
            app, _none = build(url, args.items, trainers=0)
            with app.app_context():
                session = get_db().session_factory()
                project = session.query(Project).filter_by(slug="bench").one()
                pool = add_trainers_bulk(session, project, 8 * 4000)
                session.close()
            shares = [pool[i::8] for i in range(8)]
            total, rate = concurrent_throughput(url, shares, target=_fresh_claimer)
            print(f"postgresql 8 concurrent claimers (processes), claims by {len(pool):,} trainers: "
                  f"{total} in 10 s = {rate:.0f} claims/s")
        with scratch_database("postgresql") as url:
            _app, trainers = build(url, args.items, trainers=8)
            total, rate = concurrent_throughput(url, trainers)
            print(f"postgresql 8 concurrent trainers (processes), full claim+submit cycles: {total} in 10 s = "
                  f"{rate:.0f}/s")


if __name__ == "__main__":
    main()
