"""The candidate's pages and grading, through HTTP."""

from __future__ import annotations

import re

from app.models import Application, InterviewResponse, User, WrittenAnswer
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_applicant, make_assessment, make_user
from tests.security.conftest import sign_in, token


def apply_form(csrf, **changes):
    data = {"csrf_token": csrf, "name": "Nia New", "email": "nia@example.test", "password": PASSWORD,
            "domains": ["medicine"], "languages": "en", "years_experience": "6", "timezone": "UTC",
            "availability_hours_per_week": "20", "desired_rate": "40.00", "credentials": "MD", "consent": "yes"}
    data.update(changes)
    return data


def test_apply_signs_the_applicant_in_and_shows_their_interviews(client, session):
    make_assessment(session, "medicine", items=10)
    page = client.get("/apply")
    assert page.status_code == 200 and "Medicine" in page.get_data(as_text=True)
    response = client.post("/apply", data=apply_form(csrf_token(client, "/apply")))
    assert response.status_code == 302 and response.headers["Location"].endswith("/candidate")
    mine = client.get("/candidate").get_data(as_text=True)
    assert "Medicine interview" in mine or "Labelling" in mine
    assert 'data-testid="start-medicine"' in mine


def test_a_bad_application_shows_each_field_error_and_creates_nothing(client, session):
    make_assessment(session, "medicine", items=3)
    response = client.post("/apply", data=apply_form(csrf_token(client, "/apply"), email="nope", password="x",
                                                     domains=[], name="n" * 300))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("email", "password", "domains", "name"):
        assert re.search(rf'id="{field}-error"', body), field
    assert session.query(User).count() == 0


def test_apply_is_rate_limited_per_address(app, client, session):
    make_assessment(session, "medicine", items=3)
    app.config["APPLY_MAX_PER_HOUR"] = 2
    taken = make_user(session, "trainer", email="taken@example.test")
    csrf = csrf_token(client, "/apply")
    for _ in range(2):  # e-mails tried count (they tell who has an account)
        assert client.post("/apply", data=apply_form(csrf, email=taken.email)).status_code == 422
    blocked = client.post("/apply", data=apply_form(csrf))
    assert blocked.status_code == 429 and blocked.headers["Retry-After"]
    assert session.query(Application).count() == 0


def test_the_interview_over_http_with_a_double_click(client, session):
    assessment = make_assessment(session, "medicine", items=20, prompts=1, min_items=3, max_items=5)
    user = make_applicant(session)
    sign_in(client, user)
    csrf = token(client, "/candidate")
    started = client.post(f"/candidate/assessments/{assessment.id}/start", data={"csrf_token": csrf})
    assert started.status_code == 302
    url = started.headers["Location"]
    for n in range(1, 11):
        page = client.get(url).get_data(as_text=True)
        found = re.search(r'name="question" value="(\d+)"', page)
        if not found:
            break
        assert found.group(1) == str(n)  # its number in the interview, never the bank's item id
        assert "item_id" not in page
        data = {"csrf_token": csrf, "question": found.group(1), "answer.label": "yes"}
        assert client.post(url + "/answer", data=data).status_code == 302
        again = client.post(url + "/answer", data=data)  # the same item again: refused, shown the current one
        said = again.get_data(as_text=True)
        assert again.status_code == 200 and ("already answered" in said or "part of this interview is over" in said)
    assert session.query(InterviewResponse).count() in range(3, 6)
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="interview-written"' in page
    field = re.search(r'name="(written\.\d+)"', page).group(1)
    empty = client.post(url + "/written", data={"csrf_token": csrf, field: ""})
    assert empty.status_code == 422 and "write an answer" in empty.get_data(as_text=True)
    done = client.post(url + "/written", data={"csrf_token": csrf, field: "Airway, breathing, circulation."})
    assert done.status_code == 302
    assert 'data-testid="interview-done"' in client.get(url).get_data(as_text=True)
    assert "being graded" in client.get("/candidate").get_data(as_text=True)


def test_grading_is_blind_and_moves_the_application_on(client, session):
    assessment = make_assessment(session, "medicine", items=10, prompts=1, min_items=2, max_items=2)
    from app.services.recruiting import interviews

    user = make_applicant(session, name="Zed Secretname")
    interview = interviews.start(session, user.id, assessment.id)
    for _ in range(2):
        session.refresh(interview)
        interviews.answer(session, user.id, interview.id, interview.current_item_id, {"label": "yes"})
    prompt = interviews.prompts_of(session, assessment.id)[0]
    interviews.submit_written(session, user.id, interview.id, {prompt.id: "An answer long enough to grade."})
    reviewer = make_user(session, "reviewer")
    sign_in(client, reviewer)
    queue = client.get("/grading").get_data(as_text=True)
    assert "Candidate #" in queue and "Secretname" not in queue
    answer = session.query(WrittenAnswer).one()
    page = client.get(f"/grading/{answer.id}").get_data(as_text=True)
    assert "An answer long enough to grade." in page and "Secretname" not in page
    csrf = token(client, "/grading")
    bad = client.post(f"/grading/{answer.id}", data={"csrf_token": csrf, "grade": "7"})
    assert bad.status_code == 422 and "from 0 to 1" in bad.get_data(as_text=True)
    ok = client.post(f"/grading/{answer.id}", data={"csrf_token": csrf, "grade": "0.75", "note": "good"})
    assert ok.status_code == 302
    session.rollback()  # a fresh snapshot: the request committed in its own session
    assert session.query(Application).one().stage == "ready"


def test_an_applicant_gets_403_on_work_review_and_admin_pages(client, session):
    make_assessment(session, "medicine", items=3)
    user = make_applicant(session)
    sign_in(client, user)
    for path in ("/work/", "/work/feedback", "/review/", "/admin/", "/grading", "/admin/recruiting/"):
        assert client.get(path).status_code == 403, path


def test_signed_in_people_are_sent_from_apply_to_their_page(client, session):
    user = make_user(session, "trainer", password=PASSWORD)
    sign_in(client, user)
    assert client.get("/apply").status_code == 302


def test_a_typo_does_not_use_up_the_hourly_applications(app, client, session):
    make_assessment(session, "medicine", items=3)
    app.config["APPLY_MAX_PER_HOUR"] = 1
    csrf = csrf_token(client, "/apply")
    for _ in range(3):  # field errors are given back
        assert client.post("/apply", data=apply_form(csrf, password="short")).status_code == 422
    assert client.post("/apply", data=apply_form(csrf)).status_code == 302
