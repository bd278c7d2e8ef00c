"""Projects, their questions, members and items."""

from __future__ import annotations

import hashlib
import re

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import MEMBER_ROLES, PROJECT_KINDS, Annotation, Item, Project, ProjectMember, Question, User

from . import audit
from .errors import Conflict, NotFound, ValidationError
from .questions import check_question

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "project"


def get_by_slug(session: Session, slug: str) -> Project:
    project = session.scalar(select(Project).where(Project.slug == slug))
    if project is None:
        raise NotFound(f"no project {slug!r}")
    return project


def create_project(
    session: Session, *, name: str, questions: list[dict], actor_id: int | None = None, slug: str | None = None,
    kind: str = "work", status: str = "draft", **settings,
) -> Project:
    """Create a project with its questions; every question is checked before anything is written."""
    slug = slug or slugify(name)
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "is required"
    if not SLUG_RE.match(slug):
        errors["slug"] = "must be lower-case letters, digits and dashes"
    if kind not in PROJECT_KINDS:
        errors["kind"] = f"must be one of {', '.join(PROJECT_KINDS)}"
    if not questions:
        errors["questions"] = "a project needs at least one question"
    keys = [q.get("key") for q in questions]
    if len(set(keys)) != len(keys):
        errors["questions"] = "question keys must be unique"
    for i, q in enumerate(questions, start=1):
        try:
            check_question(q.get("key", ""), q.get("type", ""), q.get("title", ""), q.get("options") or {})
        except ValidationError as exc:
            for field, message in exc.errors.items():
                errors[f"questions[{i}].{field}"] = message
    if errors:
        raise ValidationError(errors)
    if session.scalar(select(Project.id).where(Project.slug == slug)) is not None:
        raise Conflict(f"a project with slug {slug!r} already exists")
    project = Project(name=name.strip(), slug=slug, kind=kind, status=status, **settings)
    project.questions = [
        Question(
            position=i,
            key=q["key"],
            type=q["type"],
            title=q["title"],
            help=q.get("help", ""),
            options=q.get("options") or {},
            required=q.get("required", True),
        )
        for i, q in enumerate(questions)
    ]
    session.add(project)
    session.flush()
    audit.record(session, actor_id, "project.create", "project", project.id, {"slug": slug})
    return project


def add_member(
    session: Session, project: Project, user: User, role: str = "trainer", actor_id: int | None = None
) -> ProjectMember:
    if role not in MEMBER_ROLES:
        raise ValidationError({"role": f"must be one of {', '.join(MEMBER_ROLES)}"})
    member = session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == user.id, ProjectMember.role == role
        )
    )
    if member is None:
        member = ProjectMember(project_id=project.id, user_id=user.id, role=role, status="active")
        session.add(member)
        session.flush()
        audit.record(session, actor_id, "member.add", "project", project.id, {"user_id": user.id, "role": role})
    return member


def content_id(context: list, responses: list) -> str:
    """A stable stand-in for a missing external_id: the hash of the item's content."""
    digest = hashlib.sha256(orjson.dumps([context, responses], option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "sha256:" + digest[:32]


def add_item(
    session: Session, project: Project, *, prompt: str, responses: list | None = None, external_id: str | None = None,
    metadata: dict | None = None, priority: int = 0,
) -> Item:
    """Add one well-formed item (demo and tests; the validating importer builds on the same shape)."""
    context = [{"role": "user", "content": prompt}]
    responses = [
        r if isinstance(r, dict) else {"id": f"r{i}", "text": r} for i, r in enumerate(responses or [], start=1)
    ]
    item = Item(
        project_id=project.id,
        external_id=external_id or content_id(context, responses),
        context=context,
        responses=responses,
        meta=metadata or {},
        priority=priority,
    )
    session.add(item)
    return item


def project_summaries(session: Session) -> list[dict]:
    """slug, kind, status, question, item and annotation counts of every project, by slug."""
    q_counts = dict(session.execute(select(Question.project_id, func.count()).group_by(Question.project_id)).all())
    i_counts = dict(session.execute(select(Item.project_id, func.count()).group_by(Item.project_id)).all())
    a_counts = dict(
        session.execute(select(Annotation.project_id, func.count()).group_by(Annotation.project_id)).all()
    )
    return [
        {
            "slug": p.slug,
            "name": p.name,
            "kind": p.kind,
            "status": p.status,
            "questions": q_counts.get(p.id, 0),
            "items": i_counts.get(p.id, 0),
            "annotations": a_counts.get(p.id, 0),
        }
        for p in session.scalars(select(Project).order_by(Project.slug))
    ]


def progress(session: Session, project: Project) -> dict:
    """Items not started, in progress and complete (reached overlap)."""
    row = session.execute(
        select(
            func.count(Item.id),
            func.coalesce(func.sum(func.cast(Item.done_count >= project.overlap, Item.done_count.type)), 0),
            func.coalesce(
                func.sum(func.cast((Item.done_count == 0) & (Item.active_count == 0), Item.done_count.type)), 0
            ),
        ).where(Item.project_id == project.id)
    ).one()
    total, complete, not_started = int(row[0]), int(row[1]), int(row[2])
    return {
        "total": total,
        "complete": complete,
        "not_started": not_started,
        "in_progress": total - complete - not_started,
    }
