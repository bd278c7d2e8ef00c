"""Admin: dataset exports of a project — the form, the version history, progress, manifest, downloads."""

from __future__ import annotations

import orjson
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import NotFound, ServiceError, ValidationError
from app.models import DatasetExport, Project
from app.services import client_view, exporting
from app.services import users as user_service
from app.services.exporting.options import BOOL_FIELDS, PAIR_MODES, RANKING_PAIRS
from tasks import enqueue
from tasks.jobs import build_export

from .access import require
from .client import is_staff, managed_project
from .inputs import failed_precondition
from .paging import page_of

bp = Blueprint("exports", __name__, url_prefix="/admin/projects/<slug>/exports")

PAGE_SIZE = 20
SETTLED = ("done", "empty", "failed")  # nothing more to watch: the progress fragment stops polling
TEXT_FIELDS = ("format", "pairs", "ranking_pairs", "min_agreement", "min_trainer_quality", "date_from", "date_to",
               "test_fraction", "validation_fraction", "as_of")


def _project(slug: str) -> Project:
    """Admins, and the project's clients (they build and download its versions)."""
    return managed_project(slug)


def _creator_names(project: Project, user_ids) -> dict[int, str]:
    """Who built each version: any name for admins; for clients only their own team's names."""
    if is_staff():
        return user_service.names_by_id(get_session(), user_ids)
    return client_view.creator_names(get_session(), project, user_ids)


def _export(project: Project, export_id: int) -> DatasetExport:
    return exporting.get_export(get_session(), project, export_id)


def _form_options(form) -> dict:
    """The form as export options: a checkbox that is absent is false (so exclude_gold can be turned off)."""
    raw = {name: form.get(name, "").strip() for name in TEXT_FIELDS if form.get(name, "").strip()}
    raw.update({name: name in form for name in BOOL_FIELDS})
    labels = form.getlist("desirable_labels")
    if labels:
        raw["desirable_labels"] = labels
    return raw


def _page_context(project: Project, form_values: dict | None = None, errors: dict | None = None) -> dict:
    db = get_session()
    total = exporting.count_exports(db, project.id)
    page = page_of(total, PAGE_SIZE)
    history = exporting.list_exports(db, project.id, page.limit, page.offset)
    creators = _creator_names(project, {e.created_by for e in history})
    questions = exporting.project_questions(db, project.id)
    label_question = exporting.desirable_question(questions)
    values = form_values or {"format": request.args.get("format", ""), "pairs": PAIR_MODES[0], "exclude_gold": True}
    return {
        "project": project, "history": history, "creators": creators, "page": page.number,
        "pages": page.pages, "total": total, "formats": exporting.FORMATS,
        "available": exporting.available_formats(db, project), "pair_modes": PAIR_MODES,
        "applicable": exporting.applicable_options(db, project),
        "ranking_pairs": RANKING_PAIRS, "label_question": label_question, "values": values,
        "errors": errors or {}, "stalled": {e.id for e in history if exporting.is_stalled(e)},
    }


@bp.get("/")
@require("admin", "client")
def index(slug: str):
    return render_template("exports/index.html", **_page_context(_project(slug)))


@bp.post("/")
@require("admin", "client")
def create(slug: str):
    db = get_session()
    project = _project(slug)
    raw = _form_options(request.form)
    try:
        export = exporting.create_export(db, project, raw, current_user.id, **exporting.disk_limits(current_app.config))
    except ValidationError as exc:
        db.rollback()
        return render_template("exports/index.html", **_page_context(project, raw, exc.errors)), 422
    except ServiceError as exc:  # too many at once or this hour, no room on the disk: said on the form
        db.rollback()
        return render_template("exports/index.html", **_page_context(project, raw, {"": str(exc)})), exc.status
    enqueue(build_export, export.id)
    return redirect(url_for("exports.detail", slug=project.slug, export_id=export.id), code=303)


def _version_context(project: Project, export: DatasetExport) -> dict:
    """What the version page and its polled fragment show: progress, then files, card and manifest (an
    empty version: its manifest, which says why no row passed, and nothing to download)."""
    card = manifest = None
    if export.status in ("done", "empty"):  # an empty version has a card too, saying why it is empty
        try:
            card = exporting.file_path(current_app.config["EXPORT_DIR"], export, "README.md").read_text()
        except (NotFound, OSError):
            card = None
    if export.status in ("done", "empty") and export.manifest:
        manifest = orjson.dumps(export.manifest, option=orjson.OPT_INDENT_2).decode()
    return {"project": project, "export": export, "card": card, "manifest": manifest,
            "stalled": exporting.is_stalled(export)}


@bp.get("/<int:export_id>")
@require("admin", "client")
def detail(slug: str, export_id: int):
    project = _project(slug)
    export = _export(project, export_id)
    creator = _creator_names(project, [export.created_by]).get(export.created_by)
    return render_template("exports/detail.html", creator=creator, format=exporting.FORMATS[export.format],
                           **_version_context(project, export))


@bp.get("/<int:export_id>/progress")
@require("admin", "client")
def progress(slug: str, export_id: int):
    project = _project(slug)
    export = _export(project, export_id)
    body = render_template("exports/_progress.html", **_version_context(project, export))
    # 286 stops htmx polling: the version is finished one way or the other.
    return body, 286 if export.status in SETTLED else 200


@bp.post("/<int:export_id>/retry")
@require("admin", "client")
def retry(slug: str, export_id: int):
    """Run a failed or stalled version again (a worker was killed, the disk filled up, …)."""
    project = _project(slug)
    db = get_session()
    try:
        export = exporting.retry_export(db, project, export_id, **exporting.disk_limits(current_app.config),
                                        actor_id=current_user.id)
    except ServiceError as exc:  # not in a state to, too many being built, no room: said on the version's page
        db.rollback()
        flash(str(exc), "error")
        return detail(slug, export_id), exc.status
    enqueue(build_export, export.id)
    return redirect(url_for("exports.detail", slug=project.slug, export_id=export.id), code=303)


@bp.get("/<int:export_id>/files/<name>")
@require("admin", "client")
def download(slug: str, export_id: int, name: str):
    project = _project(slug)
    export = _export(project, export_id)
    path = exporting.file_path(current_app.config["EXPORT_DIR"], export, name)
    if not path.is_file():
        abort(404)
    # send_file streams the file in blocks, with ETag and range requests (a dropped download resumes).
    response = send_file(path, mimetype=exporting.media_type(name), as_attachment=True,
                         download_name=exporting.download_name(project, export, name), conditional=True,
                         max_age=0)
    if failed_precondition(path, response):
        response.close()
        return "", 412
    return response
