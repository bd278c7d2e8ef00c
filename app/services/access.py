"""Who may see and do what. Views ask here; nothing else decides.

Page-level rules are declared on each route with ``web.access.require(...)``; object-level rules
(this project, this assignment) are the functions below.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from app.models import Project, ProjectMember, User


def is_admin(user: User) -> bool:
    return user.has_role("admin")


def member_row(user_id: int, project_id: int, role: str = "trainer"):
    """The condition that picks one membership row: this user in this project in this role."""
    return (ProjectMember.project_id == project_id) & (ProjectMember.user_id == user_id) & (ProjectMember.role == role)


def membership(session: Session, user: User | int, project: Project | int, role: str = "trainer") -> ProjectMember | None:
    """The one membership query: the user's membership in the project in this role (any status), or None."""
    user_id = user if isinstance(user, int) else user.id
    project_id = project if isinstance(project, int) else project.id
    return session.scalar(select(ProjectMember).where(member_row(user_id, project_id, role)))


def worker_roles(project: Project) -> tuple[str, ...]:
    """Who may do a project's tasks through the work queue: trainers. Applicants never reach it: they
    take an assessment through its interview (`recruiting.interviews`). The one rule, for membership
    and for every request."""
    return ("trainer",)


def _role_allows(user: User, project: Project) -> bool:
    return user.is_active and user.has_role(*worker_roles(project))


def can_work_on(session: Session, user: User, project: Project, member: ProjectMember | None = None) -> bool:
    """An active trainer-member of a work project (an assessment's items are served only by its
    interview, whatever memberships an older version left). ``member`` saves a lookup."""
    if project.kind != "work" or not _role_allows(user, project):
        return False
    member = member if member is not None else membership(session, user, project)
    return member is not None and member.status == "active"


def workable_projects(session: Session, user: User, include_paused: bool = False) -> list[tuple[Project, str]]:
    """(project, membership status) for projects the user may work on, newest first, in one query;
    with ``include_paused`` also those where they are paused."""
    stmt = (
        select(Project, ProjectMember.status)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .where(
            ProjectMember.user_id == user.id,
            ProjectMember.role == "trainer",
            Project.kind == "work",
            ProjectMember.status.in_(("active", "paused") if include_paused else ("active",)),
            Project.status.in_(("active", "paused")),
        )
        .order_by(Project.created_at.desc(), Project.id.desc())
    )
    return [(project, status) for project, status in session.execute(stmt) if _role_allows(user, project)]


def is_client(session: Session, user: User, project: Project) -> bool:
    """A member of the AI team that ordered the project's data (an active ``client`` membership): they see
    its progress, quality, budget and dataset versions, push items and build exports, never a trainer's
    identity or pay."""
    if not (user.is_active and user.has_role("client")):
        return False
    found = select(Project.id).where(Project.id == project.id, member_not_training(user.id, "client"))
    return session.scalar(found) is not None


def member_not_training(user_id: int, role: str):
    """The condition on ``Project`` that the person is an active ``role`` member of it (its reviewer or
    client) who does not also train on it: memberships refuse that, since reviewers and clients see
    the gold answers; this holds for any made before."""
    member = (ProjectMember.project_id == Project.id, ProjectMember.user_id == user_id)
    return and_(exists().where(*member, ProjectMember.role == role, ProjectMember.status == "active"),
                ~exists().where(*member, ProjectMember.role == "trainer", ProjectMember.status != "removed"))


def client_projects(session: Session, user: User) -> list[Project]:
    """The projects ``user`` is an active client of, newest first."""
    if not (user.is_active and user.has_role("client")):
        return []
    return list(session.scalars(
        select(Project).where(member_not_training(user.id, "client"), Project.kind == "work")
        .order_by(Project.created_at.desc(), Project.id.desc())))


def can_see_project(session: Session, user: User, project: Project) -> bool:
    """Who may read a project's summary (progress, questions): admins, its clients, and its active trainer
    or reviewer members."""
    if is_admin(user) or is_client(session, user, project):
        return True
    if can_work_on(session, user, project):
        return True
    reviewer = membership(session, user, project, role="reviewer")
    return user.is_active and user.has_role("reviewer") and reviewer is not None and reviewer.status == "active"
