"""Cost that does not grow with the data: pages and statistics at 10k, 100k and 1M annotations.

For each size, builds a preference project (bench.export's builder: items with two responses,
overlap 2, 200 trainers), spreads its work over 26 weeks ending this week, approves every week but
the last two (timesheets, as an operating project has), gives it a budget, reviews one annotation
in twenty, and adds an admin, a client and the trainers' memberships. Then, through the Flask test
client, times each page (median of ``--requests`` after one warm-up) signed in as the admin (the
client's pages as the client, Earnings as the busiest trainer), and the statistics job
(``compute_project_stats``, what ``groundwork metrics`` runs) in a child process with its peak RSS.

    .venv/bin/python -m bench.pages [--sizes 10000,100000,1000000] [--postgres] [--keep FOLDER]

With ``--keep`` the SQLite files stay in FOLDER and are reused on the next run (building 1M
annotations takes a few minutes); without it everything is removed afterwards. ``--postgres`` also
copies each database into a scratch PostgreSQL database (COPY) and times the same there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PASSWORD = "bench-password-123"
ADMIN, CLIENT = 100_001, 100_002
WEEKS = 26
PAGES = [  # (name, who, path)
    ("admin: projects", "admin", "/admin/"),
    ("admin: project", "admin", "/admin/projects/bench-pairs"),
    ("admin: quality", "admin", "/admin/projects/bench-pairs/quality"),
    ("admin: payroll", "admin", "/admin/payroll"),
    ("review: index", "admin", "/review/"),
    ("review: project", "admin", "/review/bench-pairs"),
    ("review: queue", "admin", "/review/bench-pairs/queue"),
    ("client: projects", "client", "/client/"),
    ("client: project", "client", "/client/bench-pairs"),
    ("client: quality", "client", "/client/bench-pairs/quality"),
    ("trainer: earnings", "trainer", "/work/earnings"),
]


# --- building ------------------------------------------------------------------------------------------


def build(path: Path, annotations: int) -> None:
    """bench.export's project, then what the pages need: weeks of work, timesheets, reviews, people."""
    from app.services.users import hash_password
    from bench.export import TRAINERS, build_database

    build_database(path, annotations)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = datetime.now(UTC).replace(tzinfo=None)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    start = monday - timedelta(weeks=WEEKS - 1)
    span = (now - start).total_seconds() - 3600
    step = span / max(annotations, 1)
    fmt = "%Y-%m-%d %H:%M:%S.%f"

    def at(n: int) -> str:
        return (start + timedelta(seconds=n * step)).strftime(fmt)

    # Work in id order over 26 weeks; each task takes its annotation's active seconds.
    db.executemany("UPDATE assignments SET assigned_at = ?, expires_at = ?, active_seconds = ? WHERE id = ?",
                   ((at(n), at(n), 60 + n % 300, n) for n in range(1, annotations + 1)))
    db.executemany("UPDATE annotations SET submitted_at = ? WHERE id = ?",
                   ((at(n), n) for n in range(1, annotations + 1)))
    db.execute("UPDATE projects SET budget_cents = ? WHERE id = 1", (annotations * 400,))
    # One annotation in twenty reviewed (approved, some rejected), one in fifty waiting in the queue.
    db.execute("UPDATE annotations SET review_status = CASE WHEN id % 100 = 0 THEN 'rejected' ELSE 'approved' END "
               "WHERE id % 20 = 0")
    db.execute("UPDATE annotations SET review_reason = 'sampled' WHERE id % 50 = 1")
    db.execute("INSERT INTO reviews (annotation_id, reviewer_id, verdict, comment, created_at) "
               f"SELECT id, {ADMIN}, CASE review_status WHEN 'rejected' THEN 'reject' ELSE 'approve' END, '', "
               "submitted_at FROM annotations WHERE review_status != 'unreviewed'")
    stamp = now.strftime(fmt)
    hashed = hash_password(PASSWORD)
    db.executemany("INSERT INTO users (id, email, name, password_hash, status, created_at) VALUES (?, ?, ?, ?, "
                   "'active', ?)", [(ADMIN, "admin@example.test", "Admin", hashed, stamp),
                                    (CLIENT, "client@example.test", "Client", hashed, stamp)])
    db.execute("UPDATE users SET password_hash = ? WHERE id = 1", (hashed,))
    db.executemany("INSERT INTO user_roles (user_id, role) VALUES (?, ?)",
                   [(ADMIN, "admin"), (CLIENT, "client")] + [(t, "trainer") for t in range(1, TRAINERS + 1)])
    db.executemany("INSERT INTO project_members (project_id, user_id, role, status, created_at) "
                   "VALUES (1, ?, ?, 'active', ?)",
                   [(CLIENT, "client", stamp)] + [(t, "trainer", stamp) for t in range(1, TRAINERS + 1)])
    # Every week but the last two approved: one timesheet per trainer and week, as the payroll writes it.
    approved_before = (monday - timedelta(weeks=1)).strftime(fmt)
    db.execute(
        "INSERT INTO timesheets (trainer_id, project_id, week_start, billable_seconds, rate_cents, amount_cents, "
        f"status, approved_by, approved_at) SELECT trainer_id, 1, week, total, 3000, (total * 3000 + 1800) / 3600, "
        f"'approved', {ADMIN}, ? FROM (SELECT trainer_id, date(assigned_at, 'weekday 0', '-6 days') AS week, "
        "SUM(MIN(active_seconds, 1800)) AS total FROM assignments WHERE assigned_at < ? "
        "GROUP BY trainer_id, week)", (stamp, approved_before))
    db.commit()
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def copy_to_postgres(path: Path, url: str) -> None:
    """Every table of the SQLite file into an empty PostgreSQL database, with COPY."""
    import psycopg
    from sqlalchemy import Boolean, create_engine
    from sqlalchemy.engine import make_url

    from app.models import Base

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    source = sqlite3.connect(path)
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as target:
        for table in Base.metadata.sorted_tables:
            columns = [c.name for c in table.columns]
            booleans = [isinstance(c.type, Boolean) for c in table.columns]
            cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table.name}")
            with target.cursor().copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                while rows := cursor.fetchmany(50_000):
                    for row in rows:
                        copy.write_row([bool(v) if b and v is not None else v
                                        for v, b in zip(row, booleans, strict=True)])
            if "id" in columns:
                target.execute(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                               f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)")
        for statement in INDEXES:
            target.execute(statement)
        target.commit()
        target.autocommit = True
        target.execute("VACUUM (ANALYZE)")  # as autovacuum would have: index-only scans need the visibility map
    source.close()


# The indexes of migrations d5b7e9a1c3f4 and f3c1a7e5d9b2, for a schema made from models that do not declare them yet
# (IF NOT EXISTS: a no-op once they do).
INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_assignments_trainer_project_assigned ON assignments (trainer_id, project_id, "
    "assigned_at)",
    "CREATE INDEX IF NOT EXISTS ix_assignments_project_assigned ON assignments (project_id, assigned_at)",
    "CREATE INDEX IF NOT EXISTS ix_annotations_assignment_excluded ON annotations (assignment_id, excluded)",
    "CREATE INDEX IF NOT EXISTS ix_items_project_progress ON items (project_id, is_gold, done_count, active_count)",
    # migration f3c1a7e5d9b2
    "CREATE INDEX IF NOT EXISTS ix_annotations_review_order ON annotations (project_id, review_status, review_reason, "
    "submitted_at, id)",
]


def ensure_indexes_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    for statement in INDEXES:
        db.execute(statement)
    db.execute("ANALYZE")
    db.commit()
    db.close()


def ensure_counters_sqlite(path: Path) -> None:
    """The counters the pages read (item progress, billable weeks): the builder writes items and work
    with plain SQL, so they are counted once here (a file built before the counters existed gets their
    tables too)."""
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from app.models import Base, BillableWeek, ItemProgress, Project
    from app.services.assignment import recount_progress
    from app.services.pay import recount_billable

    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)  # only the tables missing
    with Session(engine) as session:
        projects = list(session.scalars(select(Project)))
        if session.scalar(select(func.count()).select_from(ItemProgress)) == 0:
            for project in projects:
                recount_progress(session, project)
        if session.scalar(select(func.count()).select_from(BillableWeek)) == 0:
            for project in projects:
                recount_billable(session, project.id)
        session.commit()
    engine.dispose()


# --- measuring -----------------------------------------------------------------------------------------


def _app(url: str, folder: Path):
    from app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "REDIS_URL": None,
                       "INSTANCE_PATH": str(folder / "instance")})


def _signed_in(app, email: str):
    import re

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    data = {"email": email, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    response = client.post("/login", data=data)
    if response.status_code not in (200, 302, 303):
        raise SystemExit(f"could not sign in as {email}: {response.status_code}")
    return client


def time_pages(url: str, folder: Path, requests: int) -> dict:
    app = _app(url, folder)
    clients = {"admin": _signed_in(app, "admin@example.test"), "client": _signed_in(app, "client@example.test"),
               "trainer": _signed_in(app, "trainer1@example.test")}
    results = {}
    for name, who, path in PAGES:
        client = clients[who]
        first = client.get(path)  # warm-up (templates, caches, the database's pages)
        if first.status_code != 200:
            raise SystemExit(f"{path} as {who}: {first.status_code}")
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
        results[name] = statistics.median(times) * 1000
    return results


def run_stats(url: str, folder: Path) -> dict:
    """compute_project_stats in this (child) process: seconds; the parent reads the peak RSS."""
    from app.db import get_db
    from app.models import Project
    from app.services.stats import compute_project_stats

    app = _app(url, folder)
    with app.app_context():
        session = get_db().session_factory()
        start = time.perf_counter()
        stats = compute_project_stats(session, session.get(Project, 1))  # commits
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "annotations": stats.annotations}


def measure_stats(url: str, folder: Path) -> dict:
    child = subprocess.Popen([sys.executable, "-m", "bench.pages", "--child-stats", url, "--folder", str(folder)],
                             stdout=subprocess.PIPE)
    data = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("statistics run failed")
    result = json.loads(data)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="annotation counts, comma separated")
    parser.add_argument("--requests", type=int, default=5, help="timed requests per page (the median is shown)")
    parser.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL (a scratch database)")
    parser.add_argument("--keep", help="keep (and reuse) the SQLite databases in this folder")
    parser.add_argument("--child-stats", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_stats:
        print(json.dumps(run_stats(args.child_stats, Path(args.folder))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(not 2 <= s <= 5_000_000 for s in sizes):
        raise SystemExit("sizes must be between 2 and 5,000,000 annotations")
    scratch = None if args.keep else Path(tempfile.mkdtemp(prefix="gw-pages-"))
    folder = Path(args.keep) if args.keep else scratch
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    table: dict = {}
    try:
        for size in sizes:
            path = folder / f"pages-{size}.sqlite3"
            if not path.exists():
                start = time.perf_counter()
                build(path, size)
                print(f"built {size:,} annotations in {time.perf_counter() - start:.0f} s")
            ensure_indexes_sqlite(path)
            ensure_counters_sqlite(path)
            kinds = [("sqlite", f"sqlite:///{path}", None)]
            if args.postgres:
                kinds.append(("postgresql", None, path))
            for kind, url, source in kinds:
                if kind == "postgresql":
                    from bench.common import scratch_database

                    with scratch_database("postgresql") as pg_url:
                        start = time.perf_counter()
                        copy_to_postgres(source, pg_url)
                        print(f"copied {size:,} annotations to PostgreSQL in {time.perf_counter() - start:.0f} s")
                        table[(kind, size)] = _measure(pg_url, folder, args.requests)
                else:
                    table[(kind, size)] = _measure(url, folder, args.requests)
                _print_row(kind, size, table[(kind, size)])
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    _print_table(table, sizes, ["sqlite", "postgresql"] if args.postgres else ["sqlite"])


def _measure(url: str, folder: Path, requests: int) -> dict:
    stats = measure_stats(url, folder)  # first: the Quality pages then show stored figures
    pages = time_pages(url, folder, requests)
    return {"pages": pages, "stats": stats, "load": os.getloadavg()[0]}


def _print_row(kind, size, result) -> None:
    s = result["stats"]
    print(f"{kind} {size:,}: statistics {s['seconds']:.2f} s, peak RSS {s['peak_rss_mb']:.0f} MB; slowest page "
          f"{max(result['pages'].values()):.0f} ms (load {result['load']:.1f})")


def _print_table(table, sizes, kinds) -> None:
    for kind in kinds:
        print(f"\n{kind}: page medians in ms, statistics in s and MB; growth = largest / smallest size")
        header = f"{'':<20}" + "".join(f"{s:>12,}" for s in sizes) + f"{'growth':>10}"
        print(header)
        names = [name for name, _, _ in PAGES]
        for name in names:
            values = [table[(kind, s)]["pages"][name] for s in sizes]
            print(f"{name:<20}" + "".join(f"{v:>12.1f}" for v in values) + f"{values[-1] / values[0]:>9.1f}x")
        for label, key, unit in (("statistics s", "seconds", ".2f"), ("statistics MB", "peak_rss_mb", ".0f")):
            values = [table[(kind, s)]["stats"][key] for s in sizes]
            print(f"{label:<20}" + "".join(f"{v:>12{unit}}" for v in values) + f"{values[-1] / values[0]:>9.1f}x")


if __name__ == "__main__":
    main()
