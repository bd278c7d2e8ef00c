"""Reviews over the API: the queue as the review page shows it (responses and answers by letter) and
verdicts through the same service, with the first verdict standing."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import Annotation, Item, Review
from app.services import assignment as queue
from app.services import projects as project_service
from tests.factories import make_label_project, make_user

from .conftest import Api, token_for

BASE = "/api/v1/projects"


def fresh(session) -> None:
    """Read what the requests committed: a new transaction, and no row remembered from before."""
    session.rollback()
    session.expire_all()


def ranked_project(session, trainer, reviewer, items=3, slug="ranked"):
    """Every answer goes to review; the first item served is a gold item (gold rate 1 while work is left)."""
    project = project_service.create_project(
        session, name="Ranked", slug=slug, status="active", review_rate=1.0, gold_rate=1.0,
        questions=[{"key": "rank", "type": "ranking", "title": "Rank them", "options": {"allow_ties": True}},
                   {"key": "note", "type": "text", "title": "Why?", "required": False}],
    )
    for n in range(items):
        item = project_service.add_item(session, project, prompt=f"Question {n}", external_id=f"ext-{n}",
                                        responses=[{"id": f"sa-{n}", "text": "First."}, {"id": f"sb-{n}", "text": "Second."},
                                                   {"id": f"sc-{n}", "text": "Third."}])
        if n == 0:
            item.is_gold, item.gold_answers = True, {"rank": [["sb-0"], ["sa-0"], ["sc-0"]]}
    project_service.add_member(session, project, trainer, "trainer")
    project_service.add_member(session, project, reviewer, "reviewer")
    session.commit()
    return project


def work(session, trainer, project, answers: list[dict]) -> list[Annotation]:
    done = []
    for answer in answers:
        task = queue.next_task(session, trainer.id, project)
        done.append(queue.submit(session, task.id, trainer.id, answer))
    return done


def setup(client, session, answers=None):
    trainer = make_user(session, "trainer", name="Tia Trainer")
    reviewer = make_user(session, "reviewer", name="Rex Reviewer")
    project = ranked_project(session, trainer, reviewer)
    done = work(session, trainer, project, answers or [
        {"rank": [["sc-0"], ["sa-0", "sb-0"]], "note": "C reads best"},  # the gold item, answered wrongly
        {"rank": [["sa-1"], ["sb-1"], ["sc-1"]]},
    ])
    api = Api(client, {"reviewer": token_for(session, reviewer), "trainer": token_for(session, trainer)})
    return api, project, trainer, reviewer, done


def test_next_shows_the_most_urgent_work_as_the_review_page_does(client, session):
    api, project, trainer, reviewer, done = setup(client, session)
    response = api.get(f"{BASE}/ranked/reviews/next", as_="reviewer")
    assert response.status_code == 200
    task = response.get_json()
    gold = session.get(Item, done[0].item_id)
    assert gold.is_gold  # the gold item was served first, and failed
    assert task["annotation_id"] == done[0].id
    assert (task["reason"], task["reason_title"]) == ("failed_gold", "failed a gold item")
    assert task["trainer"] == "Tia Trainer" and task["external_id"] == "ext-0" and task["waiting"] == 2
    assert task["gold_score"] is not None and task["gold_score"] < 1
    assert [r["letter"] for r in task["item"]["responses"]] == ["A", "B", "C"]
    assert task["answers"] == {"rank": [["C"], ["A", "B"]], "note": "C reads best"}
    assert task["gold_answers"] == {"rank": [["B"], ["A"], ["C"]]}
    assert [q["key"] for q in task["questions"]] == ["rank", "note"]
    body = response.get_data(as_text=True)
    assert "sa-0" not in body and "sb-0" not in body


def test_an_empty_queue_is_204_and_nobody_reviews_their_own_work(client, session):
    admin = make_user(session, "admin", "trainer")
    reviewer = make_user(session, "reviewer")
    project = ranked_project(session, admin, reviewer, slug="own")
    mine = work(session, admin, project, [{"rank": [["sb-0"], ["sa-0"], ["sc-0"]]}])[0]
    api = Api(client, {"admin": token_for(session, admin)})
    assert api.get(f"{BASE}/own/reviews/next", as_="admin").status_code == 204
    assert api.get(f"{BASE}/own/reviews", as_="admin").get_json() == {"data": [], "next_cursor": None}
    response = api.post(f"{BASE}/own/reviews/{mine.id}/verdict", as_="admin", json={"verdict": "approve"})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == {"verdict": "you cannot review your own work"}
    assert session.scalar(select(func.count(Review.id))) == 0


def test_the_queue_lists_in_pages(client, session):
    api, project, trainer, reviewer, done = setup(client, session)
    first = api.get(f"{BASE}/ranked/reviews?limit=1", as_="reviewer").get_json()
    assert [r["annotation_id"] for r in first["data"]] == [done[0].id] and first["next_cursor"]
    second = api.get(f"{BASE}/ranked/reviews?limit=1&cursor={first['next_cursor']}", as_="reviewer").get_json()
    assert [r["annotation_id"] for r in second["data"]] == [done[1].id]
    assert second["data"][0]["trainer"] == "Tia Trainer" and second["data"][0]["reason"] == "sampled"
    assert second["next_cursor"] is None  # the last page
    bad = api.get(f"{BASE}/ranked/reviews?cursor=not-ours", as_="reviewer")
    assert bad.status_code == 422 and "cursor" in bad.get_json()["error"]["details"]


def test_approve_then_a_second_verdict_is_409(client, session):
    api, project, trainer, reviewer, done = setup(client, session)
    url = f"{BASE}/ranked/reviews/{done[1].id}/verdict"
    response = api.post(url, as_="reviewer", json={"verdict": "approve"})
    assert response.status_code == 201
    verdict = response.get_json()
    assert (verdict["annotation_id"], verdict["verdict"], verdict["review_status"], verdict["corrections"]) == (
        done[1].id, "approve", "approved", None)
    again = api.post(url, as_="reviewer", json={"verdict": "reject", "comment": "on second thought"})
    assert again.status_code == 409
    assert "already been reviewed" in again.get_json()["error"]["message"]
    fresh(session)
    assert session.get(Annotation, done[1].id).review_status == "approved"
    assert session.scalar(select(func.count(Review.id))) == 1
    remaining = api.get(f"{BASE}/ranked/reviews/next", as_="reviewer").get_json()
    assert remaining["annotation_id"] == done[0].id and remaining["waiting"] == 1


def test_reject_needs_a_comment(client, session):
    api, project, trainer, reviewer, done = setup(client, session)
    url = f"{BASE}/ranked/reviews/{done[0].id}/verdict"
    bare = api.post(url, as_="reviewer", json={"verdict": "reject"})
    assert bare.status_code == 422 and set(bare.get_json()["error"]["details"]) == {"comment"}
    done_ = api.post(url, as_="reviewer", json={"verdict": "reject", "comment": "B is clearly best."})
    assert done_.status_code == 201 and done_.get_json()["review_status"] == "rejected"


def test_a_correction_names_responses_by_letter_and_is_checked_like_a_submit(client, session):
    api, project, trainer, reviewer, done = setup(client, session)
    url = f"{BASE}/ranked/reviews/{done[0].id}/verdict"
    broken = api.post(url, as_="reviewer", json={"verdict": "correct", "corrections": {"rank": [["B"], ["Z"]],
                                                                                       "other": 1}})
    assert broken.status_code == 422
    assert set(broken.get_json()["error"]["details"]) == {"corrections.rank", "corrections.other"}
    same = api.post(url, as_="reviewer", json={"verdict": "correct",
                                               "corrections": {"rank": [["C"], ["A", "B"]], "note": "C reads best"}})
    assert same.status_code == 422 and "approve it instead" in same.get_json()["error"]["details"]["verdict"]
    fixed = api.post(url, as_="reviewer", json={"verdict": "correct", "comment": "B first",
                                                "corrections": {"rank": [["B"], ["A"], ["C"]]}})
    assert fixed.status_code == 201
    assert fixed.get_json()["corrections"] == {"rank": [["B"], ["A"], ["C"]]}
    fresh(session)
    review = session.scalar(select(Review))
    assert review.corrected_answers == {"rank": [["sb-0"], ["sa-0"], ["sc-0"]]}
    assert session.get(Annotation, done[0].id).review_status == "corrected"


def test_verdicts_reach_only_the_projects_annotations(client, session):
    api, project, trainer, reviewer, done = setup(client, session)
    other_trainer = make_user(session, "trainer")
    other = make_label_project(session, items=1, trainers=[other_trainer], slug="elsewhere")
    project_service.add_member(session, other, reviewer, "reviewer")
    session.commit()
    task = queue.next_task(session, other_trainer.id, other)
    foreign = queue.submit(session, task.id, other_trainer.id, {"label": "yes"})
    response = api.post(f"{BASE}/ranked/reviews/{foreign.id}/verdict", as_="reviewer", json={"verdict": "approve"})
    assert response.status_code == 404
    assert api.post(f"{BASE}/ranked/reviews/999999/verdict", as_="reviewer",
                    json={"verdict": "approve"}).status_code == 404
    assert session.scalar(select(func.count(Review.id))) == 0


def test_who_may_review(client, session):
    api, project, trainer, reviewer, done = setup(client, session)
    stranger = make_user(session, "reviewer")
    api.tokens["stranger"] = token_for(session, stranger)
    api.tokens["reader"] = token_for(session, reviewer, read_only=True)
    assert api.get(f"{BASE}/ranked/reviews/next", as_="stranger").status_code == 404
    assert api.get(f"{BASE}/ranked/reviews/next", as_="trainer").status_code == 403
    assert api.get(f"{BASE}/ranked/reviews/next", as_="reader").status_code == 200
    url = f"{BASE}/ranked/reviews/{done[1].id}/verdict"
    for who, status in (("stranger", 404), ("trainer", 403), ("reader", 403)):
        assert api.post(url, as_=who, json={"verdict": "approve"}).status_code == status, who
    assert session.scalar(select(func.count(Review.id))) == 0
