"""The admin's recruiting pages, through the browser's requests: the pipeline board and its filters,
a candidate's file and the decision, the funnel and validity dashboard, domains, and assessments."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.models import (
    Application,
    Assessment,
    AuditEvent,
    Domain,
    ItemParameter,
    Qualification,
    TrainerStats,
    User,
    WrittenPrompt,
)
from app.services.recruiting import applications, assessments
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user
from tests.services.test_assessments import SETTINGS, apply_as, domain, qualification, sit

BOARD = "/admin/recruiting/"


def signed_in_admin(client, session):
    admin = make_user(session, "admin", name="Ada Admin")
    login(client, admin.email, PASSWORD)
    return admin


def reread(session) -> None:
    """See what the requests committed: end the read snapshot and forget loaded rows (the app's
    sessions keep objects past a commit)."""
    session.rollback()
    session.expire_all()


def text(response) -> str:
    return response.get_data(as_text=True)


def flashes(client, url) -> str:
    return " ".join(re.findall(r'class="flash flash-\w+" role="status">([^<]*)<', text(client.get(url))))


def ready_candidate(session, *, name="Rita Ready", grade=0.8, right=True, languages="en, fr", prompts=True):
    """A candidate whose one interview is done and graded: stage ready."""
    grader = make_user(session, "reviewer", name="Greta Grader")
    _project, assessment = qualification(session, prompts=[("Explain **triage**.", "Mentions urgency")] if prompts else ())
    user = apply_as(session, name=name, languages=languages)
    sit(session, user, assessment, right=right, grade=grade if prompts else None, grader=grader)
    return applications.application_of(session, user.id), assessment


# ------------------------------------------------------------------------------------------ board


def test_the_empty_board_says_what_to_do_first(client, session):
    signed_in_admin(client, session)
    page = text(client.get(BOARD))
    assert 'data-testid="board-empty"' in page and "No applications yet" in page
    for stage in ("Applied", "Interviewing", "Awaiting grading", "Ready", "Vetted", "Rejected"):
        assert stage in page
    for link in ("/admin/recruiting/dashboard", "/admin/recruiting/domains", "/admin/recruiting/assessments"):
        assert f'href="{link}"' in page


def test_the_board_puts_each_candidate_in_their_stage_with_score_and_time(client, session):
    signed_in_admin(client, session)
    application, _assessment = ready_candidate(session)
    applied = applications.application_of(session, apply_as(session, name="Andy Applied", languages="de").id)
    page = text(client.get(BOARD))
    columns = dict(re.findall(r'data-stage="(\w+)".*?</h2>(.*?)</section>', page, re.S))
    assert "Rita Ready" in columns["ready"] and "Andy Applied" in columns["applied"]
    assert "Andy Applied" not in columns["ready"]
    assert f"{application.score:.2f}" in columns["ready"] and "Medicine" in columns["ready"]
    assert "en, fr" in columns["ready"] and " min<" in columns["applied"]
    assert f'href="/admin/recruiting/candidates/{applied.id}"' in columns["applied"]
    assert re.search(r'id="col-ready">Ready <span class="board-count">1<', page)


def test_filters_narrow_the_board_and_htmx_gets_the_columns_only(client, session):
    signed_in_admin(client, session)
    ready_candidate(session, name="Rita Ready", languages="en")
    domain(session, "law")
    apply_as(session, name="Lee Lawyer", domains=("law",), languages="pt-br")
    by_domain = text(client.get(BOARD + "?domain=law"))
    assert "Lee Lawyer" in by_domain and "Rita Ready" not in by_domain
    by_language = text(client.get(BOARD + "?language=PT-BR"))
    assert "Lee Lawyer" in by_language and "Rita Ready" not in by_language
    by_score = text(client.get(BOARD + "?min_score=0.01&domain="))
    assert "Rita Ready" in by_score and "Lee Lawyer" not in by_score  # no score yet: not above any minimum
    fragment = client.get(BOARD + "?domain=law", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in text(fragment) and "Lee Lawyer" in text(fragment)
    assert "HX-Request" in fragment.headers["Vary"]
    restore = client.get(BOARD + "?domain=law", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in text(restore)  # back button: htmx asks for the whole page


@pytest.mark.parametrize(("query", "message"), [
    ("domain=astrology", "no domain “astrology”"),
    ("language=english!", "not a language code"),
    ("min_score=high", "from 0 to 1"),
    ("min_score=1.5", "from 0 to 1"),
    ("min_score=nan", "from 0 to 1"),
    ("min_score=1e309", "from 0 to 1"),
    ("min_score=" + "9" * 500, "from 0 to 1"),
])
def test_a_bad_filter_is_explained_and_the_rest_of_the_board_still_shows(client, session, query, message):
    signed_in_admin(client, session)
    domain(session)
    apply_as(session, name="Andy Applied")
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get(f"{BOARD}?{query}", headers=headers)
        assert response.status_code == 422
        assert message in text(response) and "Andy Applied" in text(response)


# -------------------------------------------------------------------------------------- candidate


def test_the_candidate_file_shows_profile_interview_answers_and_grades(client, session):
    signed_in_admin(client, session)
    application, assessment = ready_candidate(session)
    page = text(client.get(f"/admin/recruiting/candidates/{application.id}"))
    assert "Rita Ready" in page and "Board-certified GP" in page and "Europe/Lisbon" in page
    assert "45.50 USD an hour" in page and "20 h a week" in page and "en, fr" in page
    assert "Label?: <strong>yes</strong>" in page and "&#34;" not in page  # answers as people read them
    record = page.split('data-testid="interview"')[1]
    assert "reached the maximum length" in record and "3 <small" in record  # items used, of max 3
    assert record.count("tag-active\">correct<") == 3 and "Prompt number" in record
    assert "<strong>triage</strong>" in record  # the prompt through the markdown filter
    assert "Mentions urgency" in record and "by Greta Grader" in record and "0.80" in record
    assert f'action="/admin/recruiting/candidates/{application.id}/vet"' in page
    assert "the candidate sees this" in page


def test_a_missing_candidate_is_404(client, session):
    signed_in_admin(client, session)
    assert client.get("/admin/recruiting/candidates/999999").status_code == 404


def test_vetting_through_the_page_grants_a_qualification_and_twice_is_a_conflict(client, session):
    admin = signed_in_admin(client, session)
    application, _assessment = ready_candidate(session)
    url = f"/admin/recruiting/candidates/{application.id}"
    token = csrf_token(client, url)
    response = client.post(url + "/vet", data={"csrf_token": token, "note": "Strong written answer"})
    assert response.status_code == 303 and response.headers["Location"] == url
    assert "Vetted: now a trainer, qualified in Medicine" in flashes(client, url)
    reread(session)
    qualification = session.scalar(select(Qualification).where(Qualification.user_id == application.user_id))
    assert qualification.domain == "medicine" and qualification.granted_by == admin.id
    session.refresh(application)
    assert (application.stage, application.reason) == ("vetted", "Strong written answer")
    assert session.get(User, application.user_id).has_role("trainer")
    again = client.post(url + "/vet", data={"csrf_token": token})
    assert again.status_code == 303 and "already vetted" in flashes(client, url)
    reread(session)
    assert session.scalar(select(func.count()).select_from(Qualification)) == 1


def test_rejecting_stores_the_reason_and_without_one_changes_nothing(client, session):
    signed_in_admin(client, session)
    application, _assessment = ready_candidate(session, right=False, grade=0.1)
    url = f"/admin/recruiting/candidates/{application.id}"
    token = csrf_token(client, url)
    empty = client.post(url + "/reject", data={"csrf_token": token, "reason": "   "})
    assert empty.status_code == 422 and "the candidate sees this reason" in text(empty)
    reread(session)
    session.refresh(application)
    assert application.stage == "ready" and application.reason is None
    too_long = client.post(url + "/reject", data={"csrf_token": token, "reason": "x" * 1001})
    assert too_long.status_code == 422 and "at most 1,000" in text(too_long) and "x" * 1001 in text(too_long)
    done = client.post(url + "/reject", data={"csrf_token": token, "reason": "Gold answers were mostly wrong."})
    assert done.status_code == 303 and "Rejected" in flashes(client, url)
    reread(session)
    session.refresh(application)
    assert (application.stage, application.reason) == ("rejected", "Gold answers were mostly wrong.")
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "application.reject"))
    assert "the decision is final" in text(client.get(url))


def test_vetting_while_grading_is_pending_is_refused_with_a_message(client, session):
    signed_in_admin(client, session)
    _project, assessment = qualification(session, prompts=[("Why?", "")])
    user = apply_as(session, name="Wendy Waiting")
    sit(session, user, assessment)  # written answer not graded
    application = applications.application_of(session, user.id)
    url = f"/admin/recruiting/candidates/{application.id}"
    response = client.post(url + "/vet", data={"csrf_token": csrf_token(client, url)})
    assert response.status_code == 303 and "awaiting grading" in flashes(client, url)
    reread(session)
    assert session.get(Application, application.id).stage == "awaiting_grading"  # reread: not a stale copy
    assert session.scalar(select(func.count()).select_from(Qualification)) == 0


def test_a_too_long_vetting_note_is_a_field_error(client, session):
    signed_in_admin(client, session)
    application, _assessment = ready_candidate(session)
    url = f"/admin/recruiting/candidates/{application.id}"
    response = client.post(url + "/vet", data={"csrf_token": csrf_token(client, url), "note": "n" * 1001})
    assert response.status_code == 422 and "at most 1,000 characters" in text(response)
    reread(session)
    assert session.get(Application, application.id).stage == "ready"


# -------------------------------------------------------------------------------------- dashboard


def test_the_dashboard_is_calm_when_empty(client, session):
    signed_in_admin(client, session)
    page = text(client.get("/admin/recruiting/dashboard"))
    assert 'data-testid="funnel-empty"' in page and "No assessments yet" in page
    assert "No graded answer had a model" in page


def test_the_dashboard_shows_the_funnel_and_says_when_validity_needs_more_trainers(client, session):
    admin = signed_in_admin(client, session)
    application, assessment = ready_candidate(session)
    from app.services.recruiting import vetting

    vetting.vet(session, application.id, admin.id)
    apply_as(session, name="Andy Applied")
    page = text(client.get("/admin/recruiting/dashboard"))
    rows = dict(re.findall(r"<tr><td>([A-Za-z ]+)</td>(.*?)</tr>", page, re.S))
    assert re.findall(r'class="num">([^<]*)<', rows["Applied"])[:2] == ["1", "2"]
    assert re.findall(r'class="num">([^<]*)<', rows["Vetted"])[:3] == ["1", "1", "100 %"]
    assert "not enough vetted trainers with work yet: 0 of the 4 needed" in page


def test_validity_reads_rho_with_its_interval_and_draws_the_scatter(client, session):
    admin = signed_in_admin(client, session)
    grader = make_user(session, "reviewer")
    _project, assessment = qualification(session, items=8, settings={"min_items": "4", "max_items": "4", "pass_score": "0"},
                                         prompts=[("Why?", "")])
    work = make_label_project(session, items=1)
    patterns = [[False], [True, False, False, False], [True, True, False, False], [True, True, True, False], [True]]
    for n, pattern in enumerate(patterns):
        user = apply_as(session, name=f"Vetted {n}")
        sit(session, user, assessment, right=pattern, grade=1.0, grader=grader)
        application = applications.application_of(session, user.id)
        from app.services.recruiting import vetting

        vetting.vet(session, application.id, admin.id)
        session.add(TrainerStats(project_id=work.id, trainer_id=user.id, annotations=40, gold_answers=20,
                                 gold_accuracy=0.5 + n / 10))
    session.commit()
    page = text(client.get("/admin/recruiting/dashboard"))
    reading = re.search(r'class="validity-reading">([^<]*)<', page).group(1)
    assert re.fullmatch(r"ρ = 1\.00 \[[-0-9.]+, 1\.00\], n = 5: interview ability predicts gold accuracy", reading), reading
    assert page.count('<circle class="point"') == 5 and "95 % interval" in page


def test_model_grader_agreement_shows_when_suggestions_were_graded(client, session):
    signed_in_admin(client, session)
    grader = make_user(session, "reviewer")
    _project, assessment = qualification(session, prompts=[("Why?", "")])
    user = apply_as(session)
    sit(session, user, assessment)
    from app.models import WrittenAnswer
    from app.services.recruiting import grading

    answer = session.scalars(select(WrittenAnswer)).one()
    answer.suggested_grade, answer.suggested_rationale = 0.5, "Partly right"
    session.commit()
    grading.grade(session, answer.id, 0.5, "", grader.id)
    page = text(client.get("/admin/recruiting/dashboard"))
    assert 'data-testid="agreement"' in page and "100 %</strong> confirmed" in page


# ---------------------------------------------------------------------------------------- domains


def test_domains_are_added_renamed_and_deactivated(client, session):
    signed_in_admin(client, session)
    url = "/admin/recruiting/domains"
    assert 'data-testid="domains-empty"' in text(client.get(url))
    token = csrf_token(client, url)
    added = client.post(url, data={"csrf_token": token, "form": "add", "slug": "Medicine", "name": "Medicine",
                                   "active": "on"})
    assert added.status_code == 303 and "Domain “Medicine” saved." in flashes(client, url)
    renamed = client.post(url, data={"csrf_token": token, "form": "edit", "slug": "medicine", "name": "Medicine & health"})
    assert renamed.status_code == 303 and "inactive" in flashes(client, url)
    reread(session)
    found = session.scalars(select(Domain)).one()
    assert (found.slug, found.name, found.active) == ("medicine", "Medicine & health", False)
    assert "Medicine &amp; health" in text(client.get(url))


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"form": "add", "slug": "no spaces", "name": "X"}, "slug", "a-z, 0-9"),
    ({"form": "add", "slug": "-dash", "name": "X"}, "slug", "starting with a letter"),
    ({"form": "add", "slug": "x" * 41, "name": "X"}, "slug", "1–40"),
    ({"form": "add", "slug": "ok", "name": ""}, "name", "is required"),
    ({"form": "add", "slug": "ok", "name": "n" * 101}, "name", "at most 100"),
    ({"form": "add", "slug": "law", "name": "Law again"}, "slug", "is taken"),
    ({"form": "edit", "slug": "law", "name": ""}, "name", "is required"),
    ({}, "slug", "a-z, 0-9"),
])
def test_a_bad_domain_is_a_field_error_and_saves_nothing(client, session, form, field, message):
    signed_in_admin(client, session)
    domain(session, "law", "Law")
    url = "/admin/recruiting/domains"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), **form})
    assert response.status_code == 422 and message in text(response) and 'aria-invalid="true"' in text(response)
    reread(session)
    assert [(d.slug, d.name) for d in session.scalars(select(Domain))] == [("law", "Law")]


def test_editing_a_domain_that_does_not_exist_is_404(client, session):
    signed_in_admin(client, session)
    url = "/admin/recruiting/domains"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "form": "edit", "slug": "ghost", "name": "G"})
    assert response.status_code == 404


# ------------------------------------------------------------------------------------ assessments


def test_the_assessments_page_when_there_are_none(client, session):
    signed_in_admin(client, session)
    assert 'data-testid="assessments-empty"' in text(client.get("/admin/recruiting/assessments"))


def test_a_qualification_project_is_set_up_from_the_page(client, session):
    signed_in_admin(client, session)
    project, _none = qualification(session, slug="med-quiz", items=3, levels=["hard"], set_up=False)
    listing = text(client.get("/admin/recruiting/assessments"))
    assert "Set up as an assessment" in listing and 'href="/admin/recruiting/assessments/med-quiz"' in listing
    url = "/admin/recruiting/assessments/med-quiz"
    form = text(client.get(url))
    assert "Set up as an assessment" in form and 'value="30"' in form and 'data-testid="bank"' not in form
    response = client.post(url, data={"csrf_token": csrf_token(client, url), **SETTINGS})
    assert response.status_code == 303 and "is now an assessment" in flashes(client, url)
    reread(session)
    assessment = session.scalar(select(Assessment).where(Assessment.project_id == project.id))
    assert (assessment.domain, assessment.max_items) == ("medicine", 3)
    page = text(client.get(url))
    assert page.count('<option value="hard" selected>') == 3 and "Recalibrate now" in page
    assert 'data-testid="no-prompts"' in page
    assert "Medicine" in text(client.get("/admin/recruiting/assessments"))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("min_items", "0", "whole number from 1 to 100"), ("max_items", "1", "at least the minimum"),
    ("se_target", "2", "from 0.1 to 1.5"), ("time_limit_minutes", "241", "from 1 to 240"),
    ("ability_weight", "1.2", "from 0 to 1"), ("pass_score", "-1", "from 0 to 1"), ("auto_vet_score", "x", "or empty"),
    ("exposure_bin", "21", "from 1 to 20"), ("calibrate_after", "4", "from 5 to 10000"), ("domain", "nope", "taxonomy"),
])
def test_each_bad_setting_is_shown_at_its_field_and_nothing_changes(client, session, field, value, message):
    signed_in_admin(client, session)
    project, assessment = qualification(session, slug="med-quiz")
    url = "/admin/recruiting/assessments/med-quiz"
    data = {**SETTINGS, "pass_score": "0.9", field: value}  # a good change beside the bad one is not saved either
    response = client.post(url, data={"csrf_token": csrf_token(client, url), **data})
    page = text(response)
    assert response.status_code == 422 and message in page
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page, re.S)
    reread(session)
    session.refresh(assessment)
    assert assessment.pass_score == 0.5
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "assessment.save")) == 1


def test_an_empty_settings_form_names_every_field(client, session):
    signed_in_admin(client, session)
    qualification(session, slug="med-quiz", set_up=False)
    url = "/admin/recruiting/assessments/med-quiz"
    response = client.post(url, data={"csrf_token": csrf_token(client, url)})
    assert response.status_code == 422 and text(response).count('class="field-error"') == 9  # all but auto-vet
    reread(session)
    assert session.scalar(select(func.count()).select_from(Assessment)) == 0


def test_a_work_project_has_no_assessment_page(client, session):
    signed_in_admin(client, session)
    make_label_project(session, slug="paid")
    assert client.get("/admin/recruiting/assessments/paid").status_code == 404


def test_prompts_are_added_edited_and_deleted_from_the_page(client, session):
    signed_in_admin(client, session)
    _project, assessment = qualification(session, slug="med-quiz")
    url = "/admin/recruiting/assessments/med-quiz"
    token = csrf_token(client, url)
    bad = client.post(url + "/prompts", data={"csrf_token": token, "prompt": "", "rubric": "r", "max_chars": "50"})
    assert bad.status_code == 422 and "is required" in text(bad) and "from 100 to 20000" in text(bad)
    added = client.post(url + "/prompts", data={"csrf_token": token, "prompt": "Describe sepsis.", "rubric": "qSOFA",
                                                "max_chars": "1500"})
    assert added.status_code == 303 and "Written prompt added." in flashes(client, url)
    reread(session)
    prompt = session.scalars(select(WrittenPrompt)).one()
    edited = client.post(url + "/prompts", data={"csrf_token": token, "prompt_id": str(prompt.id),
                                                 "prompt": "Describe septic shock.", "rubric": "", "max_chars": "800"})
    assert edited.status_code == 303
    reread(session)
    session.refresh(prompt)
    assert (prompt.prompt, prompt.rubric, prompt.max_chars) == ("Describe septic shock.", "", 800)
    assert "Describe septic shock." in text(client.get(url))
    assert client.post(url + "/prompts/delete", data={"csrf_token": token}).status_code == 422
    deleted = client.post(url + "/prompts/delete", data={"csrf_token": token, "prompt_id": str(prompt.id)})
    assert deleted.status_code == 303 and "deleted" in flashes(client, url)
    reread(session)
    assert session.scalar(select(func.count()).select_from(WrittenPrompt)) == 0


def test_an_answered_prompt_cannot_be_deleted_from_the_page(client, session):
    signed_in_admin(client, session)
    _project, assessment = qualification(session, slug="med-quiz", prompts=[("Why?", "")])
    sit(session, apply_as(session), assessment)
    url = "/admin/recruiting/assessments/med-quiz"
    assert "Answered by candidates: kept." in text(client.get(url))
    (prompt,) = assessments.prompts_of(session, assessment)
    response = client.post(url + "/prompts/delete", data={"csrf_token": csrf_token(client, url), "prompt_id": str(prompt.id)})
    assert response.status_code == 303 and "Not deleted: candidates have answered" in flashes(client, url)
    reread(session)
    assert session.scalar(select(func.count()).select_from(WrittenPrompt)) == 1


def test_levels_are_saved_from_the_bank_table(client, session):
    signed_in_admin(client, session)
    _project, assessment = qualification(session, slug="med-quiz", items=3)
    a, b, c = sorted(session.scalars(select(ItemParameter.item_id)))
    calibrated = session.get(ItemParameter, c)
    calibrated.calibrated, calibrated.difficulty = True, 0.42
    session.commit()
    url = "/admin/recruiting/assessments/med-quiz"
    token = csrf_token(client, url)
    response = client.post(url + "/levels", data={"csrf_token": token, "page": "1", f"level-{a}": "hard",
                                                  f"level-{b}": "medium", f"level-{c}": "easy"})
    assert response.status_code == 303 and response.headers["Location"].endswith("#bank")
    assert "2 levels changed" in flashes(client, url)
    reread(session)
    assert {p.item_id: (p.level, p.difficulty) for p in session.scalars(select(ItemParameter))} == \
        {a: ("hard", 1.0), b: ("medium", 0.0), c: ("easy", 0.42)}
    bad = client.post(url + "/levels", data={"csrf_token": token, f"level-{a}": "impossible"})
    assert bad.status_code == 303 and "easy, medium or hard" in flashes(client, url)
    assert client.post(url + "/levels", data={"csrf_token": token}).status_code == 303
    assert "No level changed." in flashes(client, url)
    elsewhere = client.post(url + "/levels", data={"csrf_token": token, "level-2147483647": "easy"})
    assert elsewhere.status_code == 404


def test_the_bank_is_paginated(client, session):
    signed_in_admin(client, session)
    qualification(session, slug="big-quiz", items=53)
    url = "/admin/recruiting/assessments/big-quiz"
    first, second = text(client.get(url)), text(client.get(url + "?page=2"))
    assert first.count('class="level-select"') == 50 and second.count('class="level-select"') == 3
    assert "Page 1 of 2" in first and "?page=2#bank" in first and "53 gold items" in first
    assert client.get(url + "?page=3").status_code == 404


def test_recalibrating_runs_the_job_and_says_what_happened(client, session):
    signed_in_admin(client, session)
    qualification(session, slug="med-quiz")
    url = "/admin/recruiting/assessments/med-quiz"
    response = client.post(url + "/calibrate", data={"csrf_token": csrf_token(client, url)})
    assert response.status_code == 303
    assert "Nothing calibrated: 0 candidates answered; calibration needs 20" in flashes(client, url)


def test_a_calibration_the_job_queue_cannot_take_says_so(database_url, tmp_path):
    """Nothing remembers a calibration to run later: with Redis away the admin is told it was not
    queued, never "Calibrating in the background"."""
    from app.db import get_db
    from tests.conftest import redis_away_app

    with redis_away_app(database_url, tmp_path) as app:
        client = app.test_client()
        with app.app_context():
            session = get_db().session_factory()
            signed_in_admin(client, session)
            qualification(session, slug="away-quiz")
            session.close()
        url = "/admin/recruiting/assessments/away-quiz"
        response = client.post(url + "/calibrate", data={"csrf_token": csrf_token(client, url)})
        assert response.status_code == 303
        said = flashes(client, url)
        assert "Not queued: the job queue is unreachable. Nothing was calibrated" in said
        assert "Calibrating in the background" not in said


def test_posts_to_a_project_not_yet_an_assessment_ask_to_set_it_up(client, session):
    signed_in_admin(client, session)
    qualification(session, slug="bare", set_up=False)
    url = "/admin/recruiting/assessments/bare"
    token = csrf_token(client, url)
    for action in ("/prompts", "/prompts/delete", "/levels", "/calibrate"):
        response = client.post(url + action, data={"csrf_token": token, "prompt": "Why?", "max_chars": "500"})
        assert response.status_code == 303 and "Set this project up as an assessment first." in flashes(client, url)
    reread(session)
    assert session.scalar(select(func.count()).select_from(WrittenPrompt)) == 0


def test_non_admins_are_turned_away(client, session):
    reviewer = make_user(session, "reviewer")
    login(client, reviewer.email, PASSWORD)
    for url in (BOARD, "/admin/recruiting/dashboard", "/admin/recruiting/domains", "/admin/recruiting/assessments"):
        assert client.get(url).status_code == 403
