from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

TIMESHEET_STATUSES = ("open", "approved", "paid")
ADJUSTMENT_KINDS = ("bonus", "correction", "late_time", "quality_bonus")


class Timesheet(Base):
    """A trainer's week in a project (ISO week, UTC). Open weeks are computed live from the work;
    a row is written when an admin approves the week, and from then on it never changes."""

    __tablename__ = "timesheets"
    __table_args__ = (
        UniqueConstraint("trainer_id", "project_id", "week_start"),
        Index("ix_timesheets_week_status", "week_start", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trainer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    week_start: Mapped[date] = mapped_column(Date)
    billable_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_cents: Mapped[int] = mapped_column(Integer, default=0)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default="approved")
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_reference: Mapped[str | None] = mapped_column(String(200))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PayAdjustment(Base):
    """Money outside the timesheet: a bonus, a correction, time that arrived after its week was
    approved, or a quality bonus. Counted in the week it was made (``week_start``)."""

    __tablename__ = "pay_adjustments"
    __table_args__ = (Index("ix_pay_adjustments_trainer_week", "trainer_id", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trainer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    week_start: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20), default="bonus")
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # late_time: the approved week the time belongs to, and how many billable seconds it added.
    for_week: Mapped[date | None] = mapped_column(Date)
    billable_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BillableWeek(Base):
    """A trainer's billable seconds in a project's week (the week the work was claimed in), kept where
    work becomes billable (a submit or a skip) and recounted when an exclusion or the per-task cap
    changes it, so the open weeks read one row each instead of summing their tasks. ``tasks`` counts
    the billable tasks: a week with some (even of zero seconds) has a line."""

    __tablename__ = "billable_weeks"
    __table_args__ = (
        Index("ix_billable_weeks_project_week", "project_id", "week_start"),
        Index("ix_billable_weeks_week", "week_start"),
    )

    trainer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    tasks: Mapped[int] = mapped_column(Integer, default=0)
