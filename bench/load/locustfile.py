"""Locust users for the load test: trainers, a few reviewers and one admin, against 127.0.0.1 only.

Run through ``bench.load.run`` or ``bench.load.capacity`` (they seed the database, start the server
and read the results); the settings come from the environment:

- ``LOAD_PLAN``: the seeding plan (JSON: project slug, password, e-mails, answer values).
- ``LOAD_ACKS``: a file that gets one JSON line per request the server acknowledged and that counts
  time or stores work (submit, skip, heartbeat), for ``bench.load.check``.
- ``LOAD_THINK_MIN`` / ``LOAD_THINK_MAX``: seconds a trainer spends on a task (20 and 120).
- ``LOAD_BEAT_SECONDS``: seconds between heartbeats while thinking (15, what the workspace sends).
- ``LOAD_SKIP_SHARE`` (0.1), ``LOAD_LAPSE_SHARE`` (0.03), ``LOAD_EARNINGS_SHARE`` (0.1): how often a
  trainer skips, walks away past the lease (no beats) before coming back, or opens Earnings.
- ``LOAD_REVIEWERS`` / ``LOAD_ADMINS``: how many of the users are reviewers and the admin (weights
  fix them: ``fixed_count``).
- ``LOAD_SERVER_KEEPALIVE``: seconds the server keeps an idle connection (0: until the client closes it).

A trainer's life: sign in, claim (GET the workspace), a resume beat, beats every 15 s while
thinking, then submit valid answers through the HTMX door (the answer comes back with the next
task) or skip; a late submit whose slot went to someone else (409) is expected, not an error.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
import time
from urllib.parse import urlsplit

from locust import FastHttpUser, between, events, task
from locust.exception import StopUser

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMIT_RE = re.compile(r'hx-post="(/work/[^"]+/tasks/(\d+)/submit)"')
BEAT_RE = re.compile(r'data-heartbeat-url="([^"]+)"')
VERDICT_RE = re.compile(r'action="(/review/[^"]+/annotations/\d+/verdict)"')

PLAN = json.load(open(os.environ["LOAD_PLAN"])) if os.environ.get("LOAD_PLAN") else None
THINK_MIN = float(os.environ.get("LOAD_THINK_MIN", "20"))
THINK_MAX = float(os.environ.get("LOAD_THINK_MAX", "120"))
BEAT_SECONDS = float(os.environ.get("LOAD_BEAT_SECONDS", "15"))
SKIP_SHARE = float(os.environ.get("LOAD_SKIP_SHARE", "0.1"))
LAPSE_SHARE = float(os.environ.get("LOAD_LAPSE_SHARE", "0.03"))
EARNINGS_SHARE = float(os.environ.get("LOAD_EARNINGS_SHARE", "0.1"))
SERVER_KEEPALIVE = float(os.environ.get("LOAD_SERVER_KEEPALIVE") or 0)
ALLOWED_HOSTS = {"127.0.0.1"}

_numbers = {"trainer": itertools.count(), "reviewer": itertools.count()}
# Trainers that signed in and made their first claim: the capacity steps measure only once every
# trainer of a step is working (sign-ins cost a password hash each and happen once a day).
READY = {"trainers": 0}
_acks_lock = threading.Lock()
_acks = open(os.environ["LOAD_ACKS"], "a", buffering=1) if os.environ.get("LOAD_ACKS") else None


def _ack(kind: str, email: str, assignment_id: int, **extra) -> None:
    if _acks is not None:
        with _acks_lock:
            _acks.write(json.dumps({"kind": kind, "email": email, "assignment": assignment_id, "at": time.time(),
                                    **extra}) + "\n")


@events.test_start.add_listener
def _refuse_other_hosts(environment, **_kw):
    host = urlsplit(environment.host or "").hostname
    if host not in ALLOWED_HOSTS:
        raise SystemExit(f"the load test runs against 127.0.0.1 only, not {environment.host!r}")
    if PLAN is None:
        raise SystemExit("LOAD_PLAN is not set: seed a database first (bench.load.run does)")


class Signed(FastHttpUser):
    """A signed-in person's browser. Like a browser, it does not send a request on a connection the
    server may be closing: a kept-alive connection idle for nearly the server's keep-alive is
    dropped and a new one opened. (Otherwise a POST can race the server's close and fail with no
    answer; a browser resends in that case, geventhttpclient rightly does not resend a POST.)"""

    abstract = True
    email = ""
    token = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if SERVER_KEEPALIVE > 0:
            send, pool, idle_limit = self.client.request, self.client.client, max(0.0, SERVER_KEEPALIVE - 1.0)
            last = [0.0]

            def request(*a, **kw):
                if time.monotonic() - last[0] > idle_limit:
                    pool.close()  # its connections: the next request opens a new one (cookies stay)
                try:
                    return send(*a, **kw)
                finally:
                    last[0] = time.monotonic()

            self.client.request = request

    def sign_in(self, email: str) -> None:
        self.email = email
        with self.client.get("/login", name="sign in (form)", catch_response=True) as r:
            match = TOKEN_RE.search(r.text or "")
            if not match:
                r.failure("no CSRF token on /login")
                raise StopUser()
        for _attempt in range(5):
            with self.client.post("/login", data={"email": email, "password": PLAN["password"],
                                                  "csrf_token": match.group(1)},
                                  name="sign in", allow_redirects=False, catch_response=True) as r:
                if r.status_code == 302:
                    return
                if r.status_code != 429:
                    r.failure(f"sign-in answered {r.status_code}")
                    raise StopUser()
                r.failure("sign-in throttled (429)")  # as a person would: wait as told, then again
                time.sleep(min(60.0, float(r.headers.get("Retry-After") or 5)))
        raise StopUser()


class Trainer(Signed):
    weight = 100
    wait_time = between(0, 0)  # the task paces itself: think time with beats in between

    def on_start(self):
        self.sign_in(PLAN["trainers"][next(_numbers["trainer"]) % len(PLAN["trainers"])])
        self.slug = PLAN["slug"]
        self.submit_url = self.beat_url = None
        self.assignment = 0
        time.sleep(random.uniform(0, BEAT_SECONDS))  # spread the first beats
        self.claim()
        READY["trainers"] += 1

    def _take(self, page: str) -> None:
        token = TOKEN_RE.search(page)
        if token:
            self.token = token.group(1)
        submit = SUBMIT_RE.search(page)
        beat = BEAT_RE.search(page)
        self.submit_url = submit.group(1) if submit else None
        self.assignment = int(submit.group(2)) if submit else 0
        self.beat_url = beat.group(1) if beat else None

    def claim(self) -> None:
        with self.client.get(f"/work/{self.slug}", name="claim /work/[slug]", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"claim answered {r.status_code}")
                self.submit_url = None
                return
            self._take(r.text)

    def beat(self, resume: bool = False) -> dict | None:
        if not self.beat_url:
            return None
        with self.client.post(self.beat_url, data={"resume": "1"} if resume else {},
                              headers={"X-CSRFToken": self.token, "Accept": "application/json"},
                              name="heartbeat" + (" (resume)" if resume else ""), catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"heartbeat answered {r.status_code}")
                return None
            data = r.json()
            if not resume:
                _ack("beat", self.email, self.assignment, status=data.get("status"))
            return data

    def think(self, seconds: float) -> bool:
        """Beat every BEAT_SECONDS while thinking; False when the lease was lost meanwhile."""
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return True
            time.sleep(min(BEAT_SECONDS, left))
            if time.time() < end:
                data = self.beat()
                if data is not None and data.get("status") == "expired":
                    return False

    @task
    def work(self):
        if not self.submit_url:
            time.sleep(random.uniform(THINK_MIN, THINK_MAX))  # the queue was empty: come back later
            self.claim()
            return
        self.beat(resume=True)
        roll = random.random()
        if roll < LAPSE_SHARE:
            # Walks away: no beats past the lease, then comes back (renewed if the slot is still free).
            time.sleep(PLAN["lease_minutes"] * 60 + random.uniform(5, 30))
            data = self.beat(resume=True)
            if data is None or data.get("status") != "active":
                self.claim()
                return
        if not self.think(random.uniform(THINK_MIN, THINK_MAX)):
            self.claim()
            return
        if roll > 1 - SKIP_SHARE:
            self.skip()
        else:
            self.submit()
        if random.random() < EARNINGS_SHARE:
            self.client.get("/work/earnings", name="earnings")

    def submit(self) -> None:
        form = {name: random.choice(values) for name, values in PLAN["answers"].items()}
        form["csrf_token"] = self.token
        assignment = self.assignment
        with self.client.post(self.submit_url, data=form, name="submit",
                              headers={"HX-Request": "true", "X-CSRFToken": self.token},
                              catch_response=True) as r:
            if r.status_code == 200:
                _ack("submit", self.email, assignment)
                r.success()
                self._take(r.text)
            elif r.status_code == 409:  # late, and the slot went to someone else: expected
                r.success()
                _ack("late", self.email, assignment)
                self._take(r.text)
            else:
                r.failure(f"submit answered {r.status_code}")
                self.submit_url = None

    def skip(self) -> None:
        url = self.submit_url.removesuffix("/submit") + "/skip"
        assignment = self.assignment
        with self.client.post(url, data={"reason": "outside my expertise", "csrf_token": self.token}, name="skip",
                              headers={"HX-Request": "true", "X-CSRFToken": self.token},
                              catch_response=True) as r:
            if r.status_code == 200:
                _ack("skip", self.email, assignment)
                self._take(r.text)
            else:
                r.failure(f"skip answered {r.status_code}")
                self.submit_url = None


class Reviewer(Signed):
    fixed_count = int(os.environ.get("LOAD_REVIEWERS", "2"))
    wait_time = between(5, 20)

    def on_start(self):
        self.sign_in(PLAN["reviewers"][next(_numbers["reviewer"]) % max(1, len(PLAN["reviewers"]))])

    @task
    def review(self):
        r = self.client.get(f"/review/{PLAN['slug']}/queue", name="review queue")
        token, verdict = TOKEN_RE.search(r.text or ""), VERDICT_RE.search(r.text or "")
        if not (token and verdict):
            return  # nothing to review yet
        time.sleep(random.uniform(2, 8))
        choice = "approve" if random.random() < 0.8 else "reject"
        with self.client.post(verdict.group(1), data={"verdict": choice, "comment": "checked in the load test",
                                                       "csrf_token": token.group(1)},
                              headers={"HX-Request": "true"}, name="verdict", catch_response=True) as r:
            if r.status_code in (200, 409):  # 409: another reviewer was first
                r.success()
            else:
                r.failure(f"verdict answered {r.status_code}")


class Admin(Signed):
    fixed_count = int(os.environ.get("LOAD_ADMINS", "1"))
    wait_time = between(20, 60)

    def on_start(self):
        self.sign_in(PLAN["admin"])

    @task(3)
    def quality(self):
        self.client.get(f"/admin/projects/{PLAN['slug']}/quality", name="quality")

    @task(1)
    def export(self):
        r = self.client.get(f"/admin/projects/{PLAN['slug']}/exports/", name="exports")
        token = TOKEN_RE.search(r.text or "")
        if token:
            self.client.post(f"/admin/projects/{PLAN['slug']}/exports/",
                             data={"format": "raw", "csrf_token": token.group(1)}, name="build export",
                             allow_redirects=False)
