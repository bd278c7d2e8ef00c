"""The check after a load run: nothing acknowledged was lost or stored twice, no item went past its
overlap, and pay is exactly the counted time.

    .venv/bin/python -m bench.load.check --database-url URL --acks FILE

``check(database_url, acks_path)`` returns the problems found (an empty list when everything holds)
and a summary; the command prints both and exits 1 on any problem. It reads the acknowledgement file
the load users write (one JSON line per submit, skip or heartbeat the server answered 200, and per
late submit answered 409) and the database, never the server's memory.

What it checks:

1. Every submit acknowledged to a client is stored exactly once: one annotation for that assignment,
   by that trainer, and the assignment is submitted. A skip acknowledged stays skipped, with no answer.
   A late submit refused with 409 stored nothing.
2. No item past its overlap: ``done_count + active_count ≤ overlap`` for work items, the counters
   equal what the assignments say, and no item holds more answers than its overlap.
3. Pay equals the counted time: each answer carries its assignment's active seconds; the billable
   seconds pay reads (``pay.earnings``, every line of every week) equal the sum over the trainer's
   submitted and skipped assignments of ``min(active_seconds, max_billable_seconds_per_task)``, and
   each line's amount is that time at the rate, rounded once.
4. A trainer's time counts once: nobody has more active seconds in all than the wall-clock span of
   their acknowledged requests, plus one heartbeat's cap and half a second of rounding per request
   (two tabs or a retried beat cannot pay the same seconds twice).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from sqlalchemy import func, select

from app import create_app
from app.db import get_db
from app.models import Annotation, Assignment, Item, Project, User
from app.services import pay
from app.services.assignment import HEARTBEAT_CAP_SECONDS
from app.services.money import cents_for

SHOW = 10  # problems listed per kind; the count says how many there were


def read_acks(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check(database_url: str, acks_path: str) -> tuple[list[str], dict]:
    acks = read_acks(acks_path)
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "load-check", "REDIS_URL": None})
    problems: dict[str, list[str]] = defaultdict(list)
    with app.app_context():
        session = get_db().session_factory()
        try:
            summary = _check(session, acks, problems)
        finally:
            session.close()
            get_db().engine.dispose()
    listed = []
    for kind, found in problems.items():
        listed.extend(found[:SHOW])
        if len(found) > SHOW:
            listed.append(f"... and {len(found) - SHOW} more of: {kind}")
    return listed, summary


def _check(session, acks: list[dict], problems: dict[str, list[str]]) -> dict:
    ids = dict(session.execute(select(User.email, User.id).where(
        User.email.in_({a["email"] for a in acks} or {""}))).all())
    assignments = {a.id: a for a in session.scalars(select(Assignment))}
    answers: dict[int, list[Annotation]] = defaultdict(list)
    for annotation in session.scalars(select(Annotation)):
        answers[annotation.assignment_id].append(annotation)

    # 1. acknowledged work is stored exactly once
    submitted = [a for a in acks if a["kind"] == "submit"]
    for ack in submitted:
        stored = answers.get(ack["assignment"], [])
        assignment = assignments.get(ack["assignment"])
        if len(stored) != 1:
            problems["stored"].append(f"acknowledged submit of assignment {ack['assignment']} ({ack['email']}) "
                                      f"is stored {len(stored)} times")
        elif stored[0].trainer_id != ids.get(ack["email"]):
            problems["stored"].append(f"assignment {ack['assignment']}'s answer belongs to another trainer")
        if assignment is None or assignment.status != "submitted":
            problems["stored"].append(f"acknowledged submit of assignment {ack['assignment']} is "
                                      f"{assignment.status if assignment else 'missing'}")
    if len({a["assignment"] for a in submitted}) != len(submitted):
        problems["stored"].append("one assignment was acknowledged as submitted twice")
    for ack in acks:
        if ack["kind"] in ("skip", "late"):
            assignment = assignments.get(ack["assignment"])
            if ack["kind"] == "skip" and (assignment is None or assignment.status != "skipped"):
                problems["skip"].append(f"acknowledged skip of assignment {ack['assignment']} is "
                                        f"{assignment.status if assignment else 'missing'}")
            if answers.get(ack["assignment"]):
                problems["skip"].append(f"assignment {ack['assignment']} was refused or skipped yet has an answer")
    for assignment_id, stored in answers.items():
        if len(stored) > 1:
            problems["stored"].append(f"assignment {assignment_id} has {len(stored)} answers")

    # 2. no item past its overlap; counters equal the assignments
    active = dict(session.execute(select(Assignment.item_id, func.count()).where(Assignment.status == "active")
                                  .group_by(Assignment.item_id)).all())
    done = dict(session.execute(select(Annotation.item_id, func.count()).group_by(Annotation.item_id)).all())
    rows = session.execute(select(Item.id, Item.is_gold, Item.done_count, Item.active_count, Project.overlap,
                                  Project.kind).join(Project, Project.id == Item.project_id)).all()
    for row in rows:
        work = row.kind == "work" and not row.is_gold
        if work and row.done_count + row.active_count > row.overlap:
            problems["overlap"].append(f"item {row.id}: done {row.done_count} + active {row.active_count} > "
                                       f"overlap {row.overlap}")
        if work and done.get(row.id, 0) > row.overlap:
            problems["overlap"].append(f"item {row.id} has {done[row.id]} answers, overlap {row.overlap}")
        if (row.done_count, row.active_count) != (done.get(row.id, 0), active.get(row.id, 0)):
            problems["counters"].append(f"item {row.id}: counters say done {row.done_count}, active "
                                        f"{row.active_count}; the rows say {done.get(row.id, 0)}, {active.get(row.id, 0)}")

    # 3. pay equals the counted time
    caps = dict(session.execute(select(Project.id, Project.max_billable_seconds_per_task)).all())
    expected: dict[int, int] = defaultdict(int)
    counted: dict[int, int] = defaultdict(int)
    for assignment in assignments.values():
        counted[assignment.trainer_id] += assignment.active_seconds
        stored = answers.get(assignment.id, [])
        if stored and stored[0].active_seconds != assignment.active_seconds:
            problems["pay"].append(f"assignment {assignment.id}: its answer carries {stored[0].active_seconds} s, "
                                   f"the assignment counted {assignment.active_seconds} s")
        if assignment.status in pay.BILLABLE_STATUSES and not (stored and stored[0].excluded):
            expected[assignment.trainer_id] += min(assignment.active_seconds, caps[assignment.project_id])
    paid_seconds = 0
    for trainer_id in set(expected) | set(ids.values()):
        earnings = pay.earnings(session, trainer_id)
        paid_seconds += earnings.billable_seconds
        if earnings.billable_seconds != expected.get(trainer_id, 0):
            problems["pay"].append(f"trainer {trainer_id}: pay counts {earnings.billable_seconds} s, their "
                                   f"finished assignments {expected.get(trainer_id, 0)} s")
        for line in earnings.lines:
            if line.status == "open" and line.amount_cents != cents_for(line.billable_seconds, line.rate_cents):
                problems["pay"].append(f"trainer {trainer_id}, week {line.week}: {line.amount_cents} cents for "
                                       f"{line.billable_seconds} s at {line.rate_cents}/h")

    # 4. a trainer's time counts once
    spans: dict[str, list[float]] = {}
    for ack in acks:
        first_last = spans.setdefault(ack["email"], [ack["at"], ack["at"]])
        first_last[0], first_last[1] = min(first_last[0], ack["at"]), max(first_last[1], ack["at"])
    beats: dict[str, int] = defaultdict(int)
    for ack in acks:
        beats[ack["email"]] += 1
    for email, (first, last) in spans.items():
        trainer_id = ids.get(email)
        # The first acknowledged beat counts the stretch since the task's resume beat (at most one cap);
        # each counted stretch is rounded to the second, so half a second per acknowledged request.
        bound = last - first + HEARTBEAT_CAP_SECONDS + 0.5 * beats[email]
        if trainer_id is not None and counted.get(trainer_id, 0) > bound:
            problems["time"].append(f"{email}: {counted[trainer_id]} s counted in a span of {last - first:.0f} s")

    return {"acknowledged submits": len(submitted), "answers stored": sum(len(v) for v in answers.values()),
            "skips": sum(1 for a in acks if a["kind"] == "skip"),
            "late submits refused": sum(1 for a in acks if a["kind"] == "late"),
            "heartbeats acknowledged": sum(1 for a in acks if a["kind"] == "beat"),
            "items": len(rows), "trainers": len(spans), "seconds counted": sum(counted.values()),
            "seconds on finished work": sum(expected.values()), "seconds paid": paid_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description="Check the database after a load run.")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--acks", required=True, help="the acknowledgement file the load users wrote")
    args = parser.parse_args()
    problems, summary = check(args.database_url, args.acks)
    for name, value in summary.items():
        print(f"{name:<26} {value:,}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for problem in problems:
            print(f"  - {problem}")
        sys.exit(1)
    print("\nload check: nothing lost, nothing counted twice, no item past its overlap, pay = counted time")


if __name__ == "__main__":
    main()
