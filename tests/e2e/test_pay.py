"""An admin approves a week; the trainer sees it approved; the payroll CSV has the rows."""

import csv
import io

import pytest
from playwright.sync_api import expect

from app.services import pay
from app.services.demo import demo_now
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def test_admin_approves_a_week_and_the_trainer_sees_it(browser, live_app):
    base = live_app.config["LIVE_URL"]
    admin = browser.new_context(base_url=base).new_page()
    sign_in(admin, "admin@groundwork.test")
    admin.get_by_role("link", name="Payroll").click()
    admin.goto(f"/admin/payroll?week={pay.week_label(pay.week_of(demo_now()))}")  # the week the demo's work is in
    table = admin.get_by_test_id("payroll")
    row = table.locator("tr[data-trainer='trainer2@groundwork.test']", has_text="Assistant safety triage")
    expect(row).to_have_attribute("data-status", "open")
    amount = row.locator("td").nth(7).inner_text()
    row.get_by_role("checkbox").check()
    admin.get_by_test_id("approve").click()
    expect(admin.locator(".flash-success")).to_contain_text("Approved 1 timesheet(s)")
    expect(row).to_have_attribute("data-status", "approved")

    with admin.expect_download() as info:
        admin.get_by_test_id("payroll-csv").click()
    rows = list(csv.DictReader(io.StringIO(open(info.value.path()).read())))
    mine = [r for r in rows if r["trainer_email"] == "trainer2@groundwork.test" and r["project"] == "safety-triage"]
    assert len(mine) == 1 and mine[0]["status"] == "approved" and mine[0]["total"] == amount
    assert {r["status"] for r in rows} == {"open", "approved", "paid"}
    assert len(rows) == len({(r["trainer_email"], r["project"], r["week"]) for r in rows})  # one row per trainer × project × week

    trainer = browser.new_context(base_url=base).new_page()
    sign_in(trainer, "trainer2@groundwork.test")
    trainer.get_by_role("link", name="Earnings").click()
    weeks = trainer.get_by_test_id("earnings-weeks")
    line = weeks.locator("tr", has_text="Assistant safety triage")
    expect(line).to_have_attribute("data-status", "approved")
    expect(line).to_contain_text(amount)
    expect(trainer.get_by_test_id("approved")).not_to_have_text("0.00")
