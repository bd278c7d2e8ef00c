"""Admin: projects with their progress and members, people, and the audit log."""

from __future__ import annotations

import copy
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import Conflict, Forbidden, ValidationError, said
from app.models import ImportJob, Project, User
from app.services import audit_log, importing, trainers
from app.services import projects as project_service
from app.services import stats as stats_service
from app.services import users as user_service
from app.services.assignment import project_questions
from app.services.money import format_cents, plain_amount
from app.services.presets import PRESETS, preset_questions
from app.services.questions import QUESTION_TYPES
from tasks import enqueue
from tasks.jobs import compute_stats as compute_stats_job
from tasks.jobs import import_items as import_job

from . import project_forms
from .access import require
from .client import managed_project
from .inputs import whole_number
from .paging import page_of

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50


@bp.get("/")
@require("admin")
def index():
    db = get_session()
    return render_template("admin/index.html", projects=project_service.project_summaries(db, by_name=True))


@bp.get("/projects/<slug>")
@require("admin")
def project(slug: str):
    db = get_session()
    project = _project_or_404(slug)
    members = project_service.members_of(db, project)
    imports = project_service.recent_imports(db, project, 5)
    progress = project_service.progress(db, project)
    return render_template(
        "admin/project.html", project=project, progress=progress, members=members,
        throughput=project_service.throughput(db, project, figures=progress), imports=imports,
        format_cents=format_cents,
    )


def _people_page(errors=None, values=None, status=200):
    db = get_session()
    query = request.args.get("q", "")[:user_service.SEARCH_MAX]
    page = page_of(user_service.count_users(db, query), PAGE_SIZE)
    users = user_service.list_users(db, page.limit, page.offset, query)
    return render_template("admin/people.html", users=users, page=page.number, pages=page.pages, query=query,
                           page_roles=user_service.PAGE_ROLES, errors=errors or {}, values=values or {},
                           limits={"search": user_service.SEARCH_MAX, "name": user_service.NAME_MAX,
                                   "email": user_service.EMAIL_MAX}), status


@bp.get("/people")
@require("admin")
def people():
    return _people_page()


@bp.post("/people")
@require("admin")
def create_person():
    """An account for someone new, with a one-time link to set their password (no mail is sent: the
    admin passes the link on)."""
    db = get_session()
    values = {"email": request.form.get("email", "")[:user_service.EMAIL_MAX + 10],
              "name": request.form.get("name", "")[:user_service.NAME_MAX + 10], "roles": request.form.getlist("role")}
    try:
        user = user_service.invite_user(db, values["email"], values["name"], values["roles"], current_user.id)
    except (ValidationError, Conflict) as exc:
        db.rollback()
        return _people_page(exc.errors if isinstance(exc, ValidationError) else {"email": str(exc)}, values,
                            422 if isinstance(exc, ValidationError) else 409)
    token = user_service.issue_reset_link(db, user, current_user.id)
    flash(f"{user.name} has an account. Pass the one-time link below on to them: with it they choose their password.",
          "success")
    return _person_page(user, reset_link=url_for("auth.reset", token=token, _external=True))


@bp.post("/people/<int:user_id>/roles")
@require("admin")
def person_roles(user_id: int):
    user = _person_or_404(user_id)
    db = get_session()
    try:
        user_service.set_page_roles(db, user, request.form.getlist("role"), current_user.id)
    except (ValidationError, Forbidden) as exc:
        db.rollback()
        flash(f"Roles not changed: {said(exc)}.", "error")
        return redirect(url_for("admin.person", user_id=user_id), code=303)
    flash(f"{user.name}'s roles are now: {', '.join(sorted(user.roles))}.", "success")
    return redirect(url_for("admin.person", user_id=user.id), code=303)


def _person_or_404(user_id: int) -> User:
    return user_service.get_user(get_session(), user_id)


def _person_page(user: User, reset_link: str | None = None):
    memberships = project_service.memberships_of(get_session(), user.id)
    return render_template("admin/person.html", person=user, memberships=memberships, reset_link=reset_link,
                           page_roles=user_service.PAGE_ROLES)


@bp.get("/people/<int:user_id>")
@require("admin")
def person(user_id: int):
    return _person_page(_person_or_404(user_id))


@bp.post("/people/<int:user_id>/status")
@require("admin")
def person_status(user_id: int):
    user = _person_or_404(user_id)
    user_service.set_status(get_session(), user, request.form.get("status", ""), current_user.id)
    flash(f"{user.name} is {'active again' if user.status == 'active' else 'suspended and signed out everywhere'}.",
          "success")
    return redirect(url_for("admin.person", user_id=user.id), code=303)


@bp.post("/people/<int:user_id>/sign-out")
@require("admin")
def person_sign_out(user_id: int):
    user = _person_or_404(user_id)
    user_service.sign_out_everywhere(get_session(), user, current_user.id)
    flash(f"{user.name} is signed out of every browser, and their API tokens are revoked.", "success")
    return redirect(url_for("admin.person", user_id=user.id), code=303)


@bp.post("/people/<int:user_id>/reset-link")
@require("admin")
def person_reset_link(user_id: int):
    """A one-time password link, shown once on this page (there is no mail server to send it)."""
    user = _person_or_404(user_id)
    try:
        token = user_service.issue_reset_link(get_session(), user, current_user.id)
    except Forbidden as exc:
        flash(f"No link made: {exc}.", "error")
        return redirect(url_for("admin.person", user_id=user.id), code=303)
    return _person_page(user, reset_link=url_for("auth.reset", token=token, _external=True))


@bp.get("/audit")
@require("admin")
def audit():
    db = get_session()
    page = page_of(audit_log.count_events(db), PAGE_SIZE)
    rows = audit_log.events(db, page.limit, page.offset)
    return render_template("admin/audit.html", rows=rows, page=page.number, pages=page.pages)


# --- creating and editing projects --------------------------------------------------------------

SETTING_FIELDS = {"hourly_rate_cents": "hourly_rate", "budget_cents": "budget"}


def _form_errors(errors: dict) -> dict:
    return {SETTING_FIELDS.get(k, k): v for k, v in errors.items()}


def _project_form_values(project=None) -> dict:
    if project is None:
        return {"overlap": 1, "lease_minutes": 30, "gold_rate": 0, "review_rate": 10, "hourly_rate": "0.00",
                "max_billable_seconds_per_task": 1800, "status": "draft", "kind": "work", "pause_at_budget": True,
                "language": "en"}
    return {
        "name": project.name, "slug": project.slug, "kind": project.kind, "status": project.status,
        "instructions": project.instructions, "overlap": project.overlap, "lease_minutes": project.lease_minutes,
        "gold_rate": round(project.gold_rate * 100, 2), "review_rate": round(project.review_rate * 100, 2),
        "hourly_rate": plain_amount(project.hourly_rate_cents),
        "budget": plain_amount(project.budget_cents),
        "max_billable_seconds_per_task": project.max_billable_seconds_per_task,
        "required_domains": ", ".join(project.required_domains or []),
        "show_model_names": project.show_model_names,
        "pause_at_budget": project.pause_at_budget,
        "quality_bonus_percent": project.quality_bonus_percent if project.quality_bonus_percent is not None else "",
        "quality_bonus_min_accuracy": round(project.quality_bonus_min_accuracy * 100, 2)
        if project.quality_bonus_min_accuracy is not None else "",
        "license": project.license, "citation": project.citation, "language": project.language,
        "allow_assistant_first": project.allow_assistant_first, "always_messages": project.always_messages,
    }


def _questions_as_dicts(project) -> list[dict]:
    return [
        {"key": q.key, "type": q.type, "title": q.title, "help": q.help, "required": q.required, "options": q.options}
        for q in project.questions
    ]


def _render_project_form(project, values, questions, errors, status=200, locked=False):
    return render_template(
        "admin/project_form.html", project=project, values=values, questions=questions, errors=errors,
        presets=PRESETS, question_types=QUESTION_TYPES, locked=locked, licenses=project_service.COMMON_LICENSES,
    ), status


@bp.route("/projects/new", methods=["GET", "POST"])
@require("admin")
def new_project():
    if request.method == "GET":
        preset = request.args.get("preset", "labelling")
        questions = preset_questions(preset if preset in PRESETS else "labelling")
        return _render_project_form(None, _project_form_values(), questions, {})
    errors: dict = {}
    questions = project_forms.read_questions(request.form, errors)
    settings = project_forms.read_settings(request.form, errors)
    values = request.form.to_dict()
    db = get_session()
    if errors:  # the fields it could read are checked too: every problem is marked at once
        problems = project_service.project_problems(
            db, name=request.form.get("name", ""), slug=(request.form.get("slug") or "").strip() or None,
            kind=request.form.get("kind", "work"), questions=questions, **settings)
        db.rollback()
        return _render_project_form(None, values, questions, {**_form_errors(problems), **errors}, 422)
    try:
        project = project_service.create_project(
            db, name=request.form.get("name", ""), slug=(request.form.get("slug") or "").strip() or None,
            kind=request.form.get("kind", "work"), questions=questions, actor_id=current_user.id, **settings,
        )
    except ValidationError as exc:
        db.rollback()
        return _render_project_form(None, values, questions, _form_errors(exc.errors), 422)
    flash(f"Project “{project.name}” created. Add members and import items next.", "success")
    return redirect(url_for("admin.project", slug=project.slug))


@bp.route("/projects/<slug>/edit", methods=["GET", "POST"])
@require("admin")
def edit_project(slug: str):
    db = get_session()
    project = _project_or_404(slug)
    locked = project_service.has_answers(db, project)
    if request.method == "GET":
        return _render_project_form(project, _project_form_values(project), _questions_as_dicts(project), {}, locked=locked)
    errors: dict = {}
    questions = project_forms.read_questions(request.form, errors)
    settings = project_forms.read_settings(request.form, errors)
    values = request.form.to_dict()
    if errors:  # the fields it could read are checked too: every problem is marked at once
        problems = project_service.project_problems(db, name=request.form.get("name", ""), questions=questions,
                                                    **settings)
        db.rollback()
        return _render_project_form(project, values, questions, {**_form_errors(problems), **errors}, 422, locked)
    try:
        project_service.update_project(
            db, project, name=request.form.get("name", ""), questions=questions, actor_id=current_user.id, **settings
        )
    except ValidationError as exc:
        db.rollback()
        return _render_project_form(project, values, questions, _form_errors(exc.errors), 422, locked)
    flash("Project saved.", "success")
    return redirect(url_for("admin.project", slug=project.slug))


@bp.get("/question-row")
@require("admin")
def question_row():
    """One row of the question builder (added, or re-rendered when its type changes)."""
    type_name = request.args.get("type") or next(iter(QUESTION_TYPES))
    if type_name not in QUESTION_TYPES:
        abort(400, f"unknown question type {type_name!r}")
    n = whole_number(request.args.get("n", "0"), digits=3, signed=False)
    if n is None:
        abort(400, "n must be a whole number from 0 to 999")
    question = {
        "key": request.args.get("key", f"q{n + 1}"), "type": type_name, "title": request.args.get("title", ""),
        "help": request.args.get("help", ""), "required": True,
        "options": copy.deepcopy(dict(QUESTION_TYPES[type_name].defaults)),
    }
    return render_template("admin/_question_row.html", q=question, n=n, errors={}, question_types=QUESTION_TYPES,
                           locked=False)


# --- members ------------------------------------------------------------------------------------


def _project_or_404(slug: str):
    return project_service.get_by_slug(get_session(), slug)


@bp.post("/projects/<slug>/members")
@require("admin")
def add_member(slug: str):
    db = get_session()
    project = _project_or_404(slug)
    role = request.form.get("role", "trainer")
    try:
        user, _member, changed = project_service.enrol(db, project, request.form.get("email", ""), role,
                                                       actor_id=current_user.id)
        flash(f"{user.name} is now a {role} on this project." if changed
              else f"{user.name} is already a {role} on this project; nothing changed.", "success" if changed else "info")
    except ValidationError as exc:
        db.rollback()
        flash(" ".join(exc.errors.values()) + ".", "error")
    return redirect(url_for("admin.project", slug=slug) + "#members")


@bp.post("/projects/<slug>/members/<int:member_id>/status")
@require("admin")
def member_status(slug: str, member_id: int):
    db = get_session()
    project = _project_or_404(slug)
    member = project_service.get_member(db, project, member_id)
    try:
        project_service.set_member_status(db, member, request.form.get("status", ""), actor_id=current_user.id)
    except ValidationError as exc:
        db.rollback()
        abort(422, str(exc))
    return redirect(url_for("admin.project", slug=slug) + "#members")


# --- importing items ----------------------------------------------------------------------------


@bp.route("/projects/<slug>/import", methods=["GET", "POST"])
@require("admin", "client")
def import_items(slug: str):
    """Admins, and the project's clients (they push items too)."""
    db = get_session()
    project = managed_project(slug)

    def page(error=None, status=200):
        recent = project_service.recent_imports(db, project, 10)
        return render_template("admin/import.html", project=project, recent=recent, error=error), status

    if request.method == "GET":
        return page()
    importing.fail_stalled_imports(db)  # a dead import's leftovers go before a new one starts
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return page("Choose a file to import.", 422)
    try:
        job = importing.create_job(db, project, upload.filename, upload.save,
                                   Path(current_app.config["IMPORT_DIR"]), current_user.id,
                                   update_existing=request.form.get("update") == "on")
    except ValidationError as exc:
        return page(exc.errors.get("file") or str(exc), 422)
    except Conflict as exc:
        return page(str(exc), 409)
    enqueue(import_job, job.id)
    return redirect(url_for("admin.import_status", import_id=job.id))


def _import_or_404(import_id: int) -> tuple[ImportJob, Project]:
    """An import, for admins and the clients of its project."""
    job, project = project_service.get_import(get_session(), import_id)
    managed_project(project.slug)
    return job, project


@bp.get("/imports/<int:import_id>")
@require("admin", "client")
def import_status(import_id: int):
    job, project = _import_or_404(import_id)
    return render_template("admin/import_status.html", job=job, project=project,
                           stalled=importing.stalled_reason(job))


@bp.get("/imports/<int:import_id>/progress")
@require("admin", "client")
def import_progress(import_id: int):
    job, project = _import_or_404(import_id)
    stalled = importing.stalled_reason(job)
    body = render_template("admin/_import_progress.html", job=job, project=project, stalled=stalled)
    # 286 tells htmx to stop polling: the import has finished one way or the other, or looks dead.
    return body, 286 if job.status in ("done", "failed") or stalled else 200


@bp.post("/imports/<int:import_id>/abandon")
@require("admin", "client")
def abandon_import(import_id: int):
    """Stop an import that looks dead: it is marked failed and what it wrote is undone."""
    _import_or_404(import_id)
    job = importing.abandon_import(get_session(), import_id)
    flash("The import was stopped; nothing of it was kept.", "success")
    return redirect(url_for("admin.import_status", import_id=job.id))


# --- quality --------------------------------------------------------------------------------------

SORTABLE = ("name", "annotations", "gold_accuracy", "consensus_agreement", "reliability", "approval_rate",
            "median_seconds")


@bp.get("/projects/<slug>/quality")
@require("admin")
def quality(slug: str):
    db = get_session()
    project = _project_or_404(slug)
    sort = request.args.get("sort", "annotations")
    sort = sort if sort in SORTABLE else "annotations"
    descending = request.args.get("dir", "desc") != "asc"
    stats = stats_service.project_figures(db, project)
    return render_template(
        "admin/quality.html", project=project, stats=stats,
        since=stats_service.answers_since(db, project, stats.computed_at, stats_service.SINCE_SHOWN_MAX) if stats else 0,
        verdicts=stats_service.verdicts_behind(db, project, stats),
        since_max=stats_service.SINCE_SHOWN_MAX,
        trainers=stats_service.trainer_table(db, project, sort, descending), sort=sort, descending=descending,
        sortable=SORTABLE,
    )


@bp.post("/projects/<slug>/quality/recompute")
@require("admin")
def recompute_quality(slug: str):
    project = _project_or_404(slug)
    handle = enqueue(compute_stats_job, project.id)  # ends this request's transaction: the job needs the lock
    if handle.backend == "inline":
        handle.wait(timeout=120)
        flash("Quality figures recomputed." if handle.status == "finished" else f"Recomputing failed: {handle.error}",
              "success" if handle.status == "finished" else "error")
    elif handle.status == "delayed":
        flash(f"Not queued: {handle.error}. The figures are recomputed once it takes jobs again (the next "
              "submissions find them due), or ask again then.", "error")
    else:
        flash("Recomputing in the background; reload in a moment.", "info")
    return redirect(url_for("admin.quality", slug=slug))


@bp.get("/projects/<slug>/trainers/<int:user_id>")
@require("admin")
def trainer_detail(slug: str, user_id: int):
    project = _project_or_404(slug)
    db = get_session()
    record = trainers.trainer_record(db, project, user_id)
    return render_template("admin/trainer.html", project=project, user=record.user, member=record.member,
                           stats=record.stats, recent=record.recent, excluded=record.excluded,
                           questions=project_questions(db, project.id))


@bp.post("/projects/<slug>/trainers/<int:user_id>/exclude")
@require("admin")
def exclude_trainer(slug: str, user_id: int):
    db = get_session()
    project = _project_or_404(slug)
    include = request.form.get("include") == "1"
    count = trainers.set_work_excluded(db, project, user_id, current_user.id, excluded=not include)
    flash(f"{count} annotation(s) {'included again' if include else 'excluded from the dataset'}.", "success")
    return redirect(url_for("admin.trainer_detail", slug=slug, user_id=user_id))
