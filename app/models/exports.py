from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow

# empty: finished with no row (the manifest says why, per filter); it has no data file.
EXPORT_STATUSES = ("queued", "running", "done", "empty", "failed")


class DatasetExport(Base):
    """One dataset version of a project: its files, manifest and card. Immutable once done."""

    __tablename__ = "dataset_exports"
    __table_args__ = (Index("ix_dataset_exports_project_created", "project_id", "created_at"),
                      UniqueConstraint("project_id", "version", name="uq_dataset_exports_project_version"))

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # The project's own count of versions, 1, 2, 3…: what pages, cards and citations call it (v3).
    version: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(40))
    filters: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # Progress while running: annotations read of the expected total.
    rows_expected: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # Folder of the finished version (relative to the exports folder); set only once complete.
    path: Mapped[str | None] = mapped_column(String(500))
    manifest: Mapped[dict | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(String(2000))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def percent(self) -> int:
        if self.status in ("done", "empty"):
            return 100
        if not self.rows_expected:
            return 0
        return min(99, int(100 * self.rows_read / self.rows_expected))
