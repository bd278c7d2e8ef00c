"""Findings 8 and 11: hostile characters and out-of-range values get 400/404/422 on both databases,
never a 500, and change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import Annotation, Assignment, PayAdjustment, Project, Review
from app.services import assignment as queue
from tests.conftest import csrf_token

from .conftest import sign_in, token

NUL = "\x00"


def test_nul_in_the_sign_in_form_is_400(client, session, world):
    csrf = csrf_token(client)
    for data in ({"email": f"a{NUL}@x.test", "password": "x"}, {"email": world.trainer.email, "password": f"x{NUL}"}):
        response = client.post("/login", data={**data, "csrf_token": csrf})
        assert response.status_code == 400, data


@pytest.mark.parametrize("where", ["answer", "skip", "reject"])
def test_nul_in_work_and_review_text_is_refused_and_stores_nothing(client, session, world, where):
    project = world.project
    held = queue.next_task(session, world.trainer.id, project)
    if where == "reject":
        annotation = queue.submit(session, held.id, world.trainer.id, {"label": "yes"})
        sign_in(client, world.reviewer)
        url = f"/review/{project.slug}/annotations/{annotation.id}/verdict"
        data = {"verdict": "reject", "comment": f"bad{NUL}"}
    else:
        sign_in(client, world.trainer)
        url = f"/work/{project.slug}/tasks/{held.id}/{'submit' if where == 'answer' else 'skip'}"
        data = {"answer.label": f"yes{NUL}"} if where == "answer" else {"reason": f"hard{NUL}"}
    response = client.post(url, data={**data, "csrf_token": token(client)})
    assert response.status_code in (400, 422)
    assert session.scalar(select(func.count(Review.id))) == 0
    session.expire_all()
    if where != "reject":
        assert session.get(Assignment, held.id).status == "active"
        assert session.scalar(select(func.count(Annotation.id))) == 0


@pytest.mark.parametrize("path", [
    "/work/al%00pha", "/work/alpha/task?x=%00", "/review/al%00pha", "/admin/projects/al%00pha",
    "/admin/payroll?week=2026-W48%00", "/admin/people?page=1%00", "/login?next=/%00",
])
def test_nul_in_urls_and_query_strings_is_400_or_404(client, session, world, path):
    sign_in(client, world.admin)
    assert client.get(path).status_code in (400, 404)


@pytest.mark.parametrize("path", [
    "/admin/imports/{big}", "/admin/imports/{big}/progress", "/admin/projects/alpha/exports/{big}",
    "/admin/projects/alpha/trainers/{big}", "/work/alpha/tasks/{big}/heartbeat",
])
@pytest.mark.parametrize("big", [2**31, 2**63, 10**30])
def test_ids_beyond_the_column_range_are_404(client, session, world, path, big):
    sign_in(client, world.admin if path.startswith("/admin") else world.trainer)
    url = path.format(big=big)
    response = client.post(url, data={"csrf_token": token(client)}) if url.endswith("heartbeat") else client.get(url)
    assert response.status_code == 404


@pytest.mark.parametrize("spelled", ["\u0663", "\uff13", "\U0001d7e1", "0{id}", "00{id}", "+{id}", "{id}.0"])
def test_an_id_is_written_one_way_only(client, session, world, spelled):
    """A row id in a URL is ASCII digits without a leading zero: another script's digit, a fullwidth
    one or a padded id names no row (a second address for a row would dodge per-URL rules)."""
    sign_in(client, world.admin)
    trainer = world.trainer.id
    assert client.get(f"/admin/projects/alpha/trainers/{trainer}").status_code == 200
    if not spelled.startswith(("0", "+")) and "{" not in spelled:  # a digit of another script: the id 3
        trainer = 3
        assert client.get("/admin/projects/alpha/trainers/3").status_code in (200, 404)
    response = client.get(f"/admin/projects/alpha/trainers/{spelled.format(id=trainer)}")
    assert response.status_code == 404


@pytest.mark.parametrize("page", ["-1", "0", str(10**20), "abc", "99999"])
@pytest.mark.parametrize("path", ["/admin/people", "/admin/audit", "/work/feedback", "/admin/projects/alpha/exports/"])
def test_page_numbers_out_of_range_are_404(client, session, world, path, page):
    sign_in(client, world.trainer if path.startswith("/work") else world.admin)
    assert client.get(f"{path}?page={page}").status_code == 404


@pytest.mark.parametrize("week", ["0001-01-01", "0001-W01", "9999-W52", "9999-12-31", "2026-W99", "1899-12-31"])
def test_payroll_weeks_out_of_range_are_422(client, session, world, week):
    sign_in(client, world.admin)
    assert client.get(f"/admin/payroll?week={week}").status_code == 422
    assert client.get(f"/admin/payroll.csv?week={week}").status_code == 422


@pytest.mark.parametrize("amount", ["1e30", "-1e30", "99999999999999", "NaN", "Infinity", "1e-30",
                                    # other scripts' digits, fullwidth digits, an exponent, underscores,
                                    # commas that do not mark thousands
                                    "\u0663", "\uff11\uff12", "1e1", "1_0", "1,0,0", "0.0001e2"])
def test_absurd_amounts_are_422(client, session, world, amount):
    sign_in(client, world.admin)
    response = client.post("/admin/payroll/adjust", data={
        "csrf_token": token(client, "/admin/payroll"), "amount": amount, "trainer": world.trainer.id,
        "adjust_project": world.project.id, "reason": "test", "kind": "correction"})
    assert response.status_code == 422
    assert session.scalar(select(func.count(PayAdjustment.id))) == 0


@pytest.mark.parametrize("field,value", [("name", "n" * 300), ("budget", "1e12"), ("hourly_rate", "1e30"),
                                         ("instructions", "i" * 200_001)])
def test_values_longer_or_larger_than_their_column_are_422(client, session, world, field, value):
    sign_in(client, world.admin)
    form = {"csrf_token": token(client, "/admin/projects/new"), "name": "Fine name", "slug": "fine", "kind": "work",
            "status": "draft", "overlap": "1", "lease_minutes": "30", "gold_rate": "0", "review_rate": "0",
            "hourly_rate": "10", "max_billable_seconds_per_task": "1800", "q-0-key": "label", "q-0-type": "label",
            "q-0-title": "Label?", "q-0-labels": "yes\nno", "q-0-required": "on", field: value}
    response = client.post("/admin/projects/new", data=form)
    assert response.status_code == 422
    assert session.scalar(select(func.count(Project.id)).where(Project.slug == "fine")) == 0


def test_question_titles_and_labels_longer_than_their_limit_are_422(client, session, world):
    sign_in(client, world.admin)
    form = {"csrf_token": token(client, "/admin/projects/new"), "name": "Fine name", "slug": "fine", "kind": "work",
            "status": "draft", "overlap": "1", "lease_minutes": "30", "gold_rate": "0", "review_rate": "0",
            "hourly_rate": "10", "max_billable_seconds_per_task": "1800", "q-0-key": "label", "q-0-type": "label",
            "q-0-title": "t" * 600, "q-0-labels": "yes\n" + "n" * 300, "q-0-required": "on"}
    response = client.post("/admin/projects/new", data=form)
    assert response.status_code == 422


def test_a_lone_surrogate_in_a_json_body_is_refused(client, session, world):
    sign_in(client, world.trainer)
    held = queue.next_task(session, world.trainer.id, world.project)
    response = client.post(f"/work/{world.project.slug}/tasks/{held.id}/heartbeat",
                           data=b'{"resume": "\\ud800"}', content_type="application/json",
                           headers={"X-CSRFToken": token(client)})
    assert response.status_code in (400, 422)
