"""Pairwise, ranking and critique tasks done in a real browser; stored answers follow the answer contract (app/services/questions.py)."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db import get_db
from app.models import Annotation, Item, Project, User
from tests.e2e.conftest import sign_in as sign_in_as

pytestmark = pytest.mark.browser


def sign_in(page, email="trainer1@groundwork.test"):
    sign_in_as(page, email)
    expect(page.get_by_role("heading", name="My work")).to_be_visible()


def stored(app, slug, email="trainer1@groundwork.test"):
    with app.app_context():
        session = get_db().session_factory()
        rows = session.execute(
            select(Annotation.answers, Annotation.assignment_id, Annotation.active_seconds)
            .join(Item, Item.id == Annotation.item_id)
            .join(Project, Project.id == Annotation.project_id)
            .join(User, User.id == Annotation.trainer_id)
            .where(Project.slug == slug, User.email == email)
            .order_by(Annotation.id)
        ).all()
        session.close()
        return rows


def test_pairwise_task_with_the_keyboard(page, live_app):
    sign_in(page)
    page.goto("/work/helpfulness-pairs")
    task = page.get_by_test_id("task")
    first = task.get_attribute("data-task")
    expect(page.locator(".responses.side-by-side .response")).to_have_count(2)
    page.evaluate("window.__noReload = true")

    page.locator("body").press("b")
    page.locator("body").press("b")  # stronger: B better
    expect(page.locator("input[name='answer.preference'][value='2']")).to_be_checked()
    page.locator("body").press("a")  # switch sides: A slightly better
    expect(page.locator("input[name='answer.preference'][value='-1']")).to_be_checked()
    page.locator("body").press("a")
    page.locator("body").press("a")
    page.locator("body").press("a")  # capped at the scale
    expect(page.locator("input[name='answer.preference'][value='-3']")).to_be_checked()
    page.locator("textarea[name='answer.rationale']").fill("A explains the definition correctly.")
    page.locator("textarea[name='answer.rationale']").press("Control+Enter")

    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    expect(task).not_to_have_attribute("data-task", first)
    assert page.evaluate("window.__noReload") is True
    answers, task_id, _seconds = stored(live_app, "helpfulness-pairs")[0]
    assert str(task_id) == first
    assert answers == {"preference": -3, "rationale": "A explains the definition correctly."}

    page.locator("body").press("=")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("session-progress")).to_have_text("2 done this session")
    assert stored(live_app, "helpfulness-pairs")[1][0] == {"preference": 0}


def test_ranking_task_reordered_by_keyboard_with_one_tie(page, live_app):
    sign_in(page)
    page.goto("/work/answer-ranking")
    rows = page.locator(".rank-row")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_have_attribute("data-response", "A")

    # Move D (r4) to the top: focus it, Alt+Up three times.
    rows.nth(3).focus()
    for _ in range(3):
        page.keyboard.press("Alt+ArrowUp")
    expect(rows.nth(0)).to_have_attribute("data-response", "D")
    # Move A (now second) down one: order D, B, A, C.
    rows.nth(1).focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(rows.nth(2)).to_have_attribute("data-response", "A")
    # Tie A with B above it.
    page.keyboard.press("t")
    expect(rows.nth(2)).to_have_attribute("data-tied", "true")
    expect(rows.nth(2).locator(".rank-pos")).to_have_text("2")
    expect(rows.nth(3).locator(".rank-pos")).to_have_text("3")
    page.keyboard.press("Control+Enter")

    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    answers, _item, _seconds = stored(live_app, "answer-ranking")[0]
    assert answers == {"ranking": [["r4"], ["r1", "r2"], ["r3"]]}


def test_an_untouched_ranking_is_not_accepted_silently(page, live_app):
    sign_in(page)
    page.goto("/work/answer-ranking")
    page.get_by_test_id("submit").click()
    expect(page.locator(".question-ranking .field-error")).to_have_text("rank the responses (move rows, or confirm the order shown)")
    page.get_by_role("button", name="This order is right").click()
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    assert stored(live_app, "answer-ranking")[0][0] == {"ranking": [["r1"], ["r2"], ["r3"], ["r4"]]}


def test_critique_task_with_rubric_critique_and_rewrite(page, live_app):
    sign_in(page)
    page.goto("/work/response-critique")
    rewrite = page.locator("textarea[name='answer.rewrite']")
    original = rewrite.input_value()
    assert original  # the rewrite box starts with the response

    # Digits answer the first unanswered rubric question, one after another.
    for key in ("3", "2", "4", "1", "2"):
        page.locator("body").press(key)
    for name, value in (("helpfulness", "3"), ("correctness", "2"), ("coherence", "4"), ("complexity", "1"),
                        ("verbosity", "2")):
        expect(page.locator(f"input[name='answer.{name}'][value='{value}']")).to_be_checked()

    critique = page.locator("textarea[name='answer.critique']")
    critique.fill("Too short")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".question-text .field-error").first).to_contain_text("write at least 20 characters")
    # the inline error kept every other answer
    expect(page.locator("input[name='answer.coherence'][value='4']")).to_be_checked()

    critique.fill("Misses the mechanism: memory B and T cells, not just antibodies.")
    rewrite.fill(original + "\n\nMemory B and T cells make the later response fast.")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    answers, _item, _seconds = stored(live_app, "response-critique")[0]
    assert answers == {
        "helpfulness": 3, "correctness": 2, "coherence": 4, "complexity": 1, "verbosity": 2,
        "critique": "Misses the mechanism: memory B and T cells, not just antibodies.",
        "rewrite": original.strip() + "\n\nMemory B and T cells make the later response fast.",
    }


def test_help_overlay_and_skip_with_a_reason(page, live_app):
    sign_in(page)
    page.goto("/work/helpfulness-pairs")
    first = page.get_by_test_id("task").get_attribute("data-task")
    page.locator("body").press("?")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_hidden()
    page.locator("body").press("s")
    reason = page.locator("[data-skip-reason]")
    expect(reason).to_be_focused()
    reason.fill("Outside my expertise")
    reason.press("Enter")
    expect(page.get_by_test_id("task")).not_to_have_attribute("data-task", first)
    assert stored(live_app, "helpfulness-pairs") == []
