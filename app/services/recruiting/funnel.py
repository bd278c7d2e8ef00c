"""Does vetting work? The recruiting funnel and each assessment's predictive validity.

Funnel: how many applications ever reached each stage (from `ApplicationStage`), where they are now,
the conversion from one stage to the next, and the median time spent in each stage before the
next one began.

Predictive validity: for each assessment, the vetted trainers whose qualification came from it and
who have done enough work since — their interview ability (θ) against their on-the-job quality:
gold accuracy over their work projects (weighted by gold answers) when they answered at least
`MIN_GOLD` gold items, else consensus agreement (weighted by annotations) when they made at least
`MIN_ANNOTATIONS` annotations. Spearman's ρ with a confidence interval (`quality.validity`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    APPLICATION_STAGES,
    Application,
    ApplicationStage,
    Assessment,
    Interview,
    Project,
    Qualification,
    TrainerStats,
)
from app.services.quality.validity import Validity, predictive_validity

MIN_GOLD = 10
MIN_ANNOTATIONS = 20
# The path an application takes; rejected can follow any stage.
PATH = ("applied", "interviewing", "awaiting_grading", "ready", "vetted")


@dataclass
class StageFigures:
    stage: str
    now: int  # applications in this stage now
    reached: int  # applications that ever entered it
    conversion: float | None  # reached / reached of the stage before (on the path)
    median_hours: float | None  # median time in the stage before the next began


def funnel(session: Session) -> list[StageFigures]:
    now_counts = {s: 0 for s in APPLICATION_STAGES}
    for (stage,) in session.execute(select(Application.stage)):
        now_counts[stage] = now_counts.get(stage, 0) + 1
    entries: dict[int, list[tuple[datetime, str]]] = {}
    for application_id, stage, at in session.execute(
            select(ApplicationStage.application_id, ApplicationStage.stage, ApplicationStage.at)
            .order_by(ApplicationStage.application_id, ApplicationStage.at, ApplicationStage.id)):
        entries.setdefault(application_id, []).append((at, stage))
    reached = {s: 0 for s in APPLICATION_STAGES}
    durations: dict[str, list[float]] = {s: [] for s in APPLICATION_STAGES}
    for history in entries.values():
        for stage in {s for _at, s in history}:
            reached[stage] += 1
        for (at, stage), (next_at, _next) in zip(history, history[1:], strict=False):
            durations[stage].append((next_at - at).total_seconds() / 3600)
    # Stages skipped on the way (an interview without a written part never awaits grading) still
    # count as passed through for the conversion of the stages after them.
    figures = []
    before = None
    for stage in APPLICATION_STAGES:
        conversion = None
        if stage in PATH and before is not None and reached[before]:
            conversion = reached[stage] / reached[before]
        elif stage == "rejected" and reached["applied"]:
            conversion = reached["rejected"] / reached["applied"]
        figures.append(StageFigures(stage, now_counts.get(stage, 0), reached[stage], conversion,
                                    statistics.median(durations[stage]) if durations[stage] else None))
        if stage in PATH and reached[stage]:
            before = stage
    return figures


@dataclass
class AssessmentValidity:
    assessment: Assessment
    project: Project
    vetted: int  # trainers qualified through this assessment
    measured: int  # of them, with enough work to measure
    measure: str  # "gold accuracy" or "agreement" (what most of them were measured by)
    validity: Validity | None
    points: list[tuple[float, float]]  # (θ, quality), for the scatter


def _quality(rows: list[TrainerStats]) -> tuple[str, float] | None:
    gold = sum(r.gold_answers or 0 for r in rows if r.gold_accuracy is not None)
    if gold >= MIN_GOLD:
        return "gold accuracy", sum((r.gold_accuracy or 0) * (r.gold_answers or 0)
                                    for r in rows if r.gold_accuracy is not None) / gold
    annotated = sum(r.annotations or 0 for r in rows if r.consensus_agreement is not None)
    if annotated >= MIN_ANNOTATIONS:
        return "agreement", sum((r.consensus_agreement or 0) * (r.annotations or 0)
                                for r in rows if r.consensus_agreement is not None) / annotated
    return None


def validity(session: Session) -> list[AssessmentValidity]:
    """Each assessment's predictive validity over its vetted trainers with enough work."""
    stats: dict[int, list[TrainerStats]] = {}
    for row in session.scalars(select(TrainerStats).join(Project, Project.id == TrainerStats.project_id)
                               .where(Project.kind == "work")):
        stats.setdefault(row.trainer_id, []).append(row)
    result = []
    for assessment, project in session.execute(
            select(Assessment, Project).join(Project, Project.id == Assessment.project_id).order_by(Project.name)):
        qualified = session.execute(
            select(Qualification.user_id, Interview.theta).join(Interview, Interview.id == Qualification.interview_id)
            .where(Interview.assessment_id == assessment.id)).all()
        points, measures = [], []
        for user_id, theta in qualified:
            quality = _quality(stats.get(user_id, []))
            if quality is not None and theta is not None:
                measures.append(quality[0])
                points.append((float(theta), round(quality[1], 4)))
        measure = max(set(measures), key=measures.count) if measures else "gold accuracy"
        result.append(AssessmentValidity(assessment, project, len(qualified), len(points), measure,
                                         predictive_validity(points), sorted(points)))
    return result
