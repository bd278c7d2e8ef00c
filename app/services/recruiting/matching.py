"""Matching vetted trainers to a project, inviting them, and how many more a project needs.

**Eligible** for a project: users with the trainer role, active (not suspended), holding a
``Qualification`` in every one of the project's required domains with a score ≥ the project's
``min_qualification_score``, who are not already a trainer member of it (any membership status but
``removed`` counts: a removed trainer may be invited back, a paused one is an admin's decision on the
project page) and have no pending invitation to it (those are listed as invited). A project with no
required domains takes every such trainer, and the qualification part is unknown.

**Match score**, 0–1, from four parts, each 0–1 or unknown (None)::

    qualification  mean score of their qualifications in the required domains
    quality        their record on other work projects: each TrainerStats row gives the mean of its
                   known gold accuracy, consensus agreement and Dawid–Skene reliability, and the rows
                   are averaged weighted by their annotations (unknown without such a record)
    availability   min(hours a week in their profile, 40) / 40
    rate fit       1 when the rate offered ≥ the rate they want, else offered / wanted (unknown when
                   they state none or the project has no rate)

    score = Σ weight × part / Σ weight, both sums over the known parts
    weights: qualification 0.4, quality 0.3, availability 0.15, rate fit 0.15

except past quality, which counts as NEW_TRAINER_QUALITY (0.5, neither proven good nor bad) for a
trainer with no record yet, as long as some other part is known: someone just vetted does not
outrank a trainer with a strong record on the strength of the parts they do have.

A trainer with no known part has no score and ranks last. The candidates page offers the project's
rate; an invitation stores the parts and score against the rate it offers.

**Invitations** are pending until the invitee accepts or declines, or an admin withdraws them; each
answer is a conditional UPDATE, so a second click (or a race with a withdrawal) is a Conflict.
Accepting makes the invitee an active trainer member, reinstating a removed membership, with the
invitation's rate as their ``rate_override_cents`` when it differs from the project's; a membership
that is paused stays paused (accepting is refused until an admin reinstates them).

**Staffing** reads the last 7 days of work annotations (gold answers aside): the pace of one
trainer is annotations per active-trainer-day (annotations ÷ (trainers who submitted in the window ×
7)), and the trainers the target date needs are ceil(needed ÷ (that pace × days left)); the ones to
add are that minus the trainers who worked in the window, never below 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, exists, false, func, null, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.bounds import plain_text_problem, text_problem
from app.db import begin_write, is_sqlite
from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    Annotation,
    Invitation,
    Item,
    Project,
    ProjectMember,
    Qualification,
    TrainerProfile,
    TrainerStats,
    User,
    UserRole,
    utcnow,
)

from .. import access, audit
from .. import projects as project_service
from ..money import MAX_RATE_CENTS, format_cents

WEIGHTS = {"qualification": 0.4, "quality": 0.3, "availability": 0.15, "rate_fit": 0.15}
PART_NAMES = {"qualification": "Qualification", "quality": "Past quality", "availability": "Availability",
              "rate_fit": "Rate fit"}
FULL_WEEK_HOURS = 40
SORTS = ("score", "name", *WEIGHTS)
MESSAGE_MAX = 2000
HOURS_RANGE = (1, 80)
INVITE_AT_ONCE_MAX = 500
STAFFING_WINDOW_DAYS = 7
ANSWERED_SHOWN = 100


# --- the match score -----------------------------------------------------------------------------


def rate_fit(offered_cents: int | None, desired_cents: int | None) -> float | None:
    """1 when the offer meets the wanted rate, else the share of it offered; None when either is unknown."""
    if not offered_cents or desired_cents is None:
        return None
    return 1.0 if offered_cents >= desired_cents else offered_cents / desired_cents


def availability(hours_per_week: int | None) -> float | None:
    if hours_per_week is None:
        return None
    return min(max(hours_per_week, 0), FULL_WEEK_HOURS) / FULL_WEEK_HOURS


NEW_TRAINER_QUALITY = 0.5


def match_score(parts: dict[str, float | None]) -> float | None:
    """The weighted mean of the known parts (weights renormalised over them), an unknown past quality
    counting as NEW_TRAINER_QUALITY; None when no part is known."""
    if all(value is None for value in parts.values()):
        return None
    if "quality" in parts and parts["quality"] is None:
        parts = {**parts, "quality": NEW_TRAINER_QUALITY}
    known = [(WEIGHTS[name], value) for name, value in parts.items() if value is not None]
    if not known:
        return None
    return sum(w * v for w, v in known) / sum(w for w, _ in known)


@dataclass(frozen=True)
class Candidate:
    user_id: int
    name: str
    email: str
    parts: dict[str, float | None]
    score: float | None


@dataclass(frozen=True)
class Candidates:
    """One page of eligible trainers, best first (or as sorted), with the counts around them."""

    rows: list[Candidate]
    total: int  # eligible, not yet invited
    qualified: int  # pass the role, status and qualification rules, members and invited included
    invited: int  # pending invitations to the project
    page: int
    pages: int
    per_page: int
    sort: str


def _required(project: Project) -> list[str]:
    return list(dict.fromkeys(project.required_domains or []))


def _qualified_subquery(project: Project):
    """(user_id, mean score) of those qualified in every required domain at the project's minimum."""
    required = _required(project)
    return (
        select(Qualification.user_id.label("user_id"), func.avg(Qualification.score).label("qualification"))
        .where(Qualification.domain.in_(required), Qualification.score >= project.min_qualification_score)
        .group_by(Qualification.user_id)
        .having(func.count(Qualification.id) == len(required))
        .subquery("qualified")
    )


def _quality_subquery(project: Project):
    """Per trainer, Σ annotations × row quality and Σ annotations over their other work projects."""
    g, c, r = TrainerStats.gold_accuracy, TrainerStats.consensus_agreement, TrainerStats.reliability
    known = (case((g.is_not(None), 1), else_=0) + case((c.is_not(None), 1), else_=0)
             + case((r.is_not(None), 1), else_=0))
    total = func.coalesce(g, 0.0) + func.coalesce(c, 0.0) + func.coalesce(r, 0.0)
    row_quality = total / case((known > 0, known), else_=None)  # NULL when no measure is known
    return (
        select(
            TrainerStats.trainer_id.label("user_id"),
            func.sum(TrainerStats.annotations * row_quality).label("weighted"),
            func.sum(case((known > 0, TrainerStats.annotations), else_=None)).label("weight"),
        )
        .join(Project, Project.id == TrainerStats.project_id)
        .where(TrainerStats.project_id != project.id, Project.kind == "work", TrainerStats.annotations > 0)
        .group_by(TrainerStats.trainer_id)
        .subquery("quality")
    )


def _qualified_only(stmt, project: Project):
    """``stmt`` (over users) kept to those qualified for the project, when it requires domains."""
    if not _required(project):
        return stmt
    qualified = _qualified_subquery(project)
    return stmt.join(qualified, qualified.c.user_id == User.id)


def _trainers():
    """Active accounts holding the trainer role."""
    return [User.status == "active", exists().where(UserRole.user_id == User.id, UserRole.role == "trainer")]


def _people_filter(project: Project):
    """Active trainers who are neither trainer nor reviewer members (removed ones aside: nobody is both,
    and a trainer member is staffed already) and have no pending invitation; nobody for an assessment,
    which has no trainers."""
    if project.kind == "qualification":
        return [false()]
    return [
        *_trainers(),
        ~exists().where(ProjectMember.project_id == project.id, ProjectMember.user_id == User.id,
                        ProjectMember.role.in_(("trainer", "reviewer")), ProjectMember.status != "removed"),
        ~exists().where(Invitation.project_id == project.id, Invitation.user_id == User.id,
                        Invitation.status == "pending"),
    ]


def _scored(session: Session, project: Project, offered_cents: int, only: list[int] | None = None) -> list[Candidate]:
    """Every eligible trainer (or those of ``only``) with their parts and score: one statement."""
    qualified = _qualified_subquery(project) if _required(project) else None
    quality = _quality_subquery(project)
    stmt = (
        select(User.id, User.name, User.email, TrainerProfile.availability_hours_per_week,
               TrainerProfile.desired_rate_cents,
               qualified.c.qualification if qualified is not None else null(),
               quality.c.weighted, quality.c.weight)
        .outerjoin(TrainerProfile, TrainerProfile.user_id == User.id)
        .outerjoin(quality, quality.c.user_id == User.id)
        .where(*_people_filter(project))
    )
    if qualified is not None:
        stmt = stmt.join(qualified, qualified.c.user_id == User.id)
    if only is not None:
        stmt = stmt.where(User.id.in_(only))
    found = []
    for user_id, name, email, hours, desired, qualification, weighted, weight in session.execute(stmt):
        parts = {
            "qualification": float(qualification) if qualification is not None else None,
            "quality": float(weighted) / float(weight) if weight else None,
            "availability": availability(hours),
            "rate_fit": rate_fit(offered_cents, desired),
        }
        found.append(Candidate(user_id, name, email, parts, match_score(parts)))
    return found


def _sort_key(sort: str):
    if sort == "name":
        return lambda c: (c.name.casefold(), c.user_id)
    pick = (lambda c: c.score) if sort == "score" else (lambda c: c.parts[sort])
    # Highest first, unknown last, then by name.
    return lambda c: (pick(c) is None, -(pick(c) or 0.0), c.name.casefold(), c.user_id)


def count_eligible(session: Session, project: Project) -> int:
    """How many trainers ``eligible`` lists (what the pager needs first)."""
    return session.scalar(_qualified_only(select(func.count(User.id)).where(*_people_filter(project)), project))


def eligible(session: Session, project: Project, *, page: int = 1, per_page: int = 50,
             sort: str = "score") -> Candidates:
    """A page of the trainers who may be invited, ranked by ``sort`` (``SORTS``; the score by default),
    with the counts around them. A fixed number of statements, whatever the number of trainers."""
    sort = sort if sort in SORTS else "score"
    rows = sorted(_scored(session, project, project.hourly_rate_cents), key=_sort_key(sort))
    pages = max(1, -(-len(rows) // per_page))
    start = (page - 1) * per_page
    qualified = session.scalar(_qualified_only(select(func.count(User.id)).where(*_trainers()), project))
    invited = session.scalar(select(func.count(Invitation.id)).where(Invitation.project_id == project.id,
                                                                     Invitation.status == "pending"))
    return Candidates(rows[start:start + per_page], len(rows), qualified, invited, page, pages, per_page, sort)


def no_candidates_reason(project: Project, candidates: Candidates) -> str:
    """What the empty candidates table says, and what to do about it."""
    if project.kind == "qualification":
        return "An assessment has no trainers to staff: candidates take it as an interview (Recruiting)."
    if candidates.qualified == 0:
        if _required(project):
            return (f"No trainer is qualified in {' and '.join(_required(project))} at "
                    f"≥ {project.min_qualification_score:.2f} yet — vet candidates on the recruiting board.")
        return "There is no active trainer yet — vet candidates on the recruiting board."
    return (f"All {candidates.qualified} qualified trainer{'s are' if candidates.qualified != 1 else ' is'} "
            "already on this project or invited to it.")


# --- invitations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    created: list[Invitation]
    already: list[int] = field(default_factory=list)  # user ids that had a pending invitation


def _check_terms(project: Project, rate_cents, hours, message, errors: dict[str, str]) -> None:
    if project.kind != "work":
        errors["project"] = "invitations are to paid work projects; applicants take assessments from the recruiting board"
    elif project.status == "archived":
        errors["project"] = "this project is archived"
    if isinstance(rate_cents, bool) or not isinstance(rate_cents, int) or not 0 <= rate_cents <= MAX_RATE_CENTS:
        errors["rate_cents"] = f"must be an amount from 0.00 to {format_cents(MAX_RATE_CENTS)} an hour"
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int)
                              or not HOURS_RANGE[0] <= hours <= HOURS_RANGE[1]):
        errors["expected_hours_per_week"] = f"must be a whole number of hours from {HOURS_RANGE[0]} to {HOURS_RANGE[1]}"
    if not isinstance(message, str):
        errors["message"] = "must be text"
    elif len(message) > MESSAGE_MAX:
        errors["message"] = f"must be at most {MESSAGE_MAX:,} characters (it has {len(message):,})"
    elif problem := text_problem(message) or plain_text_problem(message):  # the trainer reads it
        errors["message"] = problem


def invite(
    session: Session, project: Project, user_ids, actor_id: int | None, *, rate_cents: int | None = None,
    expected_hours_per_week: int | None = None, message: str = "", now: datetime | None = None,
) -> Invited:
    """Invite trainers to ``project`` at ``rate_cents`` an hour (the project's rate by default), storing
    each one's match parts and score against that rate. Eligibility is checked again inside the
    transaction: one ineligible person refuses the lot (ValidationError, nothing written). Someone
    with a pending invitation is left as they are, so a double click invites once. Audited
    (``invitation.create``, one event per invitation). Commits.

    On PostgreSQL the project row is locked (FOR NO KEY UPDATE) so two invites of the same project queue
    behind each other and the second sees the first one's invitations.
    """
    now = now or utcnow()
    message = message.strip() if isinstance(message, str) else message
    rate = project.hourly_rate_cents if rate_cents is None else rate_cents
    ids = list(dict.fromkeys(user_ids or []))
    errors: dict[str, str] = {}
    if not ids:
        errors["user_ids"] = "tick at least one trainer to invite"
    elif len(ids) > INVITE_AT_ONCE_MAX:
        errors["user_ids"] = f"invite at most {INVITE_AT_ONCE_MAX} trainers at once"
    elif actor_id is not None and actor_id in ids:
        errors["user_ids"] = "nobody invites themselves to paid work; another admin does it"
    _check_terms(project, rate, expected_hours_per_week, message, errors)
    if errors:
        raise ValidationError(errors)

    begin_write(session)
    if not is_sqlite(session):
        session.execute(select(Project.id).where(Project.id == project.id).with_for_update(key_share=True))
    already = set(session.scalars(select(Invitation.user_id).where(
        Invitation.project_id == project.id, Invitation.status == "pending", Invitation.user_id.in_(ids))))
    wanted = [i for i in ids if i not in already]
    found = {c.user_id: c for c in _scored(session, project, rate, only=wanted)} if wanted else {}
    refused = [i for i in wanted if i not in found]
    if refused:
        session.rollback()
        raise ValidationError({"user_ids": (
            f"{len(refused)} of the people ticked cannot be invited: not an active trainer qualified for this "
            f"project, or already one of its trainers (user {', '.join(map(str, refused[:10]))}"
            f"{'…' if len(refused) > 10 else ''})")})
    created = []
    for user_id in wanted:
        candidate = found[user_id]
        created.append(Invitation(
            project_id=project.id, user_id=user_id, invited_by=actor_id, rate_cents=rate,
            expected_hours_per_week=expected_hours_per_week, message=message, match_score=candidate.score,
            match_parts=candidate.parts, status="pending", created_at=now,
        ))
    session.add_all(created)
    session.flush()
    for invitation in created:
        audit.record(session, actor_id, "invitation.create", "project", project.id,
                     {"invitation_id": invitation.id, "user_id": invitation.user_id, "rate_cents": rate,
                      "expected_hours_per_week": expected_hours_per_week, "match_score": invitation.match_score})
    session.commit()
    return Invited(created, sorted(already))


ANSWERED = {"accepted": "You already accepted this invitation.", "declined": "You already declined this invitation.",
            "withdrawn": "This invitation was withdrawn."}


def _answer(session: Session, invitation: Invitation, status: str, now: datetime) -> None:
    """pending → ``status``, only if nobody answered it first (else Conflict, after a rollback)."""
    result = session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.status == "pending")
        .values(status=status, responded_at=now).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        session.refresh(invitation)
        raise Conflict(ANSWERED.get(invitation.status, "This invitation was already answered."))
    set_committed_value(invitation, "status", status)
    set_committed_value(invitation, "responded_at", now)


def respond(session: Session, invitation_id: int, user: User, accept: bool, now: datetime | None = None) -> Invitation:
    """The invitee accepts or declines a pending invitation. Anyone else's invitation is NotFound; one
    already answered (or withdrawn) is a Conflict saying so. Accepting makes them an active trainer
    member (a membership removed before the invitation is reinstated; removing or pausing someone
    withdraws the invitations made before, ``projects.set_member_status``; a paused one is refused
    until an admin reinstates it), at the invitation's rate when it differs from the project's. Audited
    (``invitation.accept`` / ``invitation.decline``). Commits."""
    now = now or utcnow()
    begin_write(session)
    invitation = session.get(Invitation, invitation_id, populate_existing=True)
    if invitation is None or invitation.user_id != user.id:
        session.rollback()
        raise NotFound(f"no invitation {invitation_id}")
    if invitation.status != "pending":
        session.rollback()
        raise Conflict(ANSWERED.get(invitation.status, "This invitation was already answered."))
    project = session.get(Project, invitation.project_id)
    if accept:
        if project.status == "archived":
            session.rollback()
            raise Conflict("This project has closed; the invitation can only be declined.")
        problem = project_service.member_problem(project, user, "trainer")
        if problem:
            session.rollback()
            raise Conflict(f"This invitation cannot be accepted: {problem}.")
        member = access.membership(session, user, project)
        if member is not None and member.status == "paused":
            session.rollback()
            raise Conflict("You are paused in this project; an admin can reinstate you.")
        if other := project_service.excluding_role(session, project.id, user.id, "trainer"):
            session.rollback()
            raise Conflict(f"This invitation cannot be accepted: you are a {other} of this project, and nobody "
                           f"who is one trains on it.")
    _answer(session, invitation, "accepted" if accept else "declined", now)
    if accept:
        # The admin who invited allowed the membership (the invitee cannot add themselves).
        member = project_service.join(session, project, user, invitation.invited_by)
        member.rate_override_cents = (invitation.rate_cents if invitation.rate_cents != project.hourly_rate_cents
                                      else None)
    audit.record(session, user.id, "invitation.accept" if accept else "invitation.decline", "project", project.id,
                 {"invitation_id": invitation.id, "user_id": user.id, "rate_cents": invitation.rate_cents})
    session.commit()
    return invitation


def withdraw(session: Session, project: Project, invitation_id: int, actor_id: int | None,
             now: datetime | None = None) -> Invitation:
    """An admin takes back a pending invitation of ``project`` (another project's: NotFound; one
    already answered: Conflict). Audited (``invitation.withdraw``). Commits."""
    now = now or utcnow()
    begin_write(session)
    invitation = session.get(Invitation, invitation_id, populate_existing=True)
    if invitation is None or invitation.project_id != project.id:
        session.rollback()
        raise NotFound(f"no invitation {invitation_id} in this project")
    if invitation.status != "pending":
        session.rollback()
        raise Conflict(f"This invitation was already {invitation.status}.")
    _answer(session, invitation, "withdrawn", now)
    audit.record(session, actor_id, "invitation.withdraw", "project", project.id,
                 {"invitation_id": invitation.id, "user_id": invitation.user_id})
    session.commit()
    return invitation


def _pending_first(stmt, limit: int | None):
    stmt = stmt.order_by(case((Invitation.status == "pending", 0), else_=1), Invitation.created_at.desc(),
                         Invitation.id.desc())
    return stmt.limit(limit) if limit else stmt


def invitations_for(session: Session, user: User, limit: int = ANSWERED_SHOWN) -> list[tuple[Invitation, Project]]:
    """(invitation, project) of one person: pending first, then the most recent; at most ``limit``."""
    stmt = select(Invitation, Project).join(Project, Project.id == Invitation.project_id) \
        .where(Invitation.user_id == user.id)
    return [tuple(row) for row in session.execute(_pending_first(stmt, limit))]


def pending_for(session: Session, user: User) -> list[tuple[Invitation, Project]]:
    """(invitation, project) of one person's pending invitations, newest first."""
    stmt = select(Invitation, Project).join(Project, Project.id == Invitation.project_id) \
        .where(Invitation.user_id == user.id, Invitation.status == "pending")
    return [tuple(row) for row in session.execute(_pending_first(stmt, None))]


def project_invitations(session: Session, project: Project, limit: int = 200) -> list[tuple[Invitation, str, str]]:
    """(invitation, invitee's name, e-mail) of a project: pending first, then the most recent; at most ``limit``."""
    stmt = select(Invitation, User.name, User.email).join(User, User.id == Invitation.user_id) \
        .where(Invitation.project_id == project.id)
    return [tuple(row) for row in session.execute(_pending_first(stmt, limit))]


# --- staffing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Staffing:
    needed: int  # annotations still needed (progress's annotations_needed)
    window_days: int
    annotations: int  # work annotations submitted in the window
    per_hour: float
    active_trainers: int  # trainers who submitted in the window
    members: int  # active trainer members now
    per_trainer_day: float | None  # annotations per active-trainer-day
    target_date: datetime | None
    days_left: float | None
    trainers_needed: int | None  # at the current pace, to finish by the target date
    more_trainers: int | None  # trainers_needed − active_trainers, at least 0
    reason: str | None  # why there is no such number


def staffing(session: Session, project: Project, now: datetime | None = None) -> Staffing:
    """Annotations still needed, the last week's pace, and how many more trainers working at that pace
    would finish the work by the target date (None, with a plain reason, when that cannot be said)."""
    now = now or utcnow()
    window = timedelta(days=STAFFING_WINDOW_DAYS)
    needed = project_service.progress(session, project)["annotations_needed"]
    count, trainers = session.execute(
        select(func.count(Annotation.id), func.count(func.distinct(Annotation.trainer_id)))
        .join(Item, Item.id == Annotation.item_id)
        .where(Annotation.project_id == project.id, Item.is_gold.is_(False),
               Annotation.submitted_at > now - window, Annotation.submitted_at <= now)
    ).one()
    members = session.scalar(select(func.count(ProjectMember.id)).where(
        ProjectMember.project_id == project.id, ProjectMember.role == "trainer", ProjectMember.status == "active"))
    per_trainer_day = count / (trainers * STAFFING_WINDOW_DAYS) if trainers else None
    target = project.target_date
    left = target - now if target is not None else None
    trainers_needed = more = reason = None
    if target is None:
        reason = "No target date is set; set one on the project's Edit page."
    elif left <= timedelta(0):
        reason = "The target date has passed."
    elif needed == 0:
        trainers_needed, more = 0, 0
    elif not count:
        reason = f"Nobody submitted work in the last {STAFFING_WINDOW_DAYS} days, so there is no pace to go by."
    else:
        # needed ÷ (pace × time left), pace = count ÷ (trainers × window): in whole microseconds, exactly.
        micro = timedelta(microseconds=1)
        trainers_needed = -(-(needed * trainers * (window // micro)) // (count * (left // micro)))
        more = max(trainers_needed - trainers, 0)
    return Staffing(
        needed=needed, window_days=STAFFING_WINDOW_DAYS, annotations=count,
        per_hour=count / (STAFFING_WINDOW_DAYS * 24), active_trainers=trainers, members=members,
        per_trainer_day=per_trainer_day, target_date=target,
        days_left=left / timedelta(days=1) if left is not None else None,
        trainers_needed=trainers_needed, more_trainers=more, reason=reason,
    )


def formula() -> str:
    """The match score as the page shows it."""
    return " + ".join(f"{w:g} × {PART_NAMES[name].lower()}" for name, w in WEIGHTS.items()) \
        + (f", divided by the sum of the weights of the parts that are known; an unknown past quality counts "
           f"as {NEW_TRAINER_QUALITY:g} (a new trainer, neither proven good nor bad)")

