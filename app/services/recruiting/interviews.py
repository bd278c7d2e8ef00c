"""The interview: an adaptive assessment, then its written questions.

An assessment is a qualification project with an `Assessment` row: its gold items are the bank, each
with IRT parameters (`ItemParameter`, seeded from the item's level, calibrated from answers). The
candidate sees one item at a time: the next is drawn among the most informative at their current
ability (`quality.irt.next_item`, randomesque for exposure control); each answer is scored against the
item's gold answer by its question type (correct at a gold score of at least 0.5), ability and its
standard error are re-estimated, and the adaptive part stops at the target precision, the maximum
length, an exhausted bank or the time box. Written prompts follow; reviewers grade them
(`grading`), and `vetting.refresh` moves the application on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bounds import has_visible, plain_text_problem, shown
from app.db import begin_write
from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    Application,
    Assessment,
    Interview,
    InterviewResponse,
    Item,
    ItemParameter,
    Project,
    Question,
    WrittenAnswer,
    WrittenPrompt,
    utcnow,
)
from app.models.recruiting import ITEM_LEVELS
from app.services import assignment as queue
from app.services import audit
from app.services import questions as question_rules
from app.services.quality import irt

from . import applications, vetting

CORRECT_AT = 0.5  # a gold score at or above this counts as a right answer
# Written answers sent this soon after the time box still count (the page was posted in time, the
# network was slow); later ones are discarded.
WRITTEN_GRACE = timedelta(seconds=30)
_rng = random.SystemRandom()


@dataclass
class Bank:
    """An assessment's items in a fixed order with their (discrimination, difficulty)."""

    item_ids: list[int]
    params: list[tuple[float, float]]

    def index(self) -> dict[int, int]:
        return {item_id: i for i, item_id in enumerate(self.item_ids)}


def level_of(item: Item) -> str:
    """The level an item was seeded with: its metadata's ``level`` when it names one, else medium."""
    level = str((item.meta or {}).get("level", "medium")).strip().lower()
    return level if level in ITEM_LEVELS else "medium"


def ensure_parameters(session: Session, assessment: Assessment) -> int:
    """Seed parameters for bank items that have none yet (from their level). Does not commit;
    returns how many were added."""
    missing = session.execute(
        select(Item).outerjoin(ItemParameter, ItemParameter.item_id == Item.id)
        .where(Item.project_id == assessment.project_id, Item.is_gold.is_(True), ItemParameter.item_id.is_(None))
    ).scalars().all()
    for item in missing:
        level = level_of(item)
        session.add(ItemParameter(item_id=item.id, assessment_id=assessment.id, level=level,
                                  difficulty=irt.LEVELS[level], discrimination=1.0))
    if missing:
        session.flush()
    return len(missing)


def bank(session: Session, assessment: Assessment) -> Bank:
    rows = session.execute(
        select(ItemParameter.item_id, ItemParameter.discrimination, ItemParameter.difficulty)
        .join(Item, Item.id == ItemParameter.item_id)
        .where(ItemParameter.assessment_id == assessment.id, Item.project_id == assessment.project_id,
               Item.is_gold.is_(True))
        .order_by(ItemParameter.item_id)
    ).all()
    return Bank([r[0] for r in rows], [(float(r[1]), float(r[2])) for r in rows])


# ------------------------------------------------------------------------------------------ reading


def assessment_for_project(session: Session, project: Project) -> Assessment | None:
    return session.scalar(select(Assessment).where(Assessment.project_id == project.id))


def get_assessment(session: Session, assessment_id: int) -> tuple[Assessment, Project]:
    row = session.execute(select(Assessment, Project).join(Project, Project.id == Assessment.project_id)
                          .where(Assessment.id == assessment_id)).first()
    if row is None:
        raise NotFound("no such assessment")
    return row[0], row[1]


def open_assessments(session: Session, domains) -> list[tuple[Assessment, Project]]:
    """Active assessments in any of ``domains``, by domain then name."""
    if not domains:
        return []
    return [tuple(r) for r in session.execute(
        select(Assessment, Project).join(Project, Project.id == Assessment.project_id)
        .where(Assessment.domain.in_(list(domains)), Project.status == "active", Project.kind == "qualification")
        .order_by(Assessment.domain, Project.name)
    ).all()]


def interviews_of(session: Session, application_id: int) -> list[Interview]:
    return list(session.scalars(select(Interview).where(Interview.application_id == application_id)
                                .order_by(Interview.id)))


def prompts_of(session: Session, assessment_id: int) -> list[WrittenPrompt]:
    return list(session.scalars(select(WrittenPrompt).where(WrittenPrompt.assessment_id == assessment_id)
                                .order_by(WrittenPrompt.position, WrittenPrompt.id)))


def own_interview(session: Session, interview_id: int, user_id: int) -> Interview:
    """The caller's own interview; anyone else's looks like none at all."""
    interview = session.get(Interview, interview_id)
    if interview is None or interview.user_id != user_id:
        raise NotFound("no such interview")
    return interview


@dataclass
class Screen:
    """What the candidate's interview page shows now."""

    interview: Interview
    assessment: Assessment
    project: Project
    phase: str  # item / written / time_up / done
    item: Item | None = None
    questions: list[Question] | None = None
    prompts: list[WrittenPrompt] | None = None
    bank_size: int = 0


def screen(session: Session, interview_id: int, user_id: int, now: datetime | None = None) -> Screen:
    """The interview as it stands; reading it changes nothing (a lapsed time box is shown, and ended
    by the candidate's next POST)."""
    now = now or utcnow()
    interview = own_interview(session, interview_id, user_id)
    assessment, project = get_assessment(session, interview.assessment_id)
    size = session.scalar(select(func.count()).select_from(ItemParameter)
                          .where(ItemParameter.assessment_id == assessment.id)) or 0
    base = {"interview": interview, "assessment": assessment, "project": project, "bank_size": size}
    if interview.status == "done":
        return Screen(phase="done", **base)
    if now >= interview.deadline_at:
        return Screen(phase="time_up", **base)
    if interview.status == "written":
        return Screen(phase="written", prompts=prompts_of(session, assessment.id), **base)
    item = session.get(Item, interview.current_item_id) if interview.current_item_id else None
    return Screen(phase="item", item=item, questions=queue.project_questions(session, project.id), **base)


# ------------------------------------------------------------------------------------------ writing


def _lock_own(session: Session, interview_id: int, user_id: int, *, open_only: bool = True) -> Interview:
    """The one door to a candidate's interview: their own, locked and read fresh (never the copy an
    earlier read of this session holds), of an application not yet decided (``open_only``)."""
    interview = session.scalar(select(Interview).where(Interview.id == interview_id).with_for_update()
                               .execution_options(populate_existing=True))
    if interview is None or interview.user_id != user_id:
        raise NotFound("no such interview")
    if open_only:
        applications.undecided(session.get(Application, interview.application_id))
    return interview


def start(session: Session, user_id: int, assessment_id: int, now: datetime | None = None) -> Interview:
    """Begin (or resume) the caller's interview for an assessment in one of their application's
    domains: the time box starts and the first item is drawn. Commits."""
    now = now or utcnow()
    begin_write(session)
    application = session.scalar(select(Application).where(Application.user_id == user_id).with_for_update())
    if application is None:
        raise NotFound("you have no application")
    assessment, project = get_assessment(session, assessment_id)
    if assessment.domain not in (application.domains or []) or project.status != "active":
        raise NotFound("no such assessment")
    applications.undecided(application)
    existing = session.scalar(select(Interview).where(Interview.assessment_id == assessment.id,
                                                      Interview.user_id == user_id))
    if existing is not None:
        session.rollback()
        return existing
    ensure_parameters(session, assessment)
    items = bank(session, assessment)
    if not items.item_ids:
        raise Conflict("this assessment has no questions yet; try again later")
    first = irt.next_item(items.params, [], 0.0, _rng, bin_size=assessment.exposure_bin)
    interview = Interview(assessment_id=assessment.id, application_id=application.id, user_id=user_id,
                          status="in_progress", started_at=now,
                          deadline_at=now + timedelta(minutes=assessment.time_limit_minutes),
                          current_item_id=items.item_ids[first], theta=0.0, se=None, items_done=0)
    session.add(interview)
    session.flush()
    audit.record(session, user_id, "interview.start", "interview", interview.id, {"assessment_id": assessment.id})
    vetting.refresh(session, application, now)
    session.commit()
    return interview


def answer(session: Session, user_id: int, interview_id: int, item_id: int, raw: dict,
           now: datetime | None = None) -> Interview:
    """Score the answer to the item on the candidate's screen, re-estimate ability, and draw the next
    item or end the adaptive part. An answer to an item no longer on screen (a double click, an old
    tab) is refused with Conflict and changes nothing. Commits."""
    now = now or utcnow()
    begin_write(session)
    interview = _lock_own(session, interview_id, user_id)
    assessment, project = get_assessment(session, interview.assessment_id)
    if interview.status != "in_progress":
        raise Conflict("the questions part of this interview is over")
    if now >= interview.deadline_at:
        _end_adaptive(session, interview, assessment, "time", now)
        session.commit()
        return interview
    if interview.current_item_id != item_id:
        raise Conflict("that question was already answered; here is the one on your screen now")
    item = session.get(Item, item_id)
    questions = queue.project_questions(session, project.id)
    clean = question_rules.validate_answers(questions, raw, item.responses or [])
    score = question_rules.gold_score(questions, clean, item.gold_answers or {}) or 0.0
    items = bank(session, assessment)
    where = items.index()
    done = list(interview.responses)
    administered = [where[r.item_id] for r in done if r.item_id in where] + [where[item_id]]
    outcomes = [r.correct for r in done if r.item_id in where] + [score >= CORRECT_AT]
    estimate = irt.estimate([items.params[i] for i in administered], outcomes, bank=items.params)
    interview.responses.append(InterviewResponse(
        item_id=item_id, position=len(done) + 1, answers=clean, score=round(float(score), 4),
        correct=score >= CORRECT_AT, theta_after=estimate.theta, se_after=_finite(estimate.se), answered_at=now))
    parameter = session.get(ItemParameter, item_id)
    if parameter is not None:
        parameter.answers += 1
    interview.theta, interview.se, interview.items_done = estimate.theta, _finite(estimate.se), len(administered)
    reason = irt.stop_reason(items.params, administered, estimate, se_target=assessment.se_target,
                             min_items=assessment.min_items, max_items=assessment.max_items)
    if reason is None:
        following = irt.next_item(items.params, administered, estimate.theta, _rng, bin_size=assessment.exposure_bin)
        if following is None:
            reason = "bank"
        else:
            interview.current_item_id = items.item_ids[following]
    if reason is not None:
        _end_adaptive(session, interview, assessment, reason, now)
    session.commit()
    return interview


def _finite(value: float) -> float | None:
    return None if value is None or value != value or value == float("inf") else round(float(value), 4)


def _end_adaptive(session: Session, interview: Interview, assessment: Assessment, reason: str,
                  now: datetime) -> None:
    """The adaptive part is over: the ability it is scored by is the EAP estimate over every answer
    (`irt.final_estimate`), and its percentile on the calibrated scale."""
    interview.stop_reason = reason
    interview.current_item_id = None
    session.flush()
    items = bank(session, assessment)
    where = items.index()
    answered = [r for r in interview.responses if r.item_id in where]
    final = irt.final_estimate([items.params[where[r.item_id]] for r in answered], [r.correct for r in answered])
    interview.theta, interview.se = round(final.theta, 4), round(final.se, 4)
    interview.percentile = round(irt.percentile(final.theta), 4)
    prompts = prompts_of(session, assessment.id)
    if prompts and reason != "time":
        interview.status = "written"
        return
    for prompt in prompts:  # time ran out before the written part: nothing written scores nothing
        session.add(_written(interview, prompt, "", now))
    _finish(session, interview, now)


def _written(interview: Interview, prompt: WrittenPrompt, text: str, now: datetime) -> WrittenAnswer:
    """A written answer as handed in; an empty one (the time ran out) is graded 0 at once."""
    row = WrittenAnswer(interview_id=interview.id, prompt_id=prompt.id, text=text, submitted_at=now)
    if not text:
        row.grade, row.grade_note, row.graded_at = 0.0, "no answer before the time ran out", now
    return row


def _finish(session: Session, interview: Interview, now: datetime) -> None:
    interview.status = "done"
    interview.finished_at = now
    session.flush()
    vetting.score_interview(session, interview)
    audit.record(session, interview.user_id, "interview.finish", "interview", interview.id,
                 {"stop": interview.stop_reason, "items": interview.items_done, "theta": interview.theta,
                  "se": interview.se})
    vetting.refresh(session, session.get(Application, interview.application_id), now)


WRITTEN_MIN_CHARS = 20  # a written answer shows at least this many characters (counted as ``bounds.shown``)


def submit_written(session: Session, user_id: int, interview_id: int, texts: dict[int, str],
                   now: datetime | None = None) -> Interview:
    """Store the written answers (every prompt needs one, within its length) and end the interview;
    reviewers grade them next. After the time box, what was not written scores nothing. Commits."""
    now = now or utcnow()
    begin_write(session)
    interview = _lock_own(session, interview_id, user_id)
    if interview.status != "written":
        raise Conflict("this interview has no written part waiting")
    assessment, _project = get_assessment(session, interview.assessment_id)
    prompts = prompts_of(session, assessment.id)
    if now >= interview.deadline_at + WRITTEN_GRACE:
        # Too late: what was written does not count (the adaptive part ends the same way).
        _time_up(session, interview, assessment, now)
        session.commit()
        return interview
    late = now >= interview.deadline_at
    errors, answers = {}, {}
    for prompt in prompts:
        text = (texts.get(prompt.id) or "").replace("\r\n", "\n").strip()
        if problem := plain_text_problem(text):
            errors[f"written.{prompt.id}"] = problem
        elif len(text) > prompt.max_chars:
            errors[f"written.{prompt.id}"] = f"must be at most {prompt.max_chars:,} characters (it has {len(text):,})"
        elif not has_visible(text) and not late:  # invisible characters say nothing
            errors[f"written.{prompt.id}"] = "write an answer"
        elif len(shown(text)) < WRITTEN_MIN_CHARS and not late:  # "short" is no answer a reviewer can grade
            errors[f"written.{prompt.id}"] = (f"write at least {WRITTEN_MIN_CHARS} characters (it has "
                                              f"{len(shown(text))}): the answer is final once handed in")
        answers[prompt.id] = text
    if errors and not late:
        raise ValidationError(errors)
    for prompt in prompts:
        text = answers.get(prompt.id, "") if f"written.{prompt.id}" not in errors else ""
        session.add(_written(interview, prompt, text, now))
    _finish(session, interview, now)
    session.commit()
    return interview


def _time_up(session: Session, interview: Interview, assessment: Assessment, now: datetime) -> None:
    """End an interview whose time box passed, with what it has: unanswered written prompts score 0."""
    if interview.status == "in_progress":
        _end_adaptive(session, interview, assessment, "time", now)
        return
    for prompt in prompts_of(session, assessment.id):
        session.add(_written(interview, prompt, "", now))
    _finish(session, interview, now)


def close_lapsed(session: Session, application_id: int, now: datetime) -> int:
    """End the application's interviews whose time box has passed (a candidate who walked away), so
    the admin can decide on what they did. Does not commit; returns how many it ended."""
    lapsed = list(session.scalars(select(Interview).where(
        Interview.application_id == application_id, Interview.status != "done", Interview.deadline_at <= now)
        .with_for_update()))
    for interview in lapsed:
        assessment, _project = get_assessment(session, interview.assessment_id)
        _time_up(session, interview, assessment, now)
    return len(lapsed)


def finish_time_up(session: Session, user_id: int, interview_id: int, now: datetime | None = None) -> Interview:
    """End an interview whose time box has passed, with what it has. Commits."""
    now = now or utcnow()
    begin_write(session)
    interview = _lock_own(session, interview_id, user_id)
    if interview.status == "done":
        session.rollback()
        return interview
    if now < interview.deadline_at:
        raise Conflict("there is still time left on this interview")
    assessment, _project = get_assessment(session, interview.assessment_id)
    _time_up(session, interview, assessment, now)
    session.commit()
    return interview
