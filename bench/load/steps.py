"""The capacity steps as a locust shape: the users of ``locustfile`` (imported below), stepped up
through LOAD_STEPS trainers in one locust process, so each trainer signs in once.

Each step: spawn up to its count (LOAD_SPAWN_RATE a second), wait until every trainer has signed in
and made a first claim, let them settle (LOAD_SETTLE seconds), reset the statistics, measure for LOAD_MEASURE seconds,
and append the step's figures to LOAD_STEPS_OUT (one JSON line). The run stops after the first step
where a trainer endpoint's p95 passed LOAD_GATE_MS or any trainer request failed.
"""

from __future__ import annotations

import json
import os
import time

from locust import LoadTestShape

from bench.load.cpu import cpu_seconds, process_tree
from bench.load.locustfile import READY, Admin, Reviewer, Trainer  # noqa: F401 - the users locust runs

STEPS = [int(n) for n in os.environ.get("LOAD_STEPS", "50,100").split(",")]
SPAWN_RATE = float(os.environ.get("LOAD_SPAWN_RATE", "10"))
SETTLE = float(os.environ.get("LOAD_SETTLE", "30"))
MEASURE = float(os.environ.get("LOAD_MEASURE", "120"))
GATE_MS = float(os.environ.get("LOAD_GATE_MS", "200"))
RAMP_LIMIT = float(os.environ.get("LOAD_RAMP_LIMIT", "600"))
EXTRAS = int(os.environ.get("LOAD_REVIEWERS", "2")) + int(os.environ.get("LOAD_ADMINS", "1"))
OUT = os.environ.get("LOAD_STEPS_OUT")
# The server's processes (gunicorn's master, the RQ worker; their children are found at each reading):
# the CPU they use while a step is measured is written with it.
SERVER_PIDS = [int(p) for p in os.environ.get("LOAD_SERVER_PIDS", "").split(",") if p]


def server_cpu() -> float:
    return cpu_seconds([p for pid in SERVER_PIDS for p in process_tree(pid)])
# What the gate looks at: every request a trainer makes while working (signing in happens once a day).
TRAINER_ENDPOINTS = {"claim /work/[slug]", "heartbeat", "heartbeat (resume)", "submit", "skip", "earnings"}


def snapshot(stats, seconds: float) -> dict:
    endpoints = {}
    for entry in stats.entries.values():
        if not entry.num_requests:
            continue
        endpoints[entry.name] = {
            "requests": entry.num_requests, "failures": entry.num_failures,
            "rps": entry.num_requests / seconds,
            "p50": entry.get_response_time_percentile(0.5), "p95": entry.get_response_time_percentile(0.95),
            "p99": entry.get_response_time_percentile(0.99), "max": entry.max_response_time,
        }
    return endpoints


def failures_seen(stats) -> list[dict]:
    """What failed while the step was measured: endpoint, message and count, most frequent first."""
    errors = [{"endpoint": e.name, "error": e.parse_error(e.error), "count": e.occurrences}
              for e in stats.errors.values() if e.occurrences]
    return sorted(errors, key=lambda e: -e["count"])


class Steps(LoadTestShape):
    def __init__(self):
        super().__init__()
        self.step, self.phase, self.since = 0, "ramp", 0.0

    def tick(self):
        now = self.get_run_time()
        target = STEPS[self.step] + EXTRAS
        if self.phase == "ramp" and self.runner.user_count >= target and READY["trainers"] >= STEPS[self.step]:
            self.phase, self.since = "settle", now
        elif self.phase == "ramp" and now - self.since > RAMP_LIMIT:
            if OUT:  # the trainers could not even sign in and claim in time: the step did not hold
                with open(OUT, "a") as f:
                    f.write(json.dumps({"trainers": STEPS[self.step], "seconds": 0, "held": False,
                                        "worst_p95": None, "failures": 0, "endpoints": {},
                                        "note": f"only {READY['trainers']} trainers signed in and claimed "
                                                f"within {RAMP_LIMIT:.0f} s"}) + "\n")
            return None
        elif self.phase == "settle" and now - self.since >= SETTLE:
            self.runner.stats.reset_all()
            self.phase, self.since, self.started = "measure", now, time.time()
            self.cpu_start, self.own_start = server_cpu(), cpu_seconds([os.getpid()])
        elif self.phase == "measure" and now - self.since >= MEASURE:
            seconds = time.time() - self.started
            server_cores = (server_cpu() - self.cpu_start) / seconds
            locust_cores = (cpu_seconds([os.getpid()]) - self.own_start) / seconds
            endpoints = snapshot(self.runner.stats, seconds)
            trainer = {k: v for k, v in endpoints.items() if k in TRAINER_ENDPOINTS}
            worst = max((v["p95"] for v in trainer.values()), default=0)
            failures = sum(v["failures"] for v in trainer.values())
            held = bool(trainer) and worst <= GATE_MS and failures == 0
            if OUT:
                with open(OUT, "a") as f:
                    f.write(json.dumps({"trainers": STEPS[self.step], "seconds": seconds, "held": held,
                                        "worst_p95": worst, "failures": failures, "server_cores": server_cores,
                                        "locust_cores": locust_cores, "load": os.getloadavg()[0],
                                        "endpoints": endpoints,
                                        "errors": failures_seen(self.runner.stats)}) + "\n")
            if not held or self.step == len(STEPS) - 1:
                return None
            self.step, self.phase, self.since = self.step + 1, "ramp", now
            target = STEPS[self.step] + EXTRAS
        return target, SPAWN_RATE
