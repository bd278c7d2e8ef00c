"""The span question in a real browser: three spans marked by keyboard and mouse, submitted, seen by a
reviewer and corrected there."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from app.db import begin_write, get_db
from app.models import Annotation, Project, Review
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser

SELECT_JS = """([letter, start, end]) => {
  const box = document.querySelector(`form#task-form [data-span-response="${letter}"] [data-span-text]`);
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  let node, seen = 0, range = document.createRange(), started = false;
  while ((node = walker.nextNode())) {
    const length = node.textContent.length;
    if (!started && start <= seen + length) { range.setStart(node, start - seen); started = true; }
    if (end <= seen + length) { range.setEnd(node, end - seen); break; }
    seen += length;
  }
  box.focus();  // as a mouse selection would: the text box (tabindex 0) takes the focus
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  return selection.toString();
}"""


def test_spans_marked_by_keyboard_and_mouse_then_reviewed_and_corrected(browser, live_app):
    base = live_app.config["LIVE_URL"]
    trainer = browser.new_context(base_url=base).new_page()
    sign_in(trainer, "trainer1@groundwork.test")
    trainer.goto("/work/response-critique")
    fieldset = trainer.locator("form#task-form fieldset[data-type=span]")
    expect(fieldset).to_be_visible()
    text = trainer.evaluate(
        "JSON.parse(document.querySelector('form#task-form [data-span-text]').getAttribute('data-text'))")
    for key in ("3", "2", "4", "1", "2"):  # the rubric, by digits, before any text is selected
        trainer.locator("body").press(key)
    expect(trainer.locator("input[name='answer.verbosity'][value='2']")).to_be_checked()
    trainer.locator("textarea[name='answer.critique']").fill("Accurate, but the opening is vague and it rambles.")

    # 1. keyboard: select the first ten characters, press 4 (the fourth category, "unclear")
    assert trainer.evaluate(SELECT_JS, ["A", 0, 10]) == text[:10]
    trainer.keyboard.press("4")
    items = fieldset.locator("[data-span-list] li")
    expect(items).to_have_count(1)
    expect(items.nth(0).locator(".span-tag")).to_have_text("unclear")
    expect(trainer.locator("input[name='answer.helpfulness'][value='3']")).to_be_checked()  # the digit went to the span

    # 2. mouse: drag across part of the text, then click a category
    fieldset.locator("[data-span-text]").first.scroll_into_view_if_needed()
    box = fieldset.locator("[data-span-text]").first.bounding_box()
    trainer.mouse.move(box["x"] + 90, box["y"] + 14)
    trainer.mouse.down()
    trainer.mouse.move(box["x"] + 200, box["y"] + 14, steps=5)
    trainer.mouse.up()
    dragged = trainer.evaluate("window.getSelection().toString()")
    assert dragged.strip()
    fieldset.locator("[data-span-label='3']").click()  # irrelevant
    expect(items).to_have_count(2)

    # 3. keyboard again, later in the text, with a comment
    start = max(len(text) - 12, 11)
    trainer.evaluate(SELECT_JS, ["A", start, len(text)])
    trainer.keyboard.press("1")  # factual error
    expect(items).to_have_count(3)
    comment = fieldset.locator("input.span-comment").last
    comment.fill("This date is wrong.")
    comment.press("Tab")
    trainer.keyboard.press("Control+Enter")
    expect(trainer.get_by_test_id("session-progress")).to_have_text("1 done this session")
    trainer.context.close()  # no more heartbeats

    with live_app.app_context():
        session = get_db().session_factory()
        project_id = session.scalar(select(Project.id).where(Project.slug == "response-critique"))
        annotation = session.scalars(select(Annotation).where(Annotation.project_id == project_id)
                                     .order_by(Annotation.id.desc())).first()
        spans = annotation.answers["problems"]
        assert [(s["start"], s["end"], s["label"]) for s in spans][0] == (0, 10, "unclear")
        assert [s["label"] for s in spans] == ["unclear", "irrelevant", "factual error"]
        assert text[spans[1]["start"]:spans[1]["end"]] == dragged  # offsets are characters of the stored text
        assert spans[2]["end"] == len(text) and spans[2]["comment"] == "This date is wrong."
        # Route it to review (and nothing else of the project's), in a write transaction of its own:
        # the server may be writing too (SQLite cannot turn this read into a write once it has).
        session.rollback()
        begin_write(session)
        session.execute(update(Annotation).where(Annotation.project_id == project_id).values(review_reason=None))
        session.execute(update(Annotation).where(Annotation.id == annotation.id).values(review_reason="sampled"))
        session.commit()
        annotation_id = annotation.id
        session.close()

    reviewer = browser.new_context(base_url=base).new_page()
    sign_in(reviewer, "reviewer@groundwork.test")
    reviewer.goto("/review/response-critique/queue")
    shown = reviewer.locator("[data-answer='problems'] .span-answer li")
    expect(shown).to_have_count(3)
    expect(shown.nth(2)).to_contain_text("This date is wrong.")
    reviewer.locator("body").press("c")
    correction = reviewer.locator("form.correction fieldset[data-type=span]")
    expect(correction.locator("[data-span-list] li")).to_have_count(3)
    correction.locator("[data-span-remove]").nth(1).click()  # the mouse-made span was not a problem
    expect(correction.locator("[data-span-list] li")).to_have_count(2)
    reviewer.get_by_role("button", name="Save correction").click()
    expect(reviewer.get_by_test_id("review-empty")).to_be_visible()

    with live_app.app_context():
        session = get_db().session_factory()
        review = session.scalar(select(Review).where(Review.annotation_id == annotation_id))
        assert review.verdict == "correct"
        assert [s["label"] for s in review.corrected_answers["problems"]] == ["unclear", "factual error"]
        session.close()
