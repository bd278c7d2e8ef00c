"""Findings 9, 13 and 14: gold cannot be spotted, money and questions keep their invariants, members
are eligible, and no page prints Python internals."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.errors import ValidationError
from app.models import Item, PayAdjustment, ProjectMember, Timesheet
from app.services import assignment as queue
from app.services import pay
from app.services import projects as project_service
from app.services import review as review_service
from tests.factories import make_label_project, make_user

from .conftest import sign_in, token


def _gold_world(session):
    """A project whose next task is gold (gold is mixed into work, so there is a work item too)."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, slug="goldy", trainers=[trainer])
    project.gold_rate = 1.0
    project_service.add_item(session, project, prompt="Which is it?", responses=[{"id": "gold-resp-a", "text": "A"}],
                             external_id="GOLD-SECRET-007")
    session.flush()
    item = session.scalar(select(Item).where(Item.external_id == "GOLD-SECRET-007"))
    item.is_gold, item.gold_answers = True, {"label": "yes"}
    session.commit()
    return trainer, project


def test_the_trainer_page_carries_no_external_id_or_gold_marker(client, session):
    trainer, project = _gold_world(session)
    sign_in(client, trainer)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    assert "Which is it?" in page  # the gold item is the task shown
    for tell in ("GOLD-SECRET-007", "gold-resp-a", "is_gold", "data-item="):
        assert tell not in page


def test_feedback_on_a_gold_item_does_not_name_it(client, session):
    trainer, project = _gold_world(session)
    reviewer = make_user(session, "reviewer")
    held = queue.next_task(session, trainer.id, project)
    annotation = queue.submit(session, held.id, trainer.id, {"label": "no"})
    review_service.record_verdict(session, annotation.id, reviewer.id, "reject", "read it again")
    session.commit()
    sign_in(client, trainer)
    page = client.get("/work/feedback").get_data(as_text=True)
    assert "read it again" in page
    assert "GOLD-SECRET-007" not in page and "gold-resp-a" not in page


# --- pay ----------------------------------------------------------------------------------------


def _paid_trainer(session, seconds=3600, rate=3600):
    trainer, admin = make_user(session, "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=2, trainers=[trainer])
    project.hourly_rate_cents = rate
    session.commit()
    a = queue.next_task(session, trainer.id, project)
    a.active_seconds = seconds
    session.commit()
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    return trainer, admin, project


def test_a_correction_cannot_take_earnings_below_zero(session):
    trainer, admin, project = _paid_trainer(session, seconds=1800)  # earned 18.00
    with pytest.raises(ValidationError) as caught:
        pay.add_adjustment(session, trainer.id, project.id, -1801, "overpaid", admin.id, kind="correction")
    assert "below zero" in str(caught.value)
    pay.add_adjustment(session, trainer.id, project.id, -1800, "overpaid", admin.id, kind="correction")
    assert pay.earnings(session, trainer.id).pending_cents == 0


def test_a_bonus_must_be_positive(session):
    trainer, admin, project = _paid_trainer(session)
    with pytest.raises(ValidationError) as caught:
        pay.add_adjustment(session, trainer.id, project.id, -500, "oops", admin.id, kind="bonus")
    assert "amount" in caught.value.errors


def test_adjustments_go_only_to_a_trainer_of_that_project(session):
    trainer, admin, project = _paid_trainer(session)
    reviewer = make_user(session, "reviewer")
    stranger = make_user(session, "trainer")
    for person in (reviewer, stranger, admin):
        with pytest.raises(ValidationError) as caught:
            pay.add_adjustment(session, person.id, project.id, 500, "thanks", admin.id)
        assert "trainer" in caught.value.errors
    assert session.scalar(select(func.count(PayAdjustment.id))) == 0


def test_nobody_approves_or_adjusts_their_own_pay(session):
    boss = make_user(session, "admin", "trainer")
    project = make_label_project(session, items=2, trainers=[boss])
    a = queue.next_task(session, boss.id, project)
    a.active_seconds = 600
    session.commit()
    queue.submit(session, a.id, boss.id, {"label": "yes"})
    week = pay.week_of(a.assigned_at)
    with pytest.raises(ValidationError):
        pay.approve(session, week, [(boss.id, project.id)], boss.id)
    assert pay.approve(session, week, None, boss.id) == []  # "approve all" leaves their own line open
    with pytest.raises(ValidationError):
        pay.add_adjustment(session, boss.id, project.id, 500, "me", boss.id)
    assert session.scalar(select(func.count(Timesheet.id))) == 0


# --- questions that already have answers ---------------------------------------------------------


def _answered(session, questions):
    trainer = make_user(session, "trainer")
    project = project_service.create_project(session, name="Q", slug="q", status="active", questions=questions)
    project_service.add_item(session, project, prompt="p", responses=["a", "b"], external_id="i1")
    project_service.add_member(session, project, trainer, "trainer")
    session.commit()
    return project


LABEL = {"key": "label", "type": "label", "title": "Label?", "options": {"labels": ["yes", "no"]}}
RATING = {"key": "score", "type": "rating", "title": "Score", "options": {"min": 1, "max": 5}}
PREF = {"key": "pref", "type": "preference", "title": "Which?", "options": {"scale": 3}}
RANK = {"key": "rank", "type": "ranking", "title": "Rank", "options": {"allow_ties": True}}
TEXT = {"key": "notes", "type": "text", "title": "Notes", "options": {"min_chars": 0, "mode": "critique"}}


@pytest.mark.parametrize(("question", "options"), [
    (LABEL, {"labels": ["yes", "maybe"]}),
    (LABEL, {"labels": ["yes"] + ["no-longer"]}),
    (RATING, {"min": 1, "max": 3}),
    (RATING, {"min": 2, "max": 5}),
    (PREF, {"scale": 2}),
    (RANK, {"allow_ties": False}),
    (TEXT, {"min_chars": 0, "mode": "rewrite"}),  # every critique would become a training answer
])
def test_breaking_option_edits_are_refused_once_answers_exist(session, question, options):
    project = _answered(session, [question])
    project_service.add_item  # noqa: B018 - answers exist once any annotation does
    from app.models import Annotation, Assignment, utcnow

    item = session.scalar(select(Item).where(Item.project_id == project.id))
    trainer_id = session.scalar(select(ProjectMember.user_id).where(ProjectMember.project_id == project.id))
    assignment = Assignment(item_id=item.id, project_id=project.id, trainer_id=trainer_id, status="submitted",
                            assigned_at=utcnow(), expires_at=utcnow())
    session.add(assignment)
    session.flush()
    session.add(Annotation(assignment_id=assignment.id, item_id=item.id, project_id=project.id,
                           trainer_id=trainer_id, answers={}))
    session.commit()
    edited = [{**question, "options": options}]
    with pytest.raises(ValidationError) as caught:
        project_service.update_project(session, project, name="Q", questions=edited)
    assert any("answers" in message for message in caught.value.errors.values()), caught.value.errors


def test_adding_a_label_and_rewording_stay_allowed_once_answers_exist(session):
    project = _answered(session, [LABEL])
    from app.models import Annotation, Assignment, utcnow

    item = session.scalar(select(Item).where(Item.project_id == project.id))
    trainer_id = session.scalar(select(ProjectMember.user_id).where(ProjectMember.project_id == project.id))
    assignment = Assignment(item_id=item.id, project_id=project.id, trainer_id=trainer_id, status="submitted",
                            assigned_at=utcnow(), expires_at=utcnow())
    session.add(assignment)
    session.flush()
    session.add(Annotation(assignment_id=assignment.id, item_id=item.id, project_id=project.id,
                           trainer_id=trainer_id, answers={"label": "yes"}))
    session.commit()
    edited = [{**LABEL, "title": "Is it fine?", "options": {"labels": ["yes", "no", "unsure"]}}]
    project_service.update_project(session, project, name="Q", questions=edited)
    session.commit()
    assert project.questions[0].options["labels"] == ["yes", "no", "unsure"]


@pytest.mark.parametrize(("question", "field"), [
    ({**LABEL, "options": {"labels": ["safe", "safe\u200b"]}}, "options"),     # two labels that look one
    ({**LABEL, "options": {"labels": ["sa\u202efe", "unsafe"]}}, "options"),   # a direction override
    ({**LABEL, "options": {"labels": ["\u200b", "b"]}}, "options"),            # an invisible label
    ({**LABEL, "options": {"labels": ["e\u0301", "\u00e9"]}}, "options"),      # é twice, composed and not
    ({**LABEL, "title": "T\u202eevil\nline2"}, "title"),
    ({**LABEL, "title": "\u200b"}, "title"),
])
def test_question_titles_and_labels_are_visible_one_line_text(session, question, field):
    with pytest.raises(ValidationError) as caught:
        project_service.create_project(session, name="Looks", status="active", questions=[question])
    assert any(field in key for key in caught.value.errors), caught.value.errors


# --- members --------------------------------------------------------------------------------------


@pytest.mark.parametrize("roles,member_role", [
    (("applicant",), "trainer"), (("reviewer",), "trainer"), (("trainer",), "reviewer"), (("admin",), "trainer"),
])
def test_add_member_refuses_someone_who_could_not_work_there(client, session, roles, member_role):
    admin = make_user(session, "admin")
    person = make_user(session, *roles)
    project = make_label_project(session, items=1, slug="work")
    sign_in(client, admin)
    response = client.post(f"/admin/projects/{project.slug}/members", follow_redirects=True,
                           data={"csrf_token": token(client, f"/admin/projects/{project.slug}"),
                                 "email": person.email, "role": member_role})
    body = response.get_data(as_text=True)
    assert "is now a" not in body
    assert session.scalar(select(func.count(ProjectMember.id)).where(ProjectMember.user_id == person.id)) == 0


def test_an_applicant_joins_no_project_as_a_member(client, session):
    """Applicants take an assessment through its interview, never through the work queue: no project,
    assessment or not, takes them as a trainer member."""
    admin, applicant = make_user(session, "admin"), make_user(session, "applicant")
    trainer = make_user(session, "trainer")
    sign_in(client, admin)
    cases = [("qualification", applicant, "an assessment has no trainer members"),
             ("work", applicant, "is not a trainer"),
             ("qualification", trainer, "an assessment has no trainer members")]  # its items are a bank
    for n, (kind, person, said) in enumerate(cases):
        project = make_label_project(session, items=1, slug=f"exam-{n}", kind=kind)
        response = client.post(f"/admin/projects/{project.slug}/members", follow_redirects=True,
                               data={"csrf_token": token(client, f"/admin/projects/{project.slug}"),
                                     "email": person.email, "role": "trainer"})
        assert said in response.get_data(as_text=True)
    assert session.scalar(select(func.count(ProjectMember.id))
                          .where(ProjectMember.user_id.in_([applicant.id, trainer.id]))) == 0


def test_a_suspended_person_cannot_be_added(client, session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    trainer.status = "suspended"
    session.commit()
    project = make_label_project(session, items=1, slug="work")
    sign_in(client, admin)
    client.post(f"/admin/projects/{project.slug}/members",
                data={"csrf_token": token(client, f"/admin/projects/{project.slug}"), "email": trainer.email,
                      "role": "trainer"})
    assert session.scalar(select(func.count(ProjectMember.id)).where(ProjectMember.user_id == trainer.id)) == 0


# --- pages -----------------------------------------------------------------------------------------


def test_the_project_list_shows_item_counts_not_python(client, session):
    admin = make_user(session, "admin")
    make_label_project(session, items=7, slug="seven")
    sign_in(client, admin)
    page = client.get("/admin/").get_data(as_text=True)
    assert "built-in method" not in page and " at 0x" not in page
    assert '<td class="num">7</td>' in page
