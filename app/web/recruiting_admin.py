"""The admin's recruiting pages: the pipeline board, a candidate's file and the decision, the funnel
and validity dashboard, the domain taxonomy, and each assessment's settings and item bank."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.bounds import decimal_number
from app.db import get_session
from app.errors import Conflict, ValidationError
from app.extensions import htmx
from app.models import APPLICATION_STAGES, ITEM_LEVELS, utcnow
from app.services import users as user_service
from app.services.quality import irt
from app.services.quality import validity as validity_rules
from app.services.recruiting import applications, assessments, funnel, grading, vetting
from tasks import enqueue
from tasks.jobs import calibrate_assessment

from .access import require
from .inputs import row_id
from .paging import page_of

bp = Blueprint("recruiting_admin", __name__, url_prefix="/admin/recruiting")

BANK_PAGE_SIZE = 50
STAGE_TITLES = {"applied": "Applied", "interviewing": "Interviewing", "awaiting_grading": "Awaiting grading",
                "ready": "Ready", "vetted": "Vetted", "rejected": "Rejected"}
STOP_REASONS = {"precision": "reached the target precision", "length": "reached the maximum length",
                "bank": "ran out of items", "time": "ran out of time"}


def since(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest unit that reads well: '12 min', '5 h', '3 d'."""
    if moment is None:
        return "—"
    seconds = max(0.0, ((now or utcnow()) - moment).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def duration(hours: float | None) -> str:
    if hours is None:
        return "—"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


@bp.context_processor
def _helpers():
    return {"recruiting_stage_titles": STAGE_TITLES}


# ------------------------------------------------------------------------------------------ board


def _board_filters(args, known_domains: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """The board's filters from the query string, and a message per filter that was not understood
    (that filter is then left out, the others still apply)."""
    filters: dict = {"domain": "", "language": "", "min_score": None}
    errors: dict[str, str] = {}
    domain = (args.get("domain") or "").strip().lower()
    if domain and domain not in known_domains:
        errors["domain"] = f"There is no domain “{domain[:40]}” in the taxonomy; showing every domain."
    else:
        filters["domain"] = domain
    language = (args.get("language") or "").strip().lower()
    if language and (len(language) > 12 or not applications.LANGUAGE_RE.fullmatch(language)):
        errors["language"] = f"“{language[:20]}” is not a language code like en, fr or pt-br; showing every language."
    else:
        filters["language"] = language
    raw = (args.get("min_score") or "").strip()
    if raw:
        value = decimal_number(raw) if len(raw) <= 10 else None
        if value is None or not 0 <= value <= 1:
            errors["min_score"] = f"The minimum score must be a number from 0 to 1, like 0.6 (not “{raw[:20]}”); showing every score."
        else:
            filters["min_score"] = value
    return filters, errors


@bp.get("/")
@require("admin")
def board():
    db = get_session()
    names = applications.domain_names(db)
    filters, errors = _board_filters(request.args, names)
    context = {
        "board": vetting.board(db, **filters), "filters": filters, "errors": errors, "domain_names": names,
        "taxonomy": applications.domains(db, active_only=False), "stages": APPLICATION_STAGES,
        "values": {k: (request.args.get(k) or "")[:40] for k in ("domain", "language", "min_score")},
        "since": since, "column_limit": vetting.BOARD_COLUMN_LIMIT,
    }
    fragment = htmx and not htmx.history_restore_request
    body = render_template("recruiting_admin/_board.html" if fragment else "recruiting_admin/board.html", **context)
    return body, 422 if errors else 200, {"Vary": "HX-Request"}


# -------------------------------------------------------------------------------------- candidate


def _candidate_page(application_id: int, errors: dict | None = None, values: dict | None = None, status: int = 200):
    db = get_session()
    record = vetting.candidate(db, application_id)
    people = {record.application.decided_by, *(q.granted_by for q in record.qualifications)}
    for interview in record.interviews:
        people.update(answer.graded_by for answer, _prompt in interview.written)
    return render_template(
        "recruiting_admin/candidate.html", c=record, errors=errors or {}, values=values or {},
        unassessed=vetting.unassessed_domains(db, record.application),
        lapsed=vetting.lapsed(db, record.application.id),
        domain_names=applications.domain_names(db), people=user_service.names_by_id(db, people - {None}),
        stop_reasons=STOP_REASONS, since=since,
    ), status


@bp.get("/candidates/<int:application_id>")
@require("admin")
def candidate(application_id: int):
    return _candidate_page(application_id)


def _decided(application_id: int, message: str, category: str = "success"):
    flash(message, category)
    return redirect(url_for("recruiting_admin.candidate", application_id=application_id), code=303)


@bp.post("/candidates/<int:application_id>/vet")
@require("admin")
def vet(application_id: int):
    db = get_session()
    note = request.form.get("note", "")
    manual, errors = {}, {}
    for key, value in request.form.items():
        if key.startswith("qualify.") and value.strip():
            try:
                manual[key.removeprefix("qualify.")[:40]] = grading.parse_grade(value)
            except ValidationError:
                errors[key[:50]] = "must be a score from 0 to 1, like 0.7"
    values = {"note": note, **{k: v for k, v in request.form.items() if k.startswith("qualify.")}}
    if errors:
        return _candidate_page(application_id, errors, values, 422)
    try:
        granted = vetting.vet(db, application_id, current_user.id, note, manual=manual)
    except ValidationError as exc:
        db.rollback()
        shown = {f"qualify.{d}" for d in vetting.unassessed_domains(db, applications.get(db, application_id))}
        found = {("note" if k == "reason" or (k.startswith("qualify.") and k not in shown) else k): v
                 for k, v in exc.errors.items()}
        return _candidate_page(application_id, found, values, 422)
    except Conflict as exc:
        db.rollback()
        return _decided(application_id, f"Not vetted: {exc}.", "error")
    names = applications.domain_names(db)
    if granted:
        what = ", ".join(f"{names.get(q.domain, q.domain)} ({q.score:.2f})" for q in granted)
        return _decided(application_id, f"Vetted: now a trainer, qualified in {what}.")
    return _decided(application_id, "Vetted: now a trainer, with no qualification (no interview was passed).")


@bp.post("/candidates/<int:application_id>/end-lapsed")
@require("admin")
def end_lapsed(application_id: int):
    """End interviews whose time box passed, so the candidate's work can be graded and decided."""
    db = get_session()
    try:
        ended = vetting.end_lapsed(db, application_id, current_user.id)
    except Conflict as exc:
        db.rollback()
        return _decided(application_id, f"Nothing ended: {exc}.", "error")
    return _decided(application_id, f"Ended {ended} interview{'s' if ended != 1 else ''} past its time, with "
                                    "what the candidate had answered. Review the result before deciding.")


@bp.post("/candidates/<int:application_id>/reject")
@require("admin")
def reject(application_id: int):
    db = get_session()
    reason = request.form.get("reason", "")
    try:
        vetting.reject(db, application_id, current_user.id, reason)
    except ValidationError as exc:
        db.rollback()
        return _candidate_page(application_id, {"reason": exc.errors.get("reason", str(exc))}, {"reason": reason},
                               422)
    except Conflict as exc:
        db.rollback()
        return _decided(application_id, f"Not rejected: {exc}.", "error")
    return _decided(application_id, "Rejected. The candidate sees the reason on their application page.")


# -------------------------------------------------------------------------------------- dashboard


def validity_reading(row: funnel.AssessmentValidity) -> str:
    """The validity figures in one plain sentence."""
    v = row.validity
    if v is None:
        if row.measured < validity_rules.MIN_N:
            return f"not enough vetted trainers with work yet: {row.measured} of the {validity_rules.MIN_N} needed"
        return (f"no ranking to compare yet: the {row.measured} measured trainers all share the same ability "
                f"or the same {row.measure}")
    head = f"ρ = {v.rho:.2f} [{v.low:.2f}, {v.high:.2f}], n = {v.n}: "
    if v.low > 0:
        return head + f"interview ability predicts {row.measure}"
    if v.high < 0:
        return head + f"interview ability predicts {row.measure} the wrong way round; check the bank's gold answers"
    return head + f"no clear link yet between interview ability and {row.measure}"


@bp.get("/dashboard")
@require("admin")
def dashboard():
    db = get_session()
    rows = funnel.validity(db)
    return render_template(
        "recruiting_admin/dashboard.html", stages=funnel.funnel(db), validity=rows,
        readings={row.assessment.id: validity_reading(row) for row in rows},
        agreement=grading.suggestion_agreement(db), duration=duration, theta_bounds=irt.THETA_BOUNDS,
    )


# ---------------------------------------------------------------------------------------- domains


@bp.route("/domains", methods=["GET", "POST"])
@require("admin")
def domains():
    db = get_session()
    errors: dict = {}
    values: dict = {}
    if request.method == "POST":
        values = request.form.to_dict()
        # errors are shown at the form they came from: "+new" (no slug has a "+") or the edited slug
        which = "+new" if values.get("form") != "edit" else (values.get("slug") or "").strip().lower()
        try:
            domain = assessments.save_domain(db, values.get("slug", ""), values.get("name", ""),
                                             values.get("active") == "on", current_user.id, new=which == "+new")
        except ValidationError as exc:
            db.rollback()
            errors = {which: exc.errors}
        else:
            state = "" if domain.active else " (inactive: applicants no longer see it)"
            flash(f"Domain “{domain.name}” saved{state}.", "success")
            return redirect(url_for("recruiting_admin.domains"), code=303)
    return render_template("recruiting_admin/domains.html", taxonomy=applications.domains(db, active_only=False),
                           errors=errors, values=values), 422 if errors else 200


# ------------------------------------------------------------------------------------ assessments


@bp.get("/assessments", endpoint="assessments")
@require("admin")
def assessment_list():
    return render_template("recruiting_admin/assessments.html", rows=assessments.assessments_overview(get_session()),
                           domain_names=applications.domain_names(get_session()))


def _settings_values(assessment) -> dict:
    if assessment is None:
        values = dict(assessments.DEFAULTS)
        values["domain"] = ""
    else:
        values = {name: getattr(assessment, name) for name in (*assessments.SETTINGS, "domain")}
    return {k: "" if v is None else str(v) for k, v in values.items()}


def _assessment_page(slug: str, *, values=None, errors=None, prompt_errors=None, prompt_values=None, status=200):
    db = get_session()
    project, assessment = assessments.qualification_project(db, slug)
    context = {"project": project, "assessment": assessment, "values": values or _settings_values(assessment),
               "errors": errors or {}, "prompt_errors": prompt_errors or {}, "prompt_values": prompt_values or {},
               "taxonomy": applications.domains(db, active_only=False), "levels": ITEM_LEVELS,
               "settings": assessments.SETTINGS, "prompts": [], "answered": set(), "bank": None,
               "page": 1, "pages": 1}
    if assessment is not None:
        page = page_of(assessments.bank_size(db, assessment), BANK_PAGE_SIZE)
        context.update(prompts=assessments.prompts_of(db, assessment), answered=assessments.answered_prompts(db, assessment),
                       bank=assessments.bank_page(db, assessment, page.limit, page.offset), page=page.number,
                       pages=page.pages)
    return render_template("recruiting_admin/assessment.html", **context), status


@bp.route("/assessments/<assessment_slug>", methods=["GET", "POST"])
@require("admin")
def assessment(assessment_slug: str):
    if request.method == "GET":
        return _assessment_page(assessment_slug)
    db = get_session()
    project, existing = assessments.qualification_project(db, assessment_slug)
    values = request.form.to_dict()
    try:
        assessments.save_settings(db, project, values, current_user.id)
    except ValidationError as exc:
        db.rollback()
        return _assessment_page(assessment_slug, values=values, errors=exc.errors, status=422)
    flash("Assessment settings saved." if existing else
          f"“{project.name}” is now an assessment; its gold items are the bank.", "success")
    return redirect(url_for("recruiting_admin.assessment", assessment_slug=assessment_slug), code=303)


def _set_up_or_back(slug: str):
    """The project and its assessment; (project, None) after flashing when it is not set up yet."""
    project, found = assessments.qualification_project(get_session(), slug)
    if found is None:
        flash("Set this project up as an assessment first.", "error")
    return project, found


def _back(slug: str, anchor: str = "", page: int | None = None):
    url = url_for("recruiting_admin.assessment", assessment_slug=slug, page=page if page and page > 1 else None)
    return redirect(url + anchor, code=303)


@bp.post("/assessments/<assessment_slug>/prompts")
@require("admin")
def save_prompt(assessment_slug: str):
    db = get_session()
    _project, found = _set_up_or_back(assessment_slug)
    if found is None:
        return _back(assessment_slug)
    raw_id = request.form.get("prompt_id", "")
    prompt_id = row_id(raw_id) if raw_id else None
    key = str(prompt_id) if prompt_id else "new"
    if raw_id and prompt_id is None:
        return _assessment_page(assessment_slug, prompt_errors={"new": {"prompt": "refers to no prompt; reload the page"}},
                                status=422)
    try:
        assessments.save_prompt(db, found, prompt_id, request.form, current_user.id)
    except ValidationError as exc:
        db.rollback()
        return _assessment_page(assessment_slug, prompt_errors={key: exc.errors},
                                prompt_values={key: request.form.to_dict()}, status=422)
    flash("Written prompt saved." if prompt_id else "Written prompt added.", "success")
    return _back(assessment_slug, "#prompts")


@bp.post("/assessments/<assessment_slug>/prompts/delete")
@require("admin")
def delete_prompt(assessment_slug: str):
    db = get_session()
    _project, found = _set_up_or_back(assessment_slug)
    if found is None:
        return _back(assessment_slug)
    prompt_id = row_id(request.form.get("prompt_id"))
    if prompt_id is None:
        return _assessment_page(assessment_slug, prompt_errors={"delete": {"prompt_id": "choose a prompt to delete"}},
                                status=422)
    try:
        assessments.delete_prompt(db, found, prompt_id, current_user.id)
    except Conflict as exc:
        db.rollback()
        flash(f"Not deleted: {exc}.", "error")
    else:
        flash("Written prompt deleted.", "success")
    return _back(assessment_slug, "#prompts")


@bp.post("/assessments/<assessment_slug>/levels")
@require("admin")
def levels(assessment_slug: str):
    db = get_session()
    _project, found = _set_up_or_back(assessment_slug)
    if found is None:
        return _back(assessment_slug)
    chosen: dict[int, str] = {}
    for key, value in request.form.items():
        if key.startswith("level-"):
            item_id = row_id(key.removeprefix("level-"))
            if item_id is None:
                return _assessment_page(assessment_slug, status=422, errors={"levels": "an item in the form is not one "
                                                                                       "of the bank; reload the page"})
            chosen[item_id] = value.strip().lower()
    page = row_id(request.form.get("page"))
    try:
        changed = assessments.set_levels(db, found, chosen, current_user.id)
    except ValidationError:
        db.rollback()
        flash("Levels are easy, medium or hard; nothing was changed.", "error")
        return _back(assessment_slug, "#bank", page)
    if changed:
        flash(f"{changed} level{'s' if changed != 1 else ''} changed; uncalibrated items take the new level's "
              "difficulty.", "success")
    else:
        flash("No level changed.", "info")
    return _back(assessment_slug, "#bank", page)


@bp.post("/assessments/<assessment_slug>/calibrate")
@require("admin")
def calibrate(assessment_slug: str):
    _project, found = _set_up_or_back(assessment_slug)
    if found is None:
        return _back(assessment_slug)
    handle = enqueue(calibrate_assessment, found.id)  # ends this request's transaction: the job writes
    if handle.status == "delayed":  # nothing remembers a calibration to run later
        flash(f"Not queued: {handle.error}. Nothing was calibrated; try again in a minute.", "error")
        return _back(assessment_slug, "#bank")
    if handle.backend != "inline":
        flash("Calibrating in the background; reload in a minute to see the new parameters.", "info")
        return _back(assessment_slug, "#bank")
    try:
        handle.wait(timeout=120)
    except TimeoutError:
        pass  # still running: said below
    result = handle.result or {}
    if handle.status != "finished":
        flash(f"Calibration failed: {handle.error or 'it is still running; reload in a minute'}.", "error")
    elif result.get("reason"):
        flash(f"Nothing calibrated: {result['reason']}.", "info")
    else:
        n = result.get("calibrated", 0)
        flash(f"Calibrated {n} item{'s' if n != 1 else ''} from {result.get('candidates', 0)} candidates' answers; "
              "items with fewer answers than the threshold keep their level's difficulty.", "success")
    return _back(assessment_slug, "#bank")
