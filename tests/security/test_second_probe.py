"""A second probe of the fixed build found variants of the same classes; each has its test here."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, select

from app.db import begin_write, get_db
from app.errors import Conflict, ValidationError
from app.models import (
    Annotation,
    Assignment,
    ImportJob,
    Item,
    PayAdjustment,
    ProjectMember,
    Timesheet,
    utcnow,
)
from app.services import assignment as queue
from app.services import importing, pay
from app.services import projects as project_service
from app.services.spreadsheets import safe_cell
from tests.conftest import csrf_token
from tests.factories import make_label_project, make_user

from .conftest import sign_in, token

# --- time and money --------------------------------------------------------------------------------


def test_tasks_open_in_several_projects_share_one_clock(session):
    """Four tabs in four projects beating side by side earn the wall-clock time once, not four times."""
    trainer = make_user(session, "trainer")
    projects = [make_label_project(session, items=2, trainers=[trainer]) for _ in range(4)]
    start = utcnow()
    tasks = [queue.next_task(session, trainer.id, p, now=start) for p in projects]
    for a in tasks:
        queue.record_heartbeat(session, a.id, trainer.id, now=start, resume=True)
    for beat in range(1, 5):
        for n, a in enumerate(tasks):
            queue.record_heartbeat(session, a.id, trainer.id, now=start + timedelta(seconds=10 * beat, milliseconds=n))
    session.expire_all()
    total = session.scalar(select(func.sum(Assignment.active_seconds)).where(Assignment.trainer_id == trainer.id))
    assert 39 <= total <= 41  # forty seconds of one person's time


def _together(*fns):
    """Run the functions in threads released at the same moment; their results (or exceptions), in order."""
    start, results = threading.Barrier(len(fns)), [None] * len(fns)

    def run(n, fn):
        start.wait()
        try:
            results[n] = fn()
        except Exception as exc:  # noqa: BLE001 - the test reads it
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n, fn)) for n, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _in_threads(n, fn):
    return _together(*([fn] * n))


def test_corrections_at_once_never_take_earnings_below_zero(app, session):
    trainer, admin = make_user(session, "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=1, trainers=[trainer])
    pay.add_adjustment(session, trainer.id, project.id, 1000, "bonus", admin.id)
    with app.app_context():
        factory = get_db().session_factory

    def correct():
        with factory() as own:
            return pay.add_adjustment(own, trainer.id, project.id, -1000, "take it back", admin.id, kind="correction")

    results = _in_threads(6, correct)
    assert sum(1 for r in results if isinstance(r, PayAdjustment)) == 1
    assert all(isinstance(r, (PayAdjustment, ValidationError)) for r in results), results
    assert pay.earnings(session, trainer.id).pending_cents == 0


def test_a_submit_during_an_approval_keeps_its_time(app, session, monkeypatch):
    """The approval has read the week when a submit lands: the time ends up in the timesheet or in a
    late adjustment, never lost between the two (the submit waits for the approval's lock)."""
    trainer, admin = make_user(session, "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=3, trainers=[trainer])
    project.hourly_rate_cents = 3600
    session.commit()
    first = queue.next_task(session, trainer.id, project)
    first.active_seconds = 100
    session.commit()
    queue.submit(session, first.id, trainer.id, {"label": "yes"})
    second = queue.next_task(session, trainer.id, project)
    second.active_seconds = 50
    session.commit()
    week = pay.week_of(first.assigned_at)
    with app.app_context():
        factory = get_db().session_factory
    real_lines, read = pay.lines, threading.Event()

    def read_then_linger(*args, **kwargs):  # the approval has read the week; a busy server lingers
        found = real_lines(*args, **kwargs)
        read.set()
        time.sleep(0.5)
        return found

    monkeypatch.setattr(pay, "lines", read_then_linger)

    def approve():
        with factory() as own:
            pay.approve(own, week, [(trainer.id, project.id)], admin.id)  # one read, after the lock

    approving = threading.Thread(target=approve)
    approving.start()
    read.wait(timeout=30)
    with factory() as own:
        queue.submit(own, second.id, trainer.id, {"label": "no"})
    approving.join(timeout=60)
    session.expire_all()
    sheet = session.scalar(select(Timesheet))
    late = session.scalar(select(func.coalesce(func.sum(PayAdjustment.billable_seconds), 0))
                          .where(PayAdjustment.kind == "late_time"))
    assert sheet is not None and sheet.billable_seconds + late == 150


@pytest.mark.slow  # seconds of work by design
def test_heartbeats_from_four_tabs_at_once_count_wall_time_once(app, session):
    """Tabs of one trainer in four projects beat at the same moment, rounds apart: the time counted
    across them stays within the time that passed."""
    trainer = make_user(session, "trainer")
    projects = [make_label_project(session, items=2, trainers=[trainer]) for _ in range(4)]
    tasks = [queue.next_task(session, trainer.id, p) for p in projects]
    with app.app_context():
        factory = get_db().session_factory
    begun = time.monotonic()
    for a in tasks:
        with factory() as own:
            queue.record_heartbeat(own, a.id, trainer.id, resume=True)
    def beat(task_id):
        with factory() as own:
            queue.record_heartbeat(own, task_id, trainer.id)

    for _round in range(3):
        time.sleep(1.2)
        outcomes = _together(*[lambda task_id=a.id: beat(task_id) for a in tasks])
        assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    elapsed = time.monotonic() - begun
    session.expire_all()
    total = session.scalar(select(func.sum(Assignment.active_seconds)).where(Assignment.trainer_id == trainer.id))
    assert 0 < total <= round(elapsed) + 1, (total, elapsed)


def test_money_added_after_a_week_is_paid_goes_to_the_next_week(session):
    trainer, admin = make_user(session, "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=2, trainers=[trainer])
    project.hourly_rate_cents = 3600
    session.commit()
    a = queue.next_task(session, trainer.id, project)
    a.active_seconds = 600
    session.commit()
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    [sheet] = pay.approve(session, pay.week_of(utcnow()), None, admin.id)
    pay.mark_paid(session, [sheet.id], "PAY-1", admin.id)
    bonus = pay.add_adjustment(session, trainer.id, project.id, 500, "thanks", admin.id)
    assert bonus.week_start == pay.week_of(utcnow()) + timedelta(days=7)
    mine = pay.earnings(session, trainer.id)
    assert (mine.paid_cents, mine.pending_cents) == (600, 500)


def test_pay_goes_only_to_trainers_of_paid_work(session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    exam = make_label_project(session, items=1, kind="qualification")
    with pytest.raises(ValidationError):
        pay.add_adjustment(session, trainer.id, exam.id, 500, "thanks", admin.id)


def test_bulk_mark_paid_of_many_timesheets_works(session):
    admin = make_user(session, "admin")
    project = make_label_project(session, items=0)
    week = pay.week_of(utcnow())
    ids = []
    for _ in range(40):
        trainer = make_user(session, "trainer")
        sheet = Timesheet(trainer_id=trainer.id, project_id=project.id, week_start=week, billable_seconds=1,
                          rate_cents=0, amount_cents=0, status="approved")
        session.add(sheet)
        session.flush()
        ids.append(sheet.id)
    session.commit()
    assert pay.mark_paid(session, ids, "BULK-REF", admin.id) == 40


# --- nobody acts on their own standing ----------------------------------------------------------------


def test_an_admin_who_trains_cannot_reinstate_or_include_themselves(client, session):
    boss, admin = make_user(session, "admin", "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=2, slug="own", trainers=[boss])
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == boss.id))
    project_service.set_member_status(session, member, "paused", actor_id=admin.id)
    session.commit()
    sign_in(client, boss)
    csrf = token(client, f"/admin/projects/{project.slug}")
    assert client.post(f"/admin/projects/own/members/{member.id}/status",
                       data={"csrf_token": csrf, "status": "active"}).status_code == 422
    assert client.post(f"/admin/projects/own/trainers/{boss.id}/exclude",
                       data={"csrf_token": csrf, "include": "1"}).status_code == 422
    session.expire_all()
    assert session.get(ProjectMember, member.id).status == "paused"


# --- projects that are not open ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_a_project_that_is_not_active_counts_no_time(session, status):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    start = utcnow()
    a = queue.next_task(session, trainer.id, project, now=start)
    queue.record_heartbeat(session, a.id, trainer.id, now=start, resume=True)
    project_service.update_project(session, project, name=project.name, status=status)
    session.commit()
    a = queue.record_heartbeat(session, a.id, trainer.id, now=start + timedelta(seconds=15))
    assert a.active_seconds == 0
    if status == "archived":
        with pytest.raises(Conflict):
            queue.submit(session, a.id, trainer.id, {"label": "yes"})


# --- questions with gold answers ---------------------------------------------------------------------


def test_gold_answers_keep_their_questions_as_annotations_do(session):
    project = make_label_project(session, items=0, slug="goldq")
    project_service.add_item(session, project, prompt="p", responses=["r"], external_id="g1")
    session.flush()
    item = session.scalar(select(Item))
    item.is_gold, item.gold_answers = True, {"label": "yes"}
    session.commit()
    for questions in ([{"key": "label", "type": "label", "title": "L", "options": {"labels": ["no", "maybe"]}}],
                      [{"key": "label", "type": "rating", "title": "L", "options": {"min": 1, "max": 5}}]):
        with pytest.raises(ValidationError):
            project_service.update_project(session, project, name=project.name, questions=questions)
        session.rollback()


# --- inputs Python would choke on -------------------------------------------------------------------


@pytest.mark.parametrize("page", ["²", "٣", "1" * 5000])
def test_page_numbers_in_other_scripts_are_404(client, session, world, page):
    sign_in(client, world.trainer)
    assert client.get("/work/feedback", query_string={"page": page}).status_code == 404


@pytest.mark.parametrize("value", ["²:1", "1:²", "٣:1"])
def test_row_ids_in_other_scripts_are_422(client, session, world, value):
    sign_in(client, world.admin)
    csrf = token(client, "/admin/payroll")
    assert client.post("/admin/payroll/approve", data={"csrf_token": csrf, "line": value}).status_code == 422
    assert client.post("/admin/payroll/paid", data={"csrf_token": csrf, "timesheet": value.replace("1", "").strip(":"),
                                                    "reference": "x"}).status_code == 422


def test_a_question_field_with_a_huge_number_is_refused(client, session, world):
    sign_in(client, world.admin)
    response = client.post("/admin/projects/new", data={
        "csrf_token": token(client, "/admin/projects/new"), "name": "N", f"q-{'9' * 5000}-key": "k"})
    assert response.status_code == 422


@pytest.mark.parametrize("ranking", ['[{"a": 1}]', '[[["A"]]]', '[[{"a": 1}]]', '[["A", ["B"]]]', '"A"', "[[]]"])
def test_malformed_rankings_are_422(client, session, ranking):
    from app.services.presets import preset_questions

    trainer = make_user(session, "trainer")
    project = project_service.create_project(session, name="R", slug="r", status="active",
                                             questions=preset_questions("ranking"))
    project_service.add_item(session, project, prompt="p", responses=["one", "two"], external_id="i")
    project_service.add_member(session, project, trainer, "trainer")
    session.commit()
    held = queue.next_task(session, trainer.id, project)
    sign_in(client, trainer)
    response = client.post(f"/work/r/tasks/{held.id}/submit",
                           data={"csrf_token": token(client, "/work/r"), "answer.ranking": ranking})
    assert response.status_code == 422


def test_a_deeply_nested_json_body_is_400_even_before_sign_in(client, session):
    csrf = csrf_token(client)
    body = b"[" * 50_000 + b"]" * 50_000
    response = client.post("/login", data=body, content_type="application/json", headers={"X-CSRFToken": csrf})
    assert response.status_code == 400


# --- imports -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [
    "external_id,prompt," + ",".join(f"response_{n}" for n in range(1, 200_001)),
    "prompt,response_²", "prompt,response_1,response_1", "prompt,response_10",
])
def test_csv_headers_that_would_hang_or_crash_are_line_errors(session, header):
    project = make_label_project(session, items=0, slug="csvh")
    data = io.BytesIO((header + "\n" + "p,a\n").encode())
    report = importing.validate_file(session, project, data, "csv")
    assert not report.ok and report.errors[0].line == 1


def test_a_csv_cell_past_the_csv_limit_is_reported_not_raised(session):
    project = make_label_project(session, items=0, slug="csvc")
    data = io.BytesIO(b"prompt,response_1\n" + b"p" * (5 * 1024 * 1024) + b",a\n")
    report = importing.validate_file(session, project, data, "csv")
    assert not report.ok


@pytest.mark.parametrize("rid", ["ab\n", "ab\r", " ab"])
def test_response_ids_with_line_breaks_or_spaces_are_refused(session, rid):
    project = make_label_project(session, items=0, slug="rid")
    line = orjson.dumps({"prompt": "p", "responses": [{"id": rid, "text": "t"}]}) + b"\n"
    report = importing.import_file(session, project, io.BytesIO(line), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(1, "responses[1].id")]


def test_a_failed_import_never_shows_python_in_its_message(app, session, tmp_path, monkeypatch):
    project = make_label_project(session, items=0, slug="imp")
    path = tmp_path / "i.jsonl"
    path.write_bytes(b'{"prompt": "p", "responses": ["a"]}\n')
    job = ImportJob(project_id=project.id, filename="i.jsonl", path=str(path), format="jsonl", bytes_total=1)
    session.add(job)
    session.commit()

    def explode(*args, **kwargs):
        raise ValueError("invalid literal for int() with base 10: '²'")

    monkeypatch.setattr(importing, "write_items", explode)
    with app.app_context():
        factory = get_db().session_factory
    with pytest.raises(ValueError):
        importing.run_import_job(factory, job.id)
    session.expire_all()
    message = session.get(ImportJob, job.id).message
    assert "ValueError" not in message and "int()" not in message and "unexpected error" in message


def test_an_export_date_past_the_calendar_is_a_form_error(client, session, world):
    sign_in(client, world.admin)
    response = client.post("/admin/projects/alpha/exports/", data={
        "csrf_token": token(client, "/admin/projects/alpha/exports/"), "format": "raw", "date_to": "9999-12-31"})
    assert response.status_code == 422


# --- what trainers see --------------------------------------------------------------------------------


def test_the_trainers_project_list_moves_the_same_for_gold_and_work(client, session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, slug="mix", trainers=[trainer])
    project.gold_rate = 0.5
    project_service.add_item(session, project, prompt="gold", responses=["r"], external_id="g")
    session.flush()
    gold = session.scalar(select(Item).where(Item.external_id == "g"))
    gold.is_gold, gold.gold_answers = True, {"label": "yes"}
    session.commit()
    sign_in(client, trainer)
    done = 0
    while (a := queue.next_task(session, trainer.id, project)) is not None:
        queue.submit(session, a.id, trainer.id, {"label": "yes"})
        done += 1
        page = client.get("/work/").get_data(as_text=True)
        # the only figure is the trainer's own, up by one after every task, gold or not
        assert f"{done} task{'' if done == 1 else 's'} done by you here" in page
        assert "items complete" not in page
    assert done >= 2


def test_the_submit_that_pauses_a_trainer_says_so_and_keeps_the_work(client, session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, slug="strict", trainers=[trainer])
    project.gold_rate = 1.0
    for n in range(4):
        project_service.add_item(session, project, prompt=f"g{n}", responses=["r"], external_id=f"g{n}")
    session.flush()
    for item in session.scalars(select(Item).where(Item.external_id.like("g%"))):
        item.is_gold, item.gold_answers = True, {"label": "yes"}
    session.commit()
    for _ in range(2):
        a = queue.next_task(session, trainer.id, project)
        queue.submit(session, a.id, trainer.id, {"label": "no"})
    held = queue.next_task(session, trainer.id, project)
    sign_in(client, trainer)
    response = client.post(f"/work/strict/tasks/{held.id}/submit", headers={"HX-Request": "true"},
                           data={"csrf_token": token(client, "/work/"), "answer.label": "no"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Your work was saved" in body and "paused" in body
    assert session.scalar(select(func.count(Annotation.id))) == 3


def test_csv_cells_that_would_run_as_formulas_are_made_text():
    assert safe_cell('=HYPERLINK("http://evil.example","x")').startswith("'=")
    assert safe_cell("+1+1").startswith("'") and safe_cell("@SUM(A1)").startswith("'")
    assert safe_cell("-2.50") == "-2.50" and safe_cell("plain") == "plain" and safe_cell(3) == 3


# --- the third look: a review of the code and a second outside probe --------------------------------


def test_gold_is_never_served_on_its_own(session):
    """When a trainer has no work left, reloading never hands out gold (else all of it gets spotted)."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, slug="mostly-gold", trainers=[trainer])
    project.gold_rate = 1.0
    for n in range(5):
        project_service.add_item(session, project, prompt=f"g{n}", responses=["r"], external_id=f"g{n}")
    session.flush()
    for item in session.scalars(select(Item).where(Item.external_id.like("g%"))):
        item.is_gold, item.gold_answers = True, {"label": "yes"}
    session.commit()
    served = []
    while (a := queue.next_task(session, trainer.id, project)) is not None:
        served.append(a.item.is_gold)
        queue.submit(session, a.id, trainer.id, {"label": "yes"})
    assert served.count(False) == 1  # the one work item…
    assert served[-1] is False or len(served) == 1  # …and no gold after the work ran out
    for _ in range(20):
        assert queue.next_task(session, trainer.id, project) is None


def test_an_update_import_leaves_items_people_worked_on_alone(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, slug="upd", trainers=[trainer])
    held = queue.next_task(session, trainer.id, project)
    worked = held.item.external_id
    lines = b"".join(orjson.dumps({"external_id": e, "prompt": "Changed", "responses": ["x"]}) + b"\n"
                     for e in ("it-1", "it-2"))
    report = importing.import_file(session, project, io.BytesIO(lines), "jsonl", update_existing=True)
    assert [(e.line, e.field) for e in report.errors] == [(1 if worked == "it-1" else 2, "external_id")]
    session.expire_all()
    assert session.scalar(select(Item.context).where(Item.external_id == worked))[0]["content"] != "Changed"


def test_an_admin_does_not_enrol_themselves_or_set_their_own_rate(session):
    boss, admin = make_user(session, "admin", "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=1, slug="rates")
    with pytest.raises(ValidationError):
        project_service.add_member(session, project, boss, "trainer", actor_id=boss.id)
    project_service.add_member(session, project, boss, "trainer", actor_id=admin.id)
    session.commit()
    with pytest.raises(ValidationError):
        project_service.update_project(session, project, name=project.name, hourly_rate_cents=1_000_000,
                                       actor_id=boss.id)
    session.rollback()
    project_service.update_project(session, project, name=project.name, hourly_rate_cents=4000, actor_id=admin.id)
    session.commit()
    from app.models import AuditEvent

    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "project.update")).all()[-1]
    assert event.data["changed"]["hourly_rate_cents"] == [0, 4000]  # the audit says from what to what


@pytest.mark.parametrize("change", [{"max_billable_seconds_per_task": 86400}, {"gold_rate": 0.5},
                                    {"quality_bonus_percent": 10, "quality_bonus_min_accuracy": 0.0}])
def test_a_member_changes_nothing_that_decides_their_pay(session, change):
    """The billable cap, the bonus threshold and the gold share decide a trainer's pay as much as the
    rate: an admin who is a trainer of the project sets none of them; another admin may."""
    boss, admin = make_user(session, "admin", "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=1, slug="capped")
    project_service.add_member(session, project, boss, "trainer", actor_id=admin.id)
    session.commit()
    with pytest.raises(ValidationError) as caught:
        project_service.update_project(session, project, name=project.name, actor_id=boss.id, **change)
    assert set(caught.value.errors) <= set(change) and caught.value.errors
    session.rollback()
    project_service.update_project(session, project, name=project.name, actor_id=admin.id, **change)


@pytest.mark.parametrize("name,slug", [("New", "new"), ("Earnings", "earnings"), ("Feedback", "feedback")])
def test_project_slugs_never_take_a_word_our_addresses_use(session, name, slug):
    project = project_service.create_project(session, name=name, status="active",
                                             questions=[{"key": "q", "type": "label", "title": "Q",
                                                         "options": {"labels": ["a", "b"]}}])
    assert project.slug != slug
    with pytest.raises(ValidationError):
        project_service.create_project(session, name=name, slug=slug, questions=[
            {"key": "q", "type": "label", "title": "Q", "options": {"labels": ["a", "b"]}}])


@pytest.mark.parametrize("name", ["Line\nbreak", "Tab\there", "Bell\x07"])
def test_project_names_are_one_line(session, name):
    with pytest.raises(ValidationError) as caught:
        project_service.create_project(session, name=name, slug="one-line", questions=[
            {"key": "q", "type": "label", "title": "Q", "options": {"labels": ["a", "b"]}}])
    assert "name" in caught.value.errors


def test_a_jsonl_line_too_long_is_a_line_error_and_a_bom_is_fine(session, monkeypatch):
    project = make_label_project(session, items=0, slug="long")
    monkeypatch.setattr(importing, "LINE_MAX_BYTES", 1000)
    data = b'\xef\xbb\xbf{"prompt": "p", "responses": ["a"]}\n' + b'{"prompt": "' + b"x" * 5000 + b'"}\n'
    report = importing.validate_file(session, project, io.BytesIO(data), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(2, "")]
    assert "longer than" in report.errors[0].message
    csv_data = b"prompt,response_1\n" + b"p," + b"," * 5000 + b"\n"
    report = importing.validate_file(session, project, io.BytesIO(csv_data), "csv")
    assert not report.ok



def test_a_csv_record_is_bounded_across_the_lines_its_quoted_cells_span(session, monkeypatch):
    """Quoted line breaks let one record run over many lines, each under the line limit: the record's
    whole length is what is bounded, before csv builds its cells (which it holds all at once), and the
    records after a short multi-line one still read."""
    project = make_label_project(session, items=0, slug="long-record")
    monkeypatch.setattr(importing, "LINE_MAX_BYTES", 1000)
    many_lines = b'"a' + (b"," * 400 + b'\n') * 5 + b'",x\n'  # 2,000+ characters over 6 lines
    data = b"prompt,response_1\n" + b'"two\nlines",fine\n' + many_lines
    report = importing.validate_file(session, project, io.BytesIO(data), "csv")
    assert not report.ok
    assert [e.line for e in report.errors] == [4] and "record is longer than" in report.errors[0].message
    fine = b"prompt,response_1\n" + b'"two\nlines",fine\n' + b'"' + (b"," * 100 + b"\n") * 5 + b'",x\n'
    assert importing.validate_file(session, project, io.BytesIO(fine), "csv").ok

def test_the_dataset_card_header_is_valid_yaml_whatever_the_name(app, session):
    import yaml

    from app.services import exporting

    project = make_label_project(session, items=1, slug="quoted")
    project.name = 'It\'s "bad" --- really: #1'
    session.commit()
    export = exporting.create_export(session, project, {"format": "raw"}, None)
    session.commit()
    with app.app_context():
        done = exporting.run_export(get_db().session_factory, export.id, app.config["EXPORT_DIR"],
                                    app.config["SECRET_KEY"])
    card = exporting.file_path(app.config["EXPORT_DIR"], done, "README.md").read_text()
    header = card.split("\n---\n", 1)[0].removeprefix("---\n")
    assert yaml.safe_load(header)["pretty_name"] == project.name


def test_a_ranking_form_cannot_test_guesses_of_the_hidden_ids():
    from werkzeug.datastructures import MultiDict

    from app.services.questions import parse_form_answers, validate_answers

    class Rank:
        key, type, options, required = "rank", "ranking", {"allow_ties": True}, True

    ids = ["r1", "r2"]
    answers = []
    for guess in ('[["r1"], ["A"], ["B"]]', '[["zz"], ["A"], ["B"]]'):
        raw = parse_form_answers([Rank], MultiDict([("answer.rank", guess)]), ids)
        with pytest.raises(ValidationError) as caught:
            validate_answers([Rank], raw, ids)
        answers.append(caught.value.errors["rank"])
    assert answers[0] == answers[1]  # a right guess and a wrong one read the same


def test_pausing_a_trainer_while_they_reload_never_deadlocks(app, session):
    """The pause and the claim take their locks in one order: many rounds, no deadlock, and a paused
    trainer never keeps a live lease."""
    trainer, admin = make_user(session, "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=40, lease_minutes=1, trainers=[trainer])
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id))
    with app.app_context():
        factory = get_db().session_factory
    for _ in range(8):
        with factory() as own:
            queue.next_task(own, trainer.id, project, now=utcnow() - timedelta(minutes=5))  # will have lapsed

        def pause():  # as the admin's request does it: the write lock first (SQLite), then read, then write
            with factory() as own:
                begin_write(own)
                project_service.set_member_status(own, own.get(ProjectMember, member.id), "paused", admin.id)
                own.commit()

        def claim():
            with factory() as own:
                try:
                    return queue.next_task(own, trainer.id, project)
                except queue.Paused:
                    return "paused"

        outcome = _together(pause, claim)
        assert not any(isinstance(v, Exception) for v in outcome), outcome
        session.expire_all()
        live = session.scalar(select(func.count(Assignment.id)).where(
            Assignment.trainer_id == trainer.id, Assignment.status == "active", Assignment.expires_at > utcnow()))
        assert live == 0  # paused: nothing held
        with factory() as own:
            begin_write(own)
            project_service.set_member_status(own, own.get(ProjectMember, member.id), "active", admin.id)
            own.commit()


def test_excluding_work_after_approval_settles_it_at_once(session):
    from app.services.stats import exclude_trainer_work

    trainer, admin = make_user(session, "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=2, trainers=[trainer])
    project.hourly_rate_cents = 3600
    session.commit()
    a = queue.next_task(session, trainer.id, project)
    a.active_seconds = 600
    session.commit()
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    pay.approve(session, pay.week_of(utcnow()), None, admin.id)
    exclude_trainer_work(session, project, trainer.id, admin.id)
    session.commit()
    taken = session.scalar(select(PayAdjustment).where(PayAdjustment.kind == "late_time"))
    assert taken.amount_cents == -600 and "taken from" in taken.reason
    assert pay.earnings(session, trainer.id).pending_cents == -600  # shown now, with its reason


def test_a_json_body_larger_than_the_cap_is_refused_unread(client, session):
    csrf = csrf_token(client)
    body = b"[" + b"{}," * 200_000 + b"{}]"
    response = client.post("/login", data=body, content_type="application/json", headers={"X-CSRFToken": csrf})
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/login", "/healthz", "/api/v1/projects"])
def test_a_chunked_json_body_past_the_cap_is_refused_before_it_is_parsed(client, path):
    """Sent chunked, a body has no Content-Length to check: the stream is read one byte past the cap at
    most, whoever sends it and wherever."""
    body = b"[" + b"1.5," * 200_000 + b"1.5]"
    chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked", "X-CSRFToken": csrf_token(client)}
    response = client.post(path, input_stream=io.BytesIO(body), headers=chunked,
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    small = client.post(path, input_stream=io.BytesIO(b"[1]"), headers=chunked,
                        environ_overrides={"wsgi.input_terminated": True})
    assert small.status_code != 413


def test_parallel_wrong_passwords_cannot_outrun_the_limit(app, session):
    victim = make_user(session, "trainer")
    limit = app.config["LOGIN_MAX_FAILURES"]
    tokens = []
    clients = []
    for _ in range(limit * 3):
        c = app.test_client()
        tokens.append(csrf_token(c))
        clients.append(c)
    go = threading.Barrier(len(clients))
    statuses = []

    def guess(c, t):
        go.wait()
        statuses.append(c.post("/login", data={"email": victim.email, "password": "wrong-guess!",
                                               "csrf_token": t}).status_code)

    threads = [threading.Thread(target=guess, args=(c, t)) for c, t in zip(clients, tokens, strict=True)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert statuses.count(401) <= limit and statuses.count(429) >= limit * 2


def test_nothing_but_static_files_may_be_stored_by_a_cache(client):
    """Pages, fragments, the API's JSON and the CSV and export downloads hold people's data and pay."""
    for path in ("/login", "/api/v1/openapi.json", "/api/v1/projects", "/healthz"):
        assert client.get(path).headers.get("Cache-Control") == "no-store", path
    static = client.get("/static/favicon.svg")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")


def test_an_import_lines_problems_are_bounded_whatever_the_line_held(session):
    """A line's problems are stored with its import and shown on its page: a 100,000-character key, a
    response with thousands of unknown keys, or a line with thousands of unknown fields gives short
    problems; and a line with far too many responses is refused by their count before any is read."""
    import orjson

    project = make_label_project(session, items=0, slug="bounded-problems")
    lines = [
        {"prompt": "p1", "responses": ["a"], "k" * 100_000: 1},
        {"prompt": "p2", "responses": [{"id": "a", "text": "t", **{f"x{n}": n for n in range(5000)}}]},
        {"prompt": "p3", "responses": ["a"], **{f"field{n}": n for n in range(5000)}},
        {"prompt": "p4", "responses": [str(n) for n in range(200_000)]},
    ]
    data = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    report = importing.validate_file(session, project, io.BytesIO(data), "jsonl")
    assert [e.line for e in report.errors] == [1, 2, 3, 4]
    for error in report.errors:
        assert len(error.field) <= importing.PROBLEM_FIELD_MAX and len(error.message) <= importing.PROBLEM_MESSAGE_MAX
    assert "5,000 unknown fields" in report.errors[2].message and "and 4,995 more" in report.errors[2].message
    assert "and 4,995 more" in report.errors[1].message
    assert "got 200,000" in report.errors[3].message
