"""A trainer's first minutes, in a real browser: sign in, label with the keyboard, sign out."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db import get_db
from app.models import Annotation, User
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def _annotations_of(app, email):
    with app.app_context():
        session = get_db().session_factory()
        rows = session.execute(
            select(Annotation.answers).join(User, User.id == Annotation.trainer_id).where(User.email == email)
        ).all()
        session.close()
        return [r.answers for r in rows]


def test_trainer_labels_with_the_keyboard_and_the_next_item_swaps_in(page, live_app):
    sign_in(page, "trainer1@groundwork.test")
    expect(page.get_by_role("heading", name="My work")).to_be_visible()

    page.get_by_role("link", name="Assistant safety triage").click()
    task = page.get_by_test_id("task")
    expect(task).to_be_visible()
    page.wait_for_load_state("load")  # the keys below need the page's scripts, which run before "load"
    first_item = task.get_attribute("data-task")
    page.evaluate("window.__noReload = 'still here'")

    page.keyboard.press("2")  # second label: unsafe
    expect(page.locator("input[name='answer.safety'][value='unsafe']")).to_be_checked()
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    expect(task).not_to_have_attribute("data-task", first_item)
    assert page.evaluate("window.__noReload") == "still here"  # swapped by htmx, no page load
    assert _annotations_of(live_app, "trainer1@groundwork.test") == [{"safety": "unsafe"}]

    page.get_by_test_id("logout").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/work/")
    expect(page).to_have_url("/login?next=/work/")


def test_submitting_without_an_answer_shows_the_error_inline(page, live_app):
    sign_in(page, "trainer1@groundwork.test")
    page.goto("/work/safety-triage")
    page.get_by_test_id("submit").click()
    expect(page.locator(".field-error")).to_have_text("choose a label")
    assert _annotations_of(live_app, "trainer1@groundwork.test") == []


def test_a_double_clicked_submit_stores_one_annotation(page, live_app):
    sign_in(page, "trainer1@groundwork.test")
    page.goto("/work/safety-triage")
    page.locator("body").press("1")
    page.get_by_test_id("submit").dblclick()
    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    page.wait_for_timeout(300)  # give a second request, if one had been sent, time to land
    assert _annotations_of(live_app, "trainer1@groundwork.test") == [{"safety": "safe"}]


def test_leaving_a_task_with_an_answer_not_sent_asks_first(page, live_app):
    """An answer chosen but not sent: following a link asks before leaving (dismissed here, so the
    task stays, answer and all); after sending it, or with nothing changed, links just go."""
    sign_in(page, "trainer1@groundwork.test")
    page.goto("/work/safety-triage")
    task = page.get_by_test_id("task")
    expect(task).to_be_visible()
    page.wait_for_load_state("load")
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.keyboard.press("2")
    chosen = page.locator("input[name='answer.safety'][value='unsafe']")
    expect(chosen).to_be_checked()
    def leave(how, count):
        how()
        for _ in range(50):  # the question comes as the navigation starts
            if len(asked) == count:
                break
            page.wait_for_timeout(100)
        assert asked == ["beforeunload"] * count
        expect(chosen).to_be_checked()  # still on the task, the answer kept

    leave(lambda: page.get_by_role("link", name="My work").click(), 1)
    leave(lambda: page.get_by_test_id("logout").click(), 2)  # another form is leaving too
    page.get_by_test_id("submit").click()  # sent: the next task comes in, unchanged
    expect(page.get_by_test_id("session-progress")).to_have_text("1 done this session")
    page.get_by_role("link", name="My work").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()
    assert asked == ["beforeunload"] * 2  # no more questions


def test_enter_on_a_link_or_a_toggle_does_what_it_says_and_sends_nothing(page, live_app):
    """Enter sends the task from the task, not from a focused link (it follows), the skip or the
    instructions toggle (it opens) or a button elsewhere; the answer chosen stays unsent."""
    sign_in(page, "trainer1@groundwork.test")
    page.goto("/work/safety-triage")
    page.wait_for_load_state("load")
    page.locator("body").press("1")
    page.locator("details.skip > summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("details.skip")).to_have_attribute("open", "")
    page.locator("aside.instructions summary").focus()
    page.keyboard.press("Enter")  # open on arrival: Enter folds it
    expect(page.locator("aside.instructions details")).not_to_have_attribute("open", "")
    assert _annotations_of(live_app, "trainer1@groundwork.test") == []
    page.once("dialog", lambda dialog: dialog.accept())  # the unsent answer's question: leave anyway
    page.get_by_role("link", name="Earnings").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url("/work/earnings")
    assert _annotations_of(live_app, "trainer1@groundwork.test") == []
