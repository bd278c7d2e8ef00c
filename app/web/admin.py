"""Admin: projects with their progress and members, people, and the audit log."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy import func, select

from app.db import get_session
from app.models import AuditEvent, ProjectMember, User
from app.services import projects as project_service
from app.services.errors import NotFound

from .access import require

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.get("/")
@require("admin")
def index():
    db = get_session()
    return render_template("admin/index.html", projects=project_service.project_summaries(db))


@bp.get("/projects/<slug>")
@require("admin")
def project(slug: str):
    db = get_session()
    try:
        project = project_service.get_by_slug(db, slug)
    except NotFound:
        abort(404)
    members = db.execute(
        select(ProjectMember, User)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project.id)
        .order_by(ProjectMember.role, User.name)
    ).all()
    return render_template(
        "admin/project.html", project=project, progress=project_service.progress(db, project), members=members
    )


@bp.get("/people")
@require("admin")
def people():
    db = get_session()
    page = _page()
    total = db.scalar(select(func.count(User.id)))
    users = db.scalars(select(User).order_by(User.name, User.id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    return render_template("admin/people.html", users=list(users), page=page, pages=max(1, -(-total // PAGE_SIZE)))


@bp.get("/audit")
@require("admin")
def audit():
    db = get_session()
    page = _page()
    total = db.scalar(select(func.count(AuditEvent.id)))
    rows = db.execute(
        select(AuditEvent, User.email)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_template("admin/audit.html", rows=rows, page=page, pages=max(1, -(-total // PAGE_SIZE)))
