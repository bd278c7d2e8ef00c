"""Reviewers: the projects they review, with progress and the latest submitted work."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import Conflict, ValidationError
from app.extensions import htmx
from app.models import Annotation, Project
from app.services import projects as project_service
from app.services import questions as question_rules
from app.services import review as review_service
from app.services.assignment import project_questions
from tasks.jobs import queue_statistics_after_verdict

from .access import require
from .paging import page_of

RECENT_PAGE = 50  # latest submissions a page

bp = Blueprint("review", __name__, url_prefix="/review")


@bp.get("/")
@require("reviewer", "admin")
def index():
    db = get_session()
    rows = [
        (p, project_service.progress(db, p), review_service.queue_shown(db, p.id, current_user.id))
        for p in review_service.reviewable_projects(db, current_user)
    ]
    return render_template("review/index.html", rows=rows)


def _project_for_review(slug: str) -> Project:
    return review_service.project_for_review(get_session(), current_user, slug)


def _review_context(project: Project, annotation: Annotation | None, **extra) -> dict:
    db = get_session()
    return {
        "project": project,
        "annotation": annotation,
        "item": review_service.item_of(db, annotation) if annotation else None,
        "trainer": review_service.trainer_name(db, annotation) if annotation else None,
        "questions": project_questions(db, project.id),
        "left": review_service.queue_shown(db, project.id, current_user.id),
        "reason_titles": review_service.REASON_TITLES,
        "errors": {},
        "verdict": None,
        "comment": "",
        "corrected": None,
        **extra,
    }


@bp.get("/<slug>/queue")
@require("reviewer", "admin")
def queue(slug: str):
    project = _project_for_review(slug)
    annotation = review_service.next_for_review(get_session(), project.id, current_user.id)
    return render_template("review/queue.html", **_review_context(project, annotation))


@bp.post("/<slug>/annotations/<int:annotation_id>/verdict")
@require("reviewer", "admin")
def verdict(slug: str, annotation_id: int):
    project = _project_for_review(slug)
    db = get_session()
    annotation = review_service.annotation_in(db, project, annotation_id)
    verdict_name = request.form.get("verdict", "")
    comment = request.form.get("comment", "")
    corrected = None
    if verdict_name == "correct":
        item = review_service.item_of(db, annotation)
        corrected = question_rules.parse_form_answers(project_questions(db, project.id), request.form,
                                                      item.responses or [])
    try:
        review_service.record_verdict(db, annotation.id, current_user.id, verdict_name, comment, corrected)
    except ValidationError as exc:
        db.rollback()
        context = _review_context(project, annotation, errors=exc.errors, verdict=verdict_name, comment=comment,
                                  corrected=corrected)
        return render_template("review/_review.html" if htmx else "review/queue.html", **context), 422
    except Conflict as exc:
        db.rollback()
        # Someone else (or a double click) reviewed it first: say so, and offer the next one.
        if not htmx:
            raise
        following = review_service.next_for_review(db, project.id, current_user.id)
        return render_template("review/_review.html", **_review_context(project, following, notice=str(exc))), 409
    queue_statistics_after_verdict(db, project)  # the review counts and approval rates read verdicts
    if not htmx:
        return redirect(url_for("review.queue", slug=slug))
    following = review_service.next_for_review(db, project.id, current_user.id)
    return render_template("review/_review.html", **_review_context(project, following, just_reviewed=True))


@bp.get("/<slug>")
@require("reviewer", "admin")
def project(slug: str):
    db = get_session()
    project = _project_for_review(slug)
    count = review_service.recent_count(db, project)
    page = page_of(count, RECENT_PAGE)
    recent = review_service.recent_work(db, project, page.limit, page.offset)
    return render_template(
        "review/project.html", project=project, progress=project_service.progress(db, project), recent=recent,
        page=page.number, pages=page.pages, recent_max=review_service.RECENT_MAX if count >= review_service.RECENT_MAX else None,
        questions=project_questions(db, project.id),
        waiting=review_service.queue_shown(db, project.id, current_user.id),
    )
