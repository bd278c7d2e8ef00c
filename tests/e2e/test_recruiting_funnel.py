"""Recruiting acceptance 1, in a real browser: a stranger applies, takes the adaptive medicine interview
and its written part, a reviewer grades it blind, an admin vets them and invites them to a medicine
project, and they accept and do their first task there."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db import get_db
from app.models import (
    Annotation,
    Application,
    Assessment,
    AuditEvent,
    Interview,
    InterviewResponse,
    Item,
    Project,
    Qualification,
    User,
    WrittenAnswer,
)
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser

PASSWORD = "a-long-enough-secret"
WRITTEN = ("NSAIDs such as ibuprofen raise the bleeding risk with warfarin. Suggest paracetamol or a topical gel "
           "instead, and ask their pharmacist or doctor before taking anything new.")


def _query(app, fn):
    """Run ``fn(session)`` on the live app's database and return what it returns."""
    with app.app_context():
        session = get_db().session_factory()
        try:
            return fn(session)
        finally:
            session.close()


def _sign_out(page) -> None:
    page.get_by_test_id("logout").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def _sign_in_as_candidate(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def test_a_stranger_applies_interviews_is_graded_vetted_invited_and_works(page, live_app):
    server_errors: list[str] = []
    page.on("response", lambda r: server_errors.append(f"{r.status} {r.request.method} {r.url}")
            if r.status >= 500 else None)
    name = "Noor Funnel-Test"
    email = f"noor.{uuid.uuid4().hex[:8]}@example.org"

    # 1. Apply, not signed in: medicine and law.
    page.goto("/apply")
    expect(page.get_by_role("heading", name="Apply to work as an expert")).to_be_visible()
    page.get_by_label("Full name").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Medicine", exact=True).check()
    page.get_by_label("Law", exact=True).check()
    page.get_by_label("Languages you work in").fill("en, ar")
    page.get_by_label("Years of experience").fill("9")
    page.get_by_label("Hours a week you can give").fill("20")
    page.get_by_label("Time zone").fill("Europe/Lisbon")
    page.get_by_label("I agree that Groundwork keeps my profile").check()
    page.get_by_test_id("apply-submit").click()

    expect(page).to_have_url(re.compile(r"/candidate$"))
    expect(page.get_by_role("heading", name="My application")).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("Your application is in")
    interviews_table = page.get_by_test_id("interviews")
    expect(interviews_table).to_contain_text("Medicine interview")
    expect(interviews_table.locator("tbody tr")).to_have_count(1)  # law has no assessment
    expect(page.get_by_text("No interview is open yet for Law")).to_be_visible()

    application_id, assessment = _query(live_app, lambda s: (
        s.scalar(select(Application.id).join(User, User.id == Application.user_id).where(User.email == email)),
        s.scalar(select(Assessment).join(Project, Project.id == Assessment.project_id)
                 .where(Project.slug == "medical-interview")),
    ))
    assert application_id is not None

    # 2. The adaptive interview: answer every item with its gold label, by clicking the label.
    page.get_by_test_id("start-medicine").click()
    expect(page).to_have_url(re.compile(r"/candidate/interviews/\d+$"))
    page.wait_for_load_state("load")
    item_form = page.get_by_test_id("interview-item")
    written_form = page.get_by_test_id("interview-written")
    progress = page.get_by_test_id("interview-progress")
    expect(item_form).to_be_visible()
    seen: list[int] = []
    prompts: list[str] = []
    while True:
        number = int(item_form.locator("input[name=question]").input_value())
        assert number == len(seen) + 1  # the form numbers its question; the bank's id stays on the server
        item_id = _query(live_app, lambda s: s.scalar(select(Interview.current_item_id).join(
            User, User.id == Interview.user_id).where(User.email == email)))
        prompt = item_form.locator("section.item").inner_text()
        if seen:
            assert item_id != seen[-1], "the same item was shown again after an answer"
        seen.append(item_id)
        prompts.append(prompt)
        assert len(seen) <= assessment.max_items, "the interview went past its maximum length"
        gold = _query(live_app, lambda s, i=item_id: s.get(Item, i).gold_answers["verdict"])
        radio = item_form.locator(f"input[name='answer.verdict'][value='{gold}']")
        item_form.locator("label.choice").filter(has=page.locator(f"input[value='{gold}']")).click()
        expect(radio).to_be_checked()
        item_form.get_by_test_id("submit").click()
        expect(progress).to_have_text(f"{len(seen)} answered")
        if written_form.is_visible():
            break
        expect(item_form).to_be_visible()
    assert len(seen) >= assessment.min_items
    assert len(set(seen)) == len(seen), f"an item came twice: {seen}"
    assert len(set(prompts)) == len(prompts), f"a question was shown twice: {prompts}"

    page.get_by_test_id("written-1").fill(WRITTEN)
    page.get_by_test_id("written-submit").click()
    done = page.get_by_test_id("interview-done")
    expect(done.get_by_role("heading", name="Interview complete")).to_be_visible()
    expect(done).to_contain_text(f"You answered {len(seen)} questions")
    expect(done).to_contain_text("A reviewer grades your written answers next.")

    responses = _query(live_app, lambda s: s.execute(
        select(InterviewResponse.item_id, InterviewResponse.correct)
        .join(Interview, Interview.id == InterviewResponse.interview_id)
        .where(Interview.application_id == application_id).order_by(InterviewResponse.position)).all())
    assert [r.item_id for r in responses] == seen
    assert all(r.correct for r in responses), "a gold label clicked in the page was not scored correct"

    done.get_by_test_id("back-to-application").click()
    expect(page.get_by_test_id("application-stage")).to_contain_text("Your written answers are being graded")
    expect(page.get_by_test_id("interviews")).to_contain_text("being graded")

    # 3. A reviewer grades the written answer, blind.
    _sign_out(page)
    sign_in(page, "reviewer@groundwork.test")
    page.wait_for_load_state("load")
    page.get_by_role("link", name="Grading", exact=True).click()
    expect(page.get_by_role("heading", name="Grading written answers")).to_be_visible()
    label = f"Candidate #{application_id}"
    row = page.get_by_test_id("grading-queue").locator("tbody tr").filter(has_text=re.compile(rf"{label}(?!\d)"))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Medicine interview")
    expect(page.locator("main")).not_to_contain_text(name)
    expect(page.locator("main")).not_to_contain_text(email)
    row.get_by_role("link", name="Grade").click()
    expect(page.get_by_role("heading", name=f"{label} · Medicine interview")).to_be_visible()
    expect(page.get_by_test_id("written-answer")).to_contain_text("NSAIDs such as ibuprofen")
    expect(page.locator("main")).not_to_contain_text(name)
    page.get_by_test_id("grade-value").fill("1.0")
    page.get_by_label("Note").fill("Names the bleeding risk, an alternative and a referral.")
    page.get_by_test_id("grade-submit").click()
    expect(page.locator("#flash")).to_contain_text(f"Grade saved for Candidate #{application_id}.")

    # 4. The admin finds them ready on the board and vets them.
    _sign_out(page)
    sign_in(page, "admin@groundwork.test")
    page.wait_for_load_state("load")
    page.get_by_role("link", name="Recruiting", exact=True).click()
    expect(page.get_by_role("heading", name="Recruiting pipeline")).to_be_visible()
    page.wait_for_load_state("load")
    page.get_by_label("Domain").select_option("medicine")
    expect(page).to_have_url(re.compile(r"[?&]domain=medicine"))
    ready = page.locator("section.board-column[data-stage=ready]")
    card = ready.locator("article.board-card").filter(has_text=email)
    expect(card).to_have_count(1)
    expect(page.locator("section.board-column:not([data-stage=ready])").filter(has_text=email)).to_have_count(0)
    card.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    stage = page.get_by_test_id("stage")
    expect(stage).to_have_text("Ready")
    page.get_by_label("Note").fill("Strong interview and a complete written answer.")
    page.get_by_role("button", name="Vet: make a trainer").click()
    expect(stage).to_have_text("Vetted")
    expect(page.locator("#flash")).to_contain_text("Vetted: now a trainer, qualified in Medicine")
    expect(page.get_by_test_id("qualifications")).to_contain_text("Medicine")
    qualification = _query(live_app, lambda s: s.scalar(
        select(Qualification.score).join(User, User.id == Qualification.user_id)
        .where(User.email == email, Qualification.domain == "medicine")))
    assert qualification is not None and qualification >= 0.5

    # 5. The admin invites them to a medicine project from its staffing page.
    page.goto("/admin/projects/clinical-answer-check/staffing")
    expect(page.get_by_role("heading", name="Staffing · Clinical answer check")).to_be_visible()
    candidate_row = page.get_by_test_id("candidates").locator(f"tr[data-candidate='{email}']")
    expect(candidate_row).to_be_visible()
    expect(candidate_row.locator("td[data-part=score]")).to_have_text(re.compile(r"^\s*[01]\.\d\d\s*$"))
    page.get_by_label(f"Invite {name}").check()
    page.get_by_label("Rate an hour").fill("55.00")
    page.get_by_label("Expected hours a week").fill("12")
    page.get_by_label("Message to the trainers").fill("We would love your **clinical** eye on this project.")
    page.get_by_test_id("invite").click()
    expect(page.locator("#flash")).to_contain_text("Invited 1 trainer.")
    invited = page.get_by_test_id("invitations").locator(f"tr[data-invitation='{email}']")
    expect(invited).to_have_attribute("data-status", "pending")
    expect(invited).to_contain_text("pending")
    expect(invited).to_contain_text("55.00")
    expect(invited).to_contain_text("12")

    # 6. The new trainer accepts and does a first task.
    _sign_out(page)
    _sign_in_as_candidate(page, email)
    page.get_by_role("link", name="Invitations", exact=True).click()
    expect(page.get_by_role("heading", name="Invitations", exact=True)).to_be_visible()
    invitation = page.get_by_test_id("invitation").filter(has_text="Clinical answer check")
    expect(invitation).to_have_attribute("data-status", "pending")
    expect(invitation).to_contain_text("55.00")
    expect(invitation).to_contain_text("12 hours a week expected")
    expect(invitation.get_by_test_id("invitation-message")).to_contain_text("We would love your clinical eye")
    expect(invitation).to_contain_text("Judge whether each clinical answer is correct and safe.")
    invitation.get_by_test_id("accept").click()

    expect(page).to_have_url(re.compile(r"/work/clinical-answer-check$"))
    expect(page.locator("#flash")).to_contain_text("Welcome to Clinical answer check")
    task = page.get_by_test_id("task")
    expect(task).to_be_visible()
    page.wait_for_load_state("load")
    first_task = task.get_attribute("data-task")
    radio = task.locator("input[name='answer.verdict'][value='incorrect']")
    task.locator("label.choice").filter(has=page.locator("input[value='incorrect']")).click()
    expect(radio).to_be_checked()
    task.get_by_test_id("submit").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    expect(task).not_to_have_attribute("data-task", first_task)

    # 7. Nothing failed on the server, and the audit log names who decided what.
    assert server_errors == []

    def _facts(s):
        ids = {e: s.scalar(select(User.id).where(User.email == e))
               for e in (email, "admin@groundwork.test", "reviewer@groundwork.test")}
        answer_ids = [str(i) for i in s.scalars(
            select(WrittenAnswer.id).join(Interview, Interview.id == WrittenAnswer.interview_id)
            .where(Interview.application_id == application_id))]
        events = s.execute(select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.target_id).where(
            ((AuditEvent.action == "application.vet") & (AuditEvent.target_id == str(application_id)))
            | ((AuditEvent.action == "written.grade") & AuditEvent.target_id.in_(answer_ids)))).all()
        annotations = s.execute(
            select(Annotation.answers).join(Project, Project.id == Annotation.project_id)
            .where(Annotation.trainer_id == ids[email], Project.slug == "clinical-answer-check")).all()
        return ids, answer_ids, events, [a.answers for a in annotations]

    ids, answer_ids, events, annotations = _query(live_app, _facts)
    assert len(answer_ids) == 1
    assert {(e.action, e.actor_id) for e in events} == {
        ("application.vet", ids["admin@groundwork.test"]),
        ("written.grade", ids["reviewer@groundwork.test"]),
    }
    assert annotations == [{"verdict": "incorrect"}]
