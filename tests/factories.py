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
