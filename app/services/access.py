"""Who may see and do what. Views ask here; nothing else decides.

Page-level rules are declared on each route with ``web.access.require(...)``; object-level rules
(this project, this assignment) are the functions below.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Project, ProjectMember, User


def is_admin(user: User) -> bool:
    return user.has_role("admin")


def membership(session: Session, user: User, project: Project, role: str = "trainer") -> ProjectMember | None:
    return session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == user.id, ProjectMember.role == role
        )
    )


def can_work_on(session: Session, user: User, project: Project) -> bool:
    """Trainers work on work projects they are active members of; applicants take qualifications."""
    if not user.is_active:
        return False
    if project.kind == "qualification":
        if not user.has_role("applicant", "trainer"):
            return False
    elif not user.has_role("trainer"):
        return False
    member = membership(session, user, project)
    return member is not None and member.status == "active"


def is_paused_in(session: Session, user: User, project: Project) -> bool:
    member = membership(session, user, project)
    return member is not None and member.status == "paused"


def workable_projects(session: Session, user: User, include_paused: bool = False) -> list[Project]:
    """Projects the user is an active trainer-member of and that are not archived, newest first."""
    stmt = (
        select(Project)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .where(
            ProjectMember.user_id == user.id,
            ProjectMember.role == "trainer",
            ProjectMember.status.in_(("active", "paused") if include_paused else ("active",)),
            Project.status.in_(("active", "paused")),
        )
        .order_by(Project.created_at.desc(), Project.id.desc())
    )
    return [
        p for p in session.scalars(stmt)
        if can_work_on(session, user, p) or (include_paused and is_paused_in(session, user, p))
    ]
