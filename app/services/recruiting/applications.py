"""Applying: the domain taxonomy, the public application form's rules, and an application's stage.

An application moves applied → interviewing → awaiting grading → ready → vetted or rejected; every
stage it enters is kept (`ApplicationStage`), which is what the funnel's time in stage reads.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bounds import plain_text_problem
from app.db import begin_write
from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    Application,
    ApplicationStage,
    Domain,
    TrainerProfile,
    User,
    UserRole,
    utcnow,
)
from app.services import audit, money
from app.services import users as user_service

DOMAIN_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
DOMAIN_NAME_MAX = 100
LANGUAGE_RE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")
MAX_DOMAINS = 10
MAX_LANGUAGES = 10
CREDENTIALS_MAX = 2000
YEARS_RANGE = (0, 70)
HOURS_RANGE = (1, 80)
MAX_DESIRED_RATE_CENTS = 1_000_00  # 1,000.00 an hour
DECIDED = ("vetted", "rejected")
_TIMEZONES = None


# ----------------------------------------------------------------------------------------- taxonomy


def domains(session: Session, active_only: bool = True) -> list[Domain]:
    stmt = select(Domain).order_by(Domain.name, Domain.slug)
    if active_only:
        stmt = stmt.where(Domain.active.is_(True))
    return list(session.scalars(stmt))


def domain_names(session: Session) -> dict[str, str]:
    """slug → display name, for every domain ever named (inactive ones too: old records show them)."""
    return dict(session.execute(select(Domain.slug, Domain.name)).all())


def save_domain(session: Session, slug: str, name: str, active: bool, actor_id: int | None) -> Domain:
    """Add a domain to the taxonomy or rename / (de)activate one. A slug never changes once used:
    qualifications and projects refer to it. Commits."""
    slug = (slug or "").strip().lower()
    name = (name or "").strip()
    errors = {}
    if not DOMAIN_SLUG_RE.fullmatch(slug):
        errors["slug"] = "must be 1–40 characters of a-z, 0-9 and -, starting with a letter or digit"
    if not name:
        errors["name"] = "is required"
    elif len(name) > DOMAIN_NAME_MAX or not name.isprintable():
        errors["name"] = f"must be at most {DOMAIN_NAME_MAX} printable characters"
    if errors:
        raise ValidationError(errors)
    begin_write(session)
    domain = session.scalar(select(Domain).where(Domain.slug == slug))
    if domain is None:
        domain = Domain(slug=slug, name=name, active=active)
        session.add(domain)
    else:
        domain.name, domain.active = name, active
    session.flush()
    audit.record(session, actor_id, "domain.save", "domain", slug, {"name": name, "active": active})
    session.commit()
    return domain


# ------------------------------------------------------------------------------------------ applying


@dataclass
class ApplicationForm:
    email: str = ""
    name: str = ""
    password: str = ""
    domains: tuple[str, ...] = ()
    languages: str = ""  # comma-separated codes as typed: "en, fr"
    years_experience: str = ""
    credentials: str = ""
    timezone: str = "UTC"
    availability_hours_per_week: str = ""
    desired_rate: str = ""
    consent: bool = False


def _whole(text: str, low: int, high: int, errors: dict, field: str, required: bool) -> int | None:
    text = (text or "").strip()
    if not text:
        if required:
            errors[field] = "is required"
        return None
    if not re.fullmatch(r"[0-9]{1,4}", text) or not low <= int(text) <= high:
        errors[field] = f"must be a whole number from {low} to {high}"
        return None
    return int(text)


def _timezones() -> set[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = zoneinfo.available_timezones() | {"UTC"}
    return _TIMEZONES


def check_form(session: Session, form: ApplicationForm) -> tuple[dict, dict[str, str]]:
    """The form's values, cleaned, and an error per field (empty when it may be saved)."""
    errors = user_service.validate_new_account(user_service.normalise_email(form.email), form.name, form.password,
                                               ["applicant"])
    known = {d.slug for d in domains(session)}
    chosen = [d.strip().lower() for d in form.domains if d and d.strip()]
    if not chosen:
        errors["domains"] = "choose at least one domain"
    elif len(set(chosen)) > MAX_DOMAINS:
        errors["domains"] = f"choose at most {MAX_DOMAINS} domains"
    elif unknown := sorted(set(chosen) - known):
        errors["domains"] = f"unknown domain {unknown[0][:40]!r}; choose from the list"
    languages = [x.strip().lower() for x in re.split(r"[,\s]+", form.languages or "") if x.strip()]
    if len(form.languages or "") > 200 or len(languages) > MAX_LANGUAGES:
        errors["languages"] = f"list at most {MAX_LANGUAGES} language codes"
    elif not languages:
        errors["languages"] = "list at least one language code, like en or pt-br"
    elif bad := [x for x in languages if not LANGUAGE_RE.fullmatch(x)]:
        errors["languages"] = f"{bad[0][:20]!r} is not a language code like en, fr or pt-br"
    years = _whole(form.years_experience, *YEARS_RANGE, errors, "years_experience", required=True)
    hours = _whole(form.availability_hours_per_week, *HOURS_RANGE, errors, "availability_hours_per_week",
                   required=True)
    credentials = (form.credentials or "").strip()
    if len(credentials) > CREDENTIALS_MAX:
        errors["credentials"] = f"must be at most {CREDENTIALS_MAX:,} characters"
    elif problem := plain_text_problem(credentials):
        errors["credentials"] = problem
    timezone = (form.timezone or "").strip() or "UTC"
    if len(timezone) > 64 or timezone not in _timezones():
        errors["timezone"] = "must be a time zone like Europe/Lisbon or America/New_York"
    rate = None
    if (form.desired_rate or "").strip():
        try:
            rate = money.parse_amount(form.desired_rate, max_cents=MAX_DESIRED_RATE_CENTS)
        except money.AmountError as exc:
            errors["desired_rate"] = str(exc)
    if not form.consent:
        errors["consent"] = "you must agree to how your data is used to apply"
    clean = {"email": user_service.normalise_email(form.email), "name": (form.name or "").strip(),
             "domains": sorted(set(chosen)), "languages": list(dict.fromkeys(languages)), "years": years,
             "hours": hours, "credentials": credentials, "timezone": timezone, "rate": rate}
    return clean, errors


def apply(session: Session, form: ApplicationForm, now: datetime | None = None,
          password_hash: str | None = None) -> User:
    """A new applicant: their account, profile and application, in one transaction, or a field error
    per problem and nothing written (a taken e-mail is one of them). ``password_hash``, when given, is
    the form's password already hashed (the demo's many candidates share one). Commits."""
    now = now or utcnow()
    clean, errors = check_form(session, form)
    if errors:
        raise ValidationError(errors)
    begin_write(session)
    if session.scalar(select(User.id).where(User.email == clean["email"])) is not None:
        raise ValidationError({"email": "is already registered; sign in instead"})
    user = User(email=clean["email"], name=clean["name"],
                password_hash=password_hash or user_service.hash_password(form.password))
    user.role_rows = [UserRole(role="applicant")]
    session.add(user)
    session.flush()
    session.add(TrainerProfile(
        user_id=user.id, domains=clean["domains"], languages=clean["languages"], years_experience=clean["years"],
        credentials=clean["credentials"], timezone=clean["timezone"],
        availability_hours_per_week=clean["hours"], desired_rate_cents=clean["rate"]))
    application = Application(user_id=user.id, domains=clean["domains"], stage="applied", stage_at=now,
                              consent_at=now, created_at=now)
    session.add(application)
    session.flush()
    session.add(ApplicationStage(application_id=application.id, stage="applied", at=now))
    audit.record(session, user.id, "application.create", "application", application.id,
                 {"domains": clean["domains"]})
    session.commit()
    return user


# ----------------------------------------------------------------------------------------- reading


def application_of(session: Session, user_id: int) -> Application | None:
    return session.scalar(select(Application).where(Application.user_id == user_id))


def get(session: Session, application_id: int) -> Application:
    application = session.get(Application, application_id)
    if application is None:
        raise NotFound("no such application")
    return application


def stage_counts(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Application.stage, func.count()).group_by(Application.stage)).all())


# ---------------------------------------------------------------------------------- building blocks


def set_stage(session: Session, application: Application, stage: str, now: datetime) -> None:
    """Move an application to ``stage`` and keep the moment it entered it; nothing when it is there
    already. Does not commit."""
    if application.stage == stage:
        return
    application.stage, application.stage_at = stage, now
    session.add(ApplicationStage(application_id=application.id, stage=stage, at=now))


def lock(session: Session, application_id: int) -> Application:
    """The application row, locked against a concurrent decision (PostgreSQL; SQLite holds the write
    lock already). Does not commit."""
    application = session.scalar(select(Application).where(Application.id == application_id).with_for_update()
                                 .execution_options(populate_existing=True))
    if application is None:
        raise NotFound("no such application")
    return application


def undecided(application: Application) -> None:
    if application.stage in DECIDED:
        raise Conflict(f"this application was already {application.stage}")
