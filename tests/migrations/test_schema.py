"""Migrations are code: `upgrade head` from empty gives exactly the models' schema, on both databases."""

import orjson
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import make_engine
from app.migrate import current_revision, downgrade, include_object_for, upgrade
from app.models import Base


def test_upgrade_from_empty_matches_the_models_and_downgrades_cleanly(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert current_revision(engine) is not None
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": include_object_for(conn.dialect.name)}
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def test_upgrading_keeps_existing_work(database_url):
    """A batch migration on SQLite rebuilds a table: nothing that points at it may be lost on the way."""
    from sqlalchemy import text

    engine = make_engine(database_url)
    try:
        upgrade(engine, "121d4eaca778")  # before the pay migration rebuilt `projects`
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, email, name, password_hash, status, created_at) "
                "VALUES (1, 'a@example.test', 'A', 'x', 'active', '2026-11-20 10:00:00')"))
            _project_row(conn)
            conn.execute(text(
                "INSERT INTO items (id, project_id, external_id, context, responses, metadata, is_gold, priority, "
                "done_count, active_count, is_open, created_at) VALUES (1, 1, 'i1', '[]', '[]', '{}', false, 0, 0, 0, "
                "true, '2026-11-20 10:00:00')"))
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM items")).scalar() == 1
            assert conn.execute(text("SELECT pause_at_budget FROM projects")).scalar() in (True, 1)
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def test_upgrading_collapses_a_trainers_extra_live_leases(database_url):
    """The race the security migration closes may have left several live leases for one trainer in a
    project: the newest stays, the others expire and their items' slots come back."""
    from sqlalchemy import text

    engine = make_engine(database_url)
    try:
        upgrade(engine, "f8624564e1d0")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, email, name, password_hash, status, created_at) "
                "VALUES (1, 'a@example.test', 'A', 'x', 'active', '2026-11-20 10:00:00')"))
            conn.execute(text(
                "INSERT INTO projects (id, name, slug, kind, status, instructions, overlap, lease_minutes, gold_rate, "
                "review_rate, hourly_rate_cents, max_billable_seconds_per_task, required_domains, "
                "min_qualification_score, show_model_names, pause_at_budget, created_at) VALUES (1, 'P', 'p', 'work', "
                "'active', '', 1, 30, 0, 0, 3000, 1800, '[]', 0, false, true, '2026-11-20 10:00:00')"))
            for n in (1, 2, 3):
                conn.execute(text(
                    "INSERT INTO items (id, project_id, external_id, context, responses, metadata, is_gold, priority, "
                    f"done_count, active_count, is_open, created_at) VALUES ({n}, 1, 'i{n}', '[]', '[]', '{{}}', false, "
                    "0, 0, 1, false, '2026-11-20 10:00:00')"))
                conn.execute(text(
                    "INSERT INTO assignments (id, item_id, project_id, trainer_id, status, assigned_at, expires_at, "
                    f"active_seconds) VALUES ({n}, {n}, 1, 1, 'active', '2026-11-20 10:00:00', "
                    "'2099-01-01 00:00:00', 0)"))
        upgrade(engine)
        with engine.connect() as conn:
            statuses = dict(conn.execute(text("SELECT id, status FROM assignments")).all())
            counts = dict(conn.execute(text("SELECT id, active_count FROM items")).all())
            opened = dict(conn.execute(text("SELECT id, is_open FROM items")).all())
        assert statuses == {1: "expired", 2: "expired", 3: "active"}
        assert counts == {1: 0, 2: 0, 3: 1}
        assert bool(opened[1]) and bool(opened[2]) and not bool(opened[3])
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def test_upgrading_gives_every_item_its_content_hash(database_url):
    """The content-hash migration fills the column for items made before it, as projects.content_hash
    computes it now (spacing, invisible characters and response order aside)."""
    from sqlalchemy import text

    from app.services.projects import content_hash

    engine = make_engine(database_url)
    context = [{"role": "user", "content": "Why  is the sky\u200bblue?"}]
    responses = [{"id": "a", "text": "Rayleigh scattering."}, {"id": "b", "text": "Ca\u0301lm air."}]
    try:
        upgrade(engine, "c7f3a9d2e5b1")
        with engine.begin() as conn:
            _project_row(conn)
            for n, (ctx, resp) in enumerate([(context, responses), (context, responses[::-1])], start=1):
                conn.execute(text(
                    "INSERT INTO items (id, project_id, external_id, context, responses, metadata, is_gold, priority, "
                    "done_count, active_count, is_open, created_at) VALUES (:id, 1, :ext, :ctx, :resp, '{}', false, "
                    "0, 0, 0, true, '2026-11-20 10:00:00')"),
                    {"id": n, "ext": f"i{n}", "ctx": orjson.dumps(ctx).decode(), "resp": orjson.dumps(resp).decode()})
        upgrade(engine)
        with engine.connect() as conn:
            hashes = conn.execute(text("SELECT content_hash FROM items ORDER BY id")).scalars().all()
            single = conn.execute(text("SELECT single_turn FROM items ORDER BY id")).scalars().all()
        assert hashes == [content_hash(context, responses)] * 2
        assert [bool(x) for x in single] == [True, True]
        tidy = [{"role": "user", "content": "Why is the sky blue?"}]
        assert content_hash(tidy, [{"id": "x", "text": "C\u00e1lm air."}, {"id": "y", "text": "Rayleigh scattering."}]) \
            == hashes[0]
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def test_upgrading_makes_every_content_hash_again_with_the_rule_as_it_stands(database_url):
    """Hashes made by the first rule (six invisible characters, no look-alike forms) are made again:
    a full-width twin and one with an invisible operator now share the plain item's hash."""
    from sqlalchemy import text

    from app.services.projects import content_hash

    engine = make_engine(database_url)
    responses = [{"id": "a", "text": "Yes."}, {"id": "b", "text": "No."}]
    prompts = ["Hello there?", "\uff28\uff45\uff4c\uff4c\uff4f there?", "Hello\u2062there?"]
    try:
        upgrade(engine, "c7f3a9d2e5b1")
        with engine.begin() as conn:
            _project_row(conn)
            for n, prompt in enumerate(prompts, start=1):
                conn.execute(text(
                    "INSERT INTO items (id, project_id, external_id, context, responses, metadata, is_gold, priority, "
                    "done_count, active_count, is_open, created_at) VALUES (:id, 1, :ext, :ctx, :resp, '{}', false, "
                    "0, 0, 0, true, '2026-11-20 10:00:00')"),
                    {"id": n, "ext": f"i{n}", "resp": orjson.dumps(responses).decode(),
                     "ctx": orjson.dumps([{"role": "user", "content": prompt}]).decode()})
        upgrade(engine, "a9e4c2b7d1f5")
        with engine.connect() as conn:
            before = conn.execute(text("SELECT content_hash FROM items ORDER BY id")).scalars().all()
        assert len(set(before)) == 3  # the first rule told them apart
        upgrade(engine)
        with engine.connect() as conn:
            after = conn.execute(text("SELECT content_hash FROM items ORDER BY id")).scalars().all()
        assert after == [content_hash([{"role": "user", "content": p}], responses) for p in prompts]
        assert len(set(after)) == 1 and after[0] == before[0]
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def test_upgrading_numbers_each_projects_versions_in_the_order_they_were_made(database_url):
    from sqlalchemy import text

    engine = make_engine(database_url)
    try:
        upgrade(engine, "b8d2f4a6c9e1")
        with engine.begin() as conn:
            for project_id in (1, 2):
                _project_row(conn, project_id)
            for export_id, project_id in ((1, 1), (2, 2), (3, 1), (4, 1), (5, 2)):
                conn.execute(text(
                    "INSERT INTO dataset_exports (id, project_id, format, filters, status, rows_expected, rows_read, "
                    "row_count, bytes, attempts, created_at) VALUES (:id, :project, 'raw', '{}', 'done', 0, 0, 0, 0, 0, "
                    "'2026-11-20 10:00:00')"), {"id": export_id, "project": project_id})
        upgrade(engine)
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT id, version FROM dataset_exports ORDER BY id")).all()
        assert [tuple(v) for v in versions] == [(1, 1), (2, 1), (3, 2), (4, 3), (5, 2)]
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def _project_row(conn, project_id: int = 1) -> None:
    """Project ``project_id`` (slug p<id>, overlap 1), as a row of an older schema."""
    from sqlalchemy import text

    conn.execute(text(
        "INSERT INTO projects (id, name, slug, kind, status, instructions, overlap, lease_minutes, gold_rate, "
        "review_rate, hourly_rate_cents, max_billable_seconds_per_task, required_domains, "
        "min_qualification_score, show_model_names, created_at) VALUES (:id, :name, :slug, 'work', 'active', '', 1, "
        "30, 0, 0, 3000, 1800, '[]', 0, false, '2026-11-20 10:00:00')"),
        {"id": project_id, "name": "P" if project_id == 1 else f"P{project_id}",
         "slug": "p" if project_id == 1 else f"p{project_id}"})


def _users_and_a_project(conn, user_ids) -> None:
    """Users with these ids and project 1 (a work project, overlap 2), as rows of an older schema."""
    from sqlalchemy import text

    for uid in user_ids:
        conn.execute(text(
            "INSERT INTO users (id, email, name, password_hash, status, created_at) "
            f"VALUES ({uid}, 'u{uid}@example.test', 'U', 'x', 'active', '2026-11-20 10:00:00')"))
    conn.execute(text(
        "INSERT INTO projects (id, name, slug, kind, status, instructions, overlap, lease_minutes, gold_rate, "
        "review_rate, hourly_rate_cents, max_billable_seconds_per_task, required_domains, "
        "min_qualification_score, show_model_names, created_at) VALUES (1, 'P', 'p', 'work', 'active', '', 2, "
        "30, 0, 0, 3000, 600, '[]', 0, false, '2026-11-20 10:00:00')"))


def test_upgrading_fills_the_progress_counters_and_billable_weeks_from_the_data(database_url):
    """The counters' migration counts what is there: each project's items (gold apart, complete against
    its overlap) and each trainer's billable seconds per project and week, as the services count them."""
    from datetime import date

    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from app.models import BillableWeek
    from app.services import pay
    from app.services.assignment import read_progress

    engine = make_engine(database_url)
    try:
        upgrade(engine, "d5b7e9a1c3f4")
        with engine.begin() as conn:
            _users_and_a_project(conn, (1, 2))
            for item_id, gold, done, active in [(1, False, 2, 0), (2, False, 1, 1), (3, False, 0, 0), (4, True, 1, 0)]:
                conn.execute(text(
                    "INSERT INTO items (id, project_id, external_id, context, responses, metadata, is_gold, priority, "
                    "done_count, active_count, is_open, created_at) VALUES (:id, 1, :ext, '[]', '[]', '{}', :gold, 0, "
                    ":done, :active, true, '2026-11-20 10:00:00')"),
                    {"id": item_id, "ext": f"i{item_id}", "gold": gold, "done": done, "active": active})
            # (id, item, trainer, status, seconds, claimed, excluded annotation?)
            work = [(1, 1, 1, "submitted", 900, "2026-11-16 09:00:00", False),
                    (2, 1, 2, "submitted", 120, "2026-11-22 23:00:00", True),
                    (3, 2, 1, "submitted", 300, "2026-11-23 01:00:00", False),
                    (4, 2, 2, "active", 50, "2026-11-23 02:00:00", None),
                    (5, 3, 2, "skipped", 40, "2026-11-17 08:00:00", None),
                    (6, 4, 1, "submitted", 0, "2026-11-18 08:00:00", False)]
            for aid, item, trainer, status, seconds, claimed, excluded in work:
                conn.execute(text(
                    "INSERT INTO assignments (id, item_id, project_id, trainer_id, status, assigned_at, expires_at, "
                    "active_seconds) VALUES (:id, :item, 1, :trainer, :status, :at, :at, :seconds)"),
                    {"id": aid, "item": item, "trainer": trainer, "status": status, "at": claimed, "seconds": seconds})
                if excluded is not None:
                    conn.execute(text(
                        "INSERT INTO annotations (assignment_id, item_id, project_id, trainer_id, answers, submitted_at, "
                        "active_seconds, review_status, excluded) VALUES (:id, :item, 1, :trainer, '{}', :at, :seconds, "
                        "'unreviewed', :excluded)"),
                        {"id": aid, "item": item, "trainer": trainer, "at": claimed, "seconds": seconds,
                         "excluded": excluded})
        upgrade(engine)
        with Session(engine) as session:
            counted = read_progress(session, 1)
            assert counted[False] == {"items": 3, "complete": 1, "not_started": 1, "done": 3}
            assert counted[True] == {"items": 1, "complete": 0, "not_started": 0, "done": 1}
            kept = {(r.trainer_id, r.project_id, r.week_start): (r.seconds, r.tasks)
                    for r in session.scalars(select(BillableWeek))}
            first, last = date(2026, 11, 16), date(2026, 11, 23)
            assert {k: s for k, (s, _) in kept.items()} == pay.billable_by_week(session, first, last)
            assert kept == {(1, 1, date(2026, 11, 16)): (600 + 0, 2), (1, 1, date(2026, 11, 23)): (300, 1),
                            (2, 1, date(2026, 11, 16)): (40, 1)}
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def test_upgrading_fills_each_trainers_sitting_from_their_answers(database_url):
    """The sittings' migration counts back from each trainer's latest answer to the last pause longer
    than the sitting gap, as ``session_progress`` counted before it was kept on the membership; a
    sitting that ended before the upgrade is left at 0 (it shows 0 and the next submit starts anew)."""
    from datetime import timedelta

    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from app.models import ProjectMember, utcnow
    from app.services.assignment import session_progress

    engine = make_engine(database_url)
    now = utcnow().replace(microsecond=0)

    def ago(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")

    try:
        upgrade(engine, "f3c1a7e5d9b2")
        with engine.begin() as conn:
            _users_and_a_project(conn, (1, 2, 3, 4))
            for mid, uid, role in [(1, 1, "trainer"), (2, 2, "trainer"), (3, 3, "reviewer"), (4, 4, "trainer")]:
                conn.execute(text(
                    "INSERT INTO project_members (id, project_id, user_id, role, status, created_at) "
                    "VALUES (:id, 1, :uid, :role, 'active', '2026-11-20 10:00:00')"), {"id": mid, "uid": uid, "role": role})
            # Trainer 1: two answers, a long pause, then three at most 30 minutes apart, the last 10
            # minutes ago. Trainer 4: a sitting that ended two hours ago. User 3 answered but is only a
            # reviewer member here. Trainer 2 never answered.
            answers = [(1, 200), (1, 190), (1, 70), (1, 40), (1, 10), (4, 130), (4, 120), (3, 5)]
            for n, (trainer, minutes) in enumerate(answers, start=1):
                conn.execute(text(
                    "INSERT INTO items (id, project_id, external_id, context, responses, metadata, is_gold, priority, "
                    "done_count, active_count, is_open, created_at) VALUES (:id, 1, :ext, '[]', '[]', '{}', false, 0, "
                    "1, 0, true, '2026-11-20 10:00:00')"), {"id": n, "ext": f"i{n}"})
                conn.execute(text(
                    "INSERT INTO assignments (id, item_id, project_id, trainer_id, status, assigned_at, expires_at, "
                    "active_seconds) VALUES (:id, :id, 1, :trainer, 'submitted', :at, :at, 60)"),
                    {"id": n, "trainer": trainer, "at": ago(minutes)})
                conn.execute(text(
                    "INSERT INTO annotations (assignment_id, item_id, project_id, trainer_id, answers, submitted_at, "
                    "active_seconds, review_status, excluded) VALUES (:id, :id, 1, :trainer, '{}', :at, 60, "
                    "'unreviewed', false)"), {"id": n, "trainer": trainer, "at": ago(minutes)})
        upgrade(engine)
        with Session(engine) as session:
            kept = {m.user_id: (m.sitting_tasks, m.last_submitted_at) for m in session.scalars(select(ProjectMember))}
            assert kept == {1: (3, now - timedelta(minutes=10)), 2: (0, None), 3: (0, None),
                            4: (0, now - timedelta(minutes=120))}
            assert session_progress(session, 1, 1, now=now) == 3
            assert session_progress(session, 1, 1, now=now + timedelta(minutes=21)) == 0
            assert session_progress(session, 4, 1, now=now) == 0
        downgrade(engine, "f3c1a7e5d9b2")
        assert "sitting_tasks" not in {c["name"] for c in inspect(engine).get_columns("project_members")}
    finally:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
