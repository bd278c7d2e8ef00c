"""A reviewer rejects one annotation and corrects another; the trainer sees both."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db import get_db
from app.models import Annotation, Review, User
from app.services import review as review_service
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def test_reviewer_rejects_and_corrects_and_the_trainer_sees_both(browser, live_app):
    base = live_app.config["LIVE_URL"]
    reviewer = browser.new_context(base_url=base).new_page()
    sign_in(reviewer, "reviewer@groundwork.test")
    reviewer.goto("/review/safety-triage/queue")
    card = reviewer.get_by_test_id("review")
    expect(card).to_be_visible()
    rejected_id = int(card.get_attribute("data-annotation"))
    reviewer.evaluate("window.__noReload = true")

    # Reject with the keyboard: R opens the panel and focuses the comment.
    reviewer.locator("body").press("r")
    comment = reviewer.locator("[data-verdict-comment]")
    expect(comment).to_be_focused()
    reviewer.get_by_role("button", name="Reject", exact=True).click()
    expect(reviewer.locator(".field-error")).to_contain_text("say what is wrong")  # a reason is required
    # The reason's field has the keys again: typing goes into it, Ctrl+Enter sends it, as in a task.
    expect(reviewer.locator("[data-verdict-comment]")).to_be_focused()
    reviewer.keyboard.type("This advice is dangerous: the label should be unsafe.")
    reviewer.keyboard.press("Control+Enter")
    expect(card).not_to_have_attribute("data-annotation", str(rejected_id))
    corrected_id = int(card.get_attribute("data-annotation"))

    # Correct the next one: C opens the task widgets filled with the trainer's answer.
    reviewer.locator("body").press("c")
    current = reviewer.locator("form.correction input[name='answer.safety']:checked").get_attribute("value")
    new_label = "needs_expert" if current != "needs_expert" else "safe"
    reviewer.locator(f"form.correction input[name='answer.safety'][value='{new_label}']").check()
    reviewer.locator("form.correction textarea[name='comment']").fill("A pharmacist should judge this one.")
    reviewer.get_by_role("button", name="Save correction").click()
    expect(card).not_to_have_attribute("data-annotation", str(corrected_id))
    assert reviewer.evaluate("window.__noReload") is True

    with live_app.app_context():
        session = get_db().session_factory()
        rejected, corrected = session.get(Annotation, rejected_id), session.get(Annotation, corrected_id)
        assert rejected.review_status == "rejected" and corrected.review_status == "corrected"
        assert review_service.adjudicated_answers(session, corrected) == {"safety": new_label}
        assert corrected.answers["safety"] == current  # the trainer's own answer is kept
        reviews = {r.annotation_id: r for r in session.scalars(select(Review).where(
            Review.annotation_id.in_([rejected_id, corrected_id])))}
        rejected_by = session.scalar(select(User.email).where(User.id == rejected.trainer_id))
        corrected_by = session.scalar(select(User.email).where(User.id == corrected.trainer_id))
        session.close()
    assert reviews[rejected_id].comment.startswith("This advice is dangerous")

    # Each trainer finds the verdict on their own feedback page.
    for email in {rejected_by, corrected_by}:
        trainer = browser.new_context(base_url=base).new_page()
        sign_in(trainer, email)
        trainer.get_by_role("link", name="Feedback").click()
        expect(trainer.get_by_role("heading", name="Feedback on my work")).to_be_visible()
        if email == rejected_by:
            rejected_card = trainer.locator("[data-testid=feedback][data-verdict=reject]").filter(
                has_text="This advice is dangerous: the label should be unsafe.")
            expect(rejected_card).to_be_visible()
        if email == corrected_by:
            corrected_card = trainer.locator("[data-testid=feedback][data-verdict=correct]").filter(
                has_text="A pharmacist should judge this one.")
            expect(corrected_card.locator("[data-corrected=safety]")).to_contain_text(new_label.replace("_", " "))
        trainer.context.close()


def test_keys_in_the_correction_panel_change_the_answer_and_never_give_a_verdict(browser, live_app):
    """With the correction open, A / B / = and the digits work its widgets as they do a trainer's task;
    A never approves there. Esc closes the panel, and A approves again."""
    page = browser.new_context(base_url=live_app.config["LIVE_URL"]).new_page()
    sign_in(page, "reviewer@groundwork.test")
    page.goto("/review/helpfulness-pairs/queue")
    card = page.get_by_test_id("review")
    expect(card).to_be_visible()
    first_id = card.get_attribute("data-annotation")
    page.evaluate("window.__noReload = true")
    checked = "form.correction input[name='answer.preference']:checked"

    page.locator("body").press("c")
    expect(page.locator('details[data-verdict-panel="correct"]')).to_have_attribute("open", "")
    given = page.locator(checked).get_attribute("value")
    expect(page.locator(checked)).to_be_focused()  # the trainer's answer, not the first option
    page.keyboard.press("=")
    expect(page.locator(checked)).to_have_value("0")
    page.keyboard.press("a")
    page.keyboard.press("a")
    expect(page.locator(checked)).to_have_value("-2")
    page.keyboard.press("b")
    expect(page.locator(checked)).to_have_value("1")
    page.keyboard.press("1")  # the digits choose a point of the scale
    expect(page.locator(checked)).to_have_value("-3")
    expect(card).to_have_attribute("data-annotation", first_id)  # no verdict was given
    page.locator(checked).focus()
    page.keyboard.press("Escape")
    expect(page.locator('details[data-verdict-panel="correct"]')).not_to_have_attribute("open", "")
    page.locator("body").press("a")
    expect(card).not_to_have_attribute("data-annotation", first_id)
    assert page.evaluate("window.__noReload") is True

    with live_app.app_context():
        session = get_db().session_factory()
        approved = session.get(Annotation, int(first_id))
        status, answer = approved.review_status, approved.answers["preference"]
        session.close()
    assert status == "approved" and str(answer) == given  # approved as the trainer gave it


def test_enter_in_the_correction_saves_it(browser, live_app):
    page = browser.new_context(base_url=live_app.config["LIVE_URL"]).new_page()
    sign_in(page, "reviewer@groundwork.test")
    page.goto("/review/safety-triage/queue")
    card = page.get_by_test_id("review")
    first_id = card.get_attribute("data-annotation")
    page.locator("body").press("c")
    current = page.locator("form.correction input[name='answer.safety']:checked").get_attribute("value")
    labels = page.locator("form.correction input[name='answer.safety']")
    other = next(n for n in range(labels.count()) if labels.nth(n).get_attribute("value") != current)
    page.keyboard.press(str(other + 1))
    page.keyboard.press("Enter")
    expect(card).not_to_have_attribute("data-annotation", first_id)
    with live_app.app_context():
        session = get_db().session_factory()
        status = session.get(Annotation, int(first_id)).review_status
        session.close()
    assert status == "corrected"
