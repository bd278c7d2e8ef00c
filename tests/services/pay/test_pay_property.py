"""Property: whatever the history, timesheets plus adjustments pay every billable second once,
rounded once per trainer × project × week."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from app.models import (
    Annotation,
    Assignment,
    Item,
    PayAdjustment,
    Project,
    ProjectMember,
    Question,
    Timesheet,
)
from app.services import pay
from app.services.money import cents_for
from tests.factories import make_user

from .test_pay import project

START = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # a Monday

task = st.fixed_dictionaries({
    "trainer": st.integers(0, 2), "project": st.integers(0, 2), "day": st.integers(0, 27),
    "seconds": st.integers(0, 4000), "status": st.sampled_from(["submitted", "skipped", "expired", "active"]),
    "excluded": st.booleans(), "late": st.booleans(),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tasks=st.lists(task, min_size=1, max_size=30), approve_days=st.lists(st.integers(0, 35), max_size=4),
       overrides=st.lists(st.one_of(st.none(), st.integers(1, 9000)), min_size=9, max_size=9))
def test_every_billable_second_is_paid_once_rounded_once(session, tasks, approve_days, overrides):
    session.rollback()
    for model in (PayAdjustment, Timesheet, Annotation, Assignment, Item, ProjectMember, Question, Project):
        session.execute(delete(model))
    session.commit()
    session.expunge_all()  # each example starts from empty tables and an empty identity map
    trainers = [make_user(session, "trainer") for _ in range(3)]
    projects = [project(session, f"prop{n}", rate, cap=cap, items=0)
                for n, (rate, cap) in enumerate(((3750, 1800), (1234, 600), (1, 3600)))]
    for t, trainer in enumerate(trainers):
        for p, proj in enumerate(projects):
            m = ProjectMember(project_id=proj.id, user_id=trainer.id, role="trainer", status="active",
                              rate_override_cents=overrides[t * 3 + p])
            session.add(m)
    session.commit()

    # Approvals happen at given days; work lands in order, some of it submitted late (after approval).
    events = sorted([(d, "approve", None) for d in approve_days] + [(spec["day"] + (8 if spec["late"] else 0), "work", spec)
                                                                     for spec in tasks], key=lambda e: (e[0], e[1] == "work"))
    live = set()  # a trainer holds at most one live lease per project (the database enforces it)
    for n, (day, kind, spec) in enumerate(events):
        now = START + timedelta(days=day, minutes=n)
        if kind == "approve":
            for week_day in range(0, day + 1, 7):
                pay.approve(session, pay.week_of(START + timedelta(days=week_day)), None, None, now=now)
            continue
        trainer, proj = trainers[spec["trainer"]], projects[spec["project"]]
        item = Item(project_id=proj.id, external_id=f"i{n}", context=[{"role": "user", "content": "q"}],
                    responses=[{"id": "r1", "text": "r"}], meta={})
        session.add(item)
        session.flush()
        assigned = START + timedelta(days=spec["day"], minutes=n)
        if spec["status"] == "active":
            spec = {**spec, "status": "expired" if (trainer.id, proj.id) in live else "active"}
            live.add((trainer.id, proj.id))
        a = Assignment(item_id=item.id, project_id=proj.id, trainer_id=trainer.id, status=spec["status"],
                       assigned_at=assigned, expires_at=assigned, active_seconds=spec["seconds"], finished_at=now)
        session.add(a)
        session.flush()
        if spec["status"] == "submitted":
            session.add(Annotation(assignment_id=a.id, item_id=item.id, project_id=proj.id, trainer_id=trainer.id,
                                   answers={"label": "yes"}, submitted_at=now, excluded=spec["excluded"]))
        session.flush()
        pay.after_work(session, a, now)
        session.commit()

    # What every (trainer, project, week) is owed: its billable seconds × rate, rounded once.
    owed = defaultdict(int)
    for spec, n in ((e[2], i) for i, e in enumerate(events) if e[1] == "work"):
        if spec["status"] in ("submitted", "skipped") and not (spec["status"] == "submitted" and spec["excluded"]):
            cap = (1800, 600, 3600)[spec["project"]]
            week = pay.week_of(START + timedelta(days=spec["day"], minutes=n))
            owed[(spec["trainer"], spec["project"], week)] += min(spec["seconds"], cap)
    rate = {(t, p): overrides[t * 3 + p] or (3750, 1234, 1)[p] for t in range(3) for p in range(3)}
    expected = sum(cents_for(seconds, rate[(t, p)]) for (t, p, _w), seconds in owed.items())

    last = pay.week_of(START + timedelta(days=40))
    paid = sum(line.total_cents for line in pay.lines(session, pay.week_of(START), last))
    assert paid == expected
    # Nothing counted twice: approved sheets never changed, and late time only ever added seconds once.
    late_seconds = session.scalar(select(func.coalesce(func.sum(PayAdjustment.billable_seconds), 0)))
    sheet_seconds = session.scalar(select(func.coalesce(func.sum(Timesheet.billable_seconds), 0)))
    open_seconds = sum(line.billable_seconds for line in pay.lines(session, pay.week_of(START), last)
                       if line.status == "open")
    assert sheet_seconds + late_seconds + open_seconds == sum(owed.values())
