"""Counter repair: item counters set wrong in the database are put right from the assignments."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.errors import NotFound
from app.models import Item
from app.services import assignment as queue
from app.services.maintenance import recount_item_counters
from tests.factories import make_label_project, make_user


def counters(session, project) -> dict[str, tuple[int, int, bool]]:
    session.rollback()  # a fresh snapshot
    return {row.external_id: (row.done_count, row.active_count, row.is_open) for row in session.execute(
        select(Item.external_id, Item.done_count, Item.active_count, Item.is_open)
        .where(Item.project_id == project.id))}


def break_counters(session, project, **wrong: tuple[int, int, bool]) -> None:
    for external_id, (done, active, is_open) in wrong.items():
        session.execute(update(Item).where(Item.project_id == project.id, Item.external_id == external_id.replace("_", "-"))
                        .values(done_count=done, active_count=active, is_open=is_open))
    session.commit()


def worked_project(session):
    """Overlap 2 over three items: it-1 answered twice (full), it-2 answered once and held by a
    second trainer, it-3 untouched."""
    first, second = make_user(session, "trainer"), make_user(session, "trainer")
    project = make_label_project(session, items=3, overlap=2, trainers=[first, second])
    for trainer in (first, second):
        a = queue.next_task(session, trainer.id, project)
        queue.submit(session, a.id, trainer.id, {"label": "yes"})
    a = queue.next_task(session, first.id, project)  # it-2, submitted…
    queue.submit(session, a.id, first.id, {"label": "no"})
    queue.next_task(session, second.id, project)  # …and held
    return project


RIGHT = {"it-1": (2, 0, False), "it-2": (1, 1, False), "it-3": (0, 0, True)}


def test_the_worked_project_starts_right(session):
    assert counters(session, worked_project(session)) == RIGHT


def test_recount_corrects_done_active_and_open_set_wrong(session):
    project = worked_project(session)
    other = make_label_project(session, items=1)
    break_counters(session, project, it_1=(0, 3, True), it_2=(7, 0, True), it_3=(1, 1, False))
    break_counters(session, other, it_1=(4, 4, True))  # another project's counters are not ours to fix
    assert recount_item_counters(session, project.id) == 3
    session.commit()
    assert counters(session, project) == RIGHT
    assert counters(session, other) == {"it-1": (4, 4, True)}


def test_recount_fixes_an_open_flag_that_alone_was_wrong(session):
    project = worked_project(session)
    break_counters(session, project, it_1=(2, 0, True), it_3=(0, 0, False))
    assert recount_item_counters(session, project.id) == 0  # no counter was wrong…
    session.commit()
    assert counters(session, project) == RIGHT  # …and the open flags follow the counters again


def test_recount_of_a_right_project_changes_nothing(session):
    project = worked_project(session)
    assert recount_item_counters(session, project.id) == 0
    session.commit()
    assert counters(session, project) == RIGHT


def test_recount_of_an_unknown_project_is_not_found(session):
    with pytest.raises(NotFound):
        recount_item_counters(session, 987654)


def test_the_recount_job_reports_what_it_corrected(app, session):
    from tasks.jobs import recount_items

    project = worked_project(session)
    break_counters(session, project, it_2=(0, 0, True))
    with app.app_context():
        assert recount_items(project.id) == {"project_id": project.id, "items_corrected": 1}
    assert counters(session, project) == RIGHT
