"""SQLAlchemy models: one module per area, no business logic, no imports of the rest of the app."""

from .audit import AuditEvent
from .base import Base, utcnow
from .exports import EXPORT_STATUSES, DatasetExport
from .imports import IMPORT_STATUSES, ImportJob
from .projects import (
    MEMBER_ROLES,
    MEMBER_STATUSES,
    PROJECT_KINDS,
    PROJECT_STATUSES,
    Item,
    Project,
    ProjectMember,
    Question,
)
from .stats import ProjectStats, TrainerStats
from .users import ROLES, TrainerProfile, User, UserRole
from .work import ASSIGNMENT_STATUSES, REVIEW_STATUSES, VERDICTS, Annotation, Assignment, Review

__all__ = [
    "ASSIGNMENT_STATUSES",
    "EXPORT_STATUSES",
    "IMPORT_STATUSES",
    "MEMBER_ROLES",
    "MEMBER_STATUSES",
    "PROJECT_KINDS",
    "PROJECT_STATUSES",
    "REVIEW_STATUSES",
    "VERDICTS",
    "ROLES",
    "Annotation",
    "Assignment",
    "AuditEvent",
    "Base",
    "DatasetExport",
    "ImportJob",
    "Item",
    "Project",
    "ProjectMember",
    "ProjectStats",
    "Question",
    "Review",
    "TrainerProfile",
    "TrainerStats",
    "User",
    "UserRole",
    "utcnow",
]
