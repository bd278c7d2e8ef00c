from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime, utcnow

PROJECT_KINDS = ("work", "qualification")
KIND_NAMES = {"work": "paid work", "qualification": "qualification (assessment)"}  # what every page calls them
PROJECT_STATUSES = ("draft", "active", "paused", "archived")
# A client is a member of the AI team that ordered the data: progress, quality, budget, versions.
MEMBER_ROLES = ("trainer", "reviewer", "client")
MEMBER_STATUSES = ("invited", "active", "paused", "removed")


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="work")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    instructions: Mapped[str] = mapped_column(Text, default="")
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    lease_minutes: Mapped[int] = mapped_column(Integer, default=30)
    gold_rate: Mapped[float] = mapped_column(Float, default=0.0)
    review_rate: Mapped[float] = mapped_column(Float, default=0.0)
    hourly_rate_cents: Mapped[int] = mapped_column(Integer, default=0)
    max_billable_seconds_per_task: Mapped[int] = mapped_column(Integer, default=1800)
    budget_cents: Mapped[int | None] = mapped_column(Integer)
    # At 100 % of the budget the project pauses itself (unless this is off); why it paused, if so.
    pause_at_budget: Mapped[bool] = mapped_column(Boolean, default=True)
    paused_reason: Mapped[str | None] = mapped_column(String(500))
    # Optional quality bonus: +percent of the week's pay when gold accuracy that week ≥ the threshold.
    quality_bonus_percent: Mapped[int | None] = mapped_column(Integer)
    quality_bonus_min_accuracy: Mapped[float | None] = mapped_column(Float)
    required_domains: Mapped[list] = mapped_column(JSONType, default=list)
    min_qualification_score: Mapped[float] = mapped_column(Float, default=0.0)
    show_model_names: Mapped[bool] = mapped_column(Boolean, default=False)
    # Data: what the dataset cards cite, and the chat shapes items may take.
    license: Mapped[str] = mapped_column(String(100), default="")  # an SPDX id or "other: …"; "" = unset
    citation: Mapped[str] = mapped_column(Text, default="")  # BibTeX or a sentence
    language: Mapped[str] = mapped_column(String(35), default="en")  # BCP 47 tag(s), comma separated
    allow_assistant_first: Mapped[bool] = mapped_column(Boolean, default=False)  # chats may open with the model
    always_messages: Mapped[bool] = mapped_column(Boolean, default=False)  # exports always write message lists
    # When the work should be done: staffing says how many trainers that takes.
    target_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    questions: Mapped[list[Question]] = relationship(
        back_populates="project", order_by="Question.position", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Project {self.slug}>"


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    key: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(500))
    help: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict] = mapped_column(JSONType, default=dict)
    required: Mapped[bool] = mapped_column(Boolean, default=True)

    project: Mapped[Project] = relationship(back_populates="questions")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        # The claim query walks one project's open work items by priority (high first), then age:
        # equality on the first three columns, then the index order is the wanted order.
        Index("ix_items_queue", "project_id", "is_gold", "is_open", text("priority DESC"), "id"),
        # Undoing a failed import finds its items without reading the whole table.
        Index("ix_items_import", "import_id", sqlite_where=text("import_id IS NOT NULL"),
              postgresql_where=text("import_id IS NOT NULL")),
        # The importer refuses a second item with the same content; exports find any older pair.
        Index("ix_items_content", "project_id", "is_gold", "content_hash"),
        # The progress figures (done, in progress, not started) read this index alone.
        Index("ix_items_project_progress", "project_id", "is_gold", "done_count", "active_count"),
        # Whether a project holds any chat (an export then writes message lists): a few rows at most.
        Index("ix_items_chats", "project_id", sqlite_where=text("single_turn IS false"),
              postgresql_where=text("single_turn IS false")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    context: Mapped[list] = mapped_column(JSONType, default=list)
    responses: Mapped[list] = mapped_column(JSONType, default=list)
    # projects.content_hash: the turns and the set of response texts, spacing normalised.
    content_hash: Mapped[str | None] = mapped_column(String(32))
    # One user turn (a plain prompt), rather than a chat with a system message or earlier turns.
    single_turn: Mapped[bool | None] = mapped_column(Boolean)
    meta: Mapped[dict] = mapped_column("metadata", JSONType, default=dict)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_answers: Mapped[dict | None] = mapped_column(JSONType)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    done_count: Mapped[int] = mapped_column(Integer, default=0)
    active_count: Mapped[int] = mapped_column(Integer, default=0)
    # done_count + active_count < project.overlap, kept in step by the queue so claims skip full items.
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    # The upload (ImportJob id) that created the item, None when added otherwise, so a failed import
    # can be undone. No foreign key: adding one would make SQLite rebuild this, the biggest table.
    import_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[Project] = relationship()


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="trainer")
    rate_override_cents: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Why quality checks flagged this member (e.g. failed gold); cleared when an admin reinstates.
    flagged_reason: Mapped[str | None] = mapped_column(String(500))
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Gold answers before this moment no longer count against the member (set on reinstatement).
    reinstated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The trainer's sitting here (``assignment.session_progress``): their latest submit, and how many
    # tasks they submitted since the last pause longer than ``assignment.SITTING_GAP``. Each submit
    # moves both under the membership's lock, so the workspace reads one row however long the day.
    last_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sitting_tasks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[Project] = relationship()


class ItemProgress(Base):
    """A project's item progress kept on the write path, so the pages read a few rows instead of every
    item: one row per project × gold or not × shard. Only the sums over a project's shards mean
    anything (a shard may even hold a negative figure); the shards exist so that trainers submitting
    at once update different rows instead of queueing on one."""

    __tablename__ = "item_progress"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    is_gold: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    items: Mapped[int] = mapped_column(Integer, default=0)
    # items whose done_count reached the project's overlap
    complete: Mapped[int] = mapped_column(Integer, default=0)
    # items with no answer and no live lease (done_count = active_count = 0)
    not_started: Mapped[int] = mapped_column(Integer, default=0)
    # the sum of done_count: the answers given
    done: Mapped[int] = mapped_column(Integer, default=0)
