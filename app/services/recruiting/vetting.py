"""Scoring and vetting: an interview's score, an application's stage and score, the pipeline board,
and the admin's decision (vet or reject, by hand or automatically above a threshold).

An interview's score is ``w × percentile + (1 − w) × mean written grade`` with the assessment's
ability weight ``w`` (the percentile alone when it has no written part); it passes at the
assessment's pass score. An application is *ready* when every open assessment of its domains is done
and graded; its score is the mean of its interviews' scores. Vetting grants the trainer role and a
`Qualification` per passed domain, with that interview's score, and, when the admin gives one, a
score for a domain of the application that no interview covers (one with no assessment yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bounds import has_visible, plain_text_problem
from app.db import begin_write
from app.errors import Conflict, ValidationError
from app.models import (
    APPLICATION_STAGES,
    Application,
    ApplicationStage,
    Assessment,
    Interview,
    InterviewResponse,
    Item,
    Project,
    Qualification,
    TrainerProfile,
    User,
    UserRole,
    WrittenAnswer,
    WrittenPrompt,
    utcnow,
)
from app.services import audit
from app.services.assignment import project_questions

from . import applications

REASON_MAX = 1000
BOARD_COLUMN_LIMIT = 50
# The adaptive part's items are choices, which answering one way every time can get right often enough
# to pass on (a bank with more "correct" keys than "incorrect" ones); a written part cannot be guessed.
# An interview with written prompts passes only when their mean grade reaches this as well.
WRITTEN_PASS_MIN = 0.5


def score_interview(session: Session, interview: Interview) -> None:
    """Set a finished interview's written score, score and pass mark once every written answer is
    graded (leaves them unset while one is not). Does not commit."""
    assessment = session.get(Assessment, interview.assessment_id)
    grades = list(session.scalars(select(WrittenAnswer.grade).where(WrittenAnswer.interview_id == interview.id)))
    percentile = interview.percentile or 0.0
    if any(g is None for g in grades):
        interview.written_score = interview.score = interview.passed = None
        return
    if grades:
        interview.written_score = round(sum(grades) / len(grades), 4)
        weight = assessment.ability_weight
        interview.score = round(weight * percentile + (1 - weight) * interview.written_score, 4)
    else:
        interview.written_score = None
        interview.score = round(percentile, 4)
    # Stopped by the clock before its minimum length, it measured too little to pass on.
    measured = not (interview.stop_reason == "time" and interview.items_done < assessment.min_items)
    written_ok = not grades or interview.written_score >= WRITTEN_PASS_MIN
    interview.passed = measured and written_ok and interview.score >= assessment.pass_score


def refresh(session: Session, application: Application, now: datetime) -> None:
    """Move an undecided application to the stage its interviews put it in, score it when ready, and
    vet it automatically when every assessment it took allows that and its scores reach the
    thresholds. Does not commit."""
    if application.stage in applications.DECIDED:
        return
    from .interviews import interviews_of, open_assessments  # the two modules call each other

    interviews = interviews_of(session, application.id)
    open_ids = {a.id for a, _p in open_assessments(session, application.domains)}
    taken = {i.assessment_id for i in interviews}
    if any(i.status != "done" for i in interviews):
        stage = "interviewing"
    elif not interviews:
        stage = "applied"
    elif any(i.score is None for i in interviews):
        stage = "awaiting_grading"
    elif open_ids - taken:
        stage = "interviewing"  # one assessment done, another of their domains still to take
    else:
        stage = "ready"
    applications.set_stage(session, application, stage, now)
    application.score = (round(sum(i.score for i in interviews) / len(interviews), 4)
                         if stage == "ready" else None)
    if stage == "ready":
        thresholds = [session.get(Assessment, i.assessment_id).auto_vet_score for i in interviews]
        # Only a candidate who passed every interview: a score past the threshold from an interview that
        # did not pass (stopped by the clock before it measured enough, a written part under half marks)
        # vets nobody, whatever the threshold.
        if all(t is not None for t in thresholds) and all(
                i.passed and i.score >= t for i, t in zip(interviews, thresholds, strict=True)):
            _vet(session, application, None, f"auto-vet: every score reached its threshold "
                                             f"({', '.join(f'{i.score:.2f} ≥ {t:.2f}' for i, t in zip(interviews, thresholds, strict=True))})",
                 now, automatic=True)


def _vet(session: Session, application: Application, actor_id: int | None, reason: str, now: datetime,
         automatic: bool = False, manual: dict[str, float] | None = None) -> list[Qualification]:
    user = session.get(User, application.user_id)
    if not user.has_role("trainer"):
        user.role_rows.append(UserRole(role="trainer"))
    for row in list(user.role_rows):
        if row.role == "applicant":
            user.role_rows.remove(row)
    granted = []
    grants = [(session.get(Assessment, i.assessment_id).domain, i.score, i.theta, i.id)
              for i in interviews_passed(session, application.id)]
    grants += [(domain, score, None, None) for domain, score in (manual or {}).items()]
    for domain, score, theta, interview_id in grants:
        qualification = session.scalar(select(Qualification).where(Qualification.user_id == user.id,
                                                                    Qualification.domain == domain))
        if qualification is None:
            qualification = Qualification(user_id=user.id, domain=domain, score=score)
            session.add(qualification)
        qualification.score, qualification.theta = score, theta
        qualification.interview_id, qualification.granted_by, qualification.granted_at = interview_id, actor_id, now
        granted.append(qualification)
    applications.set_stage(session, application, "vetted", now)
    application.reason, application.decided_by, application.decided_at = reason or None, actor_id, now
    audit.record(session, actor_id, "application.auto_vet" if automatic else "application.vet", "application",
                 application.id, {"reason": reason, "user_id": user.id, "score": application.score,
                                  "qualifications": {q.domain: q.score for q in granted}})
    return granted


def interviews_passed(session: Session, application_id: int) -> list[Interview]:
    return list(session.scalars(select(Interview).where(Interview.application_id == application_id,
                                                        Interview.passed.is_(True))))


def _reason(reason: str, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not has_visible(reason):  # invisible characters say nothing
        raise ValidationError({"reason": "say why: the candidate sees this reason"})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"must be at most {REASON_MAX:,} characters"})
    if problem := plain_text_problem(reason):
        raise ValidationError({"reason": problem})
    return reason


def unassessed_domains(session: Session, application: Application) -> list[str]:
    """The application's domains no assessment covers yet: the admin may qualify these by hand, judged
    from the profile and credentials. A domain with an assessment is qualified by passing it, never
    by hand (so not after failing it either)."""
    assessed = set(session.scalars(select(Assessment.domain).where(Assessment.domain.in_(application.domains or []))))
    return [d for d in application.domains or [] if d not in assessed]


def vet(session: Session, application_id: int, actor_id: int, reason: str = "",
        now: datetime | None = None, manual: dict[str, float] | None = None) -> list[Qualification]:
    """The admin vets a candidate: trainer role, a qualification per passed domain, and one per
    domain in ``manual`` (domain → score 0–1, only domains of the application that no passed
    interview covers). Refused while an interview is under way (an admin ends one whose time box
    passed with `end_lapsed` first, and sees its result) or ungraded. Audited with the reason.
    Commits."""
    now = now or utcnow()
    reason = _reason(reason, required=False)
    begin_write(session)
    application = applications.lock(session, application_id)
    applications.undecided(application)
    if application.user_id == actor_id:
        raise Conflict("nobody vets their own application")
    if application.stage in ("interviewing", "awaiting_grading"):
        raise Conflict(f"this application is {application.stage.replace('_', ' ')}; vet it once it is ready")
    allowed = set(unassessed_domains(session, application))
    for domain, score in (manual or {}).items():
        if domain not in allowed:
            raise ValidationError({f"qualify.{domain[:40]}": "is not a domain of this application left to qualify"})
        if not (isinstance(score, float | int) and 0 <= score <= 1):
            raise ValidationError({f"qualify.{domain}": "must be a score from 0 to 1"})
    granted = _vet(session, application, actor_id, reason or "vetted by an admin", now, manual=manual)
    session.commit()
    return granted


def end_lapsed(session: Session, application_id: int, actor_id: int, now: datetime | None = None) -> int:
    """The admin ends the application's interviews whose time box has passed (a candidate who walked
    away), with what they have, so the application can be graded and decided; returns how many.
    Audited with the admin as actor. Commits."""
    from .interviews import close_lapsed

    now = now or utcnow()
    begin_write(session)
    application = applications.lock(session, application_id)
    applications.undecided(application)
    ended = close_lapsed(session, application.id, now)
    if not ended:
        raise Conflict("no interview of this application is past its time")
    refresh(session, application, now)
    audit.record(session, actor_id, "interview.end_lapsed", "application", application.id, {"interviews": ended})
    session.commit()
    return ended


def lapsed(session: Session, application_id: int, now: datetime | None = None) -> int:
    """How many of the application's interviews are past their time box and not ended."""
    return session.scalar(select(func.count()).select_from(Interview).where(
        Interview.application_id == application_id, Interview.status != "done",
        Interview.deadline_at <= (now or utcnow()))) or 0


def reject(session: Session, application_id: int, actor_id: int, reason: str, now: datetime | None = None) -> None:
    """The admin rejects a candidate, with a reason the candidate sees. Audited. Commits."""
    now = now or utcnow()
    reason = _reason(reason, required=True)
    begin_write(session)
    application = applications.lock(session, application_id)
    applications.undecided(application)
    if application.user_id == actor_id:
        raise Conflict("nobody decides their own application")
    applications.set_stage(session, application, "rejected", now)
    application.reason, application.decided_by, application.decided_at = reason, actor_id, now
    audit.record(session, actor_id, "application.reject", "application", application.id,
                 {"reason": reason, "user_id": application.user_id})
    session.commit()


# ------------------------------------------------------------------------------------------- board


@dataclass
class Card:
    application: Application
    name: str
    email: str
    languages: list[str]
    years: int | None


@dataclass
class Board:
    columns: dict[str, list[Card]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def board(session: Session, *, domain: str = "", language: str = "", min_score: float | None = None,
          limit: int = BOARD_COLUMN_LIMIT) -> Board:
    """Applications by stage (newest in stage first, ``limit`` per column), filtered by domain,
    language and minimum score; the counts are of everything that matches."""
    stmt = (select(Application, User.name, User.email, TrainerProfile.languages, TrainerProfile.years_experience)
            .join(User, User.id == Application.user_id)
            .outerjoin(TrainerProfile, TrainerProfile.user_id == Application.user_id))
    if min_score is not None:
        stmt = stmt.where(Application.score >= min_score)
    result = Board({s: [] for s in APPLICATION_STAGES}, {s: 0 for s in APPLICATION_STAGES})
    # Domain and language live in JSON lists: filtered here, which keeps one query for both databases.
    for application, name, email, languages, years in session.execute(
            stmt.order_by(Application.stage_at.desc(), Application.id.desc())):
        if domain and domain not in (application.domains or []):
            continue
        if language and language not in (languages or []):
            continue
        result.counts[application.stage] += 1
        if len(result.columns[application.stage]) < limit:
            result.columns[application.stage].append(Card(application, name, email, languages or [], years))
    return result


@dataclass
class InterviewRecord:
    interview: Interview
    assessment: Assessment
    project: Project
    responses: list[tuple[InterviewResponse, Item]]
    written: list[tuple[WrittenAnswer, WrittenPrompt]]
    questions: list = field(default_factory=list)  # the assessment's questions, to read its answers by


@dataclass
class Candidate:
    application: Application
    user: User
    profile: TrainerProfile | None
    interviews: list[InterviewRecord]
    stages: list[ApplicationStage]
    qualifications: list[Qualification]


def candidate(session: Session, application_id: int) -> Candidate:
    """Everything the admin weighs: profile, each interview's answers with the estimate after each,
    written answers and grades, the stages so far and any qualifications."""
    application = applications.get(session, application_id)
    user = session.get(User, application.user_id)
    profile = session.scalar(select(TrainerProfile).where(TrainerProfile.user_id == user.id))
    records = []
    for interview, assessment, project in session.execute(
            select(Interview, Assessment, Project).join(Assessment, Assessment.id == Interview.assessment_id)
            .join(Project, Project.id == Assessment.project_id)
            .where(Interview.application_id == application.id).order_by(Interview.id)):
        responses = list(session.execute(
            select(InterviewResponse, Item).join(Item, Item.id == InterviewResponse.item_id)
            .where(InterviewResponse.interview_id == interview.id).order_by(InterviewResponse.position)).all())
        written = list(session.execute(
            select(WrittenAnswer, WrittenPrompt).join(WrittenPrompt, WrittenPrompt.id == WrittenAnswer.prompt_id)
            .where(WrittenAnswer.interview_id == interview.id).order_by(WrittenPrompt.position)).all())
        records.append(InterviewRecord(interview, assessment, project, responses, written,
                                       project_questions(session, project.id)))
    stages = list(session.scalars(select(ApplicationStage).where(ApplicationStage.application_id == application.id)
                                  .order_by(ApplicationStage.at, ApplicationStage.id)))
    qualifications = list(session.scalars(select(Qualification).where(Qualification.user_id == user.id)
                                          .order_by(Qualification.domain)))
    return Candidate(application, user, profile, records, stages, qualifications)


def qualifications_of(session: Session, user_id: int) -> list[Qualification]:
    return list(session.scalars(select(Qualification).where(Qualification.user_id == user_id)
                                .order_by(Qualification.domain)))


def count_ready(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Application).where(Application.stage == "ready")) or 0
