"""No statement on the statistics path or behind the pages binds one parameter per row of data.

SQLite refuses a statement with more than SQLITE_LIMIT_VARIABLE_NUMBER parameters (32,766 by
default): an IN list of every item broke `groundwork metrics` on any project past that size. Here the
limit is lowered to 50 on every connection, and a project with several times that many items,
annotations and trainers has its statistics computed and every page that lists or counts it opened.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm.strategies import _SelectInLoader

from app.models import Annotation, Assignment, Timesheet, User, UserRole, utcnow
from app.services import pay
from app.services import projects as project_service
from app.services import stats as stats_service
from tests.conftest import get_db_engine, login
from tests.factories import PASSWORD, make_user

LIMIT = 50
ITEMS, TRAINERS = 160, 70  # both well past the limit


def _limit_parameters(app) -> None:
    engine = get_db_engine(app)
    engine.dispose()  # every connection from now on is made with the limit

    @event.listens_for(engine, "connect")
    def lower_limit(dbapi_connection, _record):
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, LIMIT)


def _big_project(session):
    rng = random.Random(5)
    admin = make_user(session, "admin")
    client_user = make_user(session, "client")
    worker = make_user(session, "trainer")
    people = [worker]
    for n in range(TRAINERS - 1):  # quicker than hashing a password each
        user = User(email=f"bulk{n}@example.test", name=f"Bulk {n}", password_hash="x")
        session.add(user)
        session.flush()
        session.add(UserRole(user_id=user.id, role="trainer"))
        people.append(user)
    session.commit()
    project = project_service.create_project(
        session, name="Large", slug="large", kind="work", status="active", overlap=2, lease_minutes=30,
        instructions="", questions=[{"key": "preference", "type": "preference", "title": "Which is better?",
                                     "options": {"scale": 3}}])
    project.budget_cents = 10_000_000
    for person in people:
        project_service.add_member(session, project, person, "trainer")
    project_service.add_member(session, project, client_user, "client")
    items = [project_service.add_item(session, project, prompt=f"Prompt {n}", responses=["first", "second"],
                                      external_id=f"it-{n}") for n in range(ITEMS)]
    session.commit()
    now = utcnow()
    for n, item in enumerate(items):
        for k, person in enumerate(rng.sample(people, 2)):
            claimed = now - timedelta(days=(n * 2 + k) % 30)  # five weeks of work
            assignment = Assignment(item_id=item.id, project_id=project.id, trainer_id=person.id, status="submitted",
                                    assigned_at=claimed, expires_at=claimed, active_seconds=30 + n)
            session.add(assignment)
            session.flush()
            session.add(Annotation(assignment_id=assignment.id, item_id=item.id, project_id=project.id,
                                   trainer_id=person.id, answers={"preference": rng.choice([-2, -1, 1, 2])},
                                   submitted_at=claimed, active_seconds=30 + n,
                                   review_reason="sampled" if n % 3 == 0 else None))
        item.done_count = 2
    session.commit()
    return project, admin, client_user, worker


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_statistics_and_pages_bind_a_bounded_number_of_parameters(app, session, monkeypatch):
    project, admin, client_user, worker = _big_project(session)
    week = pay.week_of(utcnow() - timedelta(days=14))
    pay.approve(session, week, None, admin.id)  # a timesheet per trainer: pay reads around them
    assert session.scalar(select(Timesheet.id).limit(1)) is not None
    _limit_parameters(app)
    monkeypatch.setattr(pay, "ID_CHUNK", LIMIT - 10)
    # SQLAlchemy's selectin loads (a user's roles) bind up to 500 ids a statement: scaled down with the limit.
    monkeypatch.setattr(_SelectInLoader, "_chunksize", LIMIT - 10)

    stats = stats_service.compute_project_stats(session, project)
    assert stats.annotations == 2 * ITEMS
    assert stats.figures["items_annotated"] == ITEMS
    assert stats.figures["trainers"] > LIMIT

    pages = {
        admin.email: ["/admin/", "/admin/projects/large", "/admin/projects/large/quality", "/admin/payroll",
                      f"/admin/payroll?week={pay.week_label(week)}", "/review/", "/review/large",
                      "/review/large/queue"],
        client_user.email: ["/client/", "/client/large", "/client/large/quality"],
        worker.email: ["/work/earnings"],
    }
    for email, paths in pages.items():
        browser = app.test_client()
        assert login(browser, email, PASSWORD).status_code in (302, 303)
        for path in paths:
            response = browser.get(path)
            assert response.status_code == 200, path
