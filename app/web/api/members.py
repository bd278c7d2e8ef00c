"""API: a project's members (admins) — list them, add one by e-mail, pause, reinstate or remove one, exclude a
trainer's work or include it again."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.db import get_session
from app.errors import ValidationError
from app.models import MEMBER_ROLES, MEMBER_STATUSES
from app.services import projects as project_service
from app.services import trainers
from app.services import users as user_service

from .base import In, allow, bp, responses, spec, user
from .projects import visible_project


class MemberOut(BaseModel):
    id: int = Field(description="The membership's id (PATCH …/members/{id})")
    user_id: int
    name: str
    email: str
    role: str = Field(description="trainer, reviewer or client")
    status: str = Field(description="invited, active, paused or removed")
    flagged_reason: str | None = Field(description="Why quality checks flagged the member, until reinstated")
    flagged_at: datetime | None
    created_at: datetime


class MemberList(BaseModel):
    data: list[MemberOut]


class MemberAdd(In):
    email: str = Field(min_length=1, max_length=254, description="The e-mail of an existing account")
    role: Literal[MEMBER_ROLES] = "trainer"  # type: ignore[valid-type]


class MemberChange(In):
    status: Literal[MEMBER_STATUSES]  # type: ignore[valid-type]


def member_out(member, person) -> MemberOut:
    return MemberOut(id=member.id, user_id=person.id, name=person.name, email=person.email, role=member.role,
                     status=member.status, flagged_reason=member.flagged_reason, flagged_at=member.flagged_at,
                     created_at=member.created_at)


@bp.get("/projects/<slug>/members")
@allow("admin")
@spec.validate(resp=responses(HTTP_200=MemberList), tags=["members"])
def list_members(slug: str):
    """Everyone who is or was a member of the project, by role and name (admins)."""
    project = visible_project(slug)
    rows = project_service.members_of(get_session(), project)
    return MemberList(data=[member_out(member, person) for member, person in rows])


@bp.post("/projects/<slug>/members")
@allow("admin")
@spec.validate(json=MemberAdd, resp=responses(HTTP_201=MemberOut, HTTP_200=MemberOut, errors=(409,)),
               tags=["members"])
def add_member(slug: str, json: MemberAdd):
    """Make an account a member in a role (admins): added, or reinstated when paused or removed (201), or
    left as it is when it is an active member in that role already (200). The same rules as the project
    page: trainers hold the trainer role, clients the client role, nobody adds themselves as a paid
    trainer, and nobody is both trainer and reviewer of one project."""
    project = visible_project(slug)
    person, member, changed = project_service.enrol(get_session(), project, json.email, json.role,
                                                    actor_id=user().id)
    return member_out(member, person), 201 if changed else 200


@bp.patch("/projects/<slug>/members/<int:member_id>")
@allow("admin")
@spec.validate(json=MemberChange, resp=responses(HTTP_200=MemberOut, errors=(409,)), tags=["members"])
def update_member(slug: str, member_id: int, json: MemberChange):
    """Activate, pause or remove a membership (admins; never one's own). Pausing or removing a trainer
    returns their open task to the queue."""
    db = get_session()
    project = visible_project(slug)
    member = project_service.get_member(db, project, member_id)
    project_service.set_member_status(db, member, json.status, actor_id=user().id)
    return member_out(member, user_service.find_by_id(db, member.user_id))


class WorkExclusion(In):
    excluded: bool = Field(description="true: leave every annotation of this trainer in the project out of the "
                                       "dataset, quality figures and pay; false: take them back in")


class WorkExclusionOut(BaseModel):
    member_id: int
    user_id: int
    excluded: bool
    annotations_changed: int = Field(description="How many of their annotations this request changed")


@bp.put("/projects/<slug>/members/<int:member_id>/work")
@allow("admin")
@spec.validate(json=WorkExclusion, resp=responses(HTTP_200=WorkExclusionOut), tags=["members"])
def set_member_work(slug: str, member_id: int, json: WorkExclusion):
    """Exclude a trainer member's work from the project, or include it again (admins; never one's own):
    every annotation of theirs there, with the pay it settles — as the trainer page's button does."""
    db = get_session()
    project = visible_project(slug)
    member = project_service.get_member(db, project, member_id)
    if member.role != "trainer":
        raise ValidationError({"member_id": "only a trainer member's work can be excluded"})
    changed = trainers.set_work_excluded(db, project, member.user_id, user().id, excluded=json.excluded)
    return WorkExclusionOut(member_id=member.id, user_id=member.user_id, excluded=json.excluded,
                            annotations_changed=changed)
