"""Calibrating an assessment's item bank from candidates' answers.

Every answered item of the assessment enters the estimation (missing answers are normal: each
candidate sees a few items of the bank); the estimated parameters replace the seeded ones only for
items with at least the assessment's `calibrate_after` answers, so a new item keeps its admin-given
level until there is evidence. The scale is anchored by the candidates' abilities (mean 0, spread 1),
which is what the percentile of an application score reads.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import NotFound
from app.models import Assessment, Interview, InterviewResponse, ItemParameter, utcnow
from app.services.quality import irt

MIN_CANDIDATES = 20  # fewer people than this cannot anchor a scale


def due(session: Session, assessment: Assessment) -> bool:
    """Whether enough new answers arrived since the last calibration (a tenth of the bank's answers,
    and some item has crossed its threshold uncalibrated)."""
    waiting = session.scalar(select(func.count()).select_from(ItemParameter).where(
        ItemParameter.assessment_id == assessment.id, ItemParameter.calibrated.is_(False),
        ItemParameter.answers >= assessment.calibrate_after))
    return bool(waiting)


def calibrate(session: Session, assessment_id: int, now: datetime | None = None) -> dict:
    """Re-estimate the bank's parameters (Rasch, through `quality.irt.calibrate`) and store them for
    items with enough answers. Commits."""
    now = now or utcnow()
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound("no such assessment")
    rows = session.execute(
        select(InterviewResponse.item_id, InterviewResponse.interview_id, InterviewResponse.correct)
        .join(Interview, Interview.id == InterviewResponse.interview_id)
        .where(Interview.assessment_id == assessment_id)
    ).all()
    people = sorted({r.interview_id for r in rows})
    if len(people) < MIN_CANDIDATES:
        session.rollback()
        return {"assessment_id": assessment_id, "calibrated": 0,
                "reason": f"{len(people)} candidates answered; calibration needs {MIN_CANDIDATES}"}
    items = sorted({r.item_id for r in rows})
    item_index = {item_id: i for i, item_id in enumerate(items)}
    person_index = {p: i for i, p in enumerate(people)}
    estimated = irt.calibrate([(item_index[r.item_id], person_index[r.interview_id], bool(r.correct)) for r in rows],
                              len(items), len(people))
    begin_write(session)
    changed = 0
    for parameter in session.scalars(select(ItemParameter).where(ItemParameter.assessment_id == assessment_id)):
        i = item_index.get(parameter.item_id)
        if i is None or estimated[i] is None or parameter.answers < assessment.calibrate_after:
            continue
        a, b = estimated[i]
        parameter.discrimination, parameter.difficulty, parameter.calibrated = round(a, 4), round(b, 4), True
        changed += 1
    session.get(Assessment, assessment_id).calibrated_at = now
    session.commit()
    return {"assessment_id": assessment_id, "calibrated": changed, "candidates": len(people)}
