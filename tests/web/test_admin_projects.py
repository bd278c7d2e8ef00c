import io
import re
import time

import orjson
import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, ImportJob, Item, Project, ProjectMember, Question
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user


def signed_in_admin(client, session):
    admin = make_user(session, "admin")
    login(client, admin.email, PASSWORD)
    return admin


def project_form(**overrides):
    data = {
        "name": "Medical pairs", "slug": "", "kind": "work", "status": "active", "instructions": "Be careful.",
        "overlap": "3", "lease_minutes": "20", "gold_rate": "10", "review_rate": "5", "hourly_rate": "37.50",
        "budget": "", "max_billable_seconds_per_task": "900", "required_domains": "medicine, Pharmacy",
        "q-0-key": "preference", "q-0-type": "preference", "q-0-title": "Which is better?", "q-0-scale": "3",
        "q-0-required": "on",
        "q-1-key": "why", "q-1-type": "text", "q-1-title": "Why?", "q-1-min_chars": "10", "q-1-mode": "critique",
    }
    data.update(overrides)
    return data


def test_the_projects_list_reads_in_name_order_numbers_by_value(client, session):
    from app.services import projects as project_service

    signed_in_admin(client, session)
    for slug, name in (("b10", "Batch 10"), ("b2", "batch 2"), ("a", "Audit"), ("b1", "Batch 1")):
        project = make_label_project(session, slug=slug, items=0)
        project.name = name
    session.commit()
    page = client.get("/admin/").get_data(as_text=True)
    assert [m for m in re.findall(r'href="/admin/projects/([\w-]+)"', page) if m in ("a", "b1", "b2", "b10")][:4] == [
        "a", "b1", "b2", "b10"]
    assert project_service.natural_key("Batch ２") < project_service.natural_key("batch 10")  # full-width digits too


def test_admin_creates_a_project_from_the_form(client, session):
    signed_in_admin(client, session)
    page = client.get("/admin/projects/new?preset=ranking").get_data(as_text=True)
    assert 'value="ranking"' in page  # the preset's question is in the builder
    token = csrf_token(client, "/admin/projects/new")
    response = client.post("/admin/projects/new", data={**project_form(), "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/projects/medical-pairs"
    project = session.scalar(select(Project).where(Project.slug == "medical-pairs"))
    assert (project.overlap, project.hourly_rate_cents, project.gold_rate) == (3, 3750, 0.10)
    assert project.required_domains == ["medicine", "pharmacy"]
    questions = session.scalars(select(Question).where(Question.project_id == project.id).order_by(Question.position)).all()
    assert [(q.key, q.type, q.options, q.required) for q in questions] == [
        ("preference", "preference", {"scale": 3}, True),
        ("why", "text", {"min_chars": 10, "mode": "critique"}, False),
    ]
    assert session.scalar(
        select(AuditEvent.action).where(AuditEvent.target_type == "project", AuditEvent.target_id == str(project.id))
    ) == "project.create"


def test_bad_project_form_shows_every_problem_and_creates_nothing(client, session):
    signed_in_admin(client, session)
    token = csrf_token(client, "/admin/projects/new")
    data = project_form(name="", overlap="zero", hourly_rate="12.345", **{"q-0-scale": "9", "q-1-key": "Bad Key"})
    response = client.post("/admin/projects/new", data={**data, "csrf_token": token})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    # the fields the form could not read, and at once the others the service refuses
    assert "must be a whole number" in body and "may have at most two decimals" in body
    assert "scale must be a whole number from 1 to 5" in body and "must start with a letter" in body
    assert "Please fix the 5 problems" in body
    assert session.scalar(select(func.count(Project.id))) == 0
    data = project_form(name="", slug="new", overlap="0", gold_rate="150", hourly_rate="-5", license="not a licence!",
                        language="english!!")
    body = client.post("/admin/projects/new", data={**data, "csrf_token": token}).get_data(as_text=True)
    assert "Please fix the 7 problems" in body, re.findall(r"Please fix[^<]*", body)
    assert session.scalar(select(func.count(Project.id))) == 0


def test_questions_are_locked_once_work_exists(client, session):
    from app.services import assignment as queue

    signed_in_admin(client, session)
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, trainers=[trainer], slug="locked")
    a = queue.next_task(session, trainer.id, project)
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    token = csrf_token(client, "/admin/projects/locked/edit")
    form = {"name": "Renamed", "status": "active", "overlap": "2", "lease_minutes": "30", "gold_rate": "0",
            "review_rate": "0", "hourly_rate": "10", "max_billable_seconds_per_task": "600",
            "q-0-key": "label", "q-0-type": "label", "q-0-title": "Reworded?", "q-0-labels": "yes\nno",
            "q-0-required": "on", "csrf_token": token}
    assert client.post("/admin/projects/locked/edit", data=form).status_code == 302
    session.rollback()  # end the read snapshot; see what the request committed
    assert session.scalar(select(Question.title).where(Question.project_id == project.id)) == "Reworded?"
    form.update({"q-1-key": "extra", "q-1-type": "label", "q-1-title": "More?", "q-1-labels": "a\nb"})
    response = client.post("/admin/projects/locked/edit", data=form)
    assert response.status_code == 422
    assert "cannot be added, removed or retyped" in response.get_data(as_text=True)


def test_question_row_fragment_for_each_type(client, session):
    signed_in_admin(client, session)
    for type_name, marker in [("rating", "q-4-anchors"), ("ranking", "q-4-allow_ties"), ("text", "q-4-mode"),
                              ("preference", "q-4-scale"), ("multi_label", "q-4-labels")]:
        body = client.get(f"/admin/question-row?type={type_name}&n=4").get_data(as_text=True)
        assert marker in body and "<html" not in body
    assert client.get("/admin/question-row?type=essay&n=1").status_code == 400


def test_admin_adds_pauses_and_reinstates_a_member(client, session):
    signed_in_admin(client, session)
    trainer = make_user(session, "trainer", email="ann@example.test")
    make_label_project(session, slug="team")
    token = csrf_token(client, "/admin/projects/team")
    client.post("/admin/projects/team/members", data={"email": "ANN@example.test", "role": "trainer", "csrf_token": token})
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id))
    assert member.status == "active"
    response = client.post(f"/admin/projects/team/members/{member.id}/status", data={"status": "paused", "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[-500:]
    session.rollback()  # end the read snapshot; see what the request committed
    assert session.get(ProjectMember, member.id).status == "paused"
    response = client.post("/admin/projects/team/members", data={"email": "nobody@example.test", "role": "trainer",
                                                                  "csrf_token": token}, follow_redirects=True)
    assert "No account with e-mail nobody@example.test" in response.get_data(as_text=True)


def _upload(client, slug, name, payload: bytes):
    token = csrf_token(client, f"/admin/projects/{slug}/import")
    return client.post(
        f"/admin/projects/{slug}/import",
        data={"file": (io.BytesIO(payload), name), "csrf_token": token},
        content_type="multipart/form-data",
    )


def _poll(client, import_id, timeout=120):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/admin/imports/{import_id}/progress", headers={"HX-Request": "true"})
        body = response.get_data(as_text=True)
        status = body.split('data-status="', 1)[1].split('"', 1)[0]
        percent = body.split('<progress value="', 1)[1].split('"', 1)[0] if "<progress" in body else None
        seen.append((status, percent))
        if response.status_code == 286:
            return seen, body
        time.sleep(0.02)
    raise AssertionError(f"import did not finish: {seen[-5:]}")


def test_uploaded_file_with_errors_lists_them_by_line_and_imports_nothing(client, session):
    signed_in_admin(client, session)
    project = make_label_project(session, items=0, slug="upload")
    payload = b'{"prompt": "ok", "responses": ["r"]}\n{"prompt": ""}\n{"prompt": "x", "gold": {"label": "maybe"}}\n'
    response = _upload(client, "upload", "items.jsonl", payload)
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    _seen, body = _poll(client, import_id)
    assert "Nothing was imported" in body
    assert "<td class=\"num\">2</td><td><code>prompt</code></td>" in body
    assert "<td class=\"num\">3</td><td><code>gold.label</code></td>" in body
    assert session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id)) == 0


def test_upload_without_a_file_or_with_a_strange_one_says_so(client, session):
    signed_in_admin(client, session)
    make_label_project(session, items=0, slug="upload2")
    token = csrf_token(client, "/admin/projects/upload2/import")
    response = client.post("/admin/projects/upload2/import", data={"csrf_token": token})
    assert response.status_code == 422 and "Choose a file" in response.get_data(as_text=True)
    response = _upload(client, "upload2", "items.xlsx", b"x")
    assert response.status_code == 422 and "use a .jsonl or .csv file" in response.get_data(as_text=True)


@pytest.mark.slow  # seconds of work by design
def test_hundred_thousand_items_import_in_the_background_with_visible_progress(client, session):
    signed_in_admin(client, session)
    project = make_label_project(session, items=0, slug="big")
    lines = b"".join(
        orjson.dumps({"external_id": f"big-{n}", "prompt": f"Prompt number {n} " + "x" * 80,
                      "responses": [f"Response {n} " + "y" * 120]}) + b"\n"
        for n in range(100_000)
    )
    response = _upload(client, "big", "big.jsonl", lines)
    assert response.status_code == 302
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    seen, body = _poll(client, import_id)
    statuses = [s for s, _ in seen]
    assert "validating" in statuses or "writing" in statuses, seen[:5]
    percents = [int(p) for s, p in seen if p is not None]
    assert any(0 < p < 100 for p in percents), "no intermediate progress was ever visible"
    assert percents == sorted(percents)  # never goes backwards
    assert "100,000</strong> new items" in body
    job = session.get(ImportJob, import_id)
    assert (job.status, job.inserted, job.lines) == ("done", 100_000, 100_000)
    assert session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id)) == 100_000


def test_quality_dashboard_sorts_trainers_and_recomputes_on_demand(client, session):
    from app.services import assignment as queue

    signed_in_admin(client, session)
    trainers = [make_user(session, "trainer", name=f"T{n}") for n in range(2)]
    project = make_label_project(session, items=3, overlap=2, trainers=trainers, slug="qual")
    for trainer, label in zip(trainers, ["yes", "no"], strict=True):
        for _ in range(3):
            a = queue.next_task(session, trainer.id, project)
            queue.submit(session, a.id, trainer.id, {"label": label})
    page = client.get("/admin/projects/qual/quality").get_data(as_text=True)
    assert "No figures yet" in page
    token = csrf_token(client, "/admin/projects/qual/quality")
    response = client.post("/admin/projects/qual/quality/recompute", data={"csrf_token": token}, follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "Quality figures recomputed." in body and "α nominal" in body
    assert body.index(">T0<") < body.index(">T1<")
    body = client.get("/admin/projects/qual/quality?sort=name&dir=desc").get_data(as_text=True)
    assert body.index(">T1<") < body.index(">T0<")
    detail = client.get(f"/admin/projects/qual/trainers/{trainers[0].id}")
    assert detail.status_code == 200 and "Exclude all their annotations" in detail.get_data(as_text=True)
    # their answers read as people read them: the question's title and the label, not stored JSON
    assert "<small>Label?: <strong>yes</strong></small>" in detail.get_data(as_text=True)
    assert '{"label"' not in detail.get_data(as_text=True) and "&#34;label&#34;" not in detail.get_data(as_text=True)
    client.post(f"/admin/projects/qual/trainers/{trainers[0].id}/exclude", data={"csrf_token": token})
    session.rollback()
    from app.models import Annotation

    excluded = session.scalars(select(Annotation.excluded).where(Annotation.trainer_id == trainers[0].id)).all()
    assert excluded == [True, True, True]


CITATION = "@misc{medpairs2026,\n  title = {Medical pairs},\n  year = {2026}\n}"


def test_dataset_settings_round_trip_through_the_form(client, session):
    signed_in_admin(client, session)
    new_form = client.get("/admin/projects/new").get_data(as_text=True)
    assert 'data-testid="dataset-settings"' in new_form and '<option value="cc-by-4.0">' in new_form
    assert 'name="language" maxlength="35" value="en"' in new_form  # English unless said otherwise
    token = csrf_token(client, "/admin/projects/new")
    response = client.post("/admin/projects/new", data={
        **project_form(license="cc-by-4.0", citation=CITATION.replace("\n", "\r\n"), language="en, fr",
                       allow_assistant_first="on", always_messages="on"), "csrf_token": token})
    assert response.status_code == 302
    project = session.scalar(select(Project).where(Project.slug == "medical-pairs"))
    assert (project.license, project.citation, project.language) == ("cc-by-4.0", CITATION, "en,fr")
    assert project.allow_assistant_first and project.always_messages
    assert '<code data-testid="project-license">cc-by-4.0</code>' in client.get(response.headers["Location"]).get_data(as_text=True)

    edit = client.get("/admin/projects/medical-pairs/edit").get_data(as_text=True)
    assert 'name="license" list="licenses" maxlength="100" value="cc-by-4.0"' in edit and "title = {Medical pairs}" in edit
    assert 'name="allow_assistant_first" checked' in edit and 'name="always_messages" checked' in edit
    data = project_form(license="Other:  Acme research licence v2", citation="", language="pt-BR")
    response = client.post("/admin/projects/medical-pairs/edit", data={**data, "csrf_token": token})
    assert response.status_code == 302
    session.rollback()  # a fresh snapshot
    assert (project.license, project.citation, project.language) == ("other: Acme research licence v2", "", "pt-BR")
    assert not project.allow_assistant_first and not project.always_messages  # unticked boxes turn them off
    changed = session.scalars(select(AuditEvent.data).where(AuditEvent.action == "project.update")).one()["changed"]
    assert changed["license"] == ["cc-by-4.0", "other: Acme research licence v2"]


@pytest.mark.parametrize(("field", "value", "words"), [
    ("license", "CC BY 4.0", "must be a licence id such as cc-by-4.0"),
    ("license", "other:", "needs the licence"),
    ("license", "other: " + "x" * 100, "at most 100 characters"),
    ("license", "x" * 65, "must be a licence id"),
    ("language", "English", "must be language tags such as en"),
    ("language", "en,,fr", "must be language tags"),
    ("language", "en-" + "a" * 40, "at most 35 characters"),
    ("citation", "c" * 5001, "must be at most 5,000 characters"),
])
def test_bad_dataset_settings_are_marked_on_the_form_and_change_nothing(client, session, field, value, words):
    signed_in_admin(client, session)
    token = csrf_token(client, "/admin/projects/new")
    response = client.post("/admin/projects/new", data={**project_form(**{field: value}), "csrf_token": token})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and words in body
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', body)
    assert session.scalar(select(func.count(Project.id))) == 0


def test_recompute_with_the_job_queue_unreachable_says_so(database_url, tmp_path):
    """Redis away (a port nobody listens on): the admin is told the figures wait for the queue, not
    that they are being recomputed."""
    from app.db import get_db
    from tests.conftest import redis_away_app

    with redis_away_app(database_url, tmp_path) as app:
        client = app.test_client()
        with app.app_context():
            session = get_db().session_factory()
            signed_in_admin(client, session)
            make_label_project(session, items=2, slug="qual")
            session.close()
        token = csrf_token(client, "/admin/projects/qual/quality")
        body = client.post("/admin/projects/qual/quality/recompute", data={"csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
        assert "Not queued: the job queue is unreachable" in body and "Recomputing in the background" not in body


def test_the_project_page_says_what_its_pace_means(client, session):
    """A project with no items has no ETA to be "done" with; an interview project has no overlap to
    reach, so none of the pace figures show; failed imports say "nothing was imported" once."""
    from app.models import ImportJob
    from app.services import projects as project_service

    signed_in_admin(client, session)
    empty = project_service.create_project(session, name="Empty one", slug="empty-one", questions=[
        {"key": "q", "type": "label", "title": "Q", "options": {"labels": ["a", "b"]}}])
    page = client.get(f"/admin/projects/{empty.slug}").get_data(as_text=True)
    assert "ETA: <strong>no items yet</strong>" in page
    interview = project_service.create_project(session, name="An interview", slug="an-interview", kind="qualification",
                                               questions=[{"key": "q", "type": "label", "title": "Q",
                                                           "options": {"labels": ["a", "b"]}}])
    page = client.get(f"/admin/projects/{interview.slug}").get_data(as_text=True)
    assert "ETA:" not in page and "annotations still needed" not in page
    job = ImportJob(project_id=empty.id, filename="x.jsonl", path="x.jsonl", format="jsonl", status="failed", lines=3,
                    error_count=3,
                    errors=[], message="3 problem(s) found; nothing was imported")
    session.add(job)
    session.commit()
    fragment = client.get(f"/admin/imports/{job.id}/progress").get_data(as_text=True)
    assert fragment.lower().count("nothing was imported") == 1 and "3 problems found" in fragment


def test_a_slow_pace_reads_per_day_rather_than_as_zero_an_hour(app):
    """One annotation in the last 24 h is 0.04 an hour: shown as "0.0 annotations/hour" beside a real
    ETA it read as a contradiction; under 0.1 an hour the pace is given per day."""
    from types import SimpleNamespace

    with app.app_context():
        stats = app.jinja_env.get_template("_throughput.html").module.throughput_stats
        project, progress = SimpleNamespace(kind="work"), {"total": 11}

        def shown(per_hour):
            t = SimpleNamespace(per_hour=per_hour, window_hours=24, needed=11, eta_hours=11 / per_hour)
            return re.sub(r"\s+", " ", str(stats(project, t, progress)))

        assert "<strong>1.0</strong> annotations/day (last 24 h)" in shown(1 / 24)
        assert "<strong>2.5</strong> annotations/hour (last 24 h)" in shown(2.5)
