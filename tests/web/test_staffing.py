"""The staffing page (candidates, inviting, withdrawing) and the trainer's invitations."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.models import Invitation, ProjectMember, Qualification
from app.services.recruiting import matching
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user
from tests.html import assert_inert

HOSTILE = "Hello <script>window.pwned = 1</script> **welcome** [x](javascript:window.pwned=2)"


@pytest.fixture
def staffing(session):
    admin = make_user(session, "admin", name="Ada Admin")
    project = make_label_project(session, items=3, slug="clinic")
    project.required_domains, project.min_qualification_score = ["medicine"], 0.6
    project.hourly_rate_cents = 3000
    trainer = make_user(session, "trainer", name="Quinn Qualified")
    session.add(Qualification(user_id=trainer.id, domain="medicine", score=0.8))
    session.commit()
    return project, admin, trainer


def token(client, path):
    return csrf_token(client, path)


def test_the_staffing_page_lists_candidates_with_their_parts(client, session, staffing):
    project, admin, trainer = staffing
    login(client, admin.email, PASSWORD)
    response = client.get(f"/admin/projects/{project.slug}/staffing")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'data-candidate="{trainer.email}"' in page and f'name="user_id" value="{trainer.id}"' in page
    assert '<td class="num" data-part="qualification">0.80</td>' in page
    assert "0.4 × qualification" in page  # the formula is on the page
    assert "annotations still needed" in page and "No target date is set" in page
    assert "No invitations yet." in page
    assert f'href="/admin/projects/{project.slug}/staffing"' in client.get(f"/admin/projects/{project.slug}").get_data(
        as_text=True)


def test_sorting_over_htmx_swaps_only_the_table(client, session, staffing):
    project, admin, trainer = staffing
    login(client, admin.email, PASSWORD)
    response = client.get(f"/admin/projects/{project.slug}/staffing?sort=name",
                          headers={"HX-Request": "true", "HX-Target": "candidates"})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert fragment.lstrip().startswith("<div id=\"candidates\"") and "<html" not in fragment
    assert trainer.email in fragment
    assert client.get(f"/admin/projects/{project.slug}/staffing?page=2").status_code == 404


def test_an_empty_candidates_table_says_what_to_do(client, session, staffing):
    project, admin, _trainer = staffing
    project.required_domains = ["law"]
    session.commit()
    login(client, admin.email, PASSWORD)
    page = client.get(f"/admin/projects/{project.slug}/staffing").get_data(as_text=True)
    assert "No trainer is qualified in law at ≥ 0.60 yet — vet candidates on the recruiting board." in page


def test_the_admin_invites_the_ticked_trainers(client, session, staffing):
    project, admin, trainer = staffing
    login(client, admin.email, PASSWORD)
    csrf = token(client, f"/admin/projects/{project.slug}/staffing")
    form = {"csrf_token": csrf, "user_id": [str(trainer.id)], "rate": "35.00", "expected_hours_per_week": "12",
            "message": HOSTILE}
    response = client.post(f"/admin/projects/{project.slug}/invitations", data=form)
    assert response.status_code == 303
    invitation = session.scalar(select(Invitation))
    assert (invitation.user_id, invitation.rate_cents, invitation.expected_hours_per_week, invitation.invited_by) == (
        trainer.id, 3500, 12, admin.id)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Invited 1 trainer." in page and f'data-invitation="{trainer.email}"' in page
    assert 'data-status="pending"' in page and "0 trainers may be invited" in page
    # A double click: nothing new, and it says so.
    client.post(f"/admin/projects/{project.slug}/invitations", data=form)
    assert len(session.scalars(select(Invitation)).all()) == 1
    assert "1 already had a pending invitation." in client.get(
        f"/admin/projects/{project.slug}/staffing").get_data(as_text=True)


@pytest.mark.parametrize(("fields", "says"), [
    ({}, "Tick at least one trainer to invite."),
    ({"expected_hours_per_week": "200"}, "must be a whole number of hours from 1 to 80"),
    ({"expected_hours_per_week": "lots"}, "must be a whole number of hours from 1 to 80"),
    ({"rate": "12.345"}, "may have at most two decimals"),
    ({"message": "x" * 2001}, "must be at most 2,000 characters"),
    ({"user_id": "not-an-id"}, "One of the ticked boxes is not a trainer on the list."),
])
def test_a_bad_invite_form_is_shown_again_with_its_problem(client, session, staffing, fields, says):
    project, admin, trainer = staffing
    login(client, admin.email, PASSWORD)
    csrf = token(client, f"/admin/projects/{project.slug}/staffing")
    form = {"csrf_token": csrf, "message": "kept", **({"user_id": str(trainer.id)} if fields else {}), **fields}
    response = client.post(f"/admin/projects/{project.slug}/invitations", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and says in page
    assert session.scalar(select(Invitation)) is None


def test_an_unqualified_trainer_cannot_be_invited_by_a_crafted_form(client, session, staffing):
    project, admin, _trainer = staffing
    other = make_user(session, "trainer")
    login(client, admin.email, PASSWORD)
    csrf = token(client, f"/admin/projects/{project.slug}/staffing")
    response = client.post(f"/admin/projects/{project.slug}/invitations",
                           data={"csrf_token": csrf, "user_id": str(other.id)})
    assert response.status_code == 422 and "cannot be invited" in response.get_data(as_text=True)
    assert session.scalar(select(Invitation)) is None


def test_the_admin_withdraws_a_pending_invitation(client, session, staffing):
    project, admin, trainer = staffing
    invitation = matching.invite(session, project, [trainer.id], admin.id).created[0]
    login(client, admin.email, PASSWORD)
    csrf = token(client, f"/admin/projects/{project.slug}/staffing")
    url = f"/admin/projects/{project.slug}/invitations/{invitation.id}/withdraw"
    response = client.post(url, data={"csrf_token": csrf})
    assert response.status_code == 303
    session.refresh(invitation)
    assert invitation.status == "withdrawn"
    again = client.post(url, data={"csrf_token": csrf}, follow_redirects=True).get_data(as_text=True)
    assert "This invitation was already withdrawn." in again
    other = make_label_project(session)
    assert client.post(f"/admin/projects/{other.slug}/invitations/{invitation.id}/withdraw",
                       data={"csrf_token": csrf}).status_code == 404


def test_the_trainer_reads_and_accepts_an_invitation_then_works(client, session, staffing):
    project, admin, trainer = staffing
    project.instructions = "Read the **chart** first."
    session.commit()
    invitation = matching.invite(session, project, [trainer.id], admin.id, rate_cents=3500,
                                 expected_hours_per_week=10, message=HOSTILE).created[0]
    login(client, trainer.email, PASSWORD)
    work = client.get("/work/").get_data(as_text=True)
    assert 'hx-get="/invitations/pending"' in work and 'href="/invitations"' in work
    box = client.get("/invitations/pending").get_data(as_text=True)
    assert project.name in box and "35.00 USD an hour" in box
    page = client.get("/invitations").get_data(as_text=True)
    assert project.name in page and "35.00" in page and "10</strong> hours a week" in page
    assert "<strong>welcome</strong>" in page and "<strong>chart</strong>" in page
    assert_inert(page)
    csrf = token(client, "/invitations")
    response = client.post(f"/invitations/{invitation.id}/accept", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["Location"] == f"/work/{project.slug}"
    workspace = client.get(response.headers["Location"])
    assert workspace.status_code == 200 and f"Welcome to {project.name}" in workspace.get_data(as_text=True)
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id))
    assert (member.status, member.rate_override_cents) == ("active", 3500)
    # A second click says so, on the invitations page.
    again = client.post(f"/invitations/{invitation.id}/accept", data={"csrf_token": csrf})
    assert again.status_code == 303 and again.headers["Location"] == "/invitations"
    assert "You already accepted this invitation." in client.get("/invitations").get_data(as_text=True)
    assert client.get("/invitations/pending").get_data(as_text=True).strip() == ""


def test_the_trainer_declines(client, session, staffing):
    project, admin, trainer = staffing
    invitation = matching.invite(session, project, [trainer.id], admin.id).created[0]
    login(client, trainer.email, PASSWORD)
    csrf = token(client, "/invitations")
    response = client.post(f"/invitations/{invitation.id}/decline", data={"csrf_token": csrf}, follow_redirects=True)
    assert "Invitation declined." in response.get_data(as_text=True)
    session.refresh(invitation)
    assert invitation.status == "declined"
    assert session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id)) is None


def test_nobody_else_sees_or_answers_an_invitation(client, session, staffing):
    project, admin, trainer = staffing
    invitation = matching.invite(session, project, [trainer.id], admin.id).created[0]
    outsider = make_user(session, "trainer")
    login(client, outsider.email, PASSWORD)
    assert project.name not in client.get("/invitations").get_data(as_text=True)
    csrf = token(client, "/invitations")
    for answer in ("accept", "decline"):
        assert client.post(f"/invitations/{invitation.id}/{answer}", data={"csrf_token": csrf}).status_code == 404
    session.refresh(invitation)
    assert invitation.status == "pending"


def test_the_project_form_sets_a_target_date(client, session, staffing):
    project, admin, _trainer = staffing
    login(client, admin.email, PASSWORD)
    edit = f"/admin/projects/{project.slug}/edit"
    page = client.get(edit).get_data(as_text=True)
    assert 'name="target_date" value=""' in page
    form = {
        "csrf_token": csrf_token(client, edit), "name": project.name, "status": "active", "instructions": "",
        "overlap": "1", "lease_minutes": "30", "gold_rate": "0", "review_rate": "0", "hourly_rate": "30.00",
        "max_billable_seconds_per_task": "1800", "required_domains": "medicine", "target_date": "2027-03-31",
        "q-0-key": "label", "q-0-type": "label", "q-0-title": "Label?", "q-0-labels": "yes\nno", "q-0-required": "on",
    }
    response = client.post(edit, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    session.refresh(project)
    assert project.target_date == datetime(2027, 3, 31, 23, 59, 59, tzinfo=UTC)
    assert 'name="target_date" value="2027-03-31"' in client.get(edit).get_data(as_text=True)
    bad = client.post(edit, data={**form, "target_date": "31/03/2027"})
    assert bad.status_code == 422 and "must be a date like 2027-03-31" in bad.get_data(as_text=True)
    assert "Target: <strong data-figure=\"target\">2027-03-31" in client.get(
        f"/admin/projects/{project.slug}/staffing").get_data(as_text=True)
