"""A world where every text a person or an import can set is an attack, and its benign twin.

``build(session, text)`` makes the same rows in the same order whatever ``text`` returns, so a page
rendered from the hostile world and from the twin has the same elements and attributes; anything
more in the hostile one was written by the data, not by the template. Rows the validators would
refuse today (hostile response ids, a ranking naming them) are written straight to the tables, as
older data or a future bug could leave them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from app.models import (
    Annotation,
    Assignment,
    AuditEvent,
    ImportJob,
    Item,
    PayAdjustment,
    Project,
    Review,
    User,
    utcnow,
)
from app.services import assignment as queue
from app.services import projects as project_service
from app.services import users as user_service
from app.services.stats import compute_project_stats

# Breaks out of a double- or single-quoted attribute, opens an element, adds htmx attributes that
# fire on load; under 100 characters so it fits a label.
PAYLOAD = "'\"><svg onload=pwn()>\" data-pwned=\"1\" hx-get=\"/pwned\" hx-trigger=\"load\" x=\""
PASSWORD = "hostile-world-password"


def hostile(kind: str) -> str:
    return f"{PAYLOAD}{kind}"


def benign(kind: str) -> str:
    """The same text with every character that could end an attribute or start a tag replaced."""
    return "".join("q" if c in "\"'<>=&/" else c for c in hostile(kind))


@dataclass
class HostileWorld:
    admin: User
    reviewer: User
    trainer: User
    labels: Project  # label, multi-label, rating and text questions
    pairs: Project  # preference
    ranks: Project  # ranking
    import_id: int
    export_id: int | None = None


def _user(session, email, roles, text, kind):
    return user_service.create_user(session, email, text(kind), PASSWORD, roles)


def build(session, text) -> HostileWorld:
    admin = _user(session, "admin@hostile.test", ["admin"], text, "admin-name")
    reviewer = _user(session, "reviewer@hostile.test", ["reviewer"], text, "reviewer-name")
    trainer = _user(session, "trainer@hostile.test", ["trainer"], text, "trainer-name")
    session.commit()

    def project(slug, questions):
        p = project_service.create_project(
            session, name=text(f"{slug}-name"), slug=slug, status="active", questions=questions, review_rate=1.0,
            instructions=text(f"{slug}-instructions"), show_model_names=True,
            required_domains=["medicine"], budget_cents=100_000, hourly_rate_cents=3000,
        )
        project_service.add_member(session, p, trainer, "trainer")
        project_service.add_member(session, p, reviewer, "reviewer")
        return p

    def q(key, type_, options, required=True):
        return {"key": key, "type": type_, "title": text(f"{key}-title"), "help": text(f"{key}-help"),
                "options": options, "required": required}

    labels = project("labels", [
        q("label", "label", {"labels": [text("l1")[:100], text("l2")[:100]]}),
        q("tags", "multi_label", {"labels": [text("m1")[:100], text("m2")[:100]]}),
        q("score", "rating", {"min": 1, "max": 3, "anchors": {"1": text("anchor-1"), "3": text("anchor-3")}}),
        q("note", "text", {"min_chars": 0, "mode": "critique"}, required=False),
    ])
    pairs = project("pairs", [q("pref", "preference", {"scale": 2}), q("why", "text", {"min_chars": 0}, False)])
    ranks = project("ranks", [q("rank", "ranking", {"allow_ties": True})])
    session.commit()

    responses = [{"id": text("rid-a"), "text": text("response-a"), "model": text("model-a")},
                 {"id": text("rid-b"), "text": text("response-b"), "model": text("model-b")}]
    answers = {
        labels.id: {"label": text("l1")[:100], "tags": [text("m2")[:100]], "score": 2, "note": text("note")},
        pairs.id: {"pref": -1, "why": text("why")},
        ranks.id: {"rank": [[text("rid-b")], [text("rid-a")]]},
    }
    now = utcnow()
    for p in (labels, pairs, ranks):
        for n in range(3):
            session.add(Item(
                project_id=p.id, external_id=text(f"{p.slug}-item-{n}"),
                context=[{"role": "system", "content": text("system")}, {"role": "user", "content": text("prompt")}],
                responses=responses if p is not labels else responses[:1], meta={text("meta-key"): text("meta-value")},
                is_gold=n == 2, gold_answers=answers[p.id] if n == 2 else None,
            ))
        session.flush()
        # one submitted answer waiting for review, one reviewed (feedback), one task open now
        for n, item in enumerate(session.query(Item).filter_by(project_id=p.id).order_by(Item.id)):
            if n == 2:
                break
            a = Assignment(item_id=item.id, project_id=p.id, trainer_id=trainer.id, status="submitted",
                           assigned_at=now - timedelta(hours=1), expires_at=now, active_seconds=60 + n,
                           finished_at=now)
            session.add(a)
            session.flush()
            stored = {k: v for k, v in answers[p.id].items() if p is not labels or k != "tags" or n == 0}
            annotation = Annotation(assignment_id=a.id, item_id=item.id, project_id=p.id, trainer_id=trainer.id,
                                    answers=stored, submitted_at=now, active_seconds=60 + n,
                                    review_reason="sampled" if n == 0 else "failed_gold",
                                    review_status="unreviewed" if n == 0 else "rejected")
            session.add(annotation)
            session.flush()
            if n == 1:
                session.add(Review(annotation_id=annotation.id, reviewer_id=reviewer.id, verdict="reject",
                                   comment=text("review-comment")))
            item.done_count = 1
        session.add(PayAdjustment(trainer_id=trainer.id, project_id=p.id, week_start=now.date(), kind="bonus",
                                  amount_cents=100, reason=text("bonus-reason"), created_by=admin.id))
    session.add(AuditEvent(actor_id=admin.id, action=text("action")[:64], target_type=text("target")[:40],
                           target_id=text("target-id")[:64], data={text("audit-key"): text("audit-value")}))
    job = ImportJob(project_id=labels.id, created_by=admin.id, filename=text("file")[:255], path="/nowhere",
                    format="jsonl", status="failed", message=text("import-message"), error_count=1,
                    errors=[{"line": 1, "field": text("field"), "message": text("import-error")}])
    session.add(job)
    session.commit()
    for p in (labels, pairs, ranks):
        compute_project_stats(session, p)
    session.commit()
    return HostileWorld(admin, reviewer, trainer, labels, pairs, ranks, job.id)


def open_task(session, world: HostileWorld, project: Project):
    """The trainer's live task in ``project`` (its last item, which is gold)."""
    return queue.next_task(session, world.trainer.id, project)


def pages(world: HostileWorld) -> list[tuple[str, str]]:
    """(who, path) of every page that shows item, answer, question or person data."""
    slugs = [p.slug for p in (world.labels, world.pairs, world.ranks)]
    found = [("trainer", "/work/"), ("trainer", "/work/feedback"), ("trainer", "/work/earnings")]
    found += [("trainer", f"/work/{s}") for s in slugs]
    found += [("reviewer", "/review/")]
    for s in slugs:
        found += [("reviewer", f"/review/{s}"), ("reviewer", f"/review/{s}/queue")]
    found += [("admin", p) for p in ("/admin/", "/admin/people", f"/admin/people/{world.trainer.id}", "/admin/audit",
                                     "/admin/payroll", f"/admin/imports/{world.import_id}",
                                     f"/admin/projects/{slugs[0]}/import")]
    for s in slugs:
        found += [("admin", f"/admin/projects/{s}"), ("admin", f"/admin/projects/{s}/edit"),
                  ("admin", f"/admin/projects/{s}/quality"), ("admin", f"/admin/projects/{s}/trainers/{world.trainer.id}"),
                  ("admin", f"/admin/projects/{s}/exports/"), ("review", f"/review/{s}/queue")]
    if world.export_id:
        found.append(("admin", f"/admin/projects/{slugs[0]}/exports/{world.export_id}"))
    found.append(("admin", "/admin/question-row?" + urlencode({"type": "label", "n": "3", "key": world.trainer.name,
                                                                "title": world.trainer.name})))
    return [(who if who != "review" else "admin", path) for who, path in found]
