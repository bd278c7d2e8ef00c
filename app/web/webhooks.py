"""Admin: a project's webhooks — add, enable or disable, send a test event, rotate the secret, delete —
and the delivery log, with a redelivery of a failed one. Deliveries go out after the commit that made
them (``tasks`` listens for it); these views never post anything themselves."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import Conflict, ValidationError
from app.models import Project, utcnow
from app.services import projects as project_service
from app.services import webhooks

from .access import require
from .paging import page_of

bp = Blueprint("webhooks", __name__, url_prefix="/admin/projects/<slug>/webhooks")

PAGE_SIZE = 25
POLL_WITHIN = timedelta(seconds=60)  # the log refreshes itself while an attempt is due this soon


def _project(slug: str) -> Project:
    return project_service.get_by_slug(get_session(), slug)


def _page(project: Project, values: dict | None = None, errors: dict | None = None, status: int = 200):
    db = get_session()
    total = webhooks.count_deliveries(db, project)
    page = page_of(total, PAGE_SIZE)
    deliveries = webhooks.deliveries_of(db, project, page.limit, page.offset)
    hooks = webhooks.webhooks_of(db, project)
    now = utcnow()
    overdue = {d.id for d in deliveries if webhooks.is_overdue(d, now)}
    poll = any(d.status == "pending" and d.id not in overdue
               and (d.next_attempt_at is None or d.next_attempt_at <= now + POLL_WITHIN) for d in deliveries)
    return render_template(
        "webhooks/index.html", project=project, hooks=hooks, by_id={h.id: h for h in hooks},
        shown={h.id: webhooks.shown_url(h.url) for h in hooks},
        deliveries=deliveries, overdue=overdue, poll=poll, page=page.number, pages=page.pages, total=total,
        events=webhooks.EVENT_TITLES, url_max=webhooks.URL_MAX, values=values or {"url": "", "events": []},
        errors=errors or {},
    ), status


def _back(project: Project, anchor: str = ""):
    return redirect(url_for("webhooks.index", slug=project.slug) + anchor, code=303)


@bp.get("/")
@require("admin")
def index(slug: str):
    return _page(_project(slug))


@bp.post("/")
@require("admin")
def create(slug: str):
    db = get_session()
    project = _project(slug)
    values = {"url": request.form.get("url", "").strip(), "events": request.form.getlist("events")}
    try:
        hook = webhooks.create_webhook(db, project, values["url"], values["events"], current_user.id)
    except ValidationError as exc:
        db.rollback()
        return _page(project, values, exc.errors, 422)
    flash(f"Webhook added: events go to {webhooks.shown_url(hook.url)}. Its signing secret is shown below it.",
          "success")
    return _back(project, f"#webhook-{hook.id}")


@bp.post("/<int:webhook_id>/active")
@require("admin")
def set_active(slug: str, webhook_id: int):
    db = get_session()
    project = _project(slug)
    webhooks.get_webhook(db, project, webhook_id)
    choice = request.form.get("active", "")
    if choice not in ("1", "0"):
        raise ValidationError({"active": "choose enable (1) or disable (0)"})
    hook = webhooks.set_active(db, project, webhook_id, choice == "1", current_user.id)
    flash(f"Webhook to {webhooks.shown_url(hook.url)} is "
          f"{'enabled' if hook.active else 'disabled: it gets no events'}.", "success")
    return _back(project, f"#webhook-{hook.id}")


@bp.post("/<int:webhook_id>/rotate")
@require("admin")
def rotate(slug: str, webhook_id: int):
    db = get_session()
    project = _project(slug)
    hook = webhooks.rotate_secret(db, project, webhook_id, current_user.id)
    flash(f"New signing secret for {webhooks.shown_url(hook.url)}: every delivery from now on is signed with it.",
          "success")
    return _back(project, f"#webhook-{hook.id}")


@bp.post("/<int:webhook_id>/delete")
@require("admin")
def delete(slug: str, webhook_id: int):
    db = get_session()
    project = _project(slug)
    webhooks.get_webhook(db, project, webhook_id)
    if request.form.get("confirm") != "delete":
        raise ValidationError({"confirm": "confirm the deletion"})
    url = webhooks.delete_webhook(db, project, webhook_id, current_user.id)
    flash(f"Webhook to {webhooks.shown_url(url)} deleted, with its delivery log.", "success")
    return _back(project)


@bp.post("/<int:webhook_id>/test")
@require("admin")
def send_test(slug: str, webhook_id: int):
    db = get_session()
    project = _project(slug)
    try:
        delivery = webhooks.send_test(db, project, webhook_id, current_user.id)
    except Conflict as exc:
        flash(f"{exc}.", "error")
        return _back(project, f"#webhook-{webhook_id}")
    flash(f"Test event {delivery.event_id} is on its way; its result appears in the log.", "success")
    return _back(project, "#deliveries")


@bp.get("/deliveries/<int:delivery_id>")
@require("admin")
def delivery(slug: str, delivery_id: int):
    db = get_session()
    project = _project(slug)
    found = webhooks.get_delivery(db, project, delivery_id)
    hook = webhooks.get_webhook(db, project, found.webhook_id)
    return render_template(
        "webhooks/delivery.html", project=project, delivery=found, hook=hook, shown=webhooks.shown_url(hook.url),
        payload=json.dumps(found.payload, indent=2, sort_keys=True, ensure_ascii=False),
        overdue=webhooks.is_overdue(found),
    )


@bp.post("/deliveries/<int:delivery_id>/redeliver")
@require("admin")
def redeliver(slug: str, delivery_id: int):
    db = get_session()
    project = _project(slug)
    try:
        found = webhooks.redeliver(db, project, delivery_id, current_user.id)
        flash(f"Event {found.event_id} is being sent again; the log shows the result.", "success")
    except Conflict as exc:
        flash(f"{exc}.", "error")
    if request.form.get("back") == "delivery":
        return redirect(url_for("webhooks.delivery", slug=project.slug, delivery_id=delivery_id), code=303)
    return _back(project, "#deliveries")
