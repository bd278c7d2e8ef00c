"""Export speed: 1,000,000 preference annotations -> `trl-preference` on SQLite.

Measures, each in its own child process (so peak RSS is that run's alone):
- ours: the real export path (`run_export`: count, stream, map, write, hash, manifest, card, rename);
- bare: a bare loop over the same rows (sqlite3 cursor + orjson, the same join and order) writing
  only the data file, the fastest a Python exporter of that one file could hope for;
- floor (with ``--floor``): a tight loop writing the same three files a version holds (data, meta,
  items), byte for byte, each hashed, in two processes over two halves of the items with no merge
  and none of ours' generality (filters, corrections, other shapes, progress): what no Python
  exporter of these files can beat on this machine. Its files are checked against ours.

    .venv/bin/python -m bench.export [--annotations 1000000] [--keep /path/bench.sqlite3] [--format NAME] [--floor]

``--format`` times another pair format (openai-dpo, hh-rlhf) on the same rows; the bare loop still
writes trl-preference's lines, so compare it within one format's runs.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from itertools import chain, groupby
from operator import itemgetter
from pathlib import Path

import orjson

OVERLAP = 2
TRAINERS = 200


def build_database(path: Path, annotations: int) -> None:
    """Schema from the models, then rows with sqlite3 executemany (fast; this is set-up, not measured)."""
    from sqlalchemy import create_engine

    from app.models import Base
    from app.services.projects import content_hash

    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    rng = random.Random(7)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = "2026-11-20 12:00:00.000000"
    db.execute("INSERT INTO projects (id, name, slug, kind, status, instructions, overlap, lease_minutes, gold_rate, "
               "review_rate, hourly_rate_cents, max_billable_seconds_per_task, required_domains, "
               "min_qualification_score, show_model_names, pause_at_budget, license, citation, language, "
               "allow_assistant_first, always_messages, created_at) VALUES (1, 'Bench pairs', "
               "'bench-pairs', 'work', 'active', '', ?, 30, 0, 0, 3000, 1800, '[]', 0, 0, 1, 'cc-by-4.0', '', 'en', "
               "0, 0, ?)", (OVERLAP, now))
    db.execute("INSERT INTO questions (project_id, position, key, type, title, help, options, required) "
               "VALUES (1, 0, 'preference', 'preference', 'Which is better?', '', '{\"scale\": 3}', 1)")
    db.executemany("INSERT INTO users (id, email, name, password_hash, status, created_at) VALUES (?, ?, ?, 'x', "
                   "'active', ?)", [(t, f"trainer{t}@example.test", f"Trainer {t}", now) for t in range(1, TRAINERS + 1)])
    items = annotations // OVERLAP
    batch = []
    for n in range(1, items + 1):
        context = orjson.dumps([{"role": "user", "content": f"Prompt {n}: explain how a vaccine trains the immune "
                                 "system, for a curious twelve-year-old, in two short paragraphs."}]).decode()
        responses = orjson.dumps([
            {"id": "a", "text": f"Answer A to prompt {n}. " + "Your immune system learns from a harmless copy. " * 3},
            {"id": "b", "text": f"Answer B to prompt {n}. " + "A vaccine is a practice run for your body. " * 3},
        ]).decode()
        batch.append((n, f"item-{n}", context, responses, content_hash(orjson.loads(context), orjson.loads(responses)),
                      now))
        if len(batch) == 50_000:
            _insert_items(db, batch)
            batch = []
    if batch:
        _insert_items(db, batch)
    values = [-3, -2, -1, 1, 2, 3] * 3 + [0]  # about 5 % ties, which pair formats drop
    rows_a, rows_b = [], []
    aid = 0
    for n in range(1, items + 1):
        first = rng.randrange(1, TRAINERS + 1)
        for k in range(OVERLAP):
            aid += 1
            trainer = (first + k * 7) % TRAINERS + 1
            rows_a.append((aid, n, trainer, now, now))
            rows_b.append((aid, aid, n, trainer, f'{{"preference":{rng.choice(values)}}}', now, 60 + aid % 300))
        if len(rows_a) >= 100_000:
            _insert_work(db, rows_a, rows_b)
            rows_a, rows_b = [], []
    if rows_a:
        _insert_work(db, rows_a, rows_b)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _insert_items(db, batch) -> None:
    db.executemany("INSERT INTO items (id, project_id, external_id, context, responses, content_hash, metadata, "
                   "is_gold, priority, done_count, active_count, is_open, created_at) "
                   "VALUES (?, 1, ?, ?, ?, ?, '{}', 0, 0, 2, 0, 0, ?)", batch)


def _insert_work(db, rows_a, rows_b) -> None:
    db.executemany("INSERT INTO assignments (id, item_id, project_id, trainer_id, status, assigned_at, expires_at, "
                   "active_seconds) VALUES (?, ?, 1, ?, 'submitted', ?, ?, 60)", rows_a)
    db.executemany("INSERT INTO annotations (id, assignment_id, item_id, project_id, trainer_id, answers, "
                   "submitted_at, active_seconds, review_status, excluded) VALUES (?, ?, ?, 1, ?, ?, ?, ?, "
                   "'unreviewed', 0)", rows_b)


# --- the two measured runs (each in a child process) ---------------------------------------------------


def run_ours(db_path: Path, out: Path, fmt: str = "trl-preference") -> dict:
    from app import create_app
    from app.db import get_db
    from app.models import Project
    from app.services.exporting import create_export, run_export

    app = create_app({"DATABASE_URL": f"sqlite:///{db_path}", "SECRET_KEY": "bench", "REDIS_URL": None,
                      "INSTANCE_PATH": str(out / "instance")})
    with app.app_context():
        factory = get_db().session_factory
        with factory() as session:
            export = create_export(session, session.get(Project, 1), {"format": fmt}, None)  # commits
            export_id = export.id
        start = time.perf_counter()
        export = run_export(factory, export_id, out / "exports", "bench", progress_rows=100_000,
                            processes=app.config["EXPORT_PROCESSES"])
        seconds = time.perf_counter() - start
    return {"lines": export.row_count, "seconds": seconds, "sha256": export.sha256,
            "annotations": export.manifest["counts"]["annotations_read"],
            "files": {f["name"]: f["sha256"] for f in export.manifest["files"]}}


def run_bare(db_path: Path, out: Path) -> dict:
    """The floor: same join, same order, same lines (one per item, the mean preference's direction);
    no filters, no progress, no meta or items files, no manifest."""
    start = time.perf_counter()
    db = sqlite3.connect(db_path)
    cursor = db.execute(
        "SELECT a.item_id, a.answers, i.context, i.responses FROM annotations a JOIN items i ON i.id = a.item_id "
        "WHERE a.project_id = 1 AND a.excluded = 0 ORDER BY a.item_id, a.id")
    lines = read = 0
    dumps, loads, newline = orjson.dumps, orjson.loads, orjson.OPT_APPEND_NEWLINE
    with open(out / "bare.jsonl", "wb") as handle:
        buffer = []
        for _item, rows in groupby(cursor, key=itemgetter(0)):
            rows = list(rows)
            read += len(rows)
            total = sum(loads(r[1])["preference"] for r in rows)
            if total == 0:
                continue
            first, second = loads(rows[0][3])
            chosen, rejected = (first, second) if total < 0 else (second, first)
            buffer.append(dumps({"prompt": loads(rows[0][2])[0]["content"], "chosen": chosen["text"],
                                 "rejected": rejected["text"]}, option=newline))
            lines += 1
            if len(buffer) == 2048:
                handle.write(b"".join(buffer))
                buffer = []
        handle.write(b"".join(buffer))
    return {"lines": lines, "seconds": time.perf_counter() - start, "annotations": read}


FLOOR_FILES = ("train.jsonl", "train.meta.jsonl", "items.jsonl")


def _floor_range(db_path: Path, out: Path, first: int, last: int, name) -> tuple[int, int]:
    """Write items [first, last)'s three files into ``out``: trl-preference's consensus lines, their
    meta lines and the items' lines, hashed as written. Knows the bench data's shape (one user turn,
    two responses, one preference question, nothing filtered) and nothing else. ``name`` gives a
    trainer's pseudonym. Returns (lines, read)."""
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT id, item_id, trainer_id, answers FROM annotations WHERE project_id = 1 AND excluded = 0 "
                      "AND item_id >= ? AND item_id < ? ORDER BY item_id, id", (first, last))
    item_cursor = db.cursor()
    loads, dumps, newline = orjson.loads, orjson.dumps, orjson.OPT_APPEND_NEWLINE
    handles = [open(out / n, "wb") for n in FLOOR_FILES]  # noqa: SIM115 - closed below
    digests = [hashlib.sha256() for _ in FLOOR_FILES]
    data, meta, items_out = buffers = [[], [], []]
    items, fetched_to = {}, first - 1
    lines = read = 0
    for item_id, run in groupby(chain.from_iterable(iter(lambda: rows.fetchmany(5000), [])), key=itemgetter(1)):
        run = list(run)
        read += len(run)
        values = [loads(r[3])["preference"] for r in run]
        total = sum(values)
        if total == 0:
            continue
        if item_id > fetched_to:
            fetched_to = item_id + 2499
            items = {i[0]: i for i in item_cursor.execute(
                "SELECT id, external_id, context, responses, metadata, is_gold FROM items WHERE id >= ? AND id <= ?",
                (item_id, fetched_to))}
        _id, external_id, context, responses, metadata, is_gold = items[item_id]
        prompt = loads(context)[0]["content"]
        responses = loads(responses)
        a, b = responses
        good, bad = (a, b) if total < 0 else (b, a)
        voters = sum(1 for v in values if (v < 0 if total < 0 else v > 0))
        data.append(dumps({"prompt": prompt, "chosen": good["text"], "rejected": bad["text"]}, option=newline))
        meta.append(dumps({"item_id": external_id, "response_ids": [good["id"], bad["id"]],
                           "models": [good.get("model"), bad.get("model")], "annotation_ids": [r[0] for r in run],
                           "annotators": [name[r[2]] for r in run], "agreement": voters / len(values),
                           "n_annotators": len(values)}, option=newline))
        items_out.append(dumps({"item_id": external_id, "prompt": prompt, "responses": [
            {"id": r["id"], "text": r["text"], "model": r.get("model")} for r in responses],
            "metadata": loads(metadata), "is_gold": bool(is_gold)}, option=newline))
        lines += 1
        if len(data) == 512:
            for n, buffer in enumerate(buffers):
                chunk = b"".join(buffer)
                handles[n].write(chunk)
                digests[n].update(chunk)
                buffer.clear()
    for n, buffer in enumerate(buffers):
        chunk = b"".join(buffer)
        handles[n].write(chunk)
        digests[n].update(chunk)
        handles[n].close()
    return lines, read


def run_floor(db_path: Path, out: Path) -> dict:
    """Two processes, one half of the items each (by annotation count), three files each, no merge."""
    from app.services.exporting.source import Pseudonyms  # ours' pseudonyms, imported before the timing

    db = sqlite3.connect(db_path)
    total = db.execute("SELECT count(*) FROM annotations WHERE project_id = 1").fetchone()[0]
    middle = db.execute("SELECT item_id FROM annotations WHERE project_id = 1 ORDER BY item_id LIMIT 1 OFFSET ?",
                        (total // 2,)).fetchone()[0]
    end = db.execute("SELECT max(id) FROM items").fetchone()[0] + 1
    db.close()
    halves = [out / "half-0", out / "half-1"]
    for half in halves:
        half.mkdir()
    gc.disable()  # as ours does around its loop
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the second half
        try:
            lines, read = _floor_range(db_path, halves[1], middle, end, Pseudonyms("bench"))
            (halves[1] / "counts").write_text(f"{lines} {read}")
        finally:
            os._exit(0)
    try:
        lines, read = _floor_range(db_path, halves[0], 1, middle, Pseudonyms("bench"))
    finally:
        os.waitpid(pid, 0)
        gc.enable()
    seconds = time.perf_counter() - start
    more_lines, more_read = map(int, (halves[1] / "counts").read_text().split())
    files = {}
    for name in FLOOR_FILES:  # outside the timing: what one file of both halves would hash to
        digest = hashlib.sha256()
        for half in halves:
            digest.update((half / name).read_bytes())
        files[name] = digest.hexdigest()
    return {"lines": lines + more_lines, "seconds": seconds, "annotations": read + more_read, "files": files}


def measure(kind: str, db_path: Path, fmt: str = "trl-preference") -> dict:
    """Run one kind in a child process; its peak RSS comes from wait4 on that child alone."""
    out = Path(tempfile.mkdtemp(prefix=f"gw-export-{kind}-"))
    try:  # a million-row version is hundreds of MB: never leave it behind, even when a run fails
        child = subprocess.Popen([sys.executable, "-m", "bench.export", "--child", kind, "--db", str(db_path),
                                  "--out", str(out), "--format", fmt], stdout=subprocess.PIPE)
        data = child.stdout.read()
        _pid, status, usage = os.wait4(child.pid, 0)
        out_bytes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{kind} run failed")
    result = json.loads(data)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    # CPU seconds of the run and its helper process (wait4 counts reaped children): on a shared
    # machine the work done is steadier than the wall time.
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["lines_per_second"] = result["lines"] / result["seconds"]
    result["annotations_per_second"] = result["annotations"] / result["seconds"]
    result["output_mb"] = out_bytes / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--keep", help="reuse (or create) the database at this path")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--db")
    parser.add_argument("--out")
    parser.add_argument("--format", default="trl-preference", choices=["trl-preference", "openai-dpo", "hh-rlhf"])
    parser.add_argument("--floor", action="store_true", help="also time the floor (trl-preference only)")
    args = parser.parse_args()
    if args.child:
        if args.child == "ours":
            print(json.dumps(run_ours(Path(args.db), Path(args.out), args.format)))
        elif args.child == "floor":
            print(json.dumps(run_floor(Path(args.db), Path(args.out))))
        else:
            print(json.dumps(run_bare(Path(args.db), Path(args.out))))
        return
    scratch = None if args.keep else Path(tempfile.mkdtemp(prefix="gw-export-db-"))
    db_path = Path(args.keep) if args.keep else scratch / "bench.sqlite3"
    try:
        _measure_all(args, db_path)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _measure_all(args, db_path: Path) -> None:
    if not db_path.exists():
        db_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        build_database(db_path, args.annotations)
        print(f"built {args.annotations:,} annotations in {time.perf_counter() - start:.1f} s ({db_path})")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.2f}; format {args.format}")
    kinds = ("bare", "floor", "ours") if args.floor and args.format == "trl-preference" else ("bare", "ours")
    results = {kind: [] for kind in kinds}
    for _ in range(args.runs):  # interleaved, so every kind sees the same machine state
        for kind in kinds:
            results[kind].append(measure(kind, db_path, args.format))
    best = {kind: max(runs, key=lambda r: r["lines_per_second"]) for kind, runs in results.items()}
    for kind in kinds:
        r = best[kind]
        print(f"{kind:>5}: {r['lines']:,} lines from {r['annotations']:,} annotations in {r['seconds']:.2f} s = "
              f"{r['lines_per_second']:,.0f} lines/s, {r['annotations_per_second']:,.0f} annotations/s, "
              f"{r['output_mb']:.0f} MB written, {r['cpu_seconds']:.2f} CPU s, peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(best of {args.runs}; all: " + ", ".join(f"{x['lines_per_second']:,.0f}" for x in results[kind])
              + "; CPU s: " + ", ".join(f"{x['cpu_seconds']:.2f}" for x in results[kind]) + ")")
    ratio = best["ours"]["lines_per_second"] / best["bare"]["lines_per_second"]
    print(f"ours / bare = {ratio:.2f} (target ≥ 0.5); target ≥ 200,000 lines/s and ≤ 300 MB peak RSS; "
          f"load average now {os.getloadavg()[0]:.2f}")
    if best["ours"]["lines"] != best["bare"]["lines"]:
        print(f"!! line counts differ: ours {best['ours']['lines']}, bare {best['bare']['lines']}")
    if "floor" in best:
        same = all(r["files"] == {name: best["ours"]["files"][name] for name in FLOOR_FILES} for r in results["floor"])
        print(f"ours / floor = {best['ours']['lines_per_second'] / best['floor']['lines_per_second']:.2f}; the floor's "
              f"files are {'byte-identical to' if same else '!! NOT the same as'} ours (sha256 of each file)")


if __name__ == "__main__":
    main()
