"""Small projects with known answers, and a helper that builds an export and reads its files back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from app.db import get_db
from app.models import Item
from app.services import assignment as queue
from app.services import projects as project_service
from app.services.exporting import create_export, run_export
from app.services.exporting.source import Pseudonyms
from app.services.presets import preset_questions
from tests.factories import make_user


@dataclass
class Built:
    export: object
    folder: Path

    def lines(self, name: str = "train.jsonl") -> list[dict]:
        return [orjson.loads(line) for line in (self.folder / name).read_bytes().splitlines()]

    def raw(self, name: str = "train.jsonl") -> bytes:
        return (self.folder / name).read_bytes()


@pytest.fixture
def build(app, session):
    """build(project, format=..., **options) -> Built, run in this process like the job would."""
    with app.app_context():
        factory = get_db().session_factory

    def run(project, processes: int = 1, **options) -> Built:
        export = create_export(session, project, options, actor_id=None)
        session.commit()
        done = run_export(factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"], processes=processes)
        return Built(done, Path(app.config["EXPORT_DIR"]) / done.path)

    return run


@pytest.fixture
def pseudonym(app):
    return Pseudonyms(app.config["SECRET_KEY"])


def annotate(session, trainer, project, answers: dict[str, dict]) -> None:
    """The trainer works through the queue, answering the items named in ``answers`` (others skipped)."""
    while (a := queue.next_task(session, trainer.id, project)) is not None:
        external_id = a.item.external_id
        if external_id in answers:
            queue.submit(session, a.id, trainer.id, answers[external_id])
        else:
            queue.skip(session, a.id, trainer.id, "not in this test")


def make_project(session, preset: str, items: list[tuple], overlap: int = 2, questions=None, slug=None):
    project = project_service.create_project(
        session, name=f"Export {preset} {slug or ''}".strip(), slug=slug, status="active", overlap=overlap,
        questions=questions or preset_questions(preset),
    )
    for external_id, prompt, responses in items:
        project_service.add_item(session, project, prompt=prompt, responses=responses, external_id=external_id)
    session.commit()
    return project


@pytest.fixture
def trainers(session):
    names = ("Adaline Quillfeather", "Bodhrana Fenwickstrand")
    users = [make_user(session, "trainer", email=f"{n.lower().replace(' ', '.')}@pii.example", name=n) for n in names]
    return users


def with_members(session, project, users):
    for user in users:
        project_service.add_member(session, project, user, "trainer")
    session.commit()
    return project


@pytest.fixture
def pairs_project(session, trainers):
    project = make_project(session, "pairwise", [
        ("p1", "Q1", [{"id": "a", "text": "A1"}, {"id": "b", "text": "B1"}]),
        ("p2", "Q2", [{"id": "a", "text": "A2"}, {"id": "b", "text": "B2"}]),
    ], slug="pairs")
    with_members(session, project, trainers)
    t1, t2 = trainers
    annotate(session, t1, project, {"p1": {"preference": -2, "rationale": "r"}, "p2": {"preference": 0, "rationale": "r"}})
    annotate(session, t2, project, {"p1": {"preference": -1, "rationale": "r"}, "p2": {"preference": 3, "rationale": "r"}})
    return project


@pytest.fixture
def ranking_project(session, trainers):
    project = make_project(session, "ranking", [("k1", "Rank these", ["R1", "R2", "R3"])], slug="ranks")
    with_members(session, project, trainers)
    t1, t2 = trainers
    annotate(session, t1, project, {"k1": {"ranking": [["r1"], ["r2"], ["r3"]]}})
    annotate(session, t2, project, {"k1": {"ranking": [["r2"], ["r1", "r3"]]}})
    return project


CRITIQUE_TEXT = "Misses the key caveat entirely."
CRITIQUE_SPAN = {"response": "r1", "start": 0, "end": 4, "label": "unclear", "comment": "vague"}


@pytest.fixture
def critique_project(session, trainers):
    project = make_project(session, "critique", [("c1", "Explain X", ["Orig"])], slug="crit")
    with_members(session, project, trainers)
    t1, t2 = trainers
    keys = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    annotate(session, t1, project, {"c1": {**dict(zip(keys, (2, 3, 4, 1, 2), strict=True)),
                                           "critique": CRITIQUE_TEXT, "rewrite": "Better answer",
                                           "problems": [CRITIQUE_SPAN]}})
    annotate(session, t2, project, {"c1": {**dict(zip(keys, (3, 3, 3, 2, 2), strict=True)),
                                           "critique": CRITIQUE_TEXT}})
    return project


@pytest.fixture
def label_project(session, trainers):
    questions = [{"key": "verdict", "type": "label", "title": "Good?", "options": {"labels": ["yes", "no"]}}]
    project = make_project(session, "labelling", [("l1", "Q1", ["Resp 1"]), ("l2", "Q2", ["Resp 2"])],
                           questions=questions, slug="labels")
    with_members(session, project, trainers)
    t1, t2 = trainers
    annotate(session, t1, project, {"l1": {"verdict": "yes"}, "l2": {"verdict": "yes"}})
    annotate(session, t2, project, {"l1": {"verdict": "yes"}, "l2": {"verdict": "no"}})
    return project


def item_id(session, project, external_id: str) -> int:
    from sqlalchemy import select

    return session.scalar(select(Item.id).where(Item.project_id == project.id, Item.external_id == external_id))
