"""Recruiting pages: the public application form, the candidate's side (their application and their
interviews), and reviewers' grading of written answers."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import Conflict, ValidationError
from app.extensions import htmx
from app.services import questions as question_rules
from app.services.recruiting import applications, grading, interviews, vetting
from tasks import enqueue
from tasks.jobs import calibrate_assessment, suggest_grades

from .access import public, require, sign_in
from .inputs import row_id
from .paging import page_of

bp = Blueprint("recruiting", __name__)


# -------------------------------------------------------------------------------------------- apply


def _apply_key() -> str:
    return f"apply:{request.remote_addr or 'unknown'}"


def _apply_allowed() -> tuple[bool, int]:
    """Count this application against the sender's address (the login throttle's counter: Redis when
    configured, so every web worker shares it). A form sent back for a typo is given back
    (``_apply_not_counted``): the limit is on accounts made and on e-mails tried."""
    counter = current_app.extensions["login_throttle"].counter
    count, retry = counter.incr(_apply_key(), 3600, time.time())
    return count <= current_app.config["APPLY_MAX_PER_HOUR"], retry or 3600


def _apply_not_counted() -> None:
    current_app.extensions["login_throttle"].counter.decr(_apply_key())


def _form_from_request() -> applications.ApplicationForm:
    f = request.form
    return applications.ApplicationForm(
        email=f.get("email", ""), name=f.get("name", ""), password=f.get("password", ""),
        domains=tuple(f.getlist("domains")[:50]), languages=f.get("languages", ""),
        years_experience=f.get("years_experience", ""), credentials=f.get("credentials", ""),
        timezone=f.get("timezone", "UTC"), availability_hours_per_week=f.get("availability_hours_per_week", ""),
        desired_rate=f.get("desired_rate", ""), consent=f.get("consent") == "yes")


@bp.route("/apply", methods=["GET", "POST"])
@public
def apply():
    """Anyone may apply: an account, a profile and consent, then the interviews of their domains."""
    if current_user.is_authenticated:
        return redirect(url_for("recruiting.candidate" if current_user.has_role("applicant") else "home.index"))
    db = get_session()
    form, errors = applications.ApplicationForm(), {}
    if request.method == "POST":
        form = _form_from_request()
        allowed, retry = _apply_allowed()
        if not allowed:
            minutes = max(1, retry // 60)
            errors = {"": f"Too many applications from your address; try again in {minutes} minutes."}
            page = render_template("recruiting/apply.html", form=form, errors=errors,
                                   domains=applications.domains(db))
            return page, 429, {"Retry-After": str(retry)}
        try:
            user = applications.apply(db, form)
        except ValidationError as exc:
            db.rollback()
            errors = exc.errors
            if "already registered" not in errors.get("email", ""):
                _apply_not_counted()  # a typo, not an account made or an e-mail probed
        else:
            sign_in(user)
            flash("Your application is in. Take the interview for each of your domains below.", "success")
            return redirect(url_for("recruiting.candidate"))
    status = 422 if errors else 200
    return render_template("recruiting/apply.html", form=form, errors=errors, domains=applications.domains(db)), status


# ------------------------------------------------------------------------------------ the candidate


@bp.get("/candidate")
@require("applicant", "trainer")
def candidate():
    """My application: its stage, my interviews (start, resume, done), my result, and why when
    rejected. Nothing about anyone else."""
    db = get_session()
    application = applications.application_of(db, current_user.id)
    if application is None:
        return render_template("recruiting/candidate.html", application=None)
    taken = {i.assessment_id: i for i in interviews.interviews_of(db, application.id)}
    rows = [(assessment, project, taken.get(assessment.id))
            for assessment, project in interviews.open_assessments(db, application.domains)]
    offered = {a.domain for a, _p, _i in rows}
    return render_template(
        "recruiting/candidate.html", application=application, rows=rows,
        without_assessment=[d for d in application.domains if d not in offered],
        domain_names=applications.domain_names(db), qualifications=vetting.qualifications_of(db, current_user.id))


@bp.post("/candidate/assessments/<int:assessment_id>/start")
@require("applicant", "trainer")
def start_interview(assessment_id: int):
    db = get_session()
    try:
        interview = interviews.start(db, current_user.id, assessment_id)
    except Conflict as exc:
        flash(str(exc), "error")
        return redirect(url_for("recruiting.candidate"))
    return redirect(url_for("recruiting.interview", interview_id=interview.id))


def _screen_page(interview_id: int, errors=None, answers=None, notice=None, status=200):
    db = get_session()
    screen = interviews.screen(db, interview_id, current_user.id)
    template = "recruiting/_interview.html" if htmx else "recruiting/interview.html"
    return render_template(template, screen=screen, errors=errors or {}, answers=answers or {}, notice=notice,
                           project=screen.project, item=screen.item, questions=screen.questions or [],
                           written_min_chars=interviews.WRITTEN_MIN_CHARS), status


@bp.get("/candidate/interviews/<int:interview_id>")
@require("applicant", "trainer")
def interview(interview_id: int):
    return _screen_page(interview_id)


def _after_finish(interview) -> None:
    """Jobs an interview's end may start (after the service committed)."""
    if interview.status != "done":
        return
    db = get_session()
    if current_app.config.get("GRADER_URL") and grading.awaiting_suggestion(db, interview.id):
        enqueue(suggest_grades, interview.id)
    assessment, _project = interviews.get_assessment(db, interview.assessment_id)
    from app.services.recruiting import calibration

    if calibration.due(db, assessment):
        enqueue(calibrate_assessment, assessment.id)


def _done(interview_id: int):
    if htmx:
        return _screen_page(interview_id)
    return redirect(url_for("recruiting.interview", interview_id=interview_id))


@bp.post("/candidate/interviews/<int:interview_id>/answer")
@require("applicant", "trainer")
def answer(interview_id: int):
    db = get_session()
    screen = interviews.screen(db, interview_id, current_user.id)
    # The form names its question by its number in the interview, not by the bank's item id: ids follow
    # the order the bank was filled in (often by difficulty), so the next one would tell the candidate
    # whether the last answer was right.
    number = row_id(request.form.get("question"))
    if number is None:
        raise ValidationError({"question": "is missing; reload the page"})
    raw, item_id = {}, 0  # no item: refused as already answered (a double click, an old tab)
    if screen.item is not None and number == screen.interview.items_done + 1:
        item_id = screen.item.id
        raw = question_rules.parse_form_answers(screen.questions, request.form, screen.item.responses or [])
    return _step(interview_id, raw, lambda: interviews.answer(db, current_user.id, interview_id, item_id, raw))


def _step(interview_id: int, posted: dict, call):
    """One step of the interview (an answer, the written part): its form again with the errors, the
    page with the reason it was refused (a replay, the time box), or what comes next."""
    db = get_session()
    try:
        done = call()
    except ValidationError as exc:
        db.rollback()
        return _screen_page(interview_id, errors=exc.errors, answers=posted, status=422)
    except Conflict as exc:
        db.rollback()
        return _screen_page(interview_id, notice=str(exc), status=409 if htmx else 200)
    _after_finish(done)
    return _done(interview_id)


@bp.post("/candidate/interviews/<int:interview_id>/written")
@require("applicant", "trainer")
def written(interview_id: int):
    db = get_session()
    texts = {}
    for key, value in request.form.items():
        if key.startswith("written.") and (prompt_id := row_id(key.removeprefix("written."))) is not None:
            texts[prompt_id] = value
    return _step(interview_id, texts, lambda: interviews.submit_written(db, current_user.id, interview_id, texts))


@bp.post("/candidate/interviews/<int:interview_id>/finish")
@require("applicant", "trainer")
def finish(interview_id: int):
    """The time box passed: end the interview with what it has."""
    db = get_session()
    try:
        done = interviews.finish_time_up(db, current_user.id, interview_id)
    except Conflict as exc:
        db.rollback()
        return _screen_page(interview_id, notice=str(exc), status=409)
    _after_finish(done)
    return _done(interview_id)


# -------------------------------------------------------------------------------------------- grading


@bp.get("/grading")
@require("reviewer", "admin")
def grading_queue():
    db = get_session()
    page = page_of(grading.queue_count(db), 25)
    return render_template("recruiting/grading.html", rows=grading.queue(db, page.limit, page.offset),
                           page=page.number, pages=page.pages, total=grading.queue_count(db),
                           recent=grading.recent(db, 10), agreement=grading.suggestion_agreement(db),
                           grader_on=bool(current_app.config.get("GRADER_URL")))


@bp.route("/grading/<int:answer_id>", methods=["GET", "POST"])
@require("reviewer", "admin")
def grade(answer_id: int):
    """One written answer against its rubric; the reviewer's grade 0–1 (the model's suggestion, when
    there is one, is pre-filled to confirm or override)."""
    db = get_session()
    found = grading.get(db, answer_id)
    errors, values = {}, {}
    if request.method == "POST":
        values = {"grade": request.form.get("grade", ""), "note": request.form.get("note", "")}
        try:
            grading.grade(db, answer_id, grading.parse_grade(values["grade"]), values["note"], current_user.id)
        except ValidationError as exc:
            db.rollback()
            errors = exc.errors
        except Conflict as exc:
            db.rollback()
            flash(str(exc), "error")
            return redirect(url_for("recruiting.grading_queue"))
        else:
            following = grading.queue(db, 1)
            if following:
                flash(f"Grade saved for {found.candidate_label}. Next in the queue: "
                      f"{following[0].candidate_label}.", "success")
                return redirect(url_for("recruiting.grade", answer_id=following[0].answer.id))
            flash(f"Grade saved for {found.candidate_label}. The queue is empty.", "success")
            return redirect(url_for("recruiting.grading_queue"))
        found = grading.get(db, answer_id)
    return render_template("recruiting/grade.html", found=found, errors=errors, values=values), 422 if errors else 200

