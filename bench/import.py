"""Import speed: a JSONL file of N items through the all-or-nothing importer (both passes).

    .venv/bin/python -m bench.import [--items 100000] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import orjson

from app.db import get_db
from app.services import importing
from app.services import projects as project_service
from app.services.presets import preset_questions
from bench.common import Timer, bench_app, scratch_database


def write_file(path: str, items: int) -> int:
    with open(path, "wb") as out:
        for n in range(items):
            out.write(orjson.dumps({
                "external_id": f"imp-{n}",
                "prompt": f"Question {n}: which of these two answers explains the idea better, and why?",
                "responses": [f"First answer to question {n}, a few sentences long. " * 3,
                              f"Second answer to question {n}, also a few sentences. " * 3],
                "metadata": {"source": "bench", "batch": n // 1000},
            }) + b"\n")
    return os.path.getsize(path)


def run(kind: str, path: str, items: int, folder: str) -> None:
    with scratch_database(kind) as url:
        app = bench_app(url, os.path.join(folder, f"instance-{kind}"))  # in the run's folder, removed with it
        with app.app_context():
            session = get_db().session_factory()
            project = project_service.create_project(
                session, name="Import bench", slug="import-bench", status="active", questions=preset_questions("pairwise")
            )  # commits
            with Timer() as t:
                report = importing.import_file(session, project, path, "jsonl")
            assert report.ok and report.inserted == items, report.errors[:3]
            with Timer() as again:
                second = importing.import_file(session, project, path, "jsonl")
            assert second.skipped == items
            session.close()
    print(f"{kind:<10} import {items:,} items: {t.seconds:.2f} s = {items / t.seconds:,.0f} items/s "
          f"(re-import, all skipped: {again.seconds:.2f} s = {items / again.seconds:,.0f} lines/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    print(f"# bench/import.py — {time.strftime('%Y-%m-%d')} — Python {platform.python_version()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "items.jsonl")
        size = write_file(path, args.items)
        print(f"file: {args.items:,} pairwise items, {size / 1e6:.1f} MB")
        for kind in ["sqlite"] + ([] if args.skip_postgres else ["postgresql"]):
            run(kind, path, args.items, folder)


if __name__ == "__main__":
    main()
