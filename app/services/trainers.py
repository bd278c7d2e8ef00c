"""One trainer in one project, as an admin sees them: their figures, their latest work, and the
exclusion of their work from the dataset."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Annotation, Item, Project, ProjectMember, TrainerStats, User

from . import access, stats

RECENT = 50


@dataclass
class TrainerRecord:
    user: User
    member: ProjectMember
    stats: TrainerStats | None
    recent: list  # (annotation, item), newest first
    excluded: int  # how many of their annotations are excluded


def trainer_record(session: Session, project: Project, user_id: int) -> TrainerRecord:
    """A trainer member's record in the project; anyone else is NotFound."""
    user = session.get(User, user_id)
    member = access.membership(session, user_id, project)
    if user is None or member is None:
        raise NotFound("no such trainer in this project")
    figures = session.scalar(select(TrainerStats).where(TrainerStats.project_id == project.id,
                                                        TrainerStats.trainer_id == user_id))
    recent = session.execute(
        select(Annotation, Item)
        .join(Item, Item.id == Annotation.item_id)
        .where(Annotation.project_id == project.id, Annotation.trainer_id == user_id)
        .order_by(Annotation.submitted_at.desc(), Annotation.id.desc())
        .limit(RECENT)
    ).all()
    excluded = session.scalar(select(func.count(Annotation.id)).where(
        Annotation.project_id == project.id, Annotation.trainer_id == user_id, Annotation.excluded.is_(True)))
    return TrainerRecord(user, member, figures, recent, excluded)


def set_work_excluded(session: Session, project: Project, trainer_id: int, actor_id: int | None,
                      excluded: bool = True) -> int:
    """Exclude (or include again) every annotation of one trainer in the project, with the pay it
    settles (``stats.exclude_trainer_work``). Commits; returns how many annotations changed."""
    return stats.exclude_trainer_work(session, project, trainer_id, actor_id, excluded=excluded)
