"""Matching vetted trainers to a project: who is eligible, how they rank, invitations and staffing."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    AuditEvent,
    Invitation,
    Item,
    ProjectMember,
    Qualification,
    TrainerProfile,
    TrainerStats,
)
from app.services import assignment as queue
from app.services import projects as project_service
from app.services.money import MAX_RATE_CENTS
from app.services.recruiting import matching
from tests.factories import make_label_project, make_user

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def qualify(session, user, **scores):
    for domain, score in scores.items():
        session.add(Qualification(user_id=user.id, domain=domain, score=score))
    session.commit()


def profile(session, user, hours=None, rate=None):
    session.add(TrainerProfile(user_id=user.id, availability_hours_per_week=hours, desired_rate_cents=rate))
    session.commit()


def record(session, project, user, annotations, gold=None, consensus=None, reliability=None):
    session.add(TrainerStats(project_id=project.id, trainer_id=user.id, annotations=annotations, gold_accuracy=gold,
                             consensus_agreement=consensus, reliability=reliability))
    session.commit()


def medical(session, *, domains=("medicine", "law"), min_score=0.6, rate=3000, **kwargs):
    project = make_label_project(session, **kwargs)
    project.required_domains, project.min_qualification_score = list(domains), min_score
    project.hourly_rate_cents = rate
    session.commit()
    return project


def ids(candidates):
    return [c.user_id for c in candidates.rows]


def pending_invitation(session, project, user, admin, status="pending"):
    invitation = Invitation(project_id=project.id, user_id=user.id, invited_by=admin.id,
                            rate_cents=project.hourly_rate_cents, status=status)
    session.add(invitation)
    session.commit()
    return invitation


# --- eligibility --------------------------------------------------------------------------------


def test_eligibility_excludes_everyone_who_does_not_fit(session):
    admin = make_user(session, "admin")
    project = medical(session)
    fits = make_user(session, "trainer", name="Fits")
    one_domain = make_user(session, "trainer", name="One domain")
    below = make_user(session, "trainer", name="Below the minimum")
    suspended = make_user(session, "trainer", name="Suspended")
    member = make_user(session, "trainer", name="Member")
    paused = make_user(session, "trainer", name="Paused member")
    removed = make_user(session, "trainer", name="Removed member")
    invited = make_user(session, "trainer", name="Invited")
    declined = make_user(session, "trainer", name="Declined before")
    applicant = make_user(session, "applicant", name="Applicant")
    for user in (fits, suspended, member, paused, removed, invited, declined, applicant):
        qualify(session, user, medicine=0.8, law=0.6)
    qualify(session, one_domain, medicine=0.95)
    qualify(session, below, medicine=0.9, law=0.59)
    suspended.status = "suspended"
    for user, status in ((member, "active"), (paused, "paused"), (removed, "removed")):
        project_service.set_member_status(session, project_service.add_member(session, project, user), status)
    pending_invitation(session, project, invited, admin)
    pending_invitation(session, project, declined, admin, status="declined")

    candidates = matching.eligible(session, project)

    assert set(ids(candidates)) == {fits.id, removed.id, declined.id}
    assert candidates.total == matching.count_eligible(session, project) == 3
    assert candidates.invited == 1
    assert candidates.qualified == 6  # active trainers qualified, members and the invited included


def test_a_project_without_required_domains_takes_every_active_trainer(session):
    project = medical(session, domains=())
    trainer = make_user(session, "trainer")
    make_user(session, "applicant")
    profile(session, trainer, hours=40)
    candidates = matching.eligible(session, project)
    assert ids(candidates) == [trainer.id]
    assert candidates.rows[0].parts["qualification"] is None
    # availability (40 h a week) and a new trainer's neutral past quality
    assert candidates.rows[0].score == pytest.approx((0.15 * 1.0 + 0.3 * 0.5) / 0.45)


def test_reviewers_of_the_project_and_assessments_have_no_candidates(session):
    """A reviewer of the project cannot also train on it, so they are nobody to invite; an assessment
    takes no trainers at all, and its staffing page says so."""
    project = medical(session, domains=())
    trainer, both = make_user(session, "trainer"), make_user(session, "trainer", "reviewer")
    project_service.add_member(session, project, both, "reviewer")
    assert ids(matching.eligible(session, project)) == [trainer.id]
    assessment = make_label_project(session, kind="qualification")
    candidates = matching.eligible(session, assessment)
    assert ids(candidates) == [] and matching.count_eligible(session, assessment) == 0
    assert "candidates take it as an interview" in matching.no_candidates_reason(assessment, candidates)


def test_nobody_qualified_says_so_with_the_domains_and_the_minimum(session):
    project = medical(session, domains=("medicine",))
    make_user(session, "trainer")
    candidates = matching.eligible(session, project)
    assert candidates.rows == [] and candidates.qualified == 0
    assert matching.no_candidates_reason(project, candidates) == (
        "No trainer is qualified in medicine at ≥ 0.60 yet — vet candidates on the recruiting board.")


# --- the score ----------------------------------------------------------------------------------


@pytest.fixture
def ranked(session):
    """Three qualified trainers whose parts are worked out by hand below."""
    project = medical(session)
    past, other, assessment = (make_label_project(session) for _ in range(3))
    assessment.kind = "qualification"
    session.commit()
    a = make_user(session, "trainer", name="Ann")
    b = make_user(session, "trainer", name="Bea")
    c = make_user(session, "trainer", name="Cy")
    qualify(session, a, medicine=0.8, law=0.6)  # qualification 0.7
    profile(session, a, hours=20, rate=4000)  # availability 0.5; rate fit 3000 / 4000 = 0.75
    record(session, past, a, 100, gold=0.9, consensus=0.8, reliability=0.7)  # 0.8 over 100
    record(session, other, a, 300, consensus=0.6)  # 0.6 over 300
    record(session, assessment, a, 50, gold=0.0)  # an assessment is not past work
    record(session, project, a, 50, gold=0.0, consensus=0.0)  # nor is this project
    qualify(session, b, medicine=0.9, law=0.9)  # qualification 0.9, nothing else known
    qualify(session, c, medicine=0.6, law=0.6)  # qualification 0.6
    profile(session, c, hours=60, rate=2000)  # availability 1 (capped at 40 h), rate fit 1
    record(session, past, c, 0, gold=0.1)  # no annotations: no record
    return project, a, b, c


def test_parts_and_score_match_the_hand_computed_example(session, ranked):
    project, a, b, c = ranked
    rows = {r.user_id: r for r in matching.eligible(session, project).rows}
    assert rows[a.id].parts == pytest.approx(
        {"qualification": 0.7, "quality": (100 * 0.8 + 300 * 0.6) / 400, "availability": 0.5, "rate_fit": 0.75})
    assert rows[a.id].score == pytest.approx(0.4 * 0.7 + 0.3 * 0.65 + 0.15 * 0.5 + 0.15 * 0.75)  # 0.6625
    assert rows[b.id].parts == {"qualification": pytest.approx(0.9), "quality": None, "availability": None,
                                "rate_fit": None}
    # no record yet: past quality counts as a neutral 0.5; the unknown parts drop out
    assert rows[b.id].score == pytest.approx((0.4 * 0.9 + 0.3 * 0.5) / 0.7)  # 0.7286…
    assert rows[c.id].score == pytest.approx(0.4 * 0.6 + 0.3 * 0.5 + 0.15 * 1 + 0.15 * 1)  # 0.69


def test_candidates_rank_by_score_and_page(session, ranked):
    project, a, b, c = ranked
    first = matching.eligible(session, project, page=1, per_page=2)
    second = matching.eligible(session, project, page=2, per_page=2)
    assert ids(first) + ids(second) == [b.id, c.id, a.id]
    assert (first.pages, first.total) == (2, 3)
    by_availability = matching.eligible(session, project, sort="availability")
    assert ids(by_availability) == [c.id, a.id, b.id]  # unknown last
    assert ids(matching.eligible(session, project, sort="name")) == [a.id, b.id, c.id]
    assert ids(matching.eligible(session, project, sort="nonsense")) == [b.id, c.id, a.id]


def test_candidates_take_the_same_statements_however_many_trainers(session):
    project = medical(session)
    past = make_label_project(session)

    def trainers(n):
        for _ in range(n):
            user = make_user(session, "trainer")
            qualify(session, user, medicine=0.7, law=0.7)
            profile(session, user, hours=10, rate=2500)
            record(session, past, user, 10, gold=0.9)

    def statements():
        seen = []
        engine = session.get_bind()
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            matching.eligible(session, project)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    trainers(2)
    few = statements()
    trainers(12)
    assert statements() == few
    assert matching.eligible(session, project).total == 14


# --- inviting -----------------------------------------------------------------------------------


def audit_rows(session, action):
    return session.execute(select(AuditEvent.actor_id, AuditEvent.data).where(AuditEvent.action == action)
                           .order_by(AuditEvent.id)).all()


def test_invite_stores_the_terms_and_a_double_click_invites_once(session, ranked):
    project, a, b, _c = ranked
    admin = make_user(session, "admin")
    result = matching.invite(session, project, [a.id, b.id, a.id], admin.id, expected_hours_per_week=10,
                             message="Welcome **aboard**", now=NOW)
    assert sorted(i.user_id for i in result.created) == sorted([a.id, b.id]) and result.already == []
    mine = session.scalar(select(Invitation).where(Invitation.user_id == a.id))
    assert (mine.status, mine.rate_cents, mine.expected_hours_per_week, mine.message, mine.invited_by) == (
        "pending", 3000, 10, "Welcome **aboard**", admin.id)
    assert mine.match_score == pytest.approx(0.6625) and mine.match_parts["rate_fit"] == pytest.approx(0.75)
    assert mine.created_at == NOW

    again = matching.invite(session, project, [a.id], admin.id)
    assert again.created == [] and again.already == [a.id]
    assert session.scalar(select(func.count(Invitation.id))) == 2
    assert [(actor, data["user_id"]) for actor, data in audit_rows(session, "invitation.create")] == [
        (admin.id, i.user_id) for i in result.created]
    assert matching.eligible(session, project).total == 1  # the invited are listed apart


def test_the_score_stored_uses_the_rate_offered(session, ranked):
    project, a, _b, _c = ranked
    result = matching.invite(session, project, [a.id], None, rate_cents=4000)
    assert result.created[0].rate_cents == 4000
    assert result.created[0].match_parts["rate_fit"] == 1.0


def test_an_ineligible_invite_is_refused_and_writes_nothing(session, ranked):
    project, a, _b, _c = ranked
    admin = make_user(session, "admin")
    unqualified = make_user(session, "trainer")
    applicant = make_user(session, "applicant")
    qualify(session, applicant, medicine=0.9, law=0.9)
    for bad in (unqualified, applicant):
        with pytest.raises(ValidationError) as caught:
            matching.invite(session, project, [a.id, bad.id], admin.id)
        assert "cannot be invited" in caught.value.errors["user_ids"]
    assert session.scalar(select(func.count(Invitation.id))) == 0
    assert audit_rows(session, "invitation.create") == []


@pytest.mark.parametrize(("terms", "field"), [
    ({"message": "x" * 2001}, "message"),
    ({"message": "nul\x00"}, "message"),
    ({"expected_hours_per_week": 0}, "expected_hours_per_week"),
    ({"expected_hours_per_week": 81}, "expected_hours_per_week"),
    ({"rate_cents": MAX_RATE_CENTS + 1}, "rate_cents"),
    ({"rate_cents": -1}, "rate_cents"),
])
def test_invite_terms_are_bounded(session, ranked, terms, field):
    project, a, _b, _c = ranked
    with pytest.raises(ValidationError) as caught:
        matching.invite(session, project, [a.id], None, **terms)
    assert field in caught.value.errors
    assert session.scalar(select(func.count(Invitation.id))) == 0


def test_nobody_invites_nobody_or_themselves(session, ranked):
    project, a, _b, _c = ranked
    with pytest.raises(ValidationError) as caught:
        matching.invite(session, project, [], None)
    assert "tick at least one" in caught.value.errors["user_ids"]
    qualify_admin = make_user(session, "admin", "trainer")
    qualify(session, qualify_admin, medicine=0.9, law=0.9)
    with pytest.raises(ValidationError) as caught:
        matching.invite(session, project, [qualify_admin.id], qualify_admin.id)
    assert "themselves" in caught.value.errors["user_ids"]


# --- answering ----------------------------------------------------------------------------------


@pytest.fixture
def invited(session):
    """A qualified trainer invited at 35.00 an hour to a project paying 30.00."""
    admin = make_user(session, "admin")
    project = medical(session, domains=("medicine",), items=3)
    trainer = make_user(session, "trainer")
    qualify(session, trainer, medicine=0.8)
    invitation = matching.invite(session, project, [trainer.id], admin.id, rate_cents=3500).created[0]
    return project, trainer, admin, invitation


def membership(session, project, user):
    return session.scalar(select(ProjectMember).where(ProjectMember.project_id == project.id,
                                                      ProjectMember.user_id == user.id))


def test_accepting_makes_an_active_member_who_then_gets_work(session, invited):
    project, trainer, admin, invitation = invited
    answered = matching.respond(session, invitation.id, trainer, accept=True, now=NOW)
    assert (answered.status, answered.responded_at) == ("accepted", NOW)
    member = membership(session, project, trainer)
    assert (member.role, member.status, member.rate_override_cents) == ("trainer", "active", 3500)
    assert queue.next_task(session, trainer.id, project) is not None
    assert audit_rows(session, "invitation.accept") == [
        (trainer.id, {"invitation_id": invitation.id, "user_id": trainer.id, "rate_cents": 3500})]
    # The membership was allowed by the admin who invited.
    assert session.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "member.add")) == admin.id


def test_accepting_at_the_project_rate_sets_no_override(session):
    project = medical(session, domains=())
    trainer = make_user(session, "trainer")
    invitation = matching.invite(session, project, [trainer.id], None).created[0]
    matching.respond(session, invitation.id, trainer, accept=True)
    assert membership(session, project, trainer).rate_override_cents is None


@pytest.mark.parametrize("role", ["reviewer", "client"])
def test_made_reviewer_or_client_of_the_project_an_invitation_to_train_on_it_is_withdrawn(session, invited, role):
    """Nobody who trains on a project reviews it or is its client (both see the gold answers): enrolling
    the invitee as either takes the offer back (accepting then says so), and an invitation that slipped
    through is refused with a reason the trainer can read, before anything is written."""
    from app.models import UserRole

    project, trainer, admin, invitation = invited
    trainer.role_rows.append(UserRole(role=role))
    session.commit()
    project_service.enrol(session, project, trainer.email, role, admin.id)
    session.refresh(invitation)
    assert invitation.status == "withdrawn"
    with pytest.raises(Conflict):
        matching.respond(session, invitation.id, trainer, accept=True)
    session.rollback()
    invitation.status = "pending"  # one left pending (made before this rule)
    session.commit()
    with pytest.raises(Conflict, match=f"you are a {role} of this project, and nobody who is one trains on it"):
        matching.respond(session, invitation.id, trainer, accept=True)
    session.rollback()
    assert session.get(Invitation, invitation.id).status == "pending"
    assert membership(session, project, trainer).role == role


def test_a_second_click_on_accept_is_a_conflict_that_says_so(session, invited):
    _project, trainer, _admin, invitation = invited
    matching.respond(session, invitation.id, trainer, accept=True)
    with pytest.raises(Conflict, match="already accepted"):
        matching.respond(session, invitation.id, trainer, accept=True)
    with pytest.raises(Conflict, match="already accepted"):
        matching.respond(session, invitation.id, trainer, accept=False)


def test_nobody_else_answers_an_invitation(session, invited):
    project, trainer, _admin, invitation = invited
    other = make_user(session, "trainer")
    with pytest.raises(NotFound):
        matching.respond(session, invitation.id, other, accept=True)
    with pytest.raises(NotFound):
        matching.respond(session, 10**6, trainer, accept=True)
    session.refresh(invitation)
    assert invitation.status == "pending" and membership(session, project, other) is None


def test_declining_leaves_them_free_to_be_invited_again(session, invited):
    project, trainer, _admin, invitation = invited
    matching.respond(session, invitation.id, trainer, accept=False, now=NOW)
    session.refresh(invitation)
    assert (invitation.status, invitation.responded_at) == ("declined", NOW)
    assert membership(session, project, trainer) is None
    assert [actor for actor, _ in audit_rows(session, "invitation.decline")] == [trainer.id]
    assert ids(matching.eligible(session, project)) == [trainer.id]


def test_a_withdrawn_invitation_cannot_be_accepted(session, invited):
    project, trainer, admin, invitation = invited
    matching.withdraw(session, project, invitation.id, admin.id, now=NOW)
    assert invitation.status == "withdrawn"
    with pytest.raises(Conflict, match="withdrawn"):
        matching.respond(session, invitation.id, trainer, accept=True)
    with pytest.raises(Conflict):
        matching.withdraw(session, project, invitation.id, admin.id)
    with pytest.raises(NotFound):
        matching.withdraw(session, make_label_project(session), invitation.id, admin.id)
    assert [actor for actor, _ in audit_rows(session, "invitation.withdraw")] == [admin.id]
    assert membership(session, project, trainer) is None


def test_accepting_an_invitation_made_after_a_removal_reinstates_the_trainer(session):
    project = medical(session, domains=())
    removed = make_user(session, "trainer")
    project_service.set_member_status(session, project_service.add_member(session, project, removed), "removed")
    invitation = matching.invite(session, project, [removed.id], None).created[0]  # after the decision
    matching.respond(session, invitation.id, removed, accept=True)
    assert membership(session, project, removed).status == "active"


@pytest.mark.parametrize("decision", ["removed", "paused"])
def test_removing_or_pausing_a_member_withdraws_the_invitations_made_before(session, decision):
    """An offer made before an admin removed or paused someone cannot undo that decision."""
    project = medical(session, domains=())
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    invitation = matching.invite(session, project, [trainer.id], admin.id).created[0]
    other_project = medical(session, domains=())
    elsewhere = matching.invite(session, other_project, [trainer.id], admin.id).created[0]
    member = project_service.add_member(session, project, trainer)
    project_service.set_member_status(session, member, decision, admin.id)
    assert session.get(Invitation, invitation.id).status == "withdrawn"
    with pytest.raises(Conflict, match="withdrawn"):
        matching.respond(session, invitation.id, trainer, accept=True)
    assert membership(session, project, trainer).status == decision
    assert ("invitation.withdraw", admin.id) in [(a, actor) for actor, a in session.execute(
        select(AuditEvent.actor_id, AuditEvent.action).where(AuditEvent.action == "invitation.withdraw"))]
    assert session.get(Invitation, elsewhere.id).status == "pending"  # another project's offer stands
    matching.respond(session, elsewhere.id, trainer, accept=True)
    assert membership(session, other_project, trainer).status == "active"


def test_a_trainers_invitations_list_pending_first_then_recent(session):
    trainer = make_user(session, "trainer")
    projects = [medical(session, domains=()) for _ in range(3)]
    made = [matching.invite(session, p, [trainer.id], None, now=NOW + timedelta(hours=i)).created[0]
            for i, p in enumerate(projects)]
    matching.respond(session, made[2].id, trainer, accept=False)
    listed = matching.invitations_for(session, trainer)
    assert [i.id for i, _ in listed] == [made[1].id, made[0].id, made[2].id]
    assert [p.id for _, p in listed] == [projects[1].id, projects[0].id, projects[2].id]
    assert [i.id for i, _ in matching.pending_for(session, trainer)] == [made[1].id, made[0].id]
    assert [i.id for i, _, _ in matching.project_invitations(session, projects[2])] == [made[2].id]


# --- staffing -----------------------------------------------------------------------------------


def work(session, project, trainer, when, count):
    for _ in range(count):
        task = queue.next_task(session, trainer.id, project, now=when)
        queue.submit(session, task.id, trainer.id, {"label": "yes"}, now=when)


@pytest.fixture
def paced(session):
    """31 items: in the last 7 days Tia did 5 (one of them turned gold afterwards) and Tom 2; Ted's 2
    are older. Work left: 30 work items − 8 done = 22; the week's pace: 6 annotations by 2 trainers."""
    tia, tom, ted = (make_user(session, "trainer") for _ in range(3))
    project = make_label_project(session, items=31, trainers=[tia, tom, ted])
    work(session, project, ted, NOW - timedelta(days=10), 2)
    work(session, project, tom, NOW - timedelta(days=3), 2)
    work(session, project, tia, NOW - timedelta(days=1), 5)
    gold = session.scalars(select(Item).where(Item.project_id == project.id, Item.done_count == 1)
                           .order_by(Item.id.desc())).first()
    gold.is_gold = True
    session.commit()
    return project


def test_staffing_on_a_hand_made_example(session, paced):
    paced.target_date = NOW + timedelta(days=11)
    session.commit()
    figures = matching.staffing(session, paced, now=NOW)
    assert (figures.needed, figures.annotations, figures.active_trainers, figures.members) == (22, 6, 2, 3)
    assert figures.per_hour == pytest.approx(6 / 168)
    assert figures.per_trainer_day == pytest.approx(6 / 14)
    assert figures.days_left == pytest.approx(11)
    # ceil(22 ÷ (3/7 a trainer a day × 11 days)) = ceil(4.67) = 5 trainers, 3 more than the 2 at work
    assert (figures.trainers_needed, figures.more_trainers, figures.reason) == (5, 3, None)


def test_a_far_target_needs_no_more_trainers(session, paced):
    paced.target_date = NOW + timedelta(days=1000)
    session.commit()
    figures = matching.staffing(session, paced, now=NOW)
    assert (figures.trainers_needed, figures.more_trainers) == (1, 0)


def test_staffing_says_why_it_has_no_number(session, paced):
    figures = matching.staffing(session, paced, now=NOW)
    assert figures.more_trainers is None and "No target date" in figures.reason
    paced.target_date = NOW - timedelta(seconds=1)
    session.commit()
    assert matching.staffing(session, paced, now=NOW).reason == "The target date has passed."
    paced.target_date = NOW + timedelta(days=20)
    session.commit()
    quiet = matching.staffing(session, paced, now=NOW + timedelta(days=8))
    assert quiet.more_trainers is None and "Nobody submitted work in the last 7 days" in quiet.reason


def test_a_target_date_is_the_end_of_that_day_in_utc(session):
    project = make_label_project(session)
    project_service.update_project(session, project, name=project.name, target_date=date(2027, 3, 31))
    assert project.target_date == datetime(2027, 3, 31, 23, 59, 59, tzinfo=UTC)
    project_service.update_project(session, project, name=project.name, target_date=None)
    assert project.target_date is None
    with pytest.raises(ValidationError) as caught:
        project_service.update_project(session, project, name=project.name, target_date="soon")
    assert "target_date" in caught.value.errors
    with pytest.raises(ValidationError):
        project_service.update_project(session, project, name=project.name, target_date=datetime(2027, 1, 1))
    for extreme in (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
                    datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1)))):
        with pytest.raises(ValidationError) as caught:  # moved out of Python's range by the offset
            project_service.update_project(session, project, name=project.name, target_date=extreme)
        assert "between the years" in caught.value.errors["target_date"]


def test_the_score_is_what_the_page_says_it_is():
    """The staffing page's formula names how an unknown past quality counts, and the score follows it:
    a new trainer's quality is 0.5, not left out (which would raise a newcomer above proven trainers)."""
    parts = {"qualification": 0.81, "quality": None, "availability": 0.5, "rate_fit": 1.0}
    weights = matching.WEIGHTS
    by_formula = (weights["qualification"] * 0.81 + weights["quality"] * 0.5 + weights["availability"] * 0.5
                  + weights["rate_fit"] * 1.0) / sum(weights.values())
    assert matching.match_score(parts) == pytest.approx(by_formula)
    assert "an unknown past quality counts as 0.5" in matching.formula()
