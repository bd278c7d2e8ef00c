"""Clients: the AI team that ordered a project's data. Their projects' progress, budget burn, dataset
versions and quality figures, with trainers named only by pseudonym. They build and download versions
on the exports pages and push items on the import page, which admit a project's clients too
(``managed_project``)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import NotFound
from app.models import Project
from app.services import access, client_view
from app.services.projects import get_by_slug
from app.services.stats import SINCE_SHOWN_MAX

from .access import require

bp = Blueprint("client", __name__, url_prefix="/client")


def managed_project(slug: str) -> Project:
    """The project under ``slug`` if the signed-in user manages its data: an admin, or one of its
    clients. For anyone else it does not exist (404)."""
    db = get_session()
    project = get_by_slug(db, slug)
    if not (access.is_admin(current_user) or access.is_client(db, current_user, project)):
        raise NotFound(f"no project {slug!r}")
    return project


def _own_project(slug: str) -> Project:
    """One of the signed-in client's projects, or 404."""
    db = get_session()
    project = get_by_slug(db, slug)
    if not access.is_client(db, current_user, project):
        raise NotFound(f"no project {slug!r}")
    return project


def is_staff() -> bool:
    return current_user.is_authenticated and access.is_admin(current_user)


@bp.app_context_processor
def project_links() -> dict:
    """``project_home(project)`` for pages admins and clients share (exports, imports): the admin's
    project page, or the client's; ``is_staff()`` where such a page offers admins more (a settings link)."""

    def project_home(project: Project) -> str:
        return url_for("admin.project" if is_staff() else "client.project", slug=project.slug)

    return {"project_home": project_home, "is_staff": is_staff}


@bp.get("/")
@require("client")
def index():
    return render_template("client/index.html", views=client_view.overview(get_session(), current_user))


@bp.get("/<slug>")
@require("client")
def project(slug: str):
    view = client_view.project_view(get_session(), _own_project(slug))
    creators = client_view.creator_names(get_session(), view.project, {v.created_by for v in view.versions})
    return render_template("client/project.html", view=view, project=view.project, progress=view.progress,
                           creators=creators)


@bp.get("/<slug>/quality")
@require("client")
def quality(slug: str):
    project = _own_project(slug)
    sort = request.args.get("sort", "annotations")
    sort = sort if sort in client_view.SORTABLE else "annotations"
    descending = request.args.get("dir", "desc") != "asc"
    figures = client_view.quality(get_session(), project, current_app.config["SECRET_KEY"], sort, descending)
    return render_template("client/quality.html", project=project, q=figures, sort=sort, descending=descending,
                           since_max=SINCE_SHOWN_MAX)
