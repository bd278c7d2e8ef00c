"""Command-line start-up: the wall time of `groundwork --help`, `groundwork projects`, a tiny import
and a tiny export (median of N runs, each in a fresh process as a person would run it), and each
command's peak RSS. The set-up (migrations and the demo, in a scratch SQLite database) is not timed.

    .venv/bin/python -m bench.cli [--runs 10] [--keep FOLDER]

Everything goes in a temporary folder that is removed at the end, unless --keep names a folder to
use (and leave) instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

SLUG = "helpfulness-pairs"  # a demo project with two responses per item and annotations to export


def groundwork() -> list[str]:
    script = Path(sys.executable).with_name("groundwork")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def timed_rss(args: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """(wall seconds, peak RSS in MB, stdout) of one command in its own process (RSS from wait4 on it)."""
    with tempfile.TemporaryFile() as errors:  # progress bars go to stderr: a file never fills up
        start = time.perf_counter()
        child = subprocess.Popen(groundwork() + args, env=env, stdout=subprocess.PIPE, stderr=errors)
        out = child.stdout.read()
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"groundwork {' '.join(args)} failed:\n{errors.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024, out


def tiny_items(path: Path, run: int, items: int) -> None:
    with open(path, "wb") as out:
        for n in range(items):
            out.write(orjson.dumps({
                "external_id": f"cli-bench-{run}-{n}",
                "prompt": f"Run {run}, question {n}: which answer explains the idea better?",
                "responses": [f"A first answer ({run}/{n}).", f"A second answer ({run}/{n})."],
            }) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--items", type=int, default=10, help="lines in the tiny import")
    parser.add_argument("--keep", help="use this folder (kept afterwards) instead of a temporary one")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gw-bench-cli-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        measure(folder, args.runs, args.items)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def measure(folder: Path, runs: int, items: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FLASK_APP", "DATABASE_URL", "EXPORT_DIR")}
    env.update(DATABASE_URL=f"sqlite:///{folder / 'cli.sqlite3'}", EXPORT_DIR=str(folder / "exports"),
               SECRET_KEY="cli-bench-" + "k" * 32)
    load = os.getloadavg()
    print(f"# bench/cli.py — {time.strftime('%Y-%m-%d %H:%M')} — {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    start = time.perf_counter()
    timed_rss(["db", "upgrade"], env)
    timed_rss(["demo"], env)
    print(f"set-up (migrations and the demo, not timed below): {time.perf_counter() - start:.1f} s")

    results: dict[str, list[tuple[float, float]]] = {"--help": [], "projects": [], "import": [], "export": []}
    sizes = {}
    for run in range(runs):  # interleaved, so every command sees the same machine state
        for name in results:
            if name == "import":
                path = folder / f"items-{run}.jsonl"
                tiny_items(path, run, items)
                sizes["import"] = path.stat().st_size
                args = ["import", SLUG, str(path)]
            elif name == "export":
                target = folder / "train.jsonl"
                args = ["export", SLUG, "--format", "trl-preference", "--out", str(target)]
            else:
                args = [name]
            seconds, rss, _out = timed_rss(args, env)
            results[name].append((seconds, rss))
            if name == "export":
                sizes["export"] = target.stat().st_size
            if name == "import":
                path.unlink()
    print(f"{'command':<36} {'median':>8} {'min':>7} {'max':>7} {'peak RSS':>9}  (of {runs} runs)")
    labels = {"--help": "groundwork --help", "projects": "groundwork projects",
              "import": f"groundwork import ({items} items)", "export": "groundwork export (trl-preference)"}
    for name, values in results.items():
        walls = [w for w, _rss in values]
        print(f"{labels[name]:<36} {statistics.median(walls):>7.3f}s {min(walls):>6.3f}s {max(walls):>6.3f}s "
              f"{max(r for _w, r in values):>7.0f} MB")
    exports = folder / "exports"
    on_disk = sum(f.stat().st_size for f in exports.rglob("*") if f.is_file()) if exports.exists() else 0
    print(f"sizes: import file {sizes.get('import', 0):,} bytes; exported train file {sizes.get('export', 0):,} bytes; "
          f"export folder after {runs} versions and the demo's {on_disk / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
