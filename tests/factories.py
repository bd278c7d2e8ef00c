"""Short builders for test data (CTFd's gen_* style): each commits and returns the row."""

from __future__ import annotations

import itertools

from app.services import projects as project_service
from app.services import users as user_service

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def make_user(session, *roles: str, email: str | None = None, name: str | None = None, password: str = PASSWORD):
    n = next(_seq)
    user = user_service.create_user(
        session, email or f"user{n}@example.test", name or f"User {n}", password, roles or ("trainer",)
    )
    session.commit()
    return user


def make_label_project(session, *, items: int = 5, overlap: int = 1, trainers=(), status: str = "active",
                       lease_minutes: int = 30, slug: str | None = None, prompts=None, kind: str = "work"):
    n = next(_seq)
    project = project_service.create_project(
        session,
        name=f"Labelling {n}",
        slug=slug or f"labelling-{n}",
        kind=kind,
        status=status,
        overlap=overlap,
        lease_minutes=lease_minutes,
        instructions="Pick the label that fits.",
        questions=[{"key": "label", "type": "label", "title": "Label?", "options": {"labels": ["yes", "no"]}}],
    )
    for i in range(items):
        prompt = prompts[i] if prompts else f"Prompt number {i + 1}"
        project_service.add_item(session, project, prompt=prompt, responses=[f"Response {i + 1}"], external_id=f"it-{i + 1}")
    for trainer in trainers:
        project_service.add_member(session, project, trainer, "trainer")
    session.commit()
    return project


def make_assessment(session, domain: str = "medicine", *, items: int = 30, prompts: int = 1, slug: str | None = None,
                    **settings):
    """A qualification project with ``items`` gold label items (the right answer is always "yes";
    levels cycle easy, medium, hard), ``prompts`` written prompts and an Assessment for ``domain``
    (the domain enters the taxonomy). Returns the Assessment."""
    from app.models import Assessment, Domain, WrittenPrompt

    if session.query(Domain).filter_by(slug=domain).first() is None:
        session.add(Domain(slug=domain, name=domain.capitalize()))
    project = make_label_project(session, items=0, slug=slug, kind="qualification")
    for i in range(items):
        item = project_service.add_item(session, project, prompt=f"{domain} question {i + 1}",
                                        responses=[f"Answer {i + 1}"], external_id=f"q-{i + 1}",
                                        metadata={"level": ("easy", "medium", "hard")[i % 3]})
        item.is_gold, item.gold_answers = True, {"label": "yes"}
    session.flush()
    assessment = Assessment(project_id=project.id, domain=domain, **settings)
    session.add(assessment)
    session.flush()
    for i in range(prompts):
        session.add(WrittenPrompt(assessment_id=assessment.id, position=i, prompt=f"Explain {domain} case {i + 1}.",
                                  rubric="Full marks for a safe, complete answer."))
    session.commit()
    return assessment


def make_applicant(session, domains=("medicine",), *, email: str | None = None, name: str = "Casey Candidate"):
    """An applicant through the real application form (the domains must be in the taxonomy)."""
    from app.services.recruiting import applications

    n = next(_seq)
    form = applications.ApplicationForm(
        email=email or f"candidate{n}@example.test", name=name, password=PASSWORD, domains=tuple(domains),
        languages="en", years_experience="5", credentials="", timezone="UTC", availability_hours_per_week="20",
        desired_rate="40.00", consent=True)
    return applications.apply(session, form)
