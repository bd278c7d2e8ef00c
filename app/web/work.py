"""The trainer's workspace: project list, the task screen, submit and skip as HTMX swaps."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import Conflict, ValidationError
from app.extensions import htmx
from app.models import Project
from app.services import access
from app.services import assignment as queue
from app.services import projects as project_service
from app.services import questions as question_rules
from app.services import review as review_service
from app.services.recruiting import applications
from tasks.jobs import queue_statistics

from .access import require, unread_session_version
from .paging import page_of

bp = Blueprint("work", __name__, url_prefix="/work")

def _project_for_work(slug: str) -> Project:
    db = get_session()
    project, member = queue.project_and_membership(db, slug, current_user.id)  # one round trip
    if project is None:
        abort(404)
    if member is not None and member.status == "paused":
        abort(403, description=str(queue.Paused.because(member.flagged_reason)))
    # Not being a member looks the same as the project not existing.
    if not access.can_work_on(db, current_user, project, member):
        abort(404)
    return project


def _shown(project: Project, questions=None) -> queue.Shown:
    """The trainer's task with what its screen shows, read in the claim's transaction (the questions
    too, unless the request already has them)."""
    shown = queue.task_to_show(get_session(), current_user.id, project, with_questions=questions is None)
    if questions is not None:
        shown.questions = questions
    return shown


def _following(project: Project, **extra):
    """The task fragment after a submit or skip. If that work paused the trainer (gold accuracy), the
    work is kept and the fragment says so instead of answering 403."""
    questions = extra.pop("questions", None)
    try:
        shown = _shown(project, questions)
    except queue.Paused as exc:
        said = extra.get("notice") or ("Your work was saved." if extra.get("just_submitted") else "")
        shown, extra = queue.Shown(None, None, questions), {**extra, "notice": f"{said} {exc}".strip()}
    return render_template("work/_task.html", **_task_context(project, shown), **extra)


def _task_context(project: Project, shown: queue.Shown, errors=None, answers=None) -> dict:
    """What the task screen shows. Whatever ``shown`` does not carry (the screen after a pause, a
    project no longer active, a form sent back) is read here."""
    db = get_session()
    assignment = shown.assignment
    done = shown.done_this_session
    return {
        "project": project,
        "assignment": assignment,
        "item": assignment.item if assignment else None,
        "questions": shown.questions if shown.questions is not None else queue.project_questions(db, project.id),
        "errors": errors or {},
        "answers": answers or {},
        "done_this_session": done if done is not None else queue.session_progress(db, current_user.id, project.id),
    }


class _FormAnswers:
    """The posted ``answer.<key>`` fields, read inside the submit against the task the door locked
    (``queue.AnswerReader``): each question type's form parser converts them, and responses posted by
    their letter on the page (A, B, C…) become the item's response ids. Keeps the project and the
    questions for the page that follows."""

    def __init__(self, form):
        self.form, self.project, self.questions, self.raw = form, None, None, {}

    def __call__(self, task: queue.Task, questions: list) -> dict:
        self.project, self.questions = task.project, questions
        self.raw = question_rules.parse_form_answers(questions, self.form, task.item.responses or [])
        return self.raw


@bp.get("/")
@require("trainer")
def index():
    db = get_session()
    done = queue.submitted_counts(db, current_user.id)
    # What is left in each project (its counters: a few rows each), so a card with nothing to do says
    # so instead of offering to start.
    rows = [
        (p, done.get(p.id, 0), status == "paused", project_service.progress(db, p))
        for p, status in access.workable_projects(db, current_user, include_paused=True)
    ]
    # The link to "My application" only where there is one: a trainer added directly has none.
    applied = applications.application_of(db, current_user.id) is not None
    recent = queue.recent_tasks(db, current_user.id) if current_user.has_role("trainer") else []
    return render_template("work/index.html", rows=rows, applied=applied, recent=recent)


@bp.get("/feedback")
@require("trainer")
def feedback():
    """Every verdict reviewers gave on my work, with their comments and corrections."""
    db = get_session()
    page = page_of(review_service.feedback_count(db, current_user.id), 20)
    rows = review_service.feedback_page(db, current_user.id, page.limit, page.offset)
    return render_template("work/feedback.html", rows=rows, page=page.number, pages=page.pages)


@bp.get("/<slug>")
@require("trainer")
def workspace(slug: str):
    project = _project_for_work(slug)
    return render_template("work/workspace.html", **_task_context(project, _shown(project)))


@bp.get("/<slug>/task")
@require("trainer")
def task(slug: str):
    """The current task as a fragment (the workspace reloads it after an error or a lapsed lease)."""
    project = _project_for_work(slug)
    return render_template("work/_task.html", **_task_context(project, _shown(project)))


@bp.post("/<slug>/tasks/<int:assignment_id>/submit")
@require("trainer")
def submit(slug: str, assignment_id: int):
    """The one door (``queue.submit``) finds the project by its slug with the membership and the task
    in one statement, as a heartbeat does (not a member, or paused: 404 or 403 as on the workspace),
    and the form is read against the questions and item it locked: nothing is looked up before."""
    db = get_session()
    answers = _FormAnswers(request.form)
    try:
        annotation = queue.submit(db, assignment_id, current_user.id, answers, project_slug=slug)
    except ValidationError as exc:
        return _task_again(_project_for_work(slug), assignment_id, errors=exc.errors, answers=answers.raw)
    except Conflict as exc:
        # The lease lapsed and the slot went to someone else (or the task was skipped): say so, go on.
        if not htmx:
            raise
        return _following(_project_for_work(slug), notice=str(exc)), 409
    # A repeated submit stored nothing and read no form: its project is looked up again.
    project = answers.project or db.get(Project, annotation.project_id)
    questions = answers.questions
    queue_statistics(db, project)  # after the commit; services cannot start jobs
    if not htmx:
        return redirect(url_for("work.workspace", slug=slug))
    return _following(project, just_submitted=True, questions=questions)


@bp.post("/<slug>/tasks/<int:assignment_id>/heartbeat")
@require("trainer", at_door=True)
def heartbeat(slug: str, assignment_id: int):
    """The page is visible and the trainer was active: the server counts the time. The one door
    (``record_heartbeat``) checks the signed-in trainer, the project by its slug, the membership and
    the task in one statement (not a member, or paused: 404 or 403 as on the workspace)."""
    assignment = queue.record_heartbeat(
        get_session(), assignment_id, current_user.id, resume=request.form.get("resume") == "1",
        project_slug=slug, session_version=unread_session_version(),
    )
    return {"active_seconds": assignment.active_seconds, "status": assignment.status}


@bp.post("/<slug>/tasks/<int:assignment_id>/skip")
@require("trainer")
def skip(slug: str, assignment_id: int):
    project = _project_for_work(slug)
    db = get_session()
    try:
        queue.skip(db, assignment_id, current_user.id, request.form.get("reason", ""), project_id=project.id)
    except ValidationError as exc:
        return _task_again(project, assignment_id, errors={"skip": exc.errors.get("reason", str(exc))})
    if not htmx:
        return redirect(url_for("work.workspace", slug=slug))
    return _following(project)


def _task_again(project: Project, assignment_id: int, errors: dict, answers: dict | None = None):
    """The same task with the form's errors (422). Only ever the caller's own task in this project."""
    assignment = queue.task_of(get_session(), assignment_id, current_user.id, project.id)
    context = _task_context(project, queue.Shown(assignment, None), errors=errors, answers=answers)
    return render_template("work/_task.html" if htmx else "work/workspace.html", **context), 422
