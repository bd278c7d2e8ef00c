import random

import pytest
from sqlalchemy import select

from app.errors import Conflict, ValidationError
from app.models import Annotation, Review
from app.services import assignment as queue
from app.services import review as review_service
from tests.factories import make_label_project, make_user


@pytest.fixture
def reviewed_project(session):
    trainer, reviewer = make_user(session, "trainer"), make_user(session, "reviewer")
    project = make_label_project(session, items=4, trainers=[trainer])
    project.review_rate = 1.0  # everything is sampled
    session.commit()
    annotations = []
    for _ in range(3):
        a = queue.next_task(session, trainer.id, project)
        annotations.append(queue.submit(session, a.id, trainer.id, {"label": "yes"}, rng=random.Random(1)))
    return trainer, reviewer, project, annotations


def test_sampled_work_waits_in_the_queue_oldest_first(session, reviewed_project):
    trainer, reviewer, project, annotations = reviewed_project
    assert review_service.queue_size(session, project.id, reviewer.id) == 3
    assert review_service.next_for_review(session, project.id, reviewer.id).id == annotations[0].id
    # nobody reviews their own work
    assert review_service.queue_size(session, project.id, trainer.id) == 0


def test_failed_gold_jumps_the_queue(session, reviewed_project):
    _trainer, reviewer, project, annotations = reviewed_project
    annotations[2].review_reason = "failed_gold"
    session.commit()
    assert review_service.next_for_review(session, project.id, reviewer.id).id == annotations[2].id


def test_excluded_work_takes_no_verdict(session, reviewed_project):
    """Excluding a trainer's work takes it out of the queue, and out of reach of a verdict by its id."""
    _trainer, reviewer, _project, annotations = reviewed_project
    annotations[0].excluded = True
    session.commit()
    for verdict, comment in (("approve", ""), ("reject", "bad")):
        with pytest.raises(Conflict, match="excluded"):
            review_service.record_verdict(session, annotations[0].id, reviewer.id, verdict, comment)
        session.rollback()
    assert session.scalar(select(Review.id).where(Review.annotation_id == annotations[0].id)) is None
    assert session.get(Annotation, annotations[0].id).review_status == "unreviewed"


def test_reject_needs_a_reason_and_correct_becomes_the_adjudicated_answer(session, reviewed_project):
    _trainer, reviewer, project, annotations = reviewed_project
    with pytest.raises(ValidationError, match="say what is wrong"):
        review_service.record_verdict(session, annotations[0].id, reviewer.id, "reject", "  ")
    with pytest.raises(ValidationError):  # invisible characters say nothing to the trainer either
        review_service.record_verdict(session, annotations[0].id, reviewer.id, "reject", "\u200b\u200e")
    review_service.record_verdict(session, annotations[0].id, reviewer.id, "reject", "The response is unsafe.")
    with pytest.raises(ValidationError) as err:
        review_service.record_verdict(session, annotations[1].id, reviewer.id, "correct", "", {"label": "maybe"})
    assert "label" in err.value.errors
    with pytest.raises(ValidationError, match="approve it instead"):
        review_service.record_verdict(session, annotations[1].id, reviewer.id, "correct", "", {"label": "yes"})
    review_service.record_verdict(session, annotations[1].id, reviewer.id, "correct", "Read again", {"label": "no"})
    review_service.record_verdict(session, annotations[2].id, reviewer.id, "approve")
    session.commit()
    statuses = [session.get(Annotation, a.id).review_status for a in annotations]
    assert statuses == ["rejected", "corrected", "approved"]
    corrected = session.get(Annotation, annotations[1].id)
    assert corrected.answers == {"label": "yes"}  # the trainer's answer is kept as it was
    assert review_service.adjudicated_answers(session, corrected) == {"label": "no"}
    assert review_service.adjudicated_answers(session, session.get(Annotation, annotations[2].id)) == {"label": "yes"}
    assert review_service.queue_size(session, project.id, reviewer.id) == 0
    with pytest.raises(Conflict):
        review_service.record_verdict(session, annotations[2].id, reviewer.id, "reject", "changed my mind")
    assert len(session.scalars(select(Review)).all()) == 3


def test_trainer_feedback_lists_verdicts_newest_first(session, reviewed_project):
    trainer, reviewer, _project, annotations = reviewed_project
    review_service.record_verdict(session, annotations[0].id, reviewer.id, "reject", "Unsafe advice")
    review_service.record_verdict(session, annotations[1].id, reviewer.id, "correct", "", {"label": "no"})
    session.commit()
    rows = review_service.feedback_for(session, trainer.id)
    assert [r.Review.verdict for r in rows] == ["correct", "reject"]
    assert {r.Review.comment for r in rows} == {"Unsafe advice", ""}
    assert review_service.feedback_count(session, trainer.id) == 2
    assert review_service.feedback_for(session, reviewer.id) == []


def test_pages_count_the_queue_only_so_far(session, reviewed_project, monkeypatch):
    trainer, reviewer, project, _annotations = reviewed_project
    assert review_service.queue_shown(session, project.id, reviewer.id) == 3
    assert review_service.queue_shown(session, project.id, trainer.id) == 0
    monkeypatch.setattr(review_service, "QUEUE_SHOWN", 2)
    assert review_service.queue_shown(session, project.id, reviewer.id) == "2+"
    assert review_service.queue_size(session, project.id, reviewer.id) == 3  # the API's count stays exact


def _trainer_then(session, project, role: str, refused: str):
    """Someone with the trainer and ``role`` roles, a trainer member of ``project``: made ``role`` member
    too, refused (``refused`` in the message, nothing written); removed as trainer, then made one.
    Returns the person and their trainer membership (removed)."""
    from app.models import ProjectMember
    from app.services import projects as project_service

    both = make_user(session, "trainer", role)
    project_service.add_member(session, project, both, "trainer")
    with pytest.raises(ValidationError, match=refused):
        project_service.add_member(session, project, both, role)
    session.rollback()
    member = session.scalars(select(ProjectMember).where(ProjectMember.user_id == both.id)).one()
    project_service.set_member_status(session, member, "removed", None)
    project_service.add_member(session, project, both, role)  # no longer a trainer of it
    return both, member


def test_nobody_both_trains_on_and_reviews_one_project(session, reviewed_project):
    """A reviewer sees the gold answers: a trainer of the project may not become its reviewer, nor the
    other way round, nor come back as one; a removed membership holds nothing. Someone made both before
    this rule reviews nothing of it."""
    from app.models import ProjectMember
    from app.services import projects as project_service

    trainer, reviewer, project, _annotations = reviewed_project
    both, member = _trainer_then(session, project, "reviewer", "a trainer of this project")
    reviewing = session.scalars(select(ProjectMember).where(ProjectMember.user_id == both.id,
                                                            ProjectMember.role == "reviewer")).one()
    with pytest.raises(ValidationError, match="a reviewer of this project"):
        project_service.set_member_status(session, member, "active", None)  # back as a trainer: refused
    session.rollback()
    assert review_service.can_review(session, both, project)
    # made both before the rule (written directly): the review queue is closed to them
    session.add(ProjectMember(project_id=project.id, user_id=trainer.id, role="reviewer", status="active"))
    session.commit()
    assert not review_service.can_review(session, trainer, project)
    assert project not in review_service.reviewable_projects(session, trainer)
    assert reviewing.status == "active"


def test_nobody_both_trains_on_a_project_and_is_its_client(session, reviewed_project):
    """A client sees a project's items (gold marked), every answer and its exports: a trainer of it may
    not become its client, nor a client its trainer, nor come back as one; someone made both before
    this rule is not its client (``is_client`` and ``client_projects``, which every client page, API call
    and export goes through)."""
    from app.services import access
    from app.services import projects as project_service

    _trainer, _reviewer, project, _annotations = reviewed_project
    both, member = _trainer_then(session, project, "client",
                                 "a trainer of this project; a client of it cannot be one too")
    assert access.is_client(session, both, project) and project in access.client_projects(session, both)
    with pytest.raises(ValidationError, match="a client of this project; a trainer of it cannot be one too"):
        project_service.set_member_status(session, member, "active", None)
    session.rollback()
    with pytest.raises(ValidationError, match="a client of this project"):
        project_service.enrol(session, project, both.email, "trainer", None)
    session.rollback()
    # made both before the rule (written directly): the project is not theirs as a client
    member.status = "active"
    session.commit()
    assert not access.is_client(session, both, project)
    assert project not in access.client_projects(session, both)
