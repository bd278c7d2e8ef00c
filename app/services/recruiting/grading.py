"""Grading written answers: the queue, a reviewer's grade, and the optional model's suggestion.

Reviewers grade blind: the queue and the grading page show the candidate as "Candidate #<application>",
never their name. A model's suggested grade (when `GRADER_URL` is set) is fetched by a job after the
interview ends; the reviewer confirms or overrides it, and the grading page shows how often the two
agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.bounds import decimal_number, plain_text_problem
from app.db import begin_write
from app.errors import Conflict, NotFound, ValidationError
from app.models import Application, Assessment, Interview, Project, WrittenAnswer, WrittenPrompt, utcnow
from app.services import audit, grader

from . import vetting

NOTE_MAX = 2000


@dataclass
class Grading:
    answer: WrittenAnswer
    prompt: WrittenPrompt
    interview: Interview
    assessment: Assessment
    project: Project

    @property
    def candidate_label(self) -> str:
        return f"Candidate #{self.interview.application_id}"


def _graded_rows(stmt):
    return (stmt.join(WrittenPrompt, WrittenPrompt.id == WrittenAnswer.prompt_id)
            .join(Interview, Interview.id == WrittenAnswer.interview_id)
            .join(Assessment, Assessment.id == Interview.assessment_id)
            .join(Project, Project.id == Assessment.project_id))


def queue_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(WrittenAnswer).where(WrittenAnswer.grade.is_(None))) or 0


def queue(session: Session, limit: int, offset: int = 0) -> list[Grading]:
    """Ungraded answers, oldest first."""
    stmt = _graded_rows(select(WrittenAnswer, WrittenPrompt, Interview, Assessment, Project)) \
        .where(WrittenAnswer.grade.is_(None)).order_by(WrittenAnswer.submitted_at, WrittenAnswer.id)
    return [Grading(*row) for row in session.execute(stmt.limit(limit).offset(offset))]


def recent(session: Session, limit: int = 20) -> list[Grading]:
    stmt = _graded_rows(select(WrittenAnswer, WrittenPrompt, Interview, Assessment, Project)) \
        .where(WrittenAnswer.graded_by.is_not(None)).order_by(WrittenAnswer.graded_at.desc(), WrittenAnswer.id.desc())
    return [Grading(*row) for row in session.execute(stmt.limit(limit))]


def get(session: Session, answer_id: int) -> Grading:
    row = session.execute(_graded_rows(select(WrittenAnswer, WrittenPrompt, Interview, Assessment, Project))
                          .where(WrittenAnswer.id == answer_id)).first()
    if row is None:
        raise NotFound("no such answer")
    return Grading(*row)


def parse_grade(text: str) -> float:
    """'0.75' (or '75%') → 0.75; a field error otherwise."""
    raw = (text or "").strip()
    value = decimal_number(raw[:-1] if raw.endswith("%") else raw)
    if value is not None and raw.endswith("%"):
        value /= 100
    if value is None or len(raw) > 10 or not 0 <= value <= 1:
        raise ValidationError({"grade": "must be a number from 0 to 1, like 0.75"})
    return round(value, 2)


def grade(session: Session, answer_id: int, value: float, note: str, actor_id: int,
          now: datetime | None = None) -> WrittenAnswer:
    """Record a reviewer's grade (0–1) with a note. Two reviewers racing: the first wins, the second
    gets Conflict. When it was the interview's last ungraded answer, the interview is scored and the
    application moves on. Audited with the suggestion beside it. Commits."""
    now = now or utcnow()
    if not 0 <= value <= 1:
        raise ValidationError({"grade": "must be a number from 0 to 1"})
    note = (note or "").strip()
    if len(note) > NOTE_MAX or plain_text_problem(note):
        raise ValidationError({"note": f"must be plain text of at most {NOTE_MAX:,} characters"})
    begin_write(session)
    found = get(session, answer_id)
    if found.interview.user_id == actor_id:
        raise Conflict("nobody grades their own answer")
    done = session.execute(
        update(WrittenAnswer).where(WrittenAnswer.id == answer_id, WrittenAnswer.grade.is_(None))
        .values(grade=value, grade_note=note or None, graded_by=actor_id, graded_at=now)
    ).rowcount
    if not done:
        raise Conflict("this answer was graded already")
    session.expire(found.answer)
    audit.record(session, actor_id, "written.grade", "written_answer", answer_id,
                 {"grade": value, "suggested": found.answer.suggested_grade, "note": note,
                  "interview_id": found.interview.id})
    interview = session.scalar(select(Interview).where(Interview.id == found.interview.id).with_for_update())
    vetting.score_interview(session, interview)
    if interview.score is not None:
        application = session.get(Application, interview.application_id)
        vetting.refresh(session, application, now)
    session.commit()
    return found.answer


# ---------------------------------------------------------------------------------- model-assisted


def awaiting_suggestion(session: Session, interview_id: int) -> list[int]:
    """An interview's ungraded answers that have no suggestion yet."""
    return list(session.scalars(select(WrittenAnswer.id).where(
        WrittenAnswer.interview_id == interview_id, WrittenAnswer.grade.is_(None),
        WrittenAnswer.suggested_grade.is_(None), WrittenAnswer.suggestion_error.is_(None))))


def suggest(session: Session, answer_id: int, settings: grader.GraderSettings) -> WrittenAnswer:
    """Ask the configured model for a grade and store its suggestion (or why there is none). The
    call happens outside any transaction; the reviewer's grade, if it came first, is left alone.
    Commits."""
    found = get(session, answer_id)
    prompt, rubric, text = found.prompt.prompt, found.prompt.rubric, found.answer.text
    session.rollback()  # no transaction stays open while the model thinks
    try:
        suggestion = grader.suggest_grade(settings, prompt=prompt, rubric=rubric, answer=text)
        values = {"suggested_grade": suggestion.grade, "suggested_rationale": suggestion.rationale,
                  "suggestion_error": None}
    except grader.GraderError as exc:
        values = {"suggestion_error": str(exc)[:500]}
    begin_write(session)
    session.execute(update(WrittenAnswer).where(WrittenAnswer.id == answer_id).values(**values))
    session.commit()
    return session.get(WrittenAnswer, answer_id)


def suggestion_agreement(session: Session) -> dict | None:
    """How the model's suggestions compare with reviewers' final grades (graded by a person)."""
    pairs = session.execute(select(WrittenAnswer.suggested_grade, WrittenAnswer.grade).where(
        WrittenAnswer.suggested_grade.is_not(None), WrittenAnswer.grade.is_not(None),
        WrittenAnswer.graded_by.is_not(None))).all()
    return grader.agreement([(float(s), float(g)) for s, g in pairs])
