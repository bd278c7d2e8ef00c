"""The trainer's loop over the API: next, heartbeat, submit, skip — the workspace's queue, leases and
pay rules, reached with a token, over HTTP only (the data is set up through the services)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.models import Annotation, Assignment, Item, ProjectMember, ProjectStats, utcnow
from app.services import maintenance
from app.services import projects as project_service
from app.services import stats as stats_service
from tests.factories import make_label_project, make_user

from .conftest import Api, token_for

BASE = "/api/v1/projects"


def fresh(session) -> None:
    """Read what the requests committed: a new transaction, and no row remembered from before."""
    session.rollback()
    session.expire_all()


def trainer_api(client, session, *people, read_only=False) -> Api:
    return Api(client, {f"t{n}": token_for(session, p, read_only=read_only) for n, p in enumerate(people)})


def pairwise_project(session, trainer, show_model_names=False, slug="pairs"):
    """Rating, ranking, span and text questions over items with two responses whose ids are secret."""
    project = project_service.create_project(
        session, name="Pairs", slug=slug, status="active", show_model_names=show_model_names,
        questions=[
            {"key": "score", "type": "rating", "title": "How kind is A?", "options": {"min": 1, "max": 5}},
            {"key": "rank", "type": "ranking", "title": "Rank them", "options": {"allow_ties": False}},
            {"key": "marks", "type": "span", "title": "Mark problems", "options": {"labels": ["wrong", "rude"]},
             "required": False},
            {"key": "note", "type": "text", "title": "Why?", "required": False},
        ],
    )
    for n in range(2):
        project_service.add_item(session, project, prompt=f"Which answer is kinder? ({n})", external_id=f"ext-{n}",
                                 responses=[{"id": f"secret-one-{n}", "text": "You are wrong.", "model": "model-x"},
                                            {"id": f"secret-two-{n}", "text": "Let us look again.", "model": "model-y"}])
    project_service.add_member(session, project, trainer, "trainer")
    session.commit()
    return project


# --- next ------------------------------------------------------------------------------------------


def test_next_shows_the_item_as_the_workspace_does_responses_by_letter_and_no_ids(client, session):
    trainer = make_user(session, "trainer")
    pairwise_project(session, trainer)
    api = trainer_api(client, session, trainer)
    response = api.post(f"{BASE}/pairs/tasks/next", as_="t0")
    assert response.status_code == 200
    task = response.get_json()
    assert task["project"] == "pairs" and task["active_seconds"] == 0
    assert task["item"]["context"] == [{"role": "user", "content": "Which answer is kinder? (0)"}]
    assert task["item"]["responses"] == [{"letter": "A", "text": "You are wrong.", "model": None},
                                         {"letter": "B", "text": "Let us look again.", "model": None}]
    assert [q["key"] for q in task["questions"]] == ["score", "rank", "marks", "note"]
    assert task["questions"][1] == {"key": "rank", "type": "ranking", "title": "Rank them", "help": "",
                                    "options": {"allow_ties": False}, "required": True}
    body = response.get_data(as_text=True)
    for hidden in ("secret-one", "secret-two", "ext-0", "model-x"):
        assert hidden not in body
    assignment = session.get(Assignment, task["assignment_id"])
    assert assignment.trainer_id == trainer.id and assignment.status == "active"
    assert abs((assignment.expires_at - utcnow()) - timedelta(minutes=30)) < timedelta(minutes=1)


def test_model_names_show_only_where_the_project_shows_them(client, session):
    trainer = make_user(session, "trainer")
    pairwise_project(session, trainer, show_model_names=True)
    task = trainer_api(client, session, trainer).post(f"{BASE}/pairs/tasks/next", as_="t0").get_json()
    assert [r["model"] for r in task["item"]["responses"]] == ["model-x", "model-y"]


def test_next_again_returns_the_same_lease(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=3, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    first = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    again = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    assert again["assignment_id"] == first["assignment_id"]
    assert session.scalar(select(func.count(Assignment.id))) == 1


def test_nothing_left_is_204_without_a_body(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=1, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    done = api.post(f"{BASE}/labels/tasks/{task['assignment_id']}/submit", as_="t0", json={"answers": {"label": "no"}})
    assert done.status_code == 201 and done.get_json()["next"] is None
    empty = api.post(f"{BASE}/labels/tasks/next", as_="t0")
    assert empty.status_code == 204 and empty.get_data() == b""


def test_a_project_that_is_not_active_gives_no_task(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[trainer], slug="labels", status="paused")
    assert trainer_api(client, session, trainer).post(f"{BASE}/labels/tasks/next", as_="t0").status_code == 204


def test_a_paused_member_gets_403_with_the_reason_but_not_the_gold_detail(client, session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    member = session.scalar(select(ProjectMember).where(ProjectMember.project_id == project.id,
                                                        ProjectMember.user_id == trainer.id))
    member.status, member.flagged_reason = "paused", "gold accuracy 0% over the last 3 gold answers"
    session.commit()
    for url, body in ((f"{BASE}/labels/tasks/next", {}),
                      (f"{BASE}/labels/tasks/{task['assignment_id']}/submit", {"answers": {"label": "yes"}})):
        response = api.post(url, as_="t0", json=body)
        assert response.status_code == 403
        error = response.get_json()["error"]
        assert error["code"] == "forbidden" and "You are paused in this project" in error["message"]
        assert "gold" not in error["message"]
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_not_a_member_or_not_a_work_project_is_404(client, session):
    trainer, other = make_user(session, "trainer"), make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[other], slug="theirs")
    assessment = make_label_project(session, items=2, slug="assessment", kind="qualification")
    # a trainer membership an older version could leave on an assessment still gives no work
    session.add(ProjectMember(project_id=assessment.id, user_id=trainer.id, role="trainer", status="active"))
    session.commit()
    api = trainer_api(client, session, trainer)
    for slug in ("theirs", "assessment", "no-such-project"):
        response = api.post(f"{BASE}/{slug}/tasks/next", as_="t0")
        assert response.status_code == 404, slug
        assert response.get_json()["error"]["code"] == "not_found"
    assert session.scalar(select(func.count(Assignment.id))) == 0


# --- heartbeat ---------------------------------------------------------------------------------------


def test_heartbeats_count_the_time_since_the_last_beat_and_extend_the_lease(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[trainer], slug="labels", lease_minutes=5)
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    url = f"{BASE}/labels/tasks/{task['assignment_id']}/heartbeat"
    started = api.post(url, as_="t0", json={"resume": True}).get_json()
    assert started["active_seconds"] == 0 and started["status"] == "active"
    assignment = session.get(Assignment, task["assignment_id"])
    assignment.last_heartbeat_at -= timedelta(seconds=12)  # the trainer worked 12 s since that beat
    session.commit()
    beat = api.post(url, as_="t0", json={})
    assert beat.status_code == 200
    assert 12 <= beat.get_json()["active_seconds"] <= 20  # the gap, within the 20 s a beat may add
    session.refresh(assignment)
    assert assignment.active_seconds == beat.get_json()["active_seconds"]


def test_a_heartbeat_body_is_checked(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    response = api.post(f"{BASE}/labels/tasks/{task['assignment_id']}/heartbeat", as_="t0",
                        json={"resume": "often", "extra": 1})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["details"]) == {"resume", "extra"}


# --- submit ------------------------------------------------------------------------------------------


def test_answers_name_responses_by_letter_and_are_stored_by_id(client, session):
    trainer = make_user(session, "trainer")
    pairwise_project(session, trainer)
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/pairs/tasks/next", as_="t0").get_json()
    answers = {"score": 2, "rank": [["B"], ["A"]], "note": "B is kinder.",
               "marks": [{"response": "A", "start": 8, "end": 13, "label": "rude"}]}
    response = api.post(f"{BASE}/pairs/tasks/{task['assignment_id']}/submit", as_="t0", json={"answers": answers})
    assert response.status_code == 201
    annotation = session.get(Annotation, response.get_json()["annotation_id"])
    assert annotation.trainer_id == trainer.id and annotation.assignment_id == task["assignment_id"]
    assert annotation.answers == {"score": 2, "rank": [["secret-two-0"], ["secret-one-0"]], "note": "B is kinder.",
                                  "marks": [{"response": "secret-one-0", "start": 8, "end": 13, "label": "rude",
                                             "comment": ""}]}
    following = response.get_json()["next"]
    assert following["item"]["context"][0]["content"] == "Which answer is kinder? (1)"


def test_invalid_answers_are_one_422_naming_every_field_and_store_nothing(client, session):
    trainer = make_user(session, "trainer")
    pairwise_project(session, trainer)
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/pairs/tasks/next", as_="t0").get_json()
    response = api.post(f"{BASE}/pairs/tasks/{task['assignment_id']}/submit", as_="t0", json={"answers": {
        "score": 9, "rank": [["A", "B"]], "marks": [{"response": "secret-one-0", "start": 0, "end": 3, "label": "rude"}],
        "nope": 1}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert set(error["details"]) == {"answers.score", "answers.rank", "answers.marks", "answers.nope"}
    assert "ties are not allowed" in error["details"]["answers.rank"]
    # A response id in place of a letter is no response of the item: the ids stay hidden.
    assert error["details"]["answers.marks"] == "span 1 marks a response this item does not have"
    missing = api.post(f"{BASE}/pairs/tasks/{task['assignment_id']}/submit", as_="t0", json={"answers": {}})
    assert set(missing.get_json()["error"]["details"]) == {"answers.score", "answers.rank"}
    assert session.scalar(select(func.count(Annotation.id))) == 0
    assert session.get(Assignment, task["assignment_id"]).status == "active"


def test_a_malformed_body_is_422_before_anything_is_read(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    url = f"{BASE}/labels/tasks/{task['assignment_id']}/submit"
    for body in ({}, {"answers": []}, {"answers": {"label": "yes"}, "extra": True},
                 {"answers": {f"q{n}": 1 for n in range(51)}}, {"answers": {"k" * 65: 1}}):
        response = api.post(url, as_="t0", json=body)
        assert response.status_code == 422, body
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_a_repeated_submit_stores_one_answer_and_says_200(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=3, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    url = f"{BASE}/labels/tasks/{task['assignment_id']}/submit"
    first = api.post(url, as_="t0", json={"answers": {"label": "yes"}})
    again = api.post(url, as_="t0", json={"answers": {"label": "yes"}})  # a retry
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["annotation_id"] == again.get_json()["annotation_id"]
    assert first.get_json()["next"]["assignment_id"] == again.get_json()["next"]["assignment_id"]  # the same lease
    changed = api.post(url, as_="t0", json={"answers": {"label": "no"}})  # another answer: not saved, and said
    assert changed.status_code == 409 and "first answers stand" in changed.get_json()["error"]["message"]
    assert session.scalars(select(Annotation.answers)).all() == [{"label": "yes"}]


def test_statistics_are_queued_when_due_after_a_submit(app, client, session, monkeypatch):
    monkeypatch.setattr(stats_service, "STATS_EVERY", 2)
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    for _ in range(2):
        task = api.post(f"{BASE}/labels/tasks/{task['assignment_id']}/submit", as_="t0",
                        json={"answers": {"label": "yes"}}).get_json()["next"]
    jobs = app.extensions["groundwork_jobs"]
    assert jobs is not None, "no job was started"
    jobs.shutdown(wait=True)  # the in-process job runner: wait for compute_stats to finish
    assert session.scalar(select(ProjectStats).where(ProjectStats.project_id == project.id)) is not None


# --- skip --------------------------------------------------------------------------------------------


def test_skip_frees_the_slot_and_returns_the_next_task(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[trainer], slug="labels")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    url = f"{BASE}/labels/tasks/{task['assignment_id']}"
    blank = api.post(f"{url}/skip", as_="t0", json={"reason": "   "})
    assert blank.status_code == 422 and set(blank.get_json()["error"]["details"]) == {"reason"}
    skipped = api.post(f"{url}/skip", as_="t0", json={"reason": "outside my expertise"})
    assert skipped.status_code == 200
    following = skipped.get_json()["next"]
    assert following["assignment_id"] != task["assignment_id"]
    fresh(session)
    assignment = session.get(Assignment, task["assignment_id"])
    assert (assignment.status, assignment.skip_reason) == ("skipped", "outside my expertise")
    item = session.get(Item, assignment.item_id)
    assert (item.done_count, item.active_count, item.is_open) == (0, 0, True)
    late = api.post(f"{url}/submit", as_="t0", json={"answers": {"label": "yes"}})
    assert late.status_code == 409 and "skipped" in late.get_json()["error"]["message"]


# --- whose task --------------------------------------------------------------------------------------


def test_a_trainer_cannot_reach_another_trainers_assignment(client, session):
    owner, intruder = make_user(session, "trainer"), make_user(session, "trainer")
    make_label_project(session, items=3, trainers=[owner, intruder], slug="labels")
    api = trainer_api(client, session, owner, intruder)
    theirs = api.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()["assignment_id"]
    url = f"{BASE}/labels/tasks/{theirs}"
    for action, body in (("heartbeat", {}), ("submit", {"answers": {"label": "yes"}}),
                         ("skip", {"reason": "not mine"})):
        response = api.post(f"{url}/{action}", as_="t1", json=body)
        assert response.status_code == 404, action
        assert response.get_json()["error"]["details"] == {}
    assignment = session.get(Assignment, theirs)
    assert (assignment.trainer_id, assignment.status, assignment.last_heartbeat_at) == (owner.id, "active", None)
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_an_assignment_is_reached_only_under_its_own_project(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[trainer], slug="first")
    make_label_project(session, items=2, trainers=[trainer], slug="second")
    api = trainer_api(client, session, trainer)
    task = api.post(f"{BASE}/first/tasks/next", as_="t0").get_json()
    response = api.post(f"{BASE}/second/tasks/{task['assignment_id']}/submit", as_="t0",
                        json={"answers": {"label": "yes"}})
    assert response.status_code == 404
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_a_reviewer_token_is_refused_the_trainer_loop(api, api_world):
    held = api.post(f"{BASE}/alpha/tasks/next", as_="trainer").get_json()["assignment_id"]
    for url, body in ((f"{BASE}/alpha/tasks/next", {}), (f"{BASE}/alpha/tasks/{held}/heartbeat", {}),
                      (f"{BASE}/alpha/tasks/{held}/submit", {"answers": {"label": "yes"}}),
                      (f"{BASE}/alpha/tasks/{held}/skip", {"reason": "no"})):
        response = api.post(url, as_="reviewer", json=body)
        assert response.status_code == 403, url
        assert "trainer role" in response.get_json()["error"]["message"]


def test_a_read_only_trainer_token_cannot_submit(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, items=2, trainers=[trainer], slug="labels")
    writer = trainer_api(client, session, trainer)
    task = writer.post(f"{BASE}/labels/tasks/next", as_="t0").get_json()
    reader = trainer_api(client, session, trainer, read_only=True)
    for action, body in (("submit", {"answers": {"label": "yes"}}), ("skip", {"reason": "read only"}),
                         ("heartbeat", {})):
        response = reader.post(f"{BASE}/labels/tasks/{task['assignment_id']}/{action}", as_="t0", json=body)
        assert response.status_code == 403 and response.get_json()["error"]["message"] == "This token is read-only."
    assert reader.post(f"{BASE}/labels/tasks/next", as_="t0").status_code == 403
    assert session.scalar(select(func.count(Annotation.id))) == 0
    assert session.get(Assignment, task["assignment_id"]).status == "active"


# --- the acceptance test -----------------------------------------------------------------------------


def test_two_trainers_work_next_to_submit_over_http_with_a_lapsed_lease(app, client, session):
    """Trainer A's lease lapses; B is given the slot; A's late answer is refused (409) and A goes on.
    At the end every item is within its overlap and each trainer's answers are stored once."""
    a, b = make_user(session, "trainer", name="Ana"), make_user(session, "trainer", name="Ben")
    project = make_label_project(session, items=3, overlap=1, trainers=[a, b], slug="labels", lease_minutes=5)
    api = trainer_api(client, session, a, b)

    def post(who, path, body=None, status=200):
        response = api.post(f"{BASE}/labels/tasks/{path}", as_=who, json=body or {})
        assert response.status_code == status, (who, path, response.get_data(as_text=True)[:300])
        return response.get_json()

    a_task = post("t0", "next")  # A: item 1
    b_task = post("t1", "next")  # B: item 2
    # B skips item 2 (it goes back to the queue, never to B again) and takes item 3.
    skipped_item = session.get(Assignment, b_task["assignment_id"]).item_id
    b_task = post("t1", f"{b_task['assignment_id']}/skip", {"reason": "not my field"})["next"]
    # A steps away: A's lease lapses.
    fresh(session)
    lapsed = session.get(Assignment, a_task["assignment_id"])
    lapsed.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    # B submits item 3; B's next task is the only one B may still do: A's lapsed slot on item 1.
    done = post("t1", f"{b_task['assignment_id']}/submit", {"answers": {"label": "yes"}}, status=201)
    b_next = done["next"]
    assert b_next is not None
    fresh(session)
    assert session.get(Assignment, b_next["assignment_id"]).item_id == lapsed.item_id
    # A comes back: the heartbeat cannot renew a slot someone else holds, and the late answer is refused.
    assert post("t0", f"{a_task['assignment_id']}/heartbeat")["status"] == "expired"
    late = api.post(f"{BASE}/labels/tasks/{a_task['assignment_id']}/submit", as_="t0",
                    json={"answers": {"label": "no"}})
    assert late.status_code == 409
    assert "went to someone else" in late.get_json()["error"]["message"]
    # A goes on: item 2, which B gave back.
    a_next = post("t0", "next")
    fresh(session)
    assert session.get(Assignment, a_next["assignment_id"]).item_id == skipped_item
    assert post("t0", f"{a_next['assignment_id']}/submit", {"answers": {"label": "no"}}, status=201)["next"] is None
    assert post("t1", f"{b_next['assignment_id']}/submit", {"answers": {"label": "yes"}}, status=201)["next"] is None
    assert api.post(f"{BASE}/labels/tasks/next", as_="t0").status_code == 204
    assert api.post(f"{BASE}/labels/tasks/next", as_="t1").status_code == 204

    fresh(session)
    items = session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id)).all()
    assert [(i.done_count, i.active_count) for i in items] == [(1, 0), (1, 0), (1, 0)]
    stored = session.execute(select(Annotation.trainer_id, Annotation.item_id, Annotation.assignment_id)
                             .order_by(Annotation.id)).all()
    assert sorted((t, i) for t, i, _ in stored) == sorted([(b.id, items[2].id), (a.id, items[1].id),
                                                          (b.id, items[0].id)])
    assert len({assignment for _, _, assignment in stored}) == len(stored) == 3
    assert maintenance.recount_item_counters(session, project.id) == 0  # the counters were right all along
