"""Finding 1: JSON written into an attribute cannot break out of it, and rankings name only the item's
own responses."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.errors import ValidationError
from app.models import Annotation, Assignment, Item, utcnow
from app.services import assignment as queue
from app.services import projects as project_service
from app.services.presets import preset_questions
from tests.factories import make_user
from tests.html import elements

from .conftest import sign_in

PAYLOAD = 'r1" hx-get="/pwned" hx-trigger="load" data-pwned="1'


def _ranking_project(session, responses):
    trainer, reviewer = make_user(session, "trainer"), make_user(session, "reviewer")
    project = project_service.create_project(session, name="Rank", slug="rank", status="active",
                                             questions=preset_questions("ranking"), review_rate=1.0)
    project_service.add_item(session, project, prompt="Rank these", responses=responses, external_id="i1")
    project_service.add_member(session, project, trainer, "trainer")
    project_service.add_member(session, project, reviewer, "reviewer")
    session.commit()
    return trainer, reviewer, project


def test_a_ranking_for_an_item_without_responses_is_refused(session):
    trainer, _reviewer, project = _ranking_project(session, [])
    held = queue.next_task(session, trainer.id, project)
    with pytest.raises(ValidationError):
        queue.submit(session, held.id, trainer.id, {"ranking": [[PAYLOAD]], "rationale": "x" * 30})


def _stored_hostile_ranking(session):
    """A stored answer naming a hostile response id, as older data or a bypassed check could leave it."""
    trainer, reviewer, project = _ranking_project(session, [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}])
    item = session.scalar(select(Item))
    item.responses = [{"id": PAYLOAD, "text": "one"}, {"id": "b", "text": "two"}]
    assignment = Assignment(item_id=item.id, project_id=project.id, trainer_id=trainer.id, status="submitted",
                            assigned_at=utcnow(), expires_at=utcnow())
    session.add(assignment)
    session.flush()
    session.add(Annotation(assignment_id=assignment.id, item_id=item.id, project_id=project.id, trainer_id=trainer.id,
                           answers={"ranking": [[PAYLOAD], ["b"]], "rationale": "because"}, review_reason="sampled"))
    session.commit()
    return trainer, reviewer, project


def _injected(html: str) -> list:
    return [(tag, attrs) for tag, attrs in elements(html)
            if "data-pwned" in attrs or any("/pwned" in (v or "") for k, v in attrs.items() if k.startswith("hx-"))]


def test_the_review_queue_renders_a_hostile_ranking_without_new_attributes(client, session):
    _trainer, reviewer, project = _stored_hostile_ranking(session)
    sign_in(client, reviewer)
    page = client.get(f"/review/{project.slug}/queue").get_data(as_text=True)
    assert 'data-testid="review"' in page
    assert _injected(page) == []
    # the correction widget carries the posted order back intact
    values = [attrs.get("value") for tag, attrs in elements(page) if "data-ranking-value" in attrs]
    assert values and all(v is None or v.startswith("[") for v in values)
