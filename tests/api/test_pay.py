"""Pay over the API: a trainer's own timesheets (the Earnings page's figures) and the payroll (the
Payroll page's figures, from ``pay.payroll``), in integer cents."""

from __future__ import annotations

from datetime import timedelta

from app.models import Assignment, utcnow
from app.services import assignment as queue
from app.services import pay
from tests.factories import make_label_project, make_user

from .conftest import Api, token_for


def _work(session, trainer, project, seconds, weeks_ago=0):
    task = queue.next_task(session, trainer.id, project)
    task.active_seconds = seconds
    session.commit()
    queue.submit(session, task.id, trainer.id, {"label": "yes"})
    if weeks_ago:
        assignment = session.get(Assignment, task.id)
        assignment.assigned_at -= timedelta(days=7 * weeks_ago)
        session.commit()


def world(client, session):
    """Two trainers in two projects at 36.00/h (1 cent a second), an admin; one approved and paid week."""
    admin = make_user(session, "admin", name="Ada Admin")
    tess, otto = make_user(session, "trainer", name="Tess Trainer"), make_user(session, "trainer", name="Otto Other")
    alpha = make_label_project(session, items=4, trainers=[tess, otto], slug="alpha")
    beta = make_label_project(session, items=4, trainers=[tess], slug="beta")
    alpha.hourly_rate_cents = beta.hourly_rate_cents = 3600
    beta.max_billable_seconds_per_task = 300
    session.commit()
    _work(session, tess, alpha, 600, weeks_ago=1)  # last week: 6.00
    _work(session, tess, alpha, 120)  # this week: 1.20
    _work(session, tess, beta, 900)  # capped at 300 s: 3.00
    _work(session, otto, alpha, 60)  # 0.60
    last_week = pay.week_of(utcnow()) - timedelta(days=7)
    sheet = pay.approve(session, last_week, [(tess.id, alpha.id)], admin.id)[0]
    pay.mark_paid(session, [sheet.id], "TX-42", admin.id)
    pay.add_adjustment(session, tess.id, beta.id, 250, "Great notes", admin.id)
    api = Api(client, {"admin": token_for(session, admin), "tess": token_for(session, tess),
                       "otto": token_for(session, otto), "admin_ro": token_for(session, admin, read_only=True)})
    return api, admin, tess, otto, alpha, beta, last_week


def test_a_trainer_sees_their_own_weeks_in_cents(client, session):
    api, admin, tess, otto, alpha, beta, last_week = world(client, session)
    response = api.get("/api/v1/me/timesheets", as_="tess")
    assert response.status_code == 200
    body = response.get_json()
    this_week = pay.week_label(pay.week_of(utcnow()))
    assert (body["this_week_cents"], body["pending_cents"], body["approved_cents"], body["paid_cents"]) == (
        120 + 300 + 250, 120 + 300 + 250, 0, 600)
    assert body["billable_seconds"] == 600 + 120 + 300
    lines = {(line["week"], line["project"]): line for line in body["data"]}
    assert set(lines) == {(pay.week_label(last_week), "alpha"), (this_week, "alpha"), (this_week, "beta")}
    paid = lines[(pay.week_label(last_week), "alpha")]
    assert (paid["status"], paid["amount_cents"], paid["rate_cents"], paid["paid_reference"], paid["total_cents"]) == (
        "paid", 600, 3600, "TX-42", 600)
    assert paid["week_start"] == last_week.isoformat() and paid["project_name"] == alpha.name
    beta_line = lines[(this_week, "beta")]
    assert (beta_line["billable_seconds"], beta_line["amount_cents"], beta_line["adjustments_cents"],
            beta_line["total_cents"], beta_line["status"]) == (300, 300, 250, 550, "open")
    assert [(a["kind"], a["amount_cents"], a["reason"]) for a in beta_line["adjustments"]] == [
        ("bonus", 250, "Great notes")]
    # The Earnings page's own figures, line for line
    earnings = pay.earnings(session, tess.id)
    assert [(line["week_start"], line["project"], line["total_cents"]) for line in body["data"]] == [
        (line.week.isoformat(), {alpha.id: "alpha", beta.id: "beta"}[line.project_id], line.total_cents)
        for line in earnings.lines]


def test_a_trainer_sees_nobody_elses_pay(client, session):
    api, *_ = world(client, session)
    body = api.get("/api/v1/me/timesheets", as_="otto").get_json()
    assert [(line["project"], line["amount_cents"]) for line in body["data"]] == [("alpha", 60)]
    assert "Tess" not in str(body) and body["pending_cents"] == 60


def test_payroll_has_the_payroll_pages_figures(client, session):
    api, admin, tess, otto, alpha, beta, last_week = world(client, session)
    response = api.get("/api/v1/payroll", as_="admin")  # the current week when none is given
    assert response.status_code == 200
    body = response.get_json()
    assert body["week"] == pay.week_label(pay.week_of(utcnow()))
    rows = {(line["trainer"]["name"], line["project"]): line for line in body["data"]}
    assert {key: (line["amount_cents"], line["adjustments_cents"], line["status"]) for key, line in rows.items()} == {
        ("Tess Trainer", "alpha"): (120, 0, "open"), ("Tess Trainer", "beta"): (300, 250, "open"),
        ("Otto Other", "alpha"): (60, 0, "open")}
    assert rows[("Tess Trainer", "alpha")]["trainer"] == {"id": tess.id, "name": "Tess Trainer", "email": tess.email}
    assert body["totals"] == {"billable_seconds": 480, "amount_cents": 480, "adjustments_cents": 250,
                              "total_cents": 730}
    sheet = pay.payroll(session, pay.week_of(utcnow()))
    assert [(line["trainer"]["id"], line["project"], line["total_cents"]) for line in body["data"]] == [
        (line.trainer_id, sheet.projects[line.project_id].slug, line.total_cents) for line in sheet.lines]


def test_payroll_filters_by_week_project_and_status(client, session):
    api, admin, tess, otto, alpha, beta, last_week = world(client, session)
    for week in (last_week.isoformat(), (last_week + timedelta(days=3)).isoformat(), pay.week_label(last_week)):
        body = api.get(f"/api/v1/payroll?week={week}", as_="admin").get_json()
        assert body["week_start"] == last_week.isoformat()
        assert [(line["project"], line["status"], line["paid_reference"], line["timesheet_id"] is not None)
                for line in body["data"]] == [("alpha", "paid", "TX-42", True)]
    only_beta = api.get("/api/v1/payroll?project=beta", as_="admin").get_json()
    assert [line["project"] for line in only_beta["data"]] == ["beta"]
    paid_now = api.get("/api/v1/payroll?status=paid", as_="admin").get_json()
    assert paid_now["data"] == [] and paid_now["totals"]["total_cents"] == 0
    assert api.get("/api/v1/payroll", as_="admin_ro").status_code == 200


def test_payroll_refuses_filters_it_cannot_read(client, session):
    api, *_ = world(client, session)
    response = api.get("/api/v1/payroll?week=someday&project=nothing-here&status=lost", as_="admin")
    assert response.status_code == 422
    assert set(response.get_json()["error"]["details"]) == {"status"}  # the model's check comes first
    response = api.get("/api/v1/payroll?week=someday&project=nothing-here", as_="admin")
    assert response.status_code == 422
    assert set(response.get_json()["error"]["details"]) == {"week", "project"}
    assert api.get("/api/v1/payroll?week=1999-01-04", as_="admin").status_code == 422


def test_payroll_is_for_admins_and_timesheets_for_trainers(client, session):
    api, *_ = world(client, session)
    assert api.get("/api/v1/payroll", as_="tess").status_code == 403
    assert api.get("/api/v1/me/timesheets", as_="admin").status_code == 403
