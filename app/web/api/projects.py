"""API: projects — list, read with progress, create with questions, update settings and status."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.db import get_session
from app.errors import NotFound
from app.models import PROJECT_KINDS, PROJECT_STATUSES, Project
from app.services import access, pay, review
from app.services import projects as project_service

from .base import In, PageQuery, allow, bp, decode_cursor, page, responses, spec, user


class QuestionIn(In):
    key: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=20)
    title: str = Field(min_length=1, max_length=500)
    help: str = Field("", max_length=5000)
    options: dict[str, Any] = Field(default_factory=dict)
    required: bool = True


class QuestionOut(BaseModel):
    key: str
    type: str
    title: str
    help: str
    options: dict[str, Any]
    required: bool


class Progress(BaseModel):
    total: int = Field(description="Work items (gold items apart)")
    complete: int = Field(description="Items that reached their overlap")
    in_progress: int
    not_started: int
    gold: int
    annotations_needed: int


class BudgetOut(BaseModel):
    budget_cents: int | None
    spent_cents: int
    share: float = Field(description="Spent as a share of the budget (0 when there is none)")


class ProjectDataset(BaseModel):
    license: str = Field(description='Licence id or "other: <name>"; "" when not set yet (the card says so)')
    citation: str
    language: str = Field(description="BCP 47 tags, comma separated")
    allow_assistant_first: bool = Field(description="Chats may start with an assistant turn")
    always_messages: bool = Field(description="Exports always write message lists")


class ProjectSummary(BaseModel):
    slug: str
    name: str
    kind: str
    status: str
    created_at: datetime


class ProjectOut(ProjectSummary):
    instructions: str
    questions: list[QuestionOut]
    progress: Progress | None = Field(None, description="Admins, clients and reviewers: a trainer's own "
                                                        "figures are in the task answers (project-wide counts move "
                                                        "only for work items, so they would point out gold)")
    budget: BudgetOut | None = Field(None, description="Admins and clients only")
    dataset: ProjectDataset | None = Field(None, description="What the dataset cards cite (admins and clients)")
    settings: dict[str, Any] | None = Field(None, description="Admins only")


class ProjectList(BaseModel):
    data: list[ProjectSummary]
    next_cursor: str | None


SETTING_FIELDS = ("overlap", "lease_minutes", "gold_rate", "review_rate", "hourly_rate_cents",
                  "max_billable_seconds_per_task", "budget_cents", "pause_at_budget", "show_model_names",
                  "min_qualification_score", "quality_bonus_percent", "quality_bonus_min_accuracy",
                  "required_domains", "target_date", "license", "citation", "language", "allow_assistant_first",
                  "always_messages")


class Settings(In):
    instructions: str | None = Field(None, max_length=20000)
    overlap: int | None = Field(None, ge=1, le=100)
    lease_minutes: int | None = Field(None, ge=1, le=1440)
    gold_rate: float | None = Field(None, ge=0, le=1)
    review_rate: float | None = Field(None, ge=0, le=1)
    hourly_rate_cents: int | None = Field(None, ge=0, le=100_000_000)
    max_billable_seconds_per_task: int | None = Field(None, ge=10, le=86400)
    budget_cents: int | None = Field(None, ge=0, le=2**31 - 1)
    pause_at_budget: bool | None = None
    show_model_names: bool | None = None
    min_qualification_score: float | None = Field(None, ge=0, le=1)
    quality_bonus_percent: int | None = Field(None, ge=0, le=100)
    quality_bonus_min_accuracy: float | None = Field(None, ge=0, le=1)
    required_domains: list[str] | None = Field(None, max_length=20)
    target_date: date | None = None
    # The dataset (the service checks the forms: an SPDX-like id or "other: <name>"; BCP 47 tags).
    license: str | None = Field(None, max_length=100, description='Licence id (cc-by-4.0, mit, …) or "other: <name>"; '
                                                                   '"" unsets it')
    citation: str | None = Field(None, max_length=5000, description="How to cite the dataset (BibTeX or a sentence)")
    language: str | None = Field(None, max_length=35, description="BCP 47 tags, comma separated (en, fr, pt-BR)")
    allow_assistant_first: bool | None = Field(None, description="Chats may start with an assistant turn (after an "
                                                                 "optional system message)")
    always_messages: bool | None = Field(None, description="Exports always write message lists")


class ProjectCreate(Settings):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(None, min_length=1, max_length=80, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    kind: Literal[PROJECT_KINDS] = "work"  # type: ignore[valid-type]
    status: Literal[PROJECT_STATUSES] = "draft"  # type: ignore[valid-type]
    questions: list[QuestionIn] = Field(min_length=1, max_length=50)


class ProjectUpdate(Settings):
    name: str | None = Field(None, min_length=1, max_length=200)
    status: Literal[PROJECT_STATUSES] | None = None  # type: ignore[valid-type]
    questions: list[QuestionIn] | None = Field(None, min_length=1, max_length=50)


def visible_project(slug: str) -> Project:
    """The project under ``slug`` if the token's user may read it; otherwise it does not exist for them."""
    db = get_session()
    try:
        project = project_service.get_by_slug(db, slug)
    except NotFound:
        raise NotFound("no such project") from None
    if not access.can_see_project(db, user(), project):
        raise NotFound("no such project")
    return project


def managed_project(slug: str) -> Project:
    """A project the user manages data for: admins, and its clients (items, exports, quality)."""
    project = visible_project(slug)
    if not (access.is_admin(user()) or access.is_client(get_session(), user(), project)):
        raise NotFound("no such project")
    return project


def project_out(project: Project) -> ProjectOut:
    db = get_session()
    admin = access.is_admin(user())
    manages = admin or access.is_client(db, user(), project)
    spent = pay.project_spend(db, project) if manages else 0
    # Project-wide counts move for work items only: watched around a claim they tell a trainer which
    # task is gold, so a trainer (who does not also review it) sees none, as on the pages.
    counts = manages or (review.can_review(db, user(), project)
                         and access.membership(db, user(), project) is None)
    return ProjectOut(
        slug=project.slug, name=project.name, kind=project.kind, status=project.status,
        created_at=project.created_at, instructions=project.instructions or "",
        questions=[QuestionOut(key=q.key, type=q.type, title=q.title, help=q.help or "", options=q.options or {},
                               required=q.required) for q in project.questions],
        progress=Progress(**project_service.progress(db, project)) if counts else None,
        budget=BudgetOut(budget_cents=project.budget_cents, spent_cents=spent,
                         share=spent / project.budget_cents if project.budget_cents else 0.0) if manages else None,
        dataset=ProjectDataset(license=project.license or "", citation=project.citation or "",
                               language=project.language or "", allow_assistant_first=project.allow_assistant_first,
                               always_messages=project.always_messages) if manages else None,
        settings={k: _plain(getattr(project, k)) for k in SETTING_FIELDS} if admin else None,
    )


def _plain(value):
    return value.isoformat() if isinstance(value, (date, datetime)) else value


@bp.get("/projects")
@allow()
@spec.validate(query=PageQuery, resp=responses(HTTP_200=ProjectList), tags=["projects"])
def list_projects(query: PageQuery):
    """The projects the token's user may see: all for admins; for others their own."""
    rows = project_service.visible_projects(get_session(), user(), after_id=decode_cursor(query.cursor), limit=query.limit + 1)
    rows, cursor = page(rows, query.limit)
    return ProjectList(data=[ProjectSummary(slug=p.slug, name=p.name, kind=p.kind, status=p.status,
                                            created_at=p.created_at) for p in rows], next_cursor=cursor)


@bp.post("/projects")
@allow("admin")
@spec.validate(json=ProjectCreate, resp=responses(HTTP_201=ProjectOut, errors=(409,)), tags=["projects"])
def create_project(json: ProjectCreate):
    """Create a project with its questions (admins)."""
    fields = json.model_dump(exclude_none=True)
    questions = fields.pop("questions")
    project = project_service.create_project(get_session(), questions=questions, actor_id=user().id, **fields)
    return project_out(project), 201


@bp.get("/projects/<slug>")
@allow()
@spec.validate(resp=responses(HTTP_200=ProjectOut), tags=["projects"])
def get_project(slug: str):
    """One project with its questions and progress (and budget burn for admins and clients)."""
    return project_out(visible_project(slug))


@bp.patch("/projects/<slug>")
@allow("admin")
@spec.validate(json=ProjectUpdate, resp=responses(HTTP_200=ProjectOut, errors=(409,)), tags=["projects"])
def update_project(slug: str, json: ProjectUpdate):
    """Change settings, status or (before any answers) questions (admins). Only the fields sent change."""
    project = visible_project(slug)
    fields = json.model_dump(exclude_unset=True)
    name = fields.pop("name", None) or project.name
    questions = fields.pop("questions", None)
    project = project_service.update_project(get_session(), project, name=name, questions=questions,
                                             actor_id=user().id, **fields)
    return project_out(project)
