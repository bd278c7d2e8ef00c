"""The reviewer's pages over HTTP: the queue, the three verdicts with the CSRF token, and who is kept out."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.models import Annotation, Review
from app.services import assignment as queue
from app.services import projects as project_service
from tests.conftest import login
from tests.factories import PASSWORD, make_label_project, make_user

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def reviewed_project(session, answers=("yes",)):
    """A project whose every answer goes to review (rate 1), with one trainer's answers and a reviewer member."""
    trainer, reviewer = make_user(session, "trainer"), make_user(session, "reviewer", name="Rita Reviewer")
    project = make_label_project(session, items=len(answers) + 1, trainers=[trainer])
    project.review_rate = 1.0
    project_service.add_member(session, project, reviewer, "reviewer")
    session.commit()
    for answer in answers:
        a = queue.next_task(session, trainer.id, project)
        queue.submit(session, a.id, trainer.id, {"label": answer})
    return project, trainer, reviewer


def queue_page(client, project):
    response = client.get(f"/review/{project.slug}/queue")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    return page, CSRF_RE.search(page).group(1)


def shown_annotation(page: str) -> int | None:
    match = re.search(r'data-annotation="(\d+)"', page)
    return int(match.group(1)) if match else None


def verdict_url(project, annotation_id: int) -> str:
    return f"/review/{project.slug}/annotations/{annotation_id}/verdict"


def annotations(session):
    session.rollback()  # a fresh snapshot: see what the requests committed
    return list(session.scalars(select(Annotation).order_by(Annotation.id)))


def test_the_queue_shows_the_waiting_work_and_the_projects_list_counts_it(client, session):
    project, trainer, reviewer = reviewed_project(session, answers=("yes", "no"))
    login(client, reviewer.email, PASSWORD)
    listing = client.get("/review/").get_data(as_text=True)
    assert project.name in listing
    page, _token = queue_page(client, project)
    first = annotations(session)[0]
    assert shown_annotation(page) == first.id  # oldest first within a reason
    assert "2 waiting" in page and trainer.name in page and "random sample" in page
    assert f'action="{verdict_url(project, first.id)}"' in page


def test_approve_over_htmx_saves_the_verdict_and_swaps_in_the_next(client, session):
    project, _trainer, reviewer = reviewed_project(session, answers=("yes", "no"))
    login(client, reviewer.email, PASSWORD)
    page, token = queue_page(client, project)
    first, second = annotations(session)
    response = client.post(verdict_url(project, first.id), data={"verdict": "approve", "csrf_token": token},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and "Verdict saved." in fragment
    assert shown_annotation(fragment) == second.id and "1 waiting" in fragment
    first, second = annotations(session)
    assert (first.review_status, second.review_status) == ("approved", "unreviewed")
    review = session.scalar(select(Review))
    assert (review.annotation_id, review.reviewer_id, review.verdict) == (first.id, reviewer.id, "approve")


def test_reject_needs_a_reason_then_is_saved_and_redirects_without_htmx(client, session):
    project, _trainer, reviewer = reviewed_project(session)
    login(client, reviewer.email, PASSWORD)
    _page, token = queue_page(client, project)
    [annotation] = annotations(session)
    url = verdict_url(project, annotation.id)
    refused = client.post(url, data={"verdict": "reject", "comment": "  ", "csrf_token": token})
    assert refused.status_code == 422
    assert "say what is wrong" in refused.get_data(as_text=True)
    assert annotations(session)[0].review_status == "unreviewed"

    response = client.post(url, data={"verdict": "reject", "comment": "The response is harmful.", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/review/{project.slug}/queue")
    assert annotations(session)[0].review_status == "rejected"
    review = session.scalar(select(Review))
    assert (review.verdict, review.comment) == ("reject", "The response is harmful.")
    after, _ = queue_page(client, project)
    assert shown_annotation(after) is None and "The review queue is empty" in after


def test_correct_stores_the_corrected_answer(client, session):
    project, _trainer, reviewer = reviewed_project(session, answers=("yes",))
    login(client, reviewer.email, PASSWORD)
    _page, token = queue_page(client, project)
    [annotation] = annotations(session)
    url = verdict_url(project, annotation.id)
    same = client.post(url, data={"verdict": "correct", "answer.label": "yes", "csrf_token": token},
                       headers={"HX-Request": "true"})
    assert same.status_code == 422 and "approve it instead" in same.get_data(as_text=True)

    response = client.post(url, data={"verdict": "correct", "answer.label": "no", "comment": "It is a no.",
                                      "csrf_token": token}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert annotations(session)[0].review_status == "corrected"
    review = session.scalar(select(Review))
    assert (review.verdict, review.corrected_answers, review.comment) == ("correct", {"label": "no"}, "It is a no.")


def test_a_second_verdict_is_a_conflict(client, session):
    project, _trainer, reviewer = reviewed_project(session)
    login(client, reviewer.email, PASSWORD)
    _page, token = queue_page(client, project)
    [annotation] = annotations(session)
    url = verdict_url(project, annotation.id)
    assert client.post(url, data={"verdict": "approve", "csrf_token": token}).status_code == 302
    again = client.post(url, data={"verdict": "reject", "comment": "no", "csrf_token": token},
                        headers={"HX-Request": "true"})
    assert again.status_code == 409 and "already been reviewed" in again.get_data(as_text=True)
    assert annotations(session)[0].review_status == "approved"


def test_a_verdict_without_the_csrf_token_is_refused(client, session):
    project, _trainer, reviewer = reviewed_project(session)
    login(client, reviewer.email, PASSWORD)
    queue_page(client, project)
    [annotation] = annotations(session)
    response = client.post(verdict_url(project, annotation.id), data={"verdict": "approve"})
    assert response.status_code == 400
    assert annotations(session)[0].review_status == "unreviewed"


def test_a_trainer_gets_403_on_every_review_page_and_changes_nothing(client, session):
    project, trainer, _reviewer = reviewed_project(session)
    login(client, trainer.email, PASSWORD)
    [annotation] = annotations(session)
    for path in ("/review/", f"/review/{project.slug}", f"/review/{project.slug}/queue"):
        assert client.get(path).status_code == 403, path
    token = CSRF_RE.search(client.get("/work/").get_data(as_text=True)).group(1)
    response = client.post(verdict_url(project, annotation.id), data={"verdict": "approve", "csrf_token": token})
    assert response.status_code == 403
    assert annotations(session)[0].review_status == "unreviewed"


def test_a_reviewer_of_another_project_gets_404_and_changes_nothing(client, session):
    project, _trainer, _reviewer = reviewed_project(session)
    stranger = make_user(session, "reviewer")
    elsewhere = make_label_project(session, items=1)
    project_service.add_member(session, elsewhere, stranger, "reviewer")
    session.commit()
    login(client, stranger.email, PASSWORD)
    [annotation] = annotations(session)
    assert project.name not in client.get("/review/").get_data(as_text=True)
    for path in (f"/review/{project.slug}", f"/review/{project.slug}/queue"):
        assert client.get(path).status_code == 404, path
    _page, token = queue_page(client, elsewhere)
    response = client.post(verdict_url(project, annotation.id), data={"verdict": "approve", "csrf_token": token})
    assert response.status_code == 404
    # Nor does the other project's URL reach this project's annotation.
    response = client.post(verdict_url(elsewhere, annotation.id), data={"verdict": "approve", "csrf_token": token})
    assert response.status_code == 404
    assert annotations(session)[0].review_status == "unreviewed"


def test_a_paused_reviewer_member_gets_404(client, session):
    project, _trainer, reviewer = reviewed_project(session)
    member = project_service.add_member(session, project, reviewer, "reviewer")  # the existing row
    member.status = "paused"
    session.commit()
    login(client, reviewer.email, PASSWORD)
    assert client.get(f"/review/{project.slug}/queue").status_code == 404


def _answered(session, slug: str, prompt: str, response: str, label: str):
    """A trainer and a reviewer, and the trainer's answer to a one-item project: (trainer, reviewer,
    project, annotation)."""
    trainer, reviewer = make_user(session, "trainer"), make_user(session, "reviewer")
    project = make_label_project(session, items=0, trainers=[trainer], slug=slug)
    project_service.add_item(session, project, prompt=prompt, responses=[response], external_id=f"{slug}-1")
    session.commit()
    held = queue.next_task(session, trainer.id, project)
    return trainer, reviewer, project, queue.submit(session, held.id, trainer.id, {"label": label})


def test_feedback_shows_the_responses_that_were_judged(client, session):
    """Two items may share a prompt: the feedback names the responses of the one that was judged."""
    from app.services import review as review_service

    trainer, reviewer, project, annotation = _answered(session, "twins", "Is this safe?", "Take two tablets.", "yes")
    project_service.add_item(session, project, prompt="Is this safe?", responses=["Take the whole bottle."],
                             external_id="t2")
    session.commit()
    review_service.record_verdict(session, annotation.id, reviewer.id, "reject", "read the dose again")
    session.commit()
    login(client, trainer.email, PASSWORD)
    page = client.get("/work/feedback").get_data(as_text=True)
    assert 'data-testid="feedback-responses"' in page and "Take two tablets." in page
    assert "Take the whole bottle." not in page


def test_feedback_on_a_check_item_shows_neither_its_text_nor_its_right_answer(client, session):
    """Gold items go to every trainer: a correction shown with the item's text would be its answer key,
    passed from one trainer to the next. The verdict and the reviewer's comment still reach the trainer."""
    from app.models import Item
    from app.services import review as review_service

    trainer, reviewer, _project, annotation = _answered(session, "checked", "Max daily paracetamol dose?", "4 g", "no")
    gold = session.get(Item, annotation.item_id)  # an item the admin made a check item (the queue mixes them in)
    gold.is_gold, gold.gold_answers = True, {"label": "yes"}
    session.commit()
    review_service.record_verdict(session, annotation.id, reviewer.id, "correct", "see the guideline",
                                  corrected={"label": "yes"})
    session.commit()
    login(client, trainer.email, PASSWORD)
    page = client.get("/work/feedback").get_data(as_text=True)
    assert 'data-verdict="correct"' in page and "see the guideline" in page and 'data-testid="feedback-check"' in page
    assert "paracetamol" not in page and "4 g" not in page and "data-corrected" not in page


def test_the_project_page_reads_answers_as_people_do(client, session):
    """The reviewer's latest-work table gives each answer under its question's title, as the work and
    feedback pages show it (a label's underscores as spaces), never the raw key and value."""
    from app.models import Question

    trainer, reviewer = make_user(session, "trainer"), make_user(session, "reviewer")
    project = make_label_project(session, items=1, trainers=[trainer])
    question = session.scalar(select(Question).where(Question.project_id == project.id))
    question.options = {"labels": ["safe", "needs_expert"]}
    project_service.add_member(session, project, reviewer, "reviewer")
    session.commit()
    task = queue.next_task(session, trainer.id, project)
    queue.submit(session, task.id, trainer.id, {"label": "needs_expert"})
    login(client, reviewer.email, PASSWORD)
    page = client.get(f"/review/{project.slug}").get_data(as_text=True)
    assert "Label?: <strong>needs expert</strong>" in page
    assert "needs_expert" not in page.split("Latest submitted work")[1]


def test_the_latest_work_pages_through_every_submission_newest_first(client, session, monkeypatch):
    """More submissions than a page holds: the pager reaches every one, newest first, and a page past
    the end is a 404."""
    from app.services import assignment as queue
    from app.web import review as review_pages
    from tests.factories import make_label_project, make_user
    from tests.security.conftest import sign_in

    monkeypatch.setattr(review_pages, "RECENT_PAGE", 2)
    trainer, reviewer = make_user(session, "trainer"), make_user(session, "reviewer")
    project = make_label_project(session, items=5, trainers=[trainer], slug="paged")
    from app.services import projects as project_service

    project_service.add_member(session, project, reviewer, "reviewer")
    session.commit()
    for _ in range(5):
        a = queue.next_task(session, trainer.id, project)
        queue.submit(session, a.id, trainer.id, {"label": "yes"})
    sign_in(client, reviewer)
    seen = []
    for number in (1, 2, 3):
        page = client.get(f"/review/paged?page={number}").get_data(as_text=True)
        seen += re.findall(r"<code>(it-\d+)</code>", page)
        assert f"Page {number} of 3" in page
    assert seen == ["it-5", "it-4", "it-3", "it-2", "it-1"]
    assert 'href="/review/paged?page=2" rel="next"' in client.get("/review/paged").get_data(as_text=True)
    assert client.get("/review/paged?page=4").status_code == 404
