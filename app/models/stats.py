from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow


class ProjectStats(Base):
    """Cached quality figures of a project, recomputed by a job; dashboards read these."""

    __tablename__ = "project_stats"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    annotations: Mapped[int] = mapped_column(Integer, default=0)
    figures: Mapped[dict] = mapped_column(JSONType, default=dict)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainerStats(Base):
    """One trainer's quality figures in one project, from the same computation as ProjectStats."""

    __tablename__ = "trainer_stats"
    __table_args__ = (UniqueConstraint("project_id", "trainer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    trainer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    annotations: Mapped[int] = mapped_column(Integer, default=0)
    gold_answers: Mapped[int] = mapped_column(Integer, default=0)
    gold_accuracy: Mapped[float | None] = mapped_column(Float)
    consensus_agreement: Mapped[float | None] = mapped_column(Float)
    reliability: Mapped[float | None] = mapped_column(Float)
    approval_rate: Mapped[float | None] = mapped_column(Float)
    median_seconds: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list] = mapped_column(JSONType, default=list)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
