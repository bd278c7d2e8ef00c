from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime, utcnow
from .projects import Item

ASSIGNMENT_STATUSES = ("active", "submitted", "skipped", "expired")
REVIEW_STATUSES = ("unreviewed", "approved", "rejected", "corrected")
VERDICTS = ("approve", "reject", "correct")


class Assignment(Base):
    __tablename__ = "assignments"
    # Nobody sees the same item twice.
    __table_args__ = (
        UniqueConstraint("item_id", "trainer_id"),
        Index("ix_assignments_trainer_project_status", "trainer_id", "project_id", "status"),
        Index("ix_assignments_project_status_expires", "project_id", "status", "expires_at"),
        # Pay reads a trainer's open weeks in a project, and a project's first week, by claim time.
        Index("ix_assignments_trainer_project_assigned", "trainer_id", "project_id", "assigned_at"),
        Index("ix_assignments_project_assigned", "project_id", "assigned_at"),
        # At most one live lease per trainer and project, whatever the race: the database says so.
        Index("uq_assignments_one_live_lease", "trainer_id", "project_id", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    trainer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="active")
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active_seconds: Mapped[int] = mapped_column(Integer, default=0)
    skip_reason: Mapped[str | None] = mapped_column(String(500))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    item: Mapped[Item] = relationship()


class Annotation(Base):
    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_project_submitted", "project_id", "submitted_at"),
        Index("ix_annotations_trainer_submitted", "trainer_id", "submitted_at"),
        Index("ix_annotations_item", "item_id"),
        # Exports read one project's annotations item by item, in a stable order.
        Index("ix_annotations_project_item", "project_id", "item_id", "id"),
        # The pay sums' "not excluded" check reads this index alone.
        Index("ix_annotations_assignment_excluded", "assignment_id", "excluded"),
        # The review queue: equality on the first three columns, then the index order is the wanted
        # order (oldest first within a reason), so the most urgent annotation is the first row read.
        Index("ix_annotations_review_order", "project_id", "review_status", "review_reason", "submitted_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    trainer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    answers: Mapped[dict] = mapped_column(JSONType)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    active_seconds: Mapped[int] = mapped_column(Integer, default=0)
    gold_score: Mapped[float | None] = mapped_column(Float)
    review_status: Mapped[str] = mapped_column(String(20), default="unreviewed")
    # Why this annotation is in the review queue (sampled, failed_gold, too_fast, flagged_trainer,
    # low_agreement); None when it is not.
    review_reason: Mapped[str | None] = mapped_column(String(40))
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)

    assignment: Mapped[Assignment] = relationship()
    item: Mapped[Item] = relationship()


class Review(Base):
    """A reviewer's verdict on one annotation; a correction becomes the adjudicated answer."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_annotation", "annotation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verdict: Mapped[str] = mapped_column(String(20))
    corrected_answers: Mapped[dict | None] = mapped_column(JSONType)
    comment: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
