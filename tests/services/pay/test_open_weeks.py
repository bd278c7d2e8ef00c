"""Pay reads live sums only for weeks without a timesheet; they equal the full sums there, whatever
pattern of weeks was approved (gaps, single trainers, nothing), and a project's spend equals the sum of
its lines."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import Annotation, Assignment, Item, Timesheet, utcnow
from app.services import pay
from app.services import projects as project_service
from tests.factories import make_label_project, make_user


@pytest.mark.parametrize("seed", [1, 2])
def test_open_sums_equal_the_full_sums_around_any_approvals(session, seed):
    rng = random.Random(seed)
    admin = make_user(session, "admin")
    trainers = [make_user(session, "trainer") for _ in range(3)]
    projects = [make_label_project(session, items=12, overlap=3, trainers=trainers) for _ in range(2)]
    projects[0].budget_cents = 10**9
    idle = make_user(session, "trainer")  # a member who never worked
    project_service.add_member(session, projects[0], idle, "trainer")
    now = utcnow()
    this_week = pay.week_of(now)
    weeks = [this_week - timedelta(days=7 * n) for n in range(6)]
    for project in projects:
        for item in session.scalars(select(Item).where(Item.project_id == project.id)):
            for trainer in rng.sample(trainers, rng.randint(1, 3)):
                week = rng.choice(weeks)
                claimed = min(pay._start(week) + timedelta(hours=rng.randint(1, 150)), now - timedelta(minutes=1))
                assignment = Assignment(item_id=item.id, project_id=project.id, trainer_id=trainer.id,
                                        status=rng.choice(["submitted", "submitted", "skipped", "expired"]),
                                        assigned_at=claimed, expires_at=claimed,
                                        active_seconds=rng.randint(0, 4000))
                session.add(assignment)
                session.flush()
                if assignment.status == "submitted":
                    session.add(Annotation(assignment_id=assignment.id, item_id=item.id, project_id=project.id,
                                           trainer_id=trainer.id, answers={"label": "yes"}, submitted_at=claimed,
                                           active_seconds=assignment.active_seconds, excluded=rng.random() < 0.2))
    session.commit()
    first, last = weeks[-1], this_week
    full = pay.billable_by_week(session, first, last)
    # Approve a random scatter of lines, leaving gaps between approved weeks.
    for week in weeks[1:]:
        keys = [(t, p) for (t, p, w) in full if w == week and rng.random() < 0.6]
        if keys:
            pay.approve(session, week, keys, admin.id)
    approved = {(s.trainer_id, s.project_id, s.week_start) for s in session.scalars(select(Timesheet))}
    assert approved and set(full) - approved  # both kinds exist
    for trainer_id, project_id in [(None, None), (trainers[0].id, None), (None, projects[0].id)]:
        open_sums = pay.open_billable_by_week(session, first, last, trainer_id, project_id)
        expected = {k: v for k, v in pay.billable_by_week(session, first, last, trainer_id, project_id).items()
                    if k not in approved}
        assert open_sums == expected
    one_week = pay.open_billable_by_week(session, weeks[2], weeks[2])
    assert one_week == {k: v for k, v in full.items() if k[2] == weeks[2] and k not in approved}
    for project in projects:
        lines = pay.lines(session, first, last, project_id=project.id)
        assert pay.project_spend(session, project) == sum(line.total_cents for line in lines)
