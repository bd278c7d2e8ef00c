"""Amounts that land exactly on half a cent: money.py rounds half to even, once per timesheet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.models import PayAdjustment
from app.services import assignment as queue
from app.services import pay
from app.services import projects as project_service
from app.services.money import cents_for, percent_of
from tests.factories import make_user

MONDAY = date(2026, 11, 16)
T0 = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)  # a Tuesday in the week of MONDAY
HOUR_AND_A_MINUTE = 3660  # 61/60 of an hour: a rate of 30 cents mod 60 lands on half a cent


@pytest.mark.parametrize(("rate_cents", "exact", "paid"), [
    (1530, "15.555", 1556),  # 1555.5 cents: 1555 is odd, so up to the even 1556
    (1590, "16.165", 1616),  # 1616.5 cents: 1616 is even, so down
    (30, "0.305", 30),
    (90, "0.915", 92),
])
def test_an_hour_and_a_minute_on_half_a_cent_rounds_half_to_even(rate_cents, exact, paid):
    assert Decimal(HOUR_AND_A_MINUTE * rate_cents) / 3600 / 100 == Decimal(exact)  # exactly on half a cent
    assert cents_for(HOUR_AND_A_MINUTE, rate_cents) == paid


def test_just_off_the_half_rounds_to_the_nearest_cent():
    assert cents_for(HOUR_AND_A_MINUTE - 1, 1530) == 1555  # 1555.075…
    assert cents_for(HOUR_AND_A_MINUTE + 1, 1590) == 1617  # 1616.94…


def test_a_percentage_on_half_a_cent_rounds_half_to_even():
    assert percent_of(250, 1) == 2  # 2.5
    assert percent_of(350, 1) == 4  # 3.5
    assert percent_of(-250, 1) == -2  # a negative half goes to the even cent as well


def rated_project(session, trainer, slug, rate_cents):
    p = project_service.create_project(
        session, name=slug, slug=slug, status="active", overlap=1, hourly_rate_cents=rate_cents,
        max_billable_seconds_per_task=7200,
        questions=[{"key": "label", "type": "label", "title": "Label?", "options": {"labels": ["yes", "no"]}}])
    for n in range(4):
        project_service.add_item(session, p, prompt=f"{slug} {n}", responses=["r"], external_id=f"{slug}-{n}")
    project_service.add_member(session, p, trainer, "trainer")
    session.commit()
    return p


def work(session, trainer, p, seconds, when=T0):
    a = queue.next_task(session, trainer.id, p, now=when)
    a.active_seconds = seconds
    session.commit()
    queue.submit(session, a.id, trainer.id, {"label": "yes"}, now=when + timedelta(seconds=seconds))
    return a


@pytest.mark.parametrize(("rate_cents", "paid"), [(1530, 1556), (1590, 1616)])
def test_a_weeks_total_on_half_a_cent_is_rounded_once_half_to_even(session, rate_cents, paid):
    trainer = make_user(session, "trainer")
    p = rated_project(session, trainer, f"half-{rate_cents}", rate_cents)
    # Two tasks of 30.5 minutes: each alone would be a quarter cent off; the week is rounded once.
    work(session, trainer, p, HOUR_AND_A_MINUTE // 2)
    work(session, trainer, p, HOUR_AND_A_MINUTE // 2, when=T0 + timedelta(hours=2))
    [line] = [line for line in pay.lines(session, MONDAY, MONDAY) if line.project_id == p.id]
    assert (line.billable_seconds, line.rate_cents, line.amount_cents) == (HOUR_AND_A_MINUTE, rate_cents, paid)


def test_late_time_keeps_the_week_equal_to_its_one_rounded_total(session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    p = rated_project(session, trainer, "half-late", 1590)
    work(session, trainer, p, HOUR_AND_A_MINUTE // 2)  # 808.25 cents
    late = queue.next_task(session, trainer.id, p, now=T0 + timedelta(hours=2))
    late.active_seconds = HOUR_AND_A_MINUTE // 2
    session.commit()
    [sheet] = pay.approve(session, MONDAY, None, admin.id, now=T0 + timedelta(days=2))
    assert (sheet.billable_seconds, sheet.amount_cents) == (1830, 808)
    queue.submit(session, late.id, trainer.id, {"label": "no"}, now=T0 + timedelta(days=3))
    [adjustment] = session.scalars(select(PayAdjustment)).all()
    assert adjustment.billable_seconds == 1830
    assert sheet.amount_cents + adjustment.amount_cents == 1616  # round(1616.5) to even, not 808 + 808 + …
