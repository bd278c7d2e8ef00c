"""Members over the API (admins): the list, adding by e-mail with the project page's rules, and changing
a membership's status."""

from __future__ import annotations

from sqlalchemy import select

from app.models import Annotation, Assignment, AuditEvent, ProjectMember
from app.services import assignment as queue
from app.services import projects as project_service
from tests.factories import make_user

URL = "/api/v1/projects/alpha/members"


def test_the_list_names_every_member_with_role_status_and_flag(api, api_world, session):
    world = api_world.world
    member = session.scalar(select(ProjectMember).where(ProjectMember.project_id == world.project.id,
                                                        ProjectMember.user_id == world.trainer.id))
    member.flagged_reason = "failed 3 gold items"
    session.commit()
    rows = api.get(URL).get_json()["data"]
    by_user = {r["user_id"]: r for r in rows}
    assert set(by_user) == {world.trainer.id, world.reviewer.id, world.client.id}
    trainer = by_user[world.trainer.id]
    assert trainer == {**trainer, "id": member.id, "name": "Tess Trainer", "email": world.trainer.email,
                       "role": "trainer", "status": "active", "flagged_reason": "failed 3 gold items"}
    assert by_user[world.client.id]["role"] == "client" and by_user[world.reviewer.id]["role"] == "reviewer"
    assert api.get(URL, as_="admin_ro").status_code == 200
    for caller in ("client", "trainer", "reviewer"):  # the people list is the admins'
        assert api.get(URL, as_=caller).status_code == 403
    assert api.get("/api/v1/projects/nope/members").status_code == 404


def test_adding_by_e_mail_follows_the_project_pages_rules(api, api_world, session):
    world = api_world.world
    newcomer = make_user(session, "trainer", name="Nina Newcomer")
    response = api.post(URL, json={"email": newcomer.email, "role": "trainer"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["user_id"] == newcomer.id and body["role"] == "trainer" and body["status"] == "active"
    assert session.get(ProjectMember, body["id"]).project_id == world.project.id
    audited = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.add").order_by(AuditEvent.id.desc()))
    assert audited.actor_id == world.admin.id
    # the role defaults to trainer, as on the page; adding again changes nothing
    again = api.post(URL, json={"email": newcomer.email})
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]  # 200: nothing was made

    def refused(payload):
        response = api.post(URL, json=payload)
        assert response.status_code == 422, response.get_json()
        return response.get_json()["error"]["details"]

    assert "email" in refused({"email": "nobody@example.test", "role": "trainer"})
    assert "not a client" in refused({"email": newcomer.email, "role": "client"})["email"]
    assert "not a reviewer" in refused({"email": newcomer.email, "role": "reviewer"})["email"]
    assert "themselves" in refused({"email": world.admin.email, "role": "trainer"})["email"]
    assert "an assessment" in api.post("/api/v1/projects/assess/members",
                                       json={"email": newcomer.email, "role": "trainer"}).get_json()["error"]["details"]["email"]
    assert "role" in refused({"email": newcomer.email, "role": "owner"})
    assert "surprise" in refused({"email": newcomer.email, "surprise": True})
    assert api.post(URL, as_="admin_ro", json={"email": newcomer.email}).status_code == 403
    assert api.post(URL, as_="client", json={"email": newcomer.email}).status_code == 403


def test_pausing_a_trainer_returns_their_task_and_reinstating_clears_the_flag(api, api_world, session):
    world = api_world.world
    held = queue.next_task(session, world.trainer.id, world.project)
    member = session.scalar(select(ProjectMember).where(ProjectMember.project_id == world.project.id,
                                                        ProjectMember.user_id == world.trainer.id))
    member.flagged_reason = "too fast"
    session.commit()
    url = f"{URL}/{member.id}"
    response = api.patch(url, json={"status": "paused"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "paused" and response.get_json()["email"] == world.trainer.email
    session.expire_all()
    assert session.get(Assignment, held.id).status != "active"  # back in the queue at once
    reinstated = api.patch(url, json={"status": "active"}).get_json()
    assert reinstated["status"] == "active" and reinstated["flagged_reason"] is None
    assert api.patch(url, json={"status": "banished"}).status_code == 422
    assert api.patch(url, as_="admin_ro", json={"status": "paused"}).status_code == 403
    assert api.patch(url, as_="client", json={"status": "paused"}).status_code == 403
    # a membership of another project is not found under this one
    other = session.scalar(select(ProjectMember).where(ProjectMember.project_id == world.other.id))
    assert api.patch(f"{URL}/{other.id}", json={"status": "paused"}).status_code == 404


def test_nobody_changes_their_own_membership(api, api_world, session):
    world = api_world.world
    response = api.post(URL, json={"email": world.admin.email, "role": "reviewer"})
    assert response.status_code == 201
    mine = response.get_json()["id"]
    refused = api.patch(f"{URL}/{mine}", json={"status": "removed"})
    assert refused.status_code == 422 and "status" in refused.get_json()["error"]["details"]
    session.expire_all()
    assert session.get(ProjectMember, mine).status == "active"


def test_an_admin_excludes_a_trainers_work_and_includes_it_again(api, api_world, session):
    """The trainer page's button over the API: every annotation of that trainer in the project leaves
    the dataset (and comes back), audited; only a trainer membership, and never one's own."""
    world = api_world.world
    held = queue.next_task(session, world.trainer.id, world.project)
    queue.submit(session, held.id, world.trainer.id, {"label": "yes"})
    member = session.scalar(select(ProjectMember).where(ProjectMember.project_id == world.project.id,
                                                        ProjectMember.user_id == world.trainer.id))
    url = f"{URL}/{member.id}/work"
    out = api.put(url, json={"excluded": True})
    assert out.status_code == 200 and out.get_json() == {
        "member_id": member.id, "user_id": world.trainer.id, "excluded": True, "annotations_changed": 1}
    session.rollback()  # a new snapshot: see what the request committed
    assert session.scalars(select(Annotation.excluded).where(Annotation.trainer_id == world.trainer.id)).all() == [True]
    assert api.put(url, json={"excluded": True}).get_json()["annotations_changed"] == 0  # nothing more to change
    assert api.put(url, json={"excluded": False}).get_json()["annotations_changed"] == 1
    assert api.put(url, as_="admin_ro", json={"excluded": True}).status_code == 403
    assert api.put(url, json={"excluded": "yes please"}).status_code == 422
    session.rollback()  # a new snapshot before writing: the requests wrote meanwhile
    reviewing = project_service.add_member(session, world.project, make_user(session, "reviewer"), "reviewer")
    refused = api.put(f"{URL}/{reviewing.id}/work", json={"excluded": True})
    assert refused.status_code == 422 and "member_id" in refused.get_json()["error"]["details"]
