"""SQLAlchemy models: one module per area, no business logic, no imports of the rest of the app."""

from .api import DELIVERY_STATUSES, WEBHOOK_EVENTS, ApiToken, Webhook, WebhookDelivery
from .audit import AuditEvent
from .base import Base, utcnow
from .exports import EXPORT_STATUSES, DatasetExport
from .imports import IMPORT_STATUSES, ImportJob
from .pay import ADJUSTMENT_KINDS, TIMESHEET_STATUSES, PayAdjustment, Timesheet
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
from .recruiting import (
    APPLICATION_STAGES,
    INTERVIEW_STATUSES,
    INVITATION_STATUSES,
    ITEM_LEVELS,
    Application,
    ApplicationStage,
    Assessment,
    Domain,
    Interview,
    InterviewResponse,
    Invitation,
    ItemParameter,
    Qualification,
    WrittenAnswer,
    WrittenPrompt,
)
from .stats import ProjectStats, TrainerStats
from .users import ROLES, PasswordReset, TrainerProfile, User, UserRole
from .work import ASSIGNMENT_STATUSES, REVIEW_STATUSES, VERDICTS, Annotation, Assignment, Review

__all__ = [
    "DELIVERY_STATUSES",
    "WEBHOOK_EVENTS",
    "ApiToken",
    "Webhook",
    "WebhookDelivery",
    "APPLICATION_STAGES",
    "INTERVIEW_STATUSES",
    "INVITATION_STATUSES",
    "ITEM_LEVELS",
    "Application",
    "ApplicationStage",
    "Assessment",
    "Domain",
    "Interview",
    "InterviewResponse",
    "Invitation",
    "ItemParameter",
    "Qualification",
    "WrittenAnswer",
    "WrittenPrompt",
    "ADJUSTMENT_KINDS",
    "ASSIGNMENT_STATUSES",
    "TIMESHEET_STATUSES",
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
    "PasswordReset",
    "PayAdjustment",
    "ProjectMember",
    "ProjectStats",
    "Question",
    "Review",
    "TrainerProfile",
    "Timesheet",
    "TrainerStats",
    "User",
    "UserRole",
    "utcnow",
]
