"""Reviewers: the projects they review, with progress and the latest submitted work."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user
from sqlalchemy import select

from app.db import get_session
from app.models import Annotation, Item, Project, ProjectMember, User
from app.services import access
from app.services import projects as project_service
from app.services.errors import NotFound

from .access import require

bp = Blueprint("review", __name__, url_prefix="/review")


def _reviewable(db, project: Project) -> bool:
    if access.is_admin(current_user):
        return True
    member = access.membership(db, current_user, project, role="reviewer")
    return member is not None and member.status == "active"


@bp.get("/")
@require("reviewer", "admin")
def index():
    db = get_session()
    stmt = select(Project).order_by(Project.name)
    if not access.is_admin(current_user):
        stmt = stmt.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.user_id == current_user.id, ProjectMember.role == "reviewer", ProjectMember.status == "active"
        )
    rows = [(p, project_service.progress(db, p)) for p in db.scalars(stmt)]
    return render_template("review/index.html", rows=rows)


@bp.get("/<slug>")
@require("reviewer", "admin")
def project(slug: str):
    db = get_session()
    try:
        project = project_service.get_by_slug(db, slug)
    except NotFound:
        abort(404)
    if not _reviewable(db, project):
        abort(404)
    recent = db.execute(
        select(Annotation, Item.external_id, User.name)
        .join(Item, Item.id == Annotation.item_id)
        .join(User, User.id == Annotation.trainer_id)
        .where(Annotation.project_id == project.id)
        .order_by(Annotation.submitted_at.desc(), Annotation.id.desc())
        .limit(50)
    ).all()
    return render_template(
        "review/project.html", project=project, progress=project_service.progress(db, project), recent=recent
    )
