"""Applying, interviewing, grading and vetting, through the services, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    Application,
    ApplicationStage,
    Assessment,
    AuditEvent,
    Interview,
    InterviewResponse,
    ItemParameter,
    Qualification,
    User,
    WrittenAnswer,
    utcnow,
)
from app.services.recruiting import applications, grading, interviews, vetting
from tests.factories import PASSWORD, make_applicant, make_assessment, make_user


def form(**changes):
    values = dict(email="new@example.test", name="Nia New", password=PASSWORD, domains=("medicine",),
                  languages="en, pt-br", years_experience="7", credentials="MD", timezone="Europe/Lisbon",
                  availability_hours_per_week="25", desired_rate="55.00", consent=True)
    values.update(changes)
    return applications.ApplicationForm(**values)


def take_items(session, user, interview, right=True, limit=100):
    """Answer the item on screen until the adaptive part ends; every answer right (or wrong)."""
    for _ in range(limit):
        session.refresh(interview)
        if interview.status != "in_progress":
            return interview
        interviews.answer(session, user.id, interview.id, interview.current_item_id,
                          {"label": "yes" if right else "no"})
    raise AssertionError("the interview never stopped")


@pytest.fixture
def medicine(session):
    return make_assessment(session, "medicine", items=30, prompts=1, min_items=4, max_items=10, se_target=0.5)


def test_apply_creates_the_applicant_profile_and_application(session, medicine):
    user = applications.apply(session, form())
    assert user.roles == {"applicant"}
    application = applications.application_of(session, user.id)
    assert application.stage == "applied" and application.domains == ["medicine"]
    assert user.profile.languages == ["en", "pt-br"] and user.profile.desired_rate_cents == 5500
    assert session.query(ApplicationStage).filter_by(application_id=application.id).count() == 1


@pytest.mark.parametrize("changes, field", [
    ({"email": "not-an-email"}, "email"),
    ({"password": "short"}, "password"),
    ({"domains": ()}, "domains"),
    ({"domains": ("astrology",)}, "domains"),
    ({"name": "x" * 201}, "name"),
    ({"credentials": "y" * 2001}, "credentials"),
    ({"languages": "english!"}, "languages"),
    ({"years_experience": "900"}, "years_experience"),
    ({"availability_hours_per_week": "0"}, "availability_hours_per_week"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"desired_rate": "1e9"}, "desired_rate"),
    ({"consent": False}, "consent"),
])
def test_bad_applications_say_which_field_and_create_nothing(session, medicine, changes, field):
    before = session.query(User).count()
    with pytest.raises(ValidationError) as caught:
        applications.apply(session, form(**changes))
    assert field in caught.value.errors
    session.rollback()
    assert session.query(User).count() == before
    assert session.query(Application).count() == 0


def test_a_taken_email_is_a_field_error(session, medicine):
    applications.apply(session, form())
    with pytest.raises(ValidationError) as caught:
        applications.apply(session, form(name="Someone Else"))
    assert "email" in caught.value.errors
    session.rollback()
    assert session.query(Application).count() == 1


def test_the_interview_adapts_stops_and_is_graded_then_vetted(session, medicine):
    admin = make_user(session, "admin")
    reviewer = make_user(session, "reviewer")
    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    assert interview.current_item_id is not None and interview.deadline_at > utcnow()
    assert applications.application_of(session, user.id).stage == "interviewing"
    # parameters were seeded from the items' levels
    levels = {p.level: p.difficulty for p in session.query(ItemParameter).filter_by(assessment_id=medicine.id)}
    assert levels == {"easy": -1.0, "medium": 0.0, "hard": 1.0}
    take_items(session, user, interview, right=True)
    session.refresh(interview)
    assert interview.status == "written" and interview.stop_reason in ("precision", "length")
    assert 4 <= interview.items_done <= 10
    assert interview.theta > 0.5  # every answer right: ability well above the middle
    shown = [r.item_id for r in session.query(InterviewResponse).filter_by(interview_id=interview.id)]
    assert len(shown) == len(set(shown))  # never the same item twice
    prompt_id = interviews.prompts_of(session, medicine.id)[0].id
    with pytest.raises(ValidationError):
        interviews.submit_written(session, user.id, interview.id, {prompt_id: "   "})
    session.rollback()
    # a one-word answer is final once handed in and gives a reviewer nothing to grade: refused in time
    with pytest.raises(ValidationError) as short:
        interviews.submit_written(session, user.id, interview.id, {prompt_id: "short \u200b\u200b\u200b  answer"})
    assert f"at least {interviews.WRITTEN_MIN_CHARS} characters (it has 12)" in short.value.errors[f"written.{prompt_id}"]
    session.rollback()
    interviews.submit_written(session, user.id, interview.id, {prompt_id: "Check airway first, then breathing."})
    assert applications.application_of(session, user.id).stage == "awaiting_grading"
    answer = session.query(WrittenAnswer).filter_by(interview_id=interview.id).one()
    assert [g.answer.id for g in grading.queue(session, 10)] == [answer.id]
    grading.grade(session, answer.id, 0.9, "safe and complete", reviewer.id)
    with pytest.raises(Conflict):
        grading.grade(session, answer.id, 0.1, "", admin.id)  # second grader loses
    session.rollback()
    session.refresh(interview)
    assert interview.written_score == 0.9
    assert interview.score == pytest.approx(0.7 * interview.percentile + 0.3 * 0.9, abs=1e-3)
    application = applications.application_of(session, user.id)
    assert application.stage == "ready" and application.score == interview.score
    vetting.vet(session, application.id, admin.id, "strong interview")
    session.refresh(user)
    assert user.roles == {"trainer"}
    qualification = session.query(Qualification).filter_by(user_id=user.id).one()
    assert qualification.domain == "medicine" and qualification.score == interview.score
    actions = {e.action: e for e in session.query(AuditEvent)}
    assert actions["written.grade"].actor_id == reviewer.id
    assert actions["application.vet"].actor_id == admin.id and actions["application.vet"].data["reason"] == "strong interview"
    with pytest.raises(Conflict):
        vetting.vet(session, application.id, admin.id)
    session.rollback()


def test_wrong_answers_give_a_low_ability_and_no_qualification(session, medicine):
    admin = make_user(session, "admin")
    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    take_items(session, user, interview, right=False)
    prompt_id = interviews.prompts_of(session, medicine.id)[0].id
    interviews.submit_written(session, user.id, interview.id, {prompt_id: "No idea, I would ask a senior."})
    answer = session.query(WrittenAnswer).filter_by(interview_id=interview.id).one()
    grading.grade(session, answer.id, 0.0, "", admin.id)
    session.refresh(interview)
    assert interview.theta < -0.5 and interview.passed is False
    application = applications.application_of(session, user.id)
    vetting.vet(session, application.id, admin.id)
    assert session.query(Qualification).filter_by(user_id=user.id).count() == 0


def test_a_double_submitted_answer_is_refused_and_changes_nothing(session, medicine):
    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    first = interview.current_item_id
    interviews.answer(session, user.id, interview.id, first, {"label": "yes"})
    with pytest.raises(Conflict):
        interviews.answer(session, user.id, interview.id, first, {"label": "yes"})
    session.rollback()
    assert session.query(InterviewResponse).filter_by(interview_id=interview.id).count() == 1


def test_an_invalid_answer_is_a_field_error(session, medicine):
    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    with pytest.raises(ValidationError):
        interviews.answer(session, user.id, interview.id, interview.current_item_id, {"label": "maybe"})
    session.rollback()
    assert session.query(InterviewResponse).count() == 0


def test_starting_twice_resumes_the_same_interview(session, medicine):
    user = make_applicant(session)
    first = interviews.start(session, user.id, medicine.id)
    again = interviews.start(session, user.id, medicine.id)
    assert first.id == again.id and session.query(Interview).count() == 1


def test_nobody_reaches_another_candidates_interview(session, medicine):
    user = make_applicant(session)
    other = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    with pytest.raises(NotFound):
        interviews.screen(session, interview.id, other.id)
    with pytest.raises(NotFound):
        interviews.answer(session, other.id, interview.id, interview.current_item_id, {"label": "yes"})
    session.rollback()


def test_an_assessment_outside_the_applicants_domains_is_not_offered(session, medicine):
    software = make_assessment(session, "software", items=5, prompts=0)
    user = make_applicant(session, ("medicine",))
    with pytest.raises(NotFound):
        interviews.start(session, user.id, software.id)
    session.rollback()


def test_time_up_ends_the_interview_with_what_it_has(session, medicine):
    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    interviews.answer(session, user.id, interview.id, interview.current_item_id, {"label": "yes"})
    later = interview.deadline_at + timedelta(seconds=1)
    assert interviews.screen(session, interview.id, user.id, now=later).phase == "time_up"
    with pytest.raises(Conflict):
        interviews.finish_time_up(session, user.id, interview.id, now=interview.deadline_at - timedelta(minutes=1))
    session.rollback()
    interviews.finish_time_up(session, user.id, interview.id, now=later)
    session.refresh(interview)
    assert interview.status == "done" and interview.stop_reason == "time" and interview.items_done == 1
    # the unwritten prompt scores nothing, so the interview is scored at once
    assert interview.written_score == 0.0 and interview.score is not None
    assert applications.application_of(session, user.id).stage == "ready"


def test_auto_vet_above_the_threshold_is_audited_without_an_actor(session):
    assessment = make_assessment(session, "software", items=20, prompts=0, min_items=3, max_items=6,
                                 auto_vet_score=0.5)
    user = make_applicant(session, ("software",))
    interview = interviews.start(session, user.id, assessment.id)
    take_items(session, user, interview, right=True)
    application = applications.application_of(session, user.id)
    assert application.stage == "vetted"
    event = session.query(AuditEvent).filter_by(action="application.auto_vet").one()
    assert event.actor_id is None and "threshold" in event.data["reason"]
    assert session.query(Qualification).filter_by(user_id=user.id, domain="software").count() == 1


def test_auto_vet_never_vets_an_interview_that_did_not_pass(session):
    """A low threshold, an interview stopped by the clock after two items (too few to measure): its
    score passes the threshold, but it did not pass, so the application waits for a person."""
    assessment = make_assessment(session, "software", items=20, prompts=0, min_items=6, max_items=10,
                                 auto_vet_score=0.0)
    user = make_applicant(session, ("software",))
    interview = interviews.start(session, user.id, assessment.id)
    for _ in range(2):
        interviews.answer(session, user.id, interview.id, interview.current_item_id, {"label": "yes"})
        session.refresh(interview)
    interviews.finish_time_up(session, user.id, interview.id, now=interview.deadline_at + timedelta(seconds=1))
    session.refresh(interview)
    assert interview.status == "done" and interview.passed is False and interview.score >= 0.0
    application = applications.application_of(session, user.id)
    assert application.stage == "ready"
    assert not session.get(User, user.id).has_role("trainer")
    assert session.query(Qualification).filter_by(user_id=user.id).count() == 0


def test_reject_needs_a_reason_the_candidate_sees(session, medicine):
    admin = make_user(session, "admin")
    user = make_applicant(session)
    application = applications.application_of(session, user.id)
    for blank_or_hidden in ("  ", "\u200b\u2060", "Fine\u202e.enif toN", "bell\x07"):
        with pytest.raises(ValidationError):
            vetting.reject(session, application.id, admin.id, blank_or_hidden)
        session.rollback()
    vetting.reject(session, application.id, admin.id, "Not enough clinical experience yet.")
    session.refresh(application)
    assert application.stage == "rejected" and application.reason == "Not enough clinical experience yet."
    event = session.query(AuditEvent).filter_by(action="application.reject").one()
    assert event.actor_id == admin.id and event.data["reason"].startswith("Not enough")
    with pytest.raises(Conflict):
        interviews.start(session, user.id, medicine.id)
    session.rollback()


def test_vetting_waits_for_interviews_under_way(session, medicine):
    admin = make_user(session, "admin")
    user = make_applicant(session)
    interviews.start(session, user.id, medicine.id)
    with pytest.raises(Conflict):
        vetting.vet(session, applications.application_of(session, user.id).id, admin.id)
    session.rollback()


def test_the_board_filters_by_domain_language_and_score(session, medicine):
    make_assessment(session, "law", items=3, prompts=0)
    make_applicant(session, ("medicine",))
    make_applicant(session, ("law",))
    board = vetting.board(session)
    assert board.counts["applied"] == 2
    assert vetting.board(session, domain="law").counts["applied"] == 1
    assert vetting.board(session, language="fr").counts["applied"] == 0
    assert vetting.board(session, min_score=0.5).counts["applied"] == 0


def test_a_failed_interviews_domain_is_not_qualified_by_hand(session, medicine):
    """The hand-qualified domains are those no assessment covers: failing one's interview leaves it
    unqualified, not open to a hand score."""
    admin = make_user(session, "admin")
    user = make_applicant(session, ("medicine",))
    interview = interviews.start(session, user.id, medicine.id)
    take_items(session, user, interview, right=False)
    prompt_id = interviews.prompts_of(session, medicine.id)[0].id
    interviews.submit_written(session, user.id, interview.id, {prompt_id: "Not sure what comes first."})
    grading.grade(session, session.query(WrittenAnswer).one().id, 0.1, "", admin.id)
    application = applications.application_of(session, user.id)
    assert vetting.unassessed_domains(session, application) == []
    with pytest.raises(ValidationError):
        vetting.vet(session, application.id, admin.id, manual={"medicine": 0.9})
    session.rollback()


def test_a_domain_without_an_assessment_can_be_qualified_by_hand(session, medicine):
    admin = make_user(session, "admin")
    from app.models import Domain

    session.add(Domain(slug="law", name="Law"))
    session.commit()
    user = make_applicant(session, ("medicine", "law"))
    interview = interviews.start(session, user.id, medicine.id)
    take_items(session, user, interview, right=True)
    prompt_id = interviews.prompts_of(session, medicine.id)[0].id
    interviews.submit_written(session, user.id, interview.id, {prompt_id: "Airway first, then breathing."})
    grading.grade(session, session.query(WrittenAnswer).one().id, 1.0, "", admin.id)
    application = applications.application_of(session, user.id)
    assert vetting.unassessed_domains(session, application) == ["law"]
    with pytest.raises(ValidationError):
        vetting.vet(session, application.id, admin.id, manual={"medicine": 0.9})  # covered by its interview
    session.rollback()
    with pytest.raises(ValidationError):
        vetting.vet(session, application.id, admin.id, manual={"law": 1.5})
    session.rollback()
    vetting.vet(session, application.id, admin.id, "bar exam passed", manual={"law": 0.7})
    found = {q.domain: q for q in session.query(Qualification).filter_by(user_id=user.id)}
    assert set(found) == {"medicine", "law"}
    assert found["law"].score == 0.7 and found["law"].interview_id is None and found["law"].granted_by == admin.id
    event = session.query(AuditEvent).filter_by(action="application.vet").one()
    assert event.data["qualifications"] == {"medicine": found["medicine"].score, "law": 0.7}


def test_an_admin_ends_an_interview_left_past_its_time_box_then_decides(session, medicine):
    admin = make_user(session, "admin")
    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    interviews.answer(session, user.id, interview.id, interview.current_item_id, {"label": "yes"})
    application = applications.application_of(session, user.id)
    with pytest.raises(Conflict):
        vetting.end_lapsed(session, application.id, admin.id)  # still within its time
    session.rollback()
    later = interview.deadline_at + timedelta(minutes=1)
    with pytest.raises(Conflict):
        vetting.vet(session, application.id, admin.id, now=later)  # never on a result nobody saw
    session.rollback()
    assert vetting.lapsed(session, application.id, now=later) == 1
    assert vetting.end_lapsed(session, application.id, admin.id, now=later) == 1
    session.refresh(interview)
    assert interview.status == "done" and interview.stop_reason == "time"
    assert interview.passed is False  # one item, under the minimum: measured too little to pass
    event = session.query(AuditEvent).filter_by(action="interview.end_lapsed").one()
    assert event.actor_id == admin.id
    assert applications.application_of(session, user.id).stage == "ready"
    vetting.vet(session, application.id, admin.id, "walked away after one answer", now=later)
    assert session.query(Qualification).filter_by(user_id=user.id).count() == 0


def test_a_rejected_candidate_cannot_go_on_with_an_interview(session, medicine):
    admin = make_user(session, "admin")
    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    vetting.reject(session, applications.application_of(session, user.id).id, admin.id, "Not this time.")
    with pytest.raises(Conflict):
        interviews.answer(session, user.id, interview.id, interview.current_item_id, {"label": "yes"})
    session.rollback()
    with pytest.raises(Conflict):
        interviews.start(session, user.id, medicine.id)
    session.rollback()
    assert session.query(InterviewResponse).count() == 0


def test_written_answers_after_the_time_box_do_not_count(session, medicine):
    user = make_applicant(session)
    interview = take_items(session, user, interviews.start(session, user.id, medicine.id))
    prompt_id = interviews.prompts_of(session, medicine.id)[0].id
    late = interview.deadline_at + interviews.WRITTEN_GRACE + timedelta(seconds=1)
    interviews.submit_written(session, user.id, interview.id, {prompt_id: "Written long after."}, now=late)
    answer = session.query(WrittenAnswer).one()
    assert answer.text == "" and answer.grade == 0.0 and answer.graded_by is None
    session.refresh(interview)
    assert interview.status == "done" and interview.written_score == 0.0


def test_guessing_the_choices_never_passes_without_the_written_part(session, medicine):
    """Every choice right but a written answer graded under half marks: the score may reach the pass
    mark, the interview does not pass (choices can be guessed well enough; a written answer cannot)."""
    reviewer = make_user(session, "reviewer")
    user = make_applicant(session)
    interview = take_items(session, user, interviews.start(session, user.id, medicine.id), right=True)
    prompt_id = interviews.prompts_of(session, medicine.id)[0].id
    interviews.submit_written(session, user.id, interview.id, {prompt_id: "No idea, sorry, I would ask."})
    answer = session.query(WrittenAnswer).filter_by(interview_id=interview.id).one()
    grading.grade(session, answer.id, 0.4, "misses the point", reviewer.id)
    session.refresh(interview)
    assessment = session.get(Assessment, medicine.id)
    assert interview.score >= assessment.pass_score and interview.passed is False
    assert vetting.WRITTEN_PASS_MIN == 0.5


def test_a_written_answer_shows_something_and_hides_nothing(session, medicine):
    user = make_applicant(session)
    interview = take_items(session, user, interviews.start(session, user.id, medicine.id))
    prompt_id = interviews.prompts_of(session, medicine.id)[0].id
    for hidden in ("\u200b\u200b", "Looks right\u202e.gnorw si tI", "ring\x07"):
        with pytest.raises(ValidationError) as refused:
            interviews.submit_written(session, user.id, interview.id, {prompt_id: hidden})
        assert f"written.{prompt_id}" in refused.value.errors
        session.rollback()
    assert session.query(WrittenAnswer).count() == 0


def test_an_answer_from_a_stale_read_is_refused_not_a_crash(session, app, medicine):
    """Two requests read the same item; the first answers it; the second, whose session still holds
    the old interview, gets Conflict (never the unique constraint's IntegrityError)."""
    from app.db import get_db

    user = make_applicant(session)
    interview = interviews.start(session, user.id, medicine.id)
    with app.app_context():
        other = get_db().session_factory()
    try:
        stale = interviews.screen(other, interview.id, user.id)  # the second request's read
        item_id = stale.item.id
        interviews.answer(session, user.id, interview.id, item_id, {"label": "yes"})
        with pytest.raises(Conflict):
            interviews.answer(other, user.id, interview.id, item_id, {"label": "yes"})
        other.rollback()
    finally:
        other.close()
    assert session.query(InterviewResponse).filter_by(interview_id=interview.id).count() == 1


def test_an_assessment_taken_by_candidates_keeps_its_domain(session, medicine):
    from app.models import Domain, Project
    from app.services.recruiting import assessments

    admin = make_user(session, "admin")
    session.add(Domain(slug="law", name="Law"))
    session.commit()
    project = session.get(Project, medicine.project_id)
    settings = {"domain": "law", "min_items": "4", "max_items": "10", "se_target": "0.5", "time_limit_minutes": "30",
                "ability_weight": "0.7", "pass_score": "0.6", "auto_vet_score": "", "exposure_bin": "5",
                "calibrate_after": "50"}
    assessments.save_settings(session, project, settings, admin.id)  # nobody has taken it: allowed
    assessments.save_settings(session, project, {**settings, "domain": "medicine"}, admin.id)
    user = make_applicant(session)
    interviews.start(session, user.id, medicine.id)
    with pytest.raises(ValidationError) as caught:
        assessments.save_settings(session, project, settings, admin.id)
    assert "domain" in caught.value.errors
    session.rollback()
    session.refresh(medicine)
    assert medicine.domain == "medicine"
