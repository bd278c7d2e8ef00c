"""Model-assisted grading end to end: a candidate hands in, the job asks a local OpenAI-compatible
server, the reviewer sees the suggestion, overrides it, and the agreement figures follow."""

from __future__ import annotations

import re

from app.models import WrittenAnswer
from app.services.recruiting import interviews
from tests.factories import make_applicant, make_assessment, make_user
from tests.security.conftest import sign_in, token
from tests.services.test_grader import completion, grader  # noqa: F401 - the local server fixture


def hand_in(session, assessment, text="Use parameterised queries."):
    user = make_applicant(session, ("software",))
    interview = interviews.start(session, user.id, assessment.id)
    while interview.status == "in_progress":
        interviews.answer(session, user.id, interview.id, interview.current_item_id, {"label": "yes"})
        session.refresh(interview)
    return user, interview


def test_a_suggestion_arrives_and_the_reviewer_confirms_or_overrides_it(app, client, session, grader):  # noqa: F811
    app.config.update(GRADER_URL=grader.url, GRADER_MODEL="grader-model", GRADER_API_KEY="sk-local",
                      GRADER_TIMEOUT=5.0)
    grader.reply(completion('{"grade": 0.8, "rationale": "Names injection and the fix."}'))
    assessment = make_assessment(session, "software", items=6, prompts=1, min_items=2, max_items=2)
    user, interview = hand_in(session, assessment)
    sign_in(client, user)
    csrf = token(client, "/candidate")
    field = f"written.{interviews.prompts_of(session, assessment.id)[0].id}"
    response = client.post(f"/candidate/interviews/{interview.id}/written",
                           data={"csrf_token": csrf, field: "Use parameterised queries, never string formatting."})
    assert response.status_code == 302
    app.extensions["groundwork_jobs"].shutdown(wait=True)  # the in-process job has run
    app.extensions["groundwork_jobs"] = None
    session.rollback()
    answer = session.query(WrittenAnswer).one()
    assert answer.suggested_grade == 0.8 and answer.suggestion_error is None
    sent = grader.requests[0]
    assert sent["headers"]["Authorization"] == "Bearer sk-local" and sent["json"]["model"] == "grader-model"
    assert "parameterised" in str(sent["json"]["messages"])

    client.post("/logout", data={"csrf_token": csrf})
    session.rollback()  # the request wrote since this session last read
    reviewer = make_user(session, "reviewer")
    sign_in(client, reviewer)
    page = client.get(f"/grading/{answer.id}").get_data(as_text=True)
    assert "Model&#39;s suggestion: 0.80" in page or "Model's suggestion: 0.80" in page
    assert re.search(r'name="grade"[^>]*value="0.80"', page, re.S)  # pre-filled to confirm
    client.post(f"/grading/{answer.id}", data={"csrf_token": token(client, "/grading"), "grade": "0.5"})
    queue = client.get("/grading").get_data(as_text=True)
    assert 'data-testid="grader-agreement"' in queue and "mean difference 0.30" in queue


def test_a_failing_grader_leaves_a_reason_and_grading_goes_on(app, client, session, grader):  # noqa: F811
    app.config.update(GRADER_URL=grader.url, GRADER_MODEL="grader-model", GRADER_TIMEOUT=5.0)
    grader.reply({"error": {"message": "overloaded"}}, status=500)
    assessment = make_assessment(session, "software", items=6, prompts=1, min_items=2, max_items=2)
    user, interview = hand_in(session, assessment)
    prompt = interviews.prompts_of(session, assessment.id)[0]
    interviews.submit_written(session, user.id, interview.id, {prompt.id: "Escape quotes in every answer."})
    from tasks.jobs import suggest_grades

    with app.app_context():
        assert suggest_grades(interview.id)["suggested"] == 1
    session.rollback()
    answer = session.query(WrittenAnswer).one()
    assert answer.suggested_grade is None and "500" in answer.suggestion_error
    reviewer = make_user(session, "reviewer")
    sign_in(client, reviewer)
    page = client.get(f"/grading/{answer.id}").get_data(as_text=True)
    assert "No model suggestion" in page
    saved = client.post(f"/grading/{answer.id}", data={"csrf_token": token(client, "/grading"), "grade": "0.25"})
    assert saved.status_code == 302


def test_the_sweep_asks_for_suggestions_an_interview_still_waits_for(app, session, grader):  # noqa: F811
    """The job asked for at an interview's end was lost (Redis down, or no grader then): a minute
    later the sweep finds the answer still waiting and asks the model; a fresh interview is left to
    its own job, and a grader-less install asks nothing."""
    from datetime import timedelta

    from sqlalchemy import update

    from app.models import Interview, utcnow
    from app.services import overdue
    from tasks.jobs import sweep_overdue

    assessment = make_assessment(session, "software", items=6, prompts=1, min_items=2, max_items=2)
    user, interview = hand_in(session, assessment)
    prompt = interviews.prompts_of(session, assessment.id)[0]
    interviews.submit_written(session, user.id, interview.id, {prompt.id: "Bind the parameters."})  # no job queued
    assert overdue.unsuggested_interviews(session) == []  # finished under a minute ago: its own job may run
    session.execute(update(Interview).where(Interview.id == interview.id)
                    .values(finished_at=utcnow() - timedelta(minutes=2)))
    session.commit()
    assert overdue.unsuggested_interviews(session) == [interview.id]
    with app.app_context():
        assert sweep_overdue()["suggestions"] == []  # no grader configured: nothing to ask

    app.config.update(GRADER_URL=grader.url, GRADER_MODEL="grader-model", GRADER_TIMEOUT=5.0)
    grader.reply(completion('{"grade": 0.7, "rationale": "Right fix."}'))
    with app.app_context():
        assert sweep_overdue()["suggestions"] == [interview.id]
    app.extensions["groundwork_jobs"].shutdown(wait=True)  # the in-process job has run
    app.extensions["groundwork_jobs"] = None
    session.rollback()
    answer = session.query(WrittenAnswer).one()
    assert answer.suggested_grade == 0.7 and len(grader.requests) == 1
    assert overdue.unsuggested_interviews(session) == []  # answered: the next sweep asks nothing
