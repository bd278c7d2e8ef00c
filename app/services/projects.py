"""Projects, their questions, members and items."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bounds import invisible_table, one_line_problem, text_problem
from app.db import is_sqlite
from app.errors import NotFound, ValidationError
from app.models import (
    MEMBER_ROLES,
    MEMBER_STATUSES,
    PROJECT_KINDS,
    PROJECT_STATUSES,
    Annotation,
    ImportJob,
    Invitation,
    Item,
    ItemProgress,
    Project,
    ProjectMember,
    Question,
    User,
    utcnow,
)

from . import access, audit, pay
from .access import worker_roles
from .assignment import read_progress, recount_progress, refresh_open_flags, release_leases
from .money import MAX_BUDGET_CENTS, MAX_RATE_CENTS, format_cents
from .questions import QUESTION_TYPES, check_question
from .users import find_by_email

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
NAME_MAX = 200
INSTRUCTIONS_MAX = 100_000
DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9 &/+._-]{0,63}$")
DOMAINS_MAX = 20
# What a dataset card cites: an SPDX-like licence id (cc-by-4.0, mit…) or "other: <its name>"; BCP 47 tags.
LICENSE_MAX = 100
LICENSE_ID_RE = re.compile(r"[A-Za-z0-9.+-]{1,64}")
LICENSE_OTHER = "other:"
CITATION_MAX = 5_000
LANGUAGE_MAX = 35
LANGUAGE_TAG_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
COMMON_LICENSES = ("cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0", "mit", "apache-2.0", "odc-by", "other")


# Words our own addresses use where a slug would go (/admin/projects/new, /work/earnings, …).
RESERVED_SLUGS = frozenset({"new", "earnings", "feedback", "task", "tasks", "import", "imports", "edit"})


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:72] or "project"
    return f"{slug}-project" if slug in RESERVED_SLUGS else slug


def get_by_slug(session: Session, slug: str) -> Project:
    project = session.scalar(select(Project).where(Project.slug == slug))
    if project is None:
        raise NotFound(f"no project {slug!r}")
    return project


PROJECT_SETTINGS = {
    # name: (type, minimum, maximum) — the settings an admin edits, with their bounds
    "overlap": (int, 1, 100),
    "lease_minutes": (int, 1, 24 * 60),
    "gold_rate": (float, 0.0, 1.0),
    "review_rate": (float, 0.0, 1.0),
    "hourly_rate_cents": (int, 0, MAX_RATE_CENTS),
    "max_billable_seconds_per_task": (int, 10, 24 * 3600),
    "min_qualification_score": (float, 0.0, 1.0),
    "quality_bonus_percent": (int, 0, 100),
    "quality_bonus_min_accuracy": (float, 0.0, 1.0),
}
NULLABLE_SETTINGS = {"quality_bonus_percent", "quality_bonus_min_accuracy"}
# What decides a trainer's pay in the project: a member of it never changes these (another admin does).
PAY_SETTINGS = {"hourly_rate_cents", "quality_bonus_percent", "quality_bonus_min_accuracy",
                "max_billable_seconds_per_task", "gold_rate"}


def _check_settings(settings: dict, errors: dict[str, str]) -> dict:
    clean = {}
    for name, value in settings.items():
        if name in NULLABLE_SETTINGS and value is None:
            clean[name] = None
        elif name in PROJECT_SETTINGS:
            kind, lo, hi = PROJECT_SETTINGS[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
                errors[name] = f"must be a {'whole ' if kind is int else ''}number"
                continue
            value = kind(value)
            if not lo <= value <= hi:
                errors[name] = f"must be between {lo} and {hi}"
                continue
            clean[name] = value
        elif name == "status":
            if value not in PROJECT_STATUSES:
                errors["status"] = f"must be one of {', '.join(PROJECT_STATUSES)}"
            clean[name] = value
        elif name in ("instructions",):
            clean[name] = str(value or "")
            if len(clean[name]) > INSTRUCTIONS_MAX:
                errors[name] = f"must be at most {INSTRUCTIONS_MAX:,} characters"
        elif name in ("show_model_names", "pause_at_budget", "allow_assistant_first", "always_messages"):
            clean[name] = bool(value)
        elif name in DATASET_SETTINGS:
            clean[name] = DATASET_SETTINGS[name](value, errors)
        elif name == "budget_cents":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 0 <= value <= MAX_BUDGET_CENTS):
                errors[name] = f"must be an amount from 0 to {format_cents(MAX_BUDGET_CENTS)}"
            clean[name] = value
        elif name == "target_date":
            clean[name] = _target_date(value, errors)
        elif name == "required_domains":
            domains = [str(d).strip().lower() for d in (value or []) if str(d).strip()]
            bad = [d for d in domains if not DOMAIN_RE.fullmatch(d)]
            if bad or len(domains) > DOMAINS_MAX:
                errors[name] = (f"at most {DOMAINS_MAX} domains of letters, digits and spaces (up to 64 characters each)"
                                + (f"; not {bad[0][:64]!r}" if bad else ""))
            clean[name] = domains
        else:
            errors[name] = "is not a project setting"
    bonus = ("quality_bonus_percent", "quality_bonus_min_accuracy")
    if all(k in settings for k in bonus) and (settings[bonus[0]] is None) != (settings[bonus[1]] is None) \
            and not any(k in errors for k in bonus):
        errors["quality_bonus_percent"] = "give both the bonus (%) and the gold accuracy it needs (%), or neither"
    return clean


def _text_setting(name: str, value, errors: dict[str, str]) -> str:
    """A text setting as given: "" when absent, and "" with the field's error when it is not text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = "must be text"
        return ""
    return value


def _license(value, errors: dict[str, str]) -> str:
    """An SPDX-like id, or "other: <what it is>"; empty means not set yet (the card and the versions
    page say so)."""
    text = _text_setting("license", value, errors).strip()
    if text == "":
        return ""
    if text.lower().startswith(LICENSE_OTHER):
        name = text[len(LICENSE_OTHER):].strip()
        text = f"{LICENSE_OTHER} {name}"
        if not name or len(text) > LICENSE_MAX or not name.isprintable():
            errors["license"] = (f'"other: " needs the licence\'s name or address after it, on one line '
                                 f"(at most {LICENSE_MAX} characters in all)")
    elif not LICENSE_ID_RE.fullmatch(text):
        errors["license"] = ('must be a licence id such as cc-by-4.0, mit or apache-2.0 (letters, digits, '
                             '".", "+" and "-", at most 64), or "other: <its name>"')
    return text


def _citation(value, errors: dict[str, str]) -> str:
    """How to cite the dataset (BibTeX or a sentence), written into the card as it is."""
    text = _text_setting("citation", value, errors).strip().replace("\r\n", "\n")
    if len(text) > CITATION_MAX:
        errors["citation"] = f"must be at most {CITATION_MAX:,} characters"
    elif problem := text_problem(text):
        errors["citation"] = problem
    return text


def _language(value, errors: dict[str, str]) -> str:
    """BCP 47 tags, comma separated (``en``, ``en,fr``, ``pt-BR``); empty means not stated."""
    tags = [t.strip() for t in _text_setting("language", value, errors).split(",")]
    text = ",".join(tags) if any(tags) else ""
    bad = [t for t in tags if not LANGUAGE_TAG_RE.fullmatch(t)] if text else []
    if bad or len(text) > LANGUAGE_MAX:
        errors["language"] = (f"must be language tags such as en, fr or pt-BR, comma separated, at most "
                              f"{LANGUAGE_MAX} characters in all" + (f"; not {bad[0][:40]!r}" if bad else ""))
    return text


DATASET_SETTINGS = {"license": _license, "citation": _citation, "language": _language}


def _target_date(value, errors: dict[str, str]) -> datetime | None:
    """When the work should be done, optional (a date in the past is kept: staffing says it passed).
    A date means by the end of that day in UTC, stored as 23:59:59 UTC; an aware instant is kept as it is."""
    if value is None:
        return None
    if isinstance(value, datetime):  # before ``date``: a datetime is one
        if value.tzinfo is None:
            errors["target_date"] = "must be a date, or an instant with its time zone"
            return None
        try:  # an offset can move the first or last instant Python holds out of its range
            return value.astimezone(UTC)
        except OverflowError:
            errors["target_date"] = "must be a date or an instant between the years 1 and 9999 in UTC"
            return None
    if isinstance(value, date):
        return datetime.combine(value, time(23, 59, 59), tzinfo=UTC)
    errors["target_date"] = "must be a date like 2027-03-31"
    return None


def _check_name(name: str, errors: dict[str, str]) -> None:
    if not name.strip():
        errors["name"] = "is required"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = f"must be at most {NAME_MAX} characters"
    elif problem := one_line_problem(name.strip()):
        errors["name"] = problem


QUESTIONS_MAX = 50


def _check_questions(questions: list[dict], errors: dict[str, str]) -> None:
    if not questions:
        errors["questions"] = "a project needs at least one question"
        return
    if len(questions) > QUESTIONS_MAX:
        errors["questions"] = f"a project asks at most {QUESTIONS_MAX} questions"
        return
    keys = [q.get("key") for q in questions]
    duplicates = sorted({k for k in keys if keys.count(k) > 1 and k})
    if duplicates:
        errors["questions"] = f"question keys must be unique ({', '.join(duplicates)} repeats)"
    for i, q in enumerate(questions, start=1):
        try:
            check_question(q.get("key", ""), q.get("type", ""), q.get("title", ""), q.get("options") or {},
                           q.get("help") or "")
        except ValidationError as exc:
            for field, message in exc.errors.items():
                errors[f"questions[{i}].{field}"] = message
    ordering = [q.get("key") for q in questions if q.get("type") in QUESTION_TYPES
                and "pairs" in QUESTION_TYPES[q["type"]].exported_as(q["options"] if isinstance(q.get("options"), dict) else {})]
    if len(ordering) > 1:
        errors["questions"] = ("a project asks at most one question that orders its responses (a preference or "
                               f"a ranking): {', '.join(map(str, ordering))}")


def _question_rows(questions: list[dict]) -> list[Question]:
    return [
        Question(
            position=i,
            key=q["key"],
            type=q["type"],
            title=q["title"].strip(),
            help=q.get("help", "") or "",
            options=q.get("options") or {},
            required=bool(q.get("required", True)),
        )
        for i, q in enumerate(questions)
    ]


def create_project(
    session: Session, *, name: str, questions: list[dict], actor_id: int | None = None, slug: str | None = None,
    kind: str = "work", status: str = "draft", **settings,
) -> Project:
    """Create a project with its questions; every field is checked before anything is written. Commits."""
    slug = slug or slugify(name)
    errors: dict[str, str] = {}
    clean = _check_new(session, name, slug, kind, questions, {"status": status, **settings}, errors)
    if errors:
        raise ValidationError(errors)
    project = Project(name=name.strip(), slug=slug, kind=kind, **clean)
    project.questions = _question_rows(questions)
    session.add(project)
    session.flush()
    audit.record(session, actor_id, "project.create", "project", project.id, {"slug": slug})
    session.commit()
    return project


def _check_new(session: Session, name: str, slug: str, kind: str, questions: list[dict], settings: dict,
               errors: dict) -> dict:
    """Every check of a new project, into ``errors``; returns the settings as stored."""
    _check_name(name, errors)
    if not SLUG_RE.fullmatch(slug):
        errors["slug"] = "must be lower-case letters, digits and dashes"
    elif slug in RESERVED_SLUGS:
        errors["slug"] = f"{slug!r} is a word the site's own addresses use; choose another"
    elif session.scalar(select(Project.id).where(Project.slug == slug)) is not None:
        errors["slug"] = f"{slug!r} is taken by another project"
    if kind not in PROJECT_KINDS:
        errors["kind"] = f"must be one of {', '.join(PROJECT_KINDS)}"
    clean = _check_settings(settings, errors)
    _check_questions(questions, errors)
    return clean


def project_problems(session: Session, *, name: str, questions: list[dict], slug: str | None = None,
                     kind: str | None = None, **settings) -> dict[str, str]:
    """What ``create_project`` (with ``slug`` and ``kind``) or an edit would refuse in these fields,
    without writing anything: a form that could not read some of its fields shows these too, so
    every problem is marked at once. Fields left out are not checked."""
    errors: dict[str, str] = {}
    if kind is None:  # an edit: the slug and kind stay
        _check_name(name, errors)
        _check_settings(settings, errors)
        _check_questions(questions, errors)
    else:
        _check_new(session, name, slug or slugify(name), kind, questions, settings, errors)
    return errors


def has_annotations(session: Session, project: Project) -> bool:
    return session.scalar(select(Annotation.id).where(Annotation.project_id == project.id).limit(1)) is not None


def has_answers(session: Session, project: Project) -> bool:
    """Answers exist that the questions must keep fitting: trainers' annotations or gold answers."""
    return has_annotations(session, project) or session.scalar(
        select(Item.id).where(Item.project_id == project.id, Item.is_gold.is_(True)).limit(1)) is not None


def update_project(
    session: Session, project: Project, *, name: str, questions: list[dict] | None = None,
    actor_id: int | None = None, **settings,
) -> Project:
    """Change a project's settings, and its questions while nobody has answered them yet. Commits;
    on an error it rolls back (an archiving ends leases before the checks that may refuse it).

    Locks in the queue's order (PostgreSQL): the open leases an archiving ends, then the question rows
    (a submit reads them with a share lock, so an edit waits for submits in flight and sees their
    answers before deciding what may change), then the project row.
    """
    errors: dict[str, str] = {}
    _check_name(name, errors)
    clean = _check_settings(settings, errors)
    if clean.get("status") == "archived" and project.status != "archived":
        release_leases(session, None, project)  # open tasks end with it
    if clean.get("max_billable_seconds_per_task", project.max_billable_seconds_per_task) \
            != project.max_billable_seconds_per_task:
        # Every task's billable seconds are capped anew below: the trainers' pay locks before the
        # questions and the project row (the queue's lock order), so their time stays still meanwhile.
        pay.lock_project_trainers(session, project.id)
    if questions is not None and not is_sqlite(session):
        session.execute(select(Question.id).where(Question.project_id == project.id).with_for_update())
    answered = questions is not None and has_answers(session, project)
    if questions is not None:
        if answered:
            current = [(q.key, q.type) for q in project.questions]
            if [(q.get("key"), q.get("type")) for q in questions] != current:
                errors["questions"] = ("questions cannot be added, removed or retyped once answers exist "
                                       "(submitted work or gold answers)")
            else:
                for i, (old, new) in enumerate(zip(project.questions, questions, strict=True), start=1):
                    problem = QUESTION_TYPES[old.type].breaks_answers(old.options or {}, new.get("options") or {})
                    if problem:
                        errors[f"questions[{i}].options"] = f"{problem} (answers already exist)"
        _check_questions(questions, errors)
    changed = {k: v for k, v in clean.items() if getattr(project, k) != v}
    if not errors and actor_id is not None and (paid := sorted(PAY_SETTINGS & set(changed))) \
            and access.membership(session, actor_id, project) is not None:
        for name in paid:
            errors[name] = "you are a trainer of this project: another admin sets what decides its pay"
    if errors:
        session.rollback()
        raise ValidationError(errors)
    before = {k: getattr(project, k) for k in changed}
    project.name = name.strip()
    for key, value in clean.items():
        setattr(project, key, value)
    if changed.get("status") == "active":
        project.paused_reason = None  # an admin reopened it: the reason it paused no longer holds
    if "overlap" in changed:
        session.flush()
        refresh_open_flags(session, project)
        recount_progress(session, project)  # "complete" is measured against the overlap
    if "max_billable_seconds_per_task" in changed:
        session.flush()
        pay.recount_billable(session, project.id)
    if questions is not None:
        by_key = {q.key: q for q in project.questions}
        if answered:
            for q in questions:  # wording and options only
                row = by_key[q["key"]]
                row.title, row.help, row.options = q["title"].strip(), q.get("help", "") or "", q.get("options") or {}
                row.required = bool(q.get("required", True))
        else:
            project.questions.clear()
            session.flush()
            project.questions.extend(_question_rows(questions))
    session.flush()
    audit.record(session, actor_id, "project.update", "project", project.id,
                 {"changed": {k: [_plain(before[k]), _plain(v)] for k, v in changed.items()}})
    session.commit()
    return project


def _plain(value):
    """A setting as the audit log keeps it: JSON-friendly, long text shortened."""
    if isinstance(value, str) and len(value) > 200:
        return value[:199] + "…"
    return value


def member_problem(project: Project, user: User, role: str) -> str | None:
    """Why ``user`` cannot be a ``role`` member of ``project``, or None: the one eligibility rule.

    Trainer members hold the trainer role (applicants take assessments through their interview, not as
    members); reviewer members review (reviewers and admins); client members hold the client role and
    join work projects only. Suspended people join nothing.
    """
    if role not in MEMBER_ROLES:
        return f"the role must be one of {', '.join(MEMBER_ROLES)}"
    if not user.is_active:
        return f"{user.email} is suspended"
    if role == "trainer":
        if project.kind == "qualification":
            # Its gold items are an interview's bank: served one by one to candidates, never as work.
            return "an assessment has no trainer members: candidates take it as an interview (Recruiting)"
        if not user.has_role(*worker_roles(project)):
            return f"{user.email} is not a trainer; give them the trainer role first"
    elif role == "client":
        if project.kind == "qualification":
            return "an assessment has no clients: it vets people, it makes no dataset"
        if not user.has_role("client"):
            return f"{user.email} is not a client; give them the client role first"
    elif not user.has_role("reviewer", "admin"):
        return f"{user.email} is not a reviewer"
    return None


def add_member(
    session: Session, project: Project, user: User, role: str = "trainer", actor_id: int | None = None
) -> ProjectMember:
    """``user`` becomes a ``role`` member (active); an existing membership is returned as it is. Commits."""
    member = _add_member(session, project, user, role, actor_id)
    session.commit()
    return member


def _add_member(session: Session, project: Project, user: User, role: str, actor_id: int | None) -> ProjectMember:
    if actor_id is not None and user.id == actor_id and role == "trainer" and project.kind == "work":
        raise ValidationError({"email": "nobody adds themselves as a paid trainer; another admin does it"})
    problem = member_problem(project, user, role)
    if problem:
        raise ValidationError({"role" if role not in MEMBER_ROLES else "email": problem})
    _check_not_both(session, project.id, user.id, role)
    member = access.membership(session, user, project, role)
    if member is None:
        member = ProjectMember(project_id=project.id, user_id=user.id, role=role, status="active")
        session.add(member)
        session.flush()
        audit.record(session, actor_id, "member.add", "project", project.id, {"user_id": user.id, "role": role})
    if "trainer" in _EXCLUSIVE[role]:  # an offer to train on it made before cannot be taken up any more
        _withdraw_invitations(session, member, f"made {role}", actor_id)
    return member


# A reviewer of a project sees its gold answers and judges its trainers' work; a client sees its items
# (gold marked), every answer and the exports: nobody who trains on a project is either (a trainer who
# did would learn which items are gold, and what their answers are).
_EXCLUSIVE = {"trainer": ("reviewer", "client"), "reviewer": ("trainer",), "client": ("trainer",)}


def excluding_role(session: Session, project_id: int, user_id: int, role: str) -> str | None:
    """The role the person holds on this project that excludes ``role`` (a trainer of a project is
    neither its reviewer nor its client; a removed membership holds nothing), or None. On PostgreSQL
    the person's row is locked first, so two requests giving them two such roles at once take turns
    and the second sees the first."""
    others = _EXCLUSIVE.get(role)
    if not others:
        return None
    if not is_sqlite(session):
        session.execute(select(User.id).where(User.id == user_id).with_for_update())
    return session.scalar(select(ProjectMember.role).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == user_id, ProjectMember.role.in_(others),
        ProjectMember.status != "removed").order_by(ProjectMember.id).limit(1))


def _check_not_both(session: Session, project_id: int, user_id: int, role: str) -> None:
    """A ValidationError for the admin when ``excluding_role`` finds one."""
    if other := excluding_role(session, project_id, user_id, role):
        raise ValidationError({"email": f"this person is a {other} of this project; a {role} of it cannot be one too "
                                        "(its reviewers and clients see the gold answers and everyone's work): "
                                        f"remove them as {other} first"})


def enrol(session: Session, project: Project, email: str, role: str,
          actor_id: int | None) -> tuple[User, ProjectMember, bool]:
    """The admin's "add member" form: the account with that e-mail becomes an active ``role`` member
    (added, or reinstated when it was paused or removed), if it may be one (``member_problem``).
    Returns the person, the membership and whether anything changed (False: they were one already).
    One transaction; commits."""
    user = _account_by_email(session, email)
    already = access.membership(session, user, project, role)
    was_active = already is not None and already.status == "active"
    member = _add_member(session, project, user, role, actor_id)
    _set_member_status(session, member, "active", actor_id)
    session.commit()
    return user, member, not was_active


def join(session: Session, project: Project, user: User, actor_id: int | None) -> ProjectMember:
    """``user`` becomes an active trainer member of ``project``: added, or reinstated when paused or
    removed (``member_problem`` decides who may be one; ``actor_id`` is who allowed it). The building
    block behind an accepted invitation. Does not commit."""
    member = _add_member(session, project, user, "trainer", actor_id)
    _set_member_status(session, member, "active", actor_id)
    return member


def _account_by_email(session: Session, email: str) -> User:
    """The account an admin means by ``email``, or a ValidationError saying there is none."""
    user = find_by_email(session, email)
    if user is None:
        raise ValidationError({"email": f"No account with e-mail {(email or '').strip()[:254] or '(empty)'}"})
    return user


def get_member(session: Session, project: Project, member_id: int) -> ProjectMember:
    member = session.get(ProjectMember, member_id)
    if member is None or member.project_id != project.id:
        raise NotFound(f"no member {member_id} in this project")
    return member


def members_of(session: Session, project: Project) -> list:
    """(membership, user) rows of a project, by role and name."""
    return session.execute(
        select(ProjectMember, User)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project.id)
        .order_by(ProjectMember.role, User.name)
    ).all()


def memberships_of(session: Session, user_id: int) -> list:
    """(membership, project) rows of one person, by project name and role."""
    return session.execute(
        select(ProjectMember, Project).join(Project, Project.id == ProjectMember.project_id)
        .where(ProjectMember.user_id == user_id).order_by(Project.name, ProjectMember.role)
    ).all()


def projects_by_id(session: Session, project_ids) -> dict[int, Project]:
    ids = {i for i in project_ids if i is not None}
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Project).where(Project.id.in_(ids)))}


def recent_imports(session: Session, project: Project, limit: int) -> list[ImportJob]:
    """The project's latest uploads, newest first."""
    return list(session.scalars(
        select(ImportJob).where(ImportJob.project_id == project.id).order_by(ImportJob.id.desc()).limit(limit)
    ))


def get_import(session: Session, import_id: int) -> tuple[ImportJob, Project]:
    """An import job and its project, or NotFound."""
    job = session.get(ImportJob, import_id)
    if job is None:
        raise NotFound(f"no import {import_id}")
    return job, session.get(Project, job.project_id)


def items_page(session: Session, project: Project, after_id: int | None = None, limit: int = 50) -> list[Item]:
    """The project's items by id, after ``after_id`` (the API's cursor pages)."""
    stmt = select(Item).where(Item.project_id == project.id).order_by(Item.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Item.id > after_id)
    return list(session.scalars(stmt))


def content_id(context: list, responses: list) -> str:
    """A stable stand-in for a missing external_id: the hash of the item's content."""
    digest = hashlib.sha256(orjson.dumps([context, responses], option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "sha256:" + digest[:32]


# Compatibility forms a reader cannot tell from their plain letters: full- and half-width forms,
# ligatures and the other <compat> forms ("ﬁ", "…", "µ"), Arabic presentation forms, small and
# vertical forms, the no-break ones. Not superscripts, subscripts, fractions, circled, squared or
# styled (<font>) letters: "x²" and "x2", "ℝ" and "R" say different things.
_LOOK_ALIKE_TAGS = ("<wide>", "<narrow>", "<compat>", "<initial>", "<medial>", "<final>", "<isolated>", "<small>",
                    "<vertical>", "<noBreak>")


@functools.cache
def _unusual() -> tuple[frozenset[str], dict[int, str]]:
    """(every character that is, or decomposes into, a look-alike form or an invisible character; the
    table mapping each look-alike to its compatibility equivalent (NFKC) and each invisible character
    to a space). Made once, on the first text that is not ASCII (every look-alike lies below U+20000):
    most texts hold none of them, and skip the translation."""
    table = {c: unicodedata.normalize("NFKC", chr(c)) for c in range(0x80, 0x20000)
             if unicodedata.decomposition(chr(c)).startswith(_LOOK_ALIKE_TAGS)}
    table.update(invisible_table())
    odd = {chr(c) for c in table}
    # a character without a decomposition is its own NFD: only the others can hide an odd one
    odd.update(chr(c) for c in range(0x80, 0x20000)
               if unicodedata.decomposition(chr(c)) and not odd.isdisjoint(unicodedata.normalize("NFD", chr(c))))
    return frozenset(odd), table


def plain_text(text: str) -> str:
    """A text as a reader sees it, for comparing texts and finding empty ones: look-alike compatibility
    forms as their plain letters (``_LOOK_ALIKE_TAGS``: "Ｈｉ" is "Hi", "ﬁne" is "fine"), Unicode NFC (a
    composed and a decomposed "é" are one letter), invisible characters (``bounds.invisible_table``) as spaces, and
    every run of spacing as one space. Case, punctuation and every other character count: "Café?",
    "café?" and "Café" are three texts."""
    if text.isascii():  # no composition and no invisible character to read: only the spacing
        return " ".join(text.split())
    text = unicodedata.normalize("NFC", text)
    odd, table = _unusual()
    if not odd.isdisjoint(text):  # decomposed first, so "ẛ" reads as "ṡ", as "ſ" + dot does
        text = unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).translate(table))
    return " ".join(text.split())


def is_single_turn(context: list[dict]) -> bool:
    """One user turn: a plain prompt. Anything else (a system message, earlier turns) is a chat."""
    return len(context) == 1 and context[0]["role"] == "user"


def content_hash(context: list[dict], responses: list[dict]) -> str:
    """What makes two items the same question: their turns (role, and text with its spacing
    normalised) and the set of their responses' normalised texts. Two work items of one project with
    the same content hash would put the same row into a dataset twice, or the same pair both ways, so
    the importer refuses the second and exports leave out any such item kept from before."""
    key = [[[m["role"], plain_text(m["content"])] for m in context], sorted(plain_text(r["text"]) for r in responses)]
    return hashlib.sha256(orjson.dumps(key)).hexdigest()[:32]


def add_item(
    session: Session, project: Project, *, prompt: str | list[dict], responses: list | None = None,
    external_id: str | None = None, metadata: dict | None = None, priority: int = 0,
) -> Item:
    """Add one well-formed item (demo and tests; the validating importer builds on the same shape):
    ``prompt`` is one user turn, or a list of {role, content} turns. Does not commit: the caller adds
    its items and commits them together."""
    context = [dict(m) for m in prompt] if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    responses = [
        r if isinstance(r, dict) else {"id": f"r{i}", "text": r} for i, r in enumerate(responses or [], start=1)
    ]
    item = Item(
        project_id=project.id,
        external_id=external_id or content_id(context, responses),
        context=context,
        responses=responses,
        content_hash=content_hash(context, responses),
        single_turn=is_single_turn(context),
        meta=metadata or {},
        priority=priority,
    )
    session.add(item)
    return item


@dataclass(frozen=True)
class ProjectSummary:
    """One row of the project list (attributes, not dict keys: a key named ``items`` would read as
    the dict's method in a template)."""

    slug: str
    name: str
    kind: str
    status: str
    questions: int
    items: int  # every item, gold included
    annotations: int
    gold: int = 0  # of the items, gold ones


def project_summaries(session: Session, by_name: bool = False) -> list[ProjectSummary]:
    """slug, kind, status, question, item (and gold item) and annotation counts of every project, by
    slug (or by name, as people read them)."""
    q_counts = dict(session.execute(select(Question.project_id, func.count()).group_by(Question.project_id)).all())
    # From the progress counters: every answer given is an annotation (the submit adds both).
    i_counts, a_counts, g_counts = {}, {}, {}
    for project_id, is_gold, items, done in session.execute(
        select(ItemProgress.project_id, ItemProgress.is_gold, func.sum(ItemProgress.items), func.sum(ItemProgress.done))
        .group_by(ItemProgress.project_id, ItemProgress.is_gold)
    ):
        i_counts[project_id] = i_counts.get(project_id, 0) + int(items or 0)
        a_counts[project_id] = a_counts.get(project_id, 0) + int(done or 0)
        if is_gold:
            g_counts[project_id] = int(items or 0)
    found = [
        ProjectSummary(p.slug, p.name, p.kind, p.status, q_counts.get(p.id, 0), i_counts.get(p.id, 0),
                       a_counts.get(p.id, 0), g_counts.get(p.id, 0))
        for p in session.scalars(select(Project).order_by(Project.slug))
    ]
    if by_name:  # "Batch 2" before "Batch 10", whatever the case
        found.sort(key=lambda summary: (natural_key(summary.name), summary.slug))
    return found


def natural_key(text: str) -> tuple:
    """A name as people sort it: case aside, and runs of digits by their value ("Batch 2" before
    "Batch 10")."""
    return tuple((0, int(part), "") if part.isdecimal() else (1, 0, part)
                 for part in re.split(r"(\d+)", unicodedata.normalize("NFKC", text).casefold()) if part)


def set_member_status(
    session: Session, member: ProjectMember, status: str, actor_id: int | None = None
) -> ProjectMember:
    """Activate, pause or remove a membership (audited; pausing or removing a trainer ends their open
    task). Commits."""
    _set_member_status(session, member, status, actor_id)
    session.commit()
    return member


def _set_member_status(session: Session, member: ProjectMember, status: str, actor_id: int | None) -> None:
    if status not in MEMBER_STATUSES:
        raise ValidationError({"status": f"must be one of {', '.join(MEMBER_STATUSES)}"})
    if member.status != status and actor_id is not None and member.user_id == actor_id:
        raise ValidationError({"status": "nobody may change their own membership; another admin does it"})
    if member.status != status and status != "removed" and member.status == "removed":
        _check_not_both(session, member.project_id, member.user_id, member.role)  # before anything is written
    if member.status != status:
        audit.record(
            session, actor_id, "member.status", "project", member.project_id,
            {"user_id": member.user_id, "role": member.role, "from": member.status, "to": status,
             "flag": member.flagged_reason},
        )
        if status == "active" and member.status in ("paused", "removed"):
            # Reinstated: the flag goes, and earlier gold answers stop counting against them.
            member.flagged_reason, member.flagged_at, member.reinstated_at = None, None, utcnow()
        if status in ("paused", "removed") and member.role == "trainer":
            # Their open task goes back to the queue now, not when its lease would have lapsed.
            # The membership row first: the queue's lock order (assignment.py).
            if not is_sqlite(session):
                session.execute(select(ProjectMember.id).where(ProjectMember.id == member.id)
                                .with_for_update(key_share=True))
            release_leases(session, member.user_id, session.get(Project, member.project_id))
        if status in ("paused", "removed"):
            _withdraw_invitations(session, member, status, actor_id)
        member.status = status


def _withdraw_invitations(session: Session, member: ProjectMember, status: str, actor_id: int | None) -> None:
    """Pausing or removing someone takes back their pending invitations to the project: an offer made
    before the decision must not undo it (accepting reinstates a removed member). Audited."""
    pending = session.scalars(select(Invitation).where(
        Invitation.project_id == member.project_id, Invitation.user_id == member.user_id,
        Invitation.status == "pending")).all()
    now = utcnow()
    for invitation in pending:
        invitation.status, invitation.responded_at = "withdrawn", now
        audit.record(session, actor_id, "invitation.withdraw", "project", member.project_id,
                     {"invitation_id": invitation.id, "user_id": member.user_id, "because": f"member {status}"})


def progress(session: Session, project: Project) -> dict:
    """Work items not started, in progress and complete (reached overlap); gold items apart. Read from
    the project's counters (``assignment.read_progress``), a few rows whatever the project's size."""
    counted = read_progress(session, project.id)
    mine = counted[project.kind == "qualification"]
    total, complete, not_started, done = (mine[n] for n in ("items", "complete", "not_started", "done"))
    return {
        "total": total,
        "complete": complete,
        "not_started": not_started,
        "in_progress": total - complete - not_started,
        "gold": counted[True]["items"] if project.kind == "work" else 0,
        "annotations_needed": max(total * project.overlap - done, 0) if project.kind == "work" else 0,
    }


def throughput(session: Session, project: Project, hours: int = 24, figures: dict | None = None) -> dict:
    """Annotations per hour over the last ``hours`` and the time left at that pace; ``figures`` is the
    project's ``progress`` when the caller has it already (it reads every item's counters)."""
    since = utcnow() - timedelta(hours=hours)
    recent = session.scalar(
        select(func.count(Annotation.id)).where(Annotation.project_id == project.id, Annotation.submitted_at >= since)
    )
    per_hour = recent / hours
    needed = (figures or progress(session, project))["annotations_needed"]
    eta_hours = needed / per_hour if per_hour and needed else None
    return {"per_hour": per_hour, "window_hours": hours, "eta_hours": eta_hours, "needed": needed}


def visible_projects(session: Session, user: User, after_id: int | None = None, limit: int = 50) -> list[Project]:
    """The projects ``user`` may read through the API, by id: every project for an admin; otherwise those
    they are an active member of in a role their account holds (trainer: work projects only)."""
    stmt = select(Project).order_by(Project.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(Project.id > after_id)
    if not access.is_admin(user):
        roles = [r for r in ("trainer", "reviewer", "client") if user.has_role(r)]
        member = (select(ProjectMember.project_id)
                  .join(Project, Project.id == ProjectMember.project_id)
                  .where(ProjectMember.user_id == user.id, ProjectMember.status == "active",
                         ProjectMember.role.in_(roles),
                         (ProjectMember.role != "trainer") | (Project.kind == "work")))
        stmt = stmt.where(Project.id.in_(member))
    return list(session.scalars(stmt)) if user.is_active else []
