"""Recruiting: the domain taxonomy, applications, adaptive assessments and their item banks,
interviews, written answers and their grades, qualifications, and invitations to projects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime, utcnow

APPLICATION_STAGES = ("applied", "interviewing", "awaiting_grading", "ready", "vetted", "rejected")
INTERVIEW_STATUSES = ("in_progress", "written", "done")
ITEM_LEVELS = ("easy", "medium", "hard")
INVITATION_STATUSES = ("pending", "accepted", "declined", "withdrawn")


class Domain(Base):
    """One field of expertise in the admin-editable taxonomy (medicine, law, software…)."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Application(Base):
    """A person's application to work: their chosen domains and where they stand."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    domains: Mapped[list] = mapped_column(JSONType, default=list)
    stage: Mapped[str] = mapped_column(String(20), default="applied", index=True)
    stage_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The application's score once every assessment is done and graded (0–1).
    score: Mapped[float | None] = mapped_column(Float)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The reason the candidate is shown when rejected, or the admin's note when vetted.
    reason: Mapped[str | None] = mapped_column(String(1000))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApplicationStage(Base):
    """Every stage an application entered, and when: the funnel's time in stage."""

    __tablename__ = "application_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Assessment(Base):
    """How a qualification project interviews: one per project, for one domain."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    domain: Mapped[str] = mapped_column(String(40), index=True)
    min_items: Mapped[int] = mapped_column(Integer, default=5)
    max_items: Mapped[int] = mapped_column(Integer, default=20)
    se_target: Mapped[float] = mapped_column(Float, default=0.4)
    time_limit_minutes: Mapped[int] = mapped_column(Integer, default=30)
    # Score = ability_weight × ability percentile + (1 − ability_weight) × mean written grade.
    ability_weight: Mapped[float] = mapped_column(Float, default=0.7)
    pass_score: Mapped[float] = mapped_column(Float, default=0.6)
    # Vet automatically when the application's score reaches this (None: never).
    auto_vet_score: Mapped[float | None] = mapped_column(Float)
    # Exposure control: the next item is drawn at random among this many most informative ones.
    exposure_bin: Mapped[int] = mapped_column(Integer, default=5)
    # An item's parameters are re-estimated once it has this many answers (below ~30 the estimate
    # is worse than the admin's seeded level; see BENCHMARKS.md).
    calibrate_after: Mapped[int] = mapped_column(Integer, default=50)
    calibrated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ItemParameter(Base):
    """An assessment item's IRT parameters: seeded from its level, then calibrated from answers."""

    __tablename__ = "item_parameters"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(10), default="medium")
    difficulty: Mapped[float] = mapped_column(Float, default=0.0)
    discrimination: Mapped[float] = mapped_column(Float, default=1.0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    calibrated: Mapped[bool] = mapped_column(Boolean, default=False)


class WrittenPrompt(Base):
    """An open question that ends an assessment, graded 0–1 by a reviewer against its rubric."""

    __tablename__ = "written_prompts"

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    prompt: Mapped[str] = mapped_column(Text)
    rubric: Mapped[str] = mapped_column(Text, default="")
    max_chars: Mapped[int] = mapped_column(Integer, default=4000)


class Interview(Base):
    """One candidate's sitting of one assessment."""

    __tablename__ = "interviews"
    __table_args__ = (UniqueConstraint("assessment_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="CASCADE"))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="in_progress")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The item on the candidate's screen (None between items and once the adaptive part is over).
    current_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    theta: Mapped[float] = mapped_column(Float, default=0.0)
    se: Mapped[float | None] = mapped_column(Float)
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    # precision / length / bank / time
    stop_reason: Mapped[str | None] = mapped_column(String(20))
    percentile: Mapped[float | None] = mapped_column(Float)
    written_score: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)

    responses: Mapped[list[InterviewResponse]] = relationship(
        order_by="InterviewResponse.position", cascade="all, delete-orphan"
    )


class InterviewResponse(Base):
    """One adaptive item the candidate answered, with the estimate after it."""

    __tablename__ = "interview_responses"
    __table_args__ = (UniqueConstraint("interview_id", "item_id"), Index("ix_interview_responses_item", "item_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict] = mapped_column(JSONType, default=dict)
    score: Mapped[float] = mapped_column(Float)
    correct: Mapped[bool] = mapped_column(Boolean)
    theta_after: Mapped[float] = mapped_column(Float)
    se_after: Mapped[float | None] = mapped_column(Float)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WrittenAnswer(Base):
    """A candidate's written answer, a model's suggested grade (optional) and the reviewer's grade."""

    __tablename__ = "written_answers"
    __table_args__ = (UniqueConstraint("interview_id", "prompt_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"), index=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("written_prompts.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    suggested_grade: Mapped[float | None] = mapped_column(Float)
    suggested_rationale: Mapped[str | None] = mapped_column(Text)
    suggestion_error: Mapped[str | None] = mapped_column(String(500))
    grade: Mapped[float | None] = mapped_column(Float)
    grade_note: Mapped[str | None] = mapped_column(Text)
    graded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    graded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class Qualification(Base):
    """A vetted person's standing in one domain: what matching reads."""

    __tablename__ = "qualifications"
    __table_args__ = (UniqueConstraint("user_id", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(40), index=True)
    score: Mapped[float] = mapped_column(Float)
    theta: Mapped[float | None] = mapped_column(Float)
    interview_id: Mapped[int | None] = mapped_column(ForeignKey("interviews.id", ondelete="SET NULL"))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Invitation(Base):
    """An admin's offer of a project to a qualified trainer; accepting makes them a member."""

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_user_status", "user_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rate_cents: Mapped[int] = mapped_column(Integer, default=0)
    expected_hours_per_week: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    match_score: Mapped[float | None] = mapped_column(Float)
    match_parts: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
