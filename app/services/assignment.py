"""The queue: who gets which item next, and what happens on submit and skip.

Lock order on PostgreSQL, the same on every path so two transactions never wait on each other in a
circle: the membership row, then assignments, then the trainer's ``users`` row, then items (by id),
then the project and timesheets, and last the project's progress counters (``item_progress``, by
shard), written just before the commit. SQLite needs none of it: one writer at a time.

The claim is atomic: on PostgreSQL the candidate item row is locked with FOR UPDATE SKIP LOCKED,
so concurrent claimers pass over each other's rows; on SQLite the whole claim runs in one
transaction that took the write lock first (BEGIN IMMEDIATE). Either way two trainers racing never
push an item past its overlap.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, case, event, exists, func, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from app.bounds import has_visible, plain_text_problem
from app.db import adding_upsert, begin_write, insert_for, is_deadlock, is_sqlite
from app.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError
from app.models import (
    Annotation,
    Assignment,
    Item,
    ItemProgress,
    Project,
    ProjectMember,
    Question,
    User,
    UserRole,
    utcnow,
)

from . import access, after_submit, pay, users
from . import questions as question_rules

# The server is the clock: each heartbeat adds at most this many seconds of active time.
HEARTBEAT_CAP_SECONDS = 20
# Lapsed leases are reclaimed lazily by claims: at most this often per project and process, and
# always when a claim finds nothing open (so a lapsed lease never hides the last free slot).
RECLAIM_EVERY = timedelta(seconds=10)
_rng = random.Random()
_last_reclaim: dict[tuple[int, int], datetime] = {}


def _move_counters(session: Session, item_id: int, overlap: int, done: int = 0, active: int = 0,
                   needs_room: bool = False) -> bool:
    """Change an item's counters and keep ``is_open`` (room for one more trainer) in step, atomically.

    With ``needs_room`` the change happens only while the item is below its overlap (one conditional
    UPDATE, so two writers cannot both take the last slot); returns whether it happened.
    """
    if session.autoflush:  # as the ORM's own UPDATE would: what the session holds goes first
        session.flush()
    row = session.connection().execute(
        _counter_update(needs_room), {"item": item_id, "overlap": overlap, "done": done, "active": active,
                                      "moved": done + active}).first()
    if row is None:
        return False
    loaded = session.identity_map.get(session.identity_key(Item, item_id))
    if loaded is not None:  # the item in the session shows its new counters (the submit's hooks read them)
        for name in ("done_count", "active_count", "is_open"):
            set_committed_value(loaded, name, getattr(row, name))
    before = progress_of_item(row.done_count - done, row.active_count - active, overlap)
    after = progress_of_item(row.done_count, row.active_count, overlap)
    add_progress(session, row.project_id, row.is_gold, item_id, _minus(after, before))
    return True


_COUNTER_UPDATES: dict[bool, object] = {}


def _counter_update(needs_room: bool):
    """``_move_counters``' statement, built once per shape with bound parameters, and run on the
    session's connection: built and run through the ORM per call, it cost a sixth of a submit's CPU."""
    stmt = _COUNTER_UPDATES.get(needs_room)
    if stmt is None:
        items = Item.__table__
        stmt = update(items).where(items.c.id == bindparam("item"))
        if needs_room:
            stmt = stmt.where(items.c.done_count + items.c.active_count < bindparam("overlap"))
        stmt = _COUNTER_UPDATES[needs_room] = stmt.values(
            done_count=items.c.done_count + bindparam("done"),
            active_count=items.c.active_count + bindparam("active"),
            is_open=(items.c.done_count + items.c.active_count + bindparam("moved")) < bindparam("overlap"),
        ).returning(items.c.project_id, items.c.is_gold, items.c.done_count, items.c.active_count, items.c.is_open)
    return stmt


# --- the project's progress counters ------------------------------------------------------------------
#
# Every change to an item's counters, gold flag or existence moves its project's ``item_progress``
# row for the item's shard by the difference it makes. The moves gather in the session
# (``session.info``) and are written as the transaction's last statements (``before_commit``), in
# shard order: a hot counter row is then held only from there to the commit, never while the submit's
# hooks run, and always after every other lock of the transaction (the lock order above). A rollback
# drops them with the rest. Items added, re-flagged or deleted through the ORM are seen at flush;
# bulk statements (the importer) call ``add_progress`` themselves; an overlap change, or a repair,
# recounts a project (``recount_progress``).

PROGRESS_SHARDS = 16
PROGRESS_FIELDS = ("items", "complete", "not_started", "done")
_PENDING = "item_progress_moves"  # session.info key: {(project, gold, shard): [items, complete, ...]}


def progress_of_item(done_count: int, active_count: int, overlap: int) -> tuple[int, int, int, int]:
    """What one item adds to its project's counters: itself, whether it is complete (its answers reached
    the overlap), whether nobody started it (no answer, no live lease), its answers."""
    return 1, int(done_count >= overlap), int(done_count == 0 and active_count == 0), done_count


def _minus(a: tuple, b: tuple) -> tuple:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def add_progress(session: Session, project_id: int, is_gold: bool, item_id: int, change: tuple) -> None:
    """Note a change to a project's counters (fields as ``PROGRESS_FIELDS``), written before the commit.
    ``item_id`` picks the shard; any id of the project will do for a change of many items at once."""
    if not any(change):
        return
    key = (project_id, bool(is_gold), item_id % PROGRESS_SHARDS)
    pending = session.info.setdefault(_PENDING, {})
    pending[key] = [x + y for x, y in zip(pending.get(key, (0, 0, 0, 0)), change, strict=True)]


def _write_progress(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    connection = session.connection()
    stmt = adding_upsert(session, ItemProgress.__table__, ("project_id", "is_gold", "shard"), PROGRESS_FIELDS)
    for (project_id, is_gold, shard), change in sorted(pending.items()):  # one fixed order: no lock cycle
        if not any(change):
            continue
        connection.execute(stmt, {"project_id": project_id, "is_gold": is_gold, "shard": shard,
                                  **dict(zip(PROGRESS_FIELDS, change, strict=True))})


def _overlaps(session: Session, project_ids: set[int]) -> dict[int, int]:
    connection = session.connection()
    return {pid: connection.scalar(select(Project.overlap).where(Project.id == pid)) or 1 for pid in project_ids}


_ITEM_STATE = ("project_id", "is_gold", "done_count", "active_count")


def _item_values(item: Item, old: bool) -> tuple:
    """An item's (project, gold, done, active) now, or before this flush (``old``)."""
    if not old:
        return tuple(getattr(item, name) for name in _ITEM_STATE)
    state = inspect(item)
    values = []
    for name in _ITEM_STATE:
        history = state.attrs[name].history
        values.append(history.deleted[0] if history.deleted else
                      history.unchanged[0] if history.unchanged else getattr(item, name))
    return tuple(values)


@event.listens_for(Session, "after_flush")
def _items_flushed(session: Session, _context) -> None:
    """Items the ORM added, deleted or changed (gold flag, counters) move their project's counters."""
    changes = []  # (sign, item id, (project, gold, done, active))
    for item in session.new:
        if isinstance(item, Item):
            changes.append((1, item.id, _item_values(item, old=False)))
    for item in session.deleted:
        if isinstance(item, Item):
            changes.append((-1, item.id, _item_values(item, old=True)))
    for item in session.dirty:
        if isinstance(item, Item) and any(inspect(item).attrs[n].history.has_changes() for n in _ITEM_STATE):
            changes.append((-1, item.id, _item_values(item, old=True)))
            changes.append((1, item.id, _item_values(item, old=False)))
    if not changes:
        return
    overlap = _overlaps(session, {values[0] for _, _, values in changes})
    for sign, item_id, (project_id, is_gold, done, active) in changes:
        figures = progress_of_item(done or 0, active or 0, overlap[project_id])
        add_progress(session, project_id, bool(is_gold), item_id, tuple(sign * x for x in figures))


@event.listens_for(Session, "before_commit")
def _progress_before_commit(session: Session) -> None:
    # Only a pending Item can add a move at flush; other objects are left for the commit's own flush,
    # so a commit that touches no item flushes exactly as it would without the counters.
    if any(isinstance(o, Item) for o in (*session.new, *session.dirty, *session.deleted)):
        session.flush()
    _write_progress(session)


@event.listens_for(Session, "after_transaction_end")
def _progress_dropped(session: Session, transaction) -> None:
    if transaction.parent is None:  # committed (written above) or rolled back: either way done
        session.info.pop(_PENDING, None)


def recount_progress(session: Session, project: Project) -> None:
    """Set a project's progress counters from its items (after its overlap changed, or to repair them).
    A building block: runs in its caller's transaction (which must hold the write lock) and does not
    commit.

    On PostgreSQL the project's counter rows are made and locked first: a submit that moved an item
    but has not written its counters yet waits on them until this commits, and its change then lands
    on the recounted figures; one that already wrote them committed before these locks were granted
    and is in the items read below."""
    pending = session.info.get(_PENDING, {})
    for key in [k for k in pending if k[0] == project.id]:
        del pending[key]  # the items already hold this transaction's changes: the recount reads them
    table = ItemProgress.__table__
    every = [{"project_id": project.id, "is_gold": gold, "shard": shard}
             for gold in (False, True) for shard in range(PROGRESS_SHARDS)]
    session.execute(insert_for(session, ItemProgress.__table__).values(every).on_conflict_do_nothing(
        index_elements=[table.c.project_id, table.c.is_gold, table.c.shard]))
    if not is_sqlite(session):
        session.execute(select(ItemProgress.shard).where(ItemProgress.project_id == project.id)
                        .order_by(ItemProgress.is_gold, ItemProgress.shard).with_for_update())
    one = Item.done_count.type
    shard = (Item.id % PROGRESS_SHARDS).label("shard")
    counted = {
        (bool(row.is_gold), int(row.shard)): (int(row.items), int(row.complete or 0), int(row.not_started or 0),
                                              int(row.done or 0))
        for row in session.execute(
            select(Item.is_gold, shard, func.count(Item.id).label("items"),
                   func.sum(func.cast(Item.done_count >= project.overlap, one)).label("complete"),
                   func.sum(case(((Item.done_count == 0) & (Item.active_count == 0), 1), else_=0)).label("not_started"),
                   func.sum(Item.done_count).label("done"))
            .where(Item.project_id == project.id).group_by(Item.is_gold, shard))
    }
    for gold in (False, True):
        for n in range(PROGRESS_SHARDS):
            figures = counted.get((gold, n), (0, 0, 0, 0))
            session.execute(update(ItemProgress).where(
                ItemProgress.project_id == project.id, ItemProgress.is_gold.is_(gold), ItemProgress.shard == n,
            ).values(**dict(zip(PROGRESS_FIELDS, figures, strict=True))))


def read_progress(session: Session, project_id: int) -> dict[bool, dict[str, int]]:
    """A project's counters summed over its shards: {gold: {field: figure}} (zeros when it has none)."""
    sums = {gold: dict.fromkeys(PROGRESS_FIELDS, 0) for gold in (False, True)}
    for row in session.execute(
        select(ItemProgress.is_gold, *(func.sum(getattr(ItemProgress, n)).label(n) for n in PROGRESS_FIELDS))
        .where(ItemProgress.project_id == project_id).group_by(ItemProgress.is_gold)
    ):
        sums[bool(row.is_gold)] = {n: int(getattr(row, n) or 0) for n in PROGRESS_FIELDS}
    return sums


def _counts_toward_overlap(project: Project, item: Item) -> bool:
    """Work items stop at the overlap; gold items and assessments are answered by everyone."""
    return project.kind == "work" and not item.is_gold


def refresh_open_flags(session: Session, project: Project) -> None:
    """Recompute ``is_open`` for a whole project (after its overlap changed or counters were repaired).
    A building block: runs in its caller's transaction and does not commit."""
    session.execute(
        update(Item)
        .where(Item.project_id == project.id)
        .values(is_open=(Item.done_count + Item.active_count) < project.overlap)
    )


def _reclaim_expired(session: Session, project: Project, now: datetime, trainer_id: int | None = None) -> int:
    """Mark this project's lapsed leases (or one trainer's) expired and give their slots back."""
    stmt = update(Assignment).where(
        Assignment.project_id == project.id,
        Assignment.status == "active",
        Assignment.expires_at <= now,
    )
    if trainer_id is not None:
        stmt = stmt.where(Assignment.trainer_id == trainer_id)
    rows = session.execute(stmt.values(status="expired", finished_at=now).returning(Assignment.item_id)).all()
    for item_id, n in sorted(Counter(r.item_id for r in rows).items()):  # items by id: the lock order
        _move_counters(session, item_id, project.overlap, active=-n)
    return len(rows)


@cache
def _membership_statement(lock: bool):
    """The claim's first statement, built once per database kind (every workspace load and every
    submit's next task runs it): the membership, the trainer's sitting, and their live lease if any."""
    stmt = (
        select(ProjectMember.status, ProjectMember.flagged_reason, ProjectMember.sitting_tasks,
               ProjectMember.last_submitted_at, Assignment)
        .select_from(ProjectMember)
        .outerjoin(Assignment, and_(
            Assignment.trainer_id == ProjectMember.user_id,
            Assignment.project_id == ProjectMember.project_id,
            Assignment.status == "active",  # at most one row: the one-live-lease index
        ))
        .where(ProjectMember.project_id == bindparam("project_id"), ProjectMember.user_id == bindparam("trainer_id"),
               ProjectMember.role == "trainer")
    )
    return stmt.with_for_update(of=ProjectMember, key_share=True) if lock else stmt


def _membership_and_current(session: Session, trainer_id: int, project: Project, now: datetime):
    """The two questions every claim asks first, in one round trip: may the trainer work here, and do
    they already hold a task? Raises Paused or NotFound; returns (the live assignment or None, the
    tasks done this sitting as of ``now``).

    The membership row is locked (PostgreSQL), so one trainer's parallel claims in a project queue
    behind each other and the second finds the first one's lease; the partial unique index on live
    leases is the guarantee behind it. A lease of theirs that lapsed is ended first (at most one live
    lease per trainer and project), with no extra statement when there is none.
    """
    stmt = _membership_statement(lock=not is_sqlite(session))
    row = session.execute(stmt, {"project_id": project.id, "trainer_id": trainer_id}).first()
    _check_membership(session, row)
    held = row.Assignment
    if held is not None and held.expires_at <= now:
        _reclaim_expired(session, project, now, trainer_id)
        held = None
    return held, _sitting(row.sitting_tasks, row.last_submitted_at, now)


def _check_membership(session: Session, row) -> None:
    """Not an active member: NotFound (paused: Paused), after a rollback."""
    if row is None or row.status not in ("active", "paused"):
        session.rollback()
        raise NotFound("no such task or project")
    if row.status == "paused":
        session.rollback()
        raise Paused.because(row.flagged_reason)


def project_and_membership(session: Session, slug: str, trainer_id: int) -> tuple[Project | None, ProjectMember | None]:
    """The project with this slug and the caller's trainer membership there (None for either that is
    missing), in one statement: what the workspace asks on every request before it acts."""
    row = session.execute(
        select(Project, ProjectMember)
        .outerjoin(ProjectMember, and_(ProjectMember.project_id == Project.id, ProjectMember.user_id == trainer_id,
                                       ProjectMember.role == "trainer"))
        .where(Project.slug == slug)
    ).first()
    return (row.Project, row.ProjectMember) if row is not None else (None, None)


def current_assignment(session: Session, trainer_id: int, project_id: int, now: datetime) -> Assignment | None:
    return session.scalar(
        select(Assignment)
        .where(
            Assignment.trainer_id == trainer_id,
            Assignment.project_id == project_id,
            Assignment.status == "active",
            Assignment.expires_at > now,
        )
        .order_by(Assignment.id)
        .limit(1)
    )


def next_task(
    session: Session, trainer_id: int, project: Project, now: datetime | None = None, rng: random.Random | None = None
) -> Assignment | None:
    """The trainer's open task in this project, or a newly claimed one; None when the queue is empty.

    Reloading is safe: an unexpired active assignment is returned again. Commits.
    """
    return _next(session, trainer_id, project, now or utcnow(), rng).assignment


@dataclass
class Shown:
    """What the task screen shows, read in the claim's own transaction: the trainer's task (None when
    the queue is empty) with its item loaded, and how many tasks they did this sitting (None when
    nothing was read: the project is not active)."""

    assignment: Assignment | None
    done_this_session: int | None
    questions: list[Question] | None = None


def task_to_show(session: Session, trainer_id: int, project: Project, with_questions: bool = True,
                 now: datetime | None = None) -> Shown:
    """``next_task`` for the task screen: the item, the sitting and (``with_questions``) the project's
    questions come with the claim, before its commit, instead of in a transaction of their own
    afterwards. Commits."""
    return _next(session, trainer_id, project, now or utcnow(), None, True, with_questions)


def _next(session: Session, trainer_id: int, project: Project, now: datetime, rng: random.Random | None,
          for_screen: bool = False, with_questions: bool = False) -> Shown:
    if project.status != "active":
        return Shown(None, None)
    for _attempt in range(3):
        begin_write(session)
        try:
            assignment, done = _membership_and_current(session, trainer_id, project, now)
            if assignment is None:
                assignment = _claim(session, trainer_id, project, now, rng or _rng)
            if for_screen and assignment is not None:
                assignment.item  # noqa: B018 - loaded now, in this transaction, for the screen
            questions = project_questions(session, project.id) if with_questions else None
            session.commit()
            return Shown(assignment, done, questions)
        except IntegrityError:
            # A claim racing a duplicate request: the (item, trainer) guard or the one-live-lease index.
            session.rollback()
        except OperationalError as exc:
            session.rollback()
            if not is_deadlock(exc):
                raise
    raise Conflict("could not claim a task; please try again")


class Paused(Forbidden):
    """The trainer is paused in this project (by an admin or by the gold rule) and gets no work."""

    @classmethod
    def because(cls, _flagged_reason: str | None = None) -> Paused:
        # The reason stays with the admins: "gold accuracy …" would tell the trainer which item was gold.
        return cls("You are paused in this project while your recent work is looked at. An admin can reinstate you.")


def _choose_item(session: Session, trainer_id: int, project: Project, rng: random.Random) -> int | None:
    # Gold is mixed into work, never served on its own: when the trainer has no work left, they get
    # nothing (else everything after "queue empty" would be gold, and easy to spot and share).
    work = _pick_item(session, trainer_id, project, gold=False)
    if work is None:
        return None
    if project.gold_rate > 0 and rng.random() < project.gold_rate:
        return _pick_item(session, trainer_id, project, gold=True) or work
    return work


def _claim(session: Session, trainer_id: int, project: Project, now: datetime, rng: random.Random) -> Assignment | None:
    key = (id(session.get_bind()), project.id)
    last = _last_reclaim.get(key)
    reclaimed = last is None or abs(now - last) >= RECLAIM_EVERY
    if reclaimed:
        _reclaim_expired(session, project, now)
        _last_reclaim[key] = now
    item_id = _choose_item(session, trainer_id, project, rng)
    if item_id is None and not reclaimed and _reclaim_expired(session, project, now):
        _last_reclaim[key] = now
        item_id = _choose_item(session, trainer_id, project, rng)
    if item_id is None:
        return None
    _move_counters(session, item_id, project.overlap, active=1)
    assignment = Assignment(
        item_id=item_id,
        project_id=project.id,
        trainer_id=trainer_id,
        status="active",
        assigned_at=now,
        expires_at=now + timedelta(minutes=project.lease_minutes),
    )
    session.add(assignment)
    session.flush()
    return assignment


def _pick_item(session: Session, trainer_id: int, project: Project, gold: bool | None) -> int | None:
    """The best open item this trainer never had: highest priority, then oldest.

    Work items stop at the project's overlap; gold items (honeypots) are shown to every trainer.
    """
    params = {"trainer": trainer_id, "project": project.id, "overlap": project.overlap}
    return session.scalar(_pick_statement(gold, not is_sqlite(session)), params)


@cache
def _pick_statement(gold: bool | None, skip_locked: bool):
    """``_pick_item``'s statement for this shape, built once (every claim runs it)."""
    seen = select(Assignment.item_id).where(Assignment.trainer_id == bindparam("trainer"),
                                            Assignment.project_id == bindparam("project"))
    stmt = select(Item.id).where(Item.project_id == bindparam("project"), Item.id.not_in(seen))
    if gold is False:
        # is_open lets the index skip full items; the counter test re-checks under the row lock.
        stmt = stmt.where(
            Item.is_gold == False,  # noqa: E712 - same form as the index, so the planner uses it
            Item.is_open == True,  # noqa: E712
            Item.done_count + Item.active_count < bindparam("overlap"),
        )
    elif gold is True:
        stmt = stmt.where(Item.is_gold == True)  # noqa: E712
    stmt = stmt.order_by(Item.priority.desc(), Item.id).limit(1)
    # Concurrent claimers pass over each other's locked rows instead of queueing behind them.
    return stmt.with_for_update(skip_locked=True) if skip_locked else stmt


def project_questions(session: Session, project_id: int, share_lock: bool = False) -> list[Question]:
    """The project's questions in order; ``share_lock`` (a submit) holds them against an edit until commit."""
    return list(session.scalars(_QUESTIONS[share_lock and not is_sqlite(session)], {"project": project_id}))


# Built once (every submit and every task shown reads them): plain, and share-locked.
_QUESTIONS = {False: select(Question).where(Question.project_id == bindparam("project")).order_by(Question.position)}
_QUESTIONS[True] = _QUESTIONS[False].with_for_update(read=True)


@dataclass
class Task:
    """A trainer's task as the one door hands it over, locked: the assignment, its item and project,
    the trainer's membership there and their clock."""

    assignment: Assignment
    item: Item
    project: Project
    member_status: str
    flagged_reason: str | None
    clock_at: datetime | None
    counted_to: datetime | None = None  # where the last ``stretch`` left the clock

    def count_time(self, session: Session, now: datetime) -> None:
        """Add the time since the last heartbeat, capped, and move the heartbeat mark to now.

        A trainer's time counts once, whatever they hold open: nothing before their clock
        (``User.clock_at``, the moment up to which their time is counted) counts again, so two tabs
        or two projects beating side by side share one clock instead of each being paid the same
        seconds. The clock moves with every counted stretch.
        """
        assignment = self.assignment
        added = self.stretch(session, now)
        if added is not None:
            assignment.active_seconds += added
        assignment.last_heartbeat_at = now

    def stretch(self, session: Session, now: datetime) -> int | None:
        """The whole seconds the time since the last heartbeat adds (capped), with the trainer's clock
        moved to the instant they count up to (``counted_to``); None when nothing counts. The fraction
        of a second left over counts in the next stretch, so beats however frequent add up to the time
        that passed, never more (rounding each one up paid a beat every half second double). A stretch
        past the cap counts the cap and no more: the rest was a gap. The assignment itself is left to
        the caller, which sets its heartbeat mark to ``counted_to``."""
        assignment = self.assignment
        self.counted_to = now
        if assignment.last_heartbeat_at is None:
            return None
        start = max(assignment.last_heartbeat_at, self.clock_at or assignment.last_heartbeat_at)
        if now <= start:
            return None
        elapsed = (now - start).total_seconds()
        if elapsed >= HEARTBEAT_CAP_SECONDS:
            seconds = HEARTBEAT_CAP_SECONDS
        else:
            seconds = int(elapsed)
            self.counted_to = start + timedelta(seconds=seconds)
        self.clock_at = self.counted_to
        # The Task keeps the clock itself, and the door holds the trainer's row: a plain UPDATE on the
        # connection. Through the session it would first flush the assignment's pending change (an
        # UPDATE of its own, then another at commit for the rest).
        session.connection().execute(_CLOCK_UPDATE, {"trainer": assignment.trainer_id, "clock": self.counted_to})
        return seconds


_users = User.__table__
_CLOCK_UPDATE = update(_users).where(_users.c.id == bindparam("trainer")).values(clock_at=bindparam("clock"))
_assignments = Assignment.__table__
# A beat on a live lease: its time, mark and lease in one statement built once (the ORM's flush of the
# same UPDATE cost a heartbeat more than its locking read). Only a live lease takes it: a beat that
# changes nothing billable (an active assignment is not billable), so the pay hooks have nothing to see.
_BEAT_UPDATE = update(_assignments).where(_assignments.c.id == bindparam("assignment")).values(
    active_seconds=bindparam("seconds", type_=_assignments.c.active_seconds.type),
    last_heartbeat_at=bindparam("mark", type_=_assignments.c.last_heartbeat_at.type),
    expires_at=bindparam("expires", type_=_assignments.c.expires_at.type))


_LOCK_STATEMENTS: dict[tuple[bool, bool, bool, bool, bool], object] = {}
# What a heartbeat reads of the item and the project (anything else loads if ever touched): every
# column read is a column described and converted, and a beat is most of a busy server's requests.
_BEAT_COLUMNS = (load_only(Item.id, Item.project_id, Item.is_gold),
                 load_only(Project.id, Project.slug, Project.kind, Project.status, Project.overlap,
                           Project.lease_minutes))


def _lock_statement(by_id: bool, by_slug: bool, for_update: bool, light: bool, signed_in: bool = False):
    """The one door's statement for this shape, built once: heartbeats are most of the traffic, and
    building the select (four joins, a row lock) cost more than running it. ``signed_in`` adds what
    the sign-in check needs of the trainer's row (status, session version, the trainer role)."""
    key = (by_id, by_slug, for_update, light, signed_in)
    stmt = _LOCK_STATEMENTS.get(key)
    if stmt is None:
        columns = [ProjectMember.status, ProjectMember.flagged_reason, Assignment, Item, Project, User.clock_at]
        if signed_in:
            columns += [User.status.label("user_status"), User.session_version.label("user_session_version"),
                        exists().where(UserRole.user_id == User.id, UserRole.role == "trainer")
                        .label("user_is_trainer")]
        stmt = (
            select(*columns)
            .select_from(ProjectMember)
            .join(Assignment, and_(Assignment.project_id == ProjectMember.project_id,
                                   Assignment.trainer_id == ProjectMember.user_id))
            .join(User, User.id == Assignment.trainer_id)
            .join(Item, Item.id == Assignment.item_id)
            .join(Project, Project.id == Assignment.project_id)
            .where(Assignment.id == bindparam("assignment_id"), Assignment.trainer_id == bindparam("trainer_id"),
                   ProjectMember.role == "trainer")
        )
        if by_id:
            stmt = stmt.where(Assignment.project_id == bindparam("project_id"))
        if by_slug:
            stmt = stmt.where(Project.slug == bindparam("project_slug"), Project.kind == "work")
        if for_update:
            stmt = stmt.with_for_update(of=(ProjectMember, Assignment, User), key_share=True)
        if light:
            stmt = stmt.options(*_BEAT_COLUMNS)
        _LOCK_STATEMENTS[key] = stmt
    return stmt


def _lock_task(session: Session, assignment_id: int, trainer_id: int, project_id: int | None = None,
               project_slug: str | None = None, light: bool = False, session_version: int | None = None) -> Task:
    """The caller's own assignment (in ``project_id`` when given), locked for this transaction — the
    one door submit, heartbeat and skip go through.

    Someone else's assignment, one of another project, or one of a project where the trainer is no
    longer a member is NotFound; a paused member gets Paused. Nothing about the task is read or shown.
    One statement; on PostgreSQL it locks the membership, the assignment and the trainer's row, in
    that order (the lock order above), FOR NO KEY UPDATE so rows that merely point at them go on.
    The trainer's row makes one person's clock and an approval of their pay take turns.
    ``project_slug`` names the project by the URL's slug instead of its id (a work project only, as
    the workspace serves), so a heartbeat needs no lookup of its own before this one. ``light`` reads
    only what a heartbeat uses of the item and the project (the rest loads if something touches it).

    ``session_version`` (a web request whose signed-in trainer was not read before: a heartbeat) makes
    this statement the sign-in check too: the trainer's account active, that session version current,
    the trainer role held, or Unauthorized after a rollback — the rule ``users.session_user`` applies.
    """
    begin_write(session)
    checks = session_version is not None
    stmt = _lock_statement(project_id is not None, project_slug is not None, not is_sqlite(session), light, checks)
    params = {"assignment_id": assignment_id, "trainer_id": trainer_id}
    if project_id is not None:
        params["project_id"] = project_id
    if project_slug is not None:
        params["project_slug"] = project_slug
    row = session.execute(stmt, params).first()
    if checks and row is not None and not (
            users.session_holds(row.user_status, row.user_session_version, session_version) and row.user_is_trainer):
        session.rollback()
        raise Unauthorized("this session has ended: sign in again")
    _check_membership(session, row)
    return Task(row.Assignment, row.Item, row.Project, row.status, row.flagged_reason, row.clock_at)


def task_of(session: Session, assignment_id: int, trainer_id: int, project_id: int | None,
            project_slug: str | None = None) -> Assignment:
    """The caller's own assignment (in this project), read only (to show it again after a form error)."""
    stmt = select(Assignment).where(Assignment.id == assignment_id, Assignment.trainer_id == trainer_id)
    if project_id is not None:
        stmt = stmt.where(Assignment.project_id == project_id)
    if project_slug is not None:
        stmt = stmt.join(Project, Project.id == Assignment.project_id).where(Project.slug == project_slug,
                                                                               Project.kind == "work")
    assignment = session.scalar(stmt)
    if assignment is None:
        raise NotFound("no such task")
    return assignment


def _is_live(assignment: Assignment, now: datetime) -> bool:
    return assignment.status == "active" and assignment.expires_at > now


def _renew(session: Session, assignment: Assignment, item: Item, project: Project, now: datetime) -> bool:
    """Give a lapsed lease back to its trainer when nobody needs the slot: the task they were on
    stays theirs. The gap is not counted. False when the slot is gone (or they hold another task)."""
    if assignment.status == "expired":
        if current_assignment(session, assignment.trainer_id, project.id, now) is not None:
            return False
        if not _move_counters(session, item.id, project.overlap, active=1,
                              needs_room=_counts_toward_overlap(project, item)):
            return False
        assignment.status, assignment.finished_at = "active", None
    assignment.expires_at = now + timedelta(minutes=project.lease_minutes)
    assignment.last_heartbeat_at = now
    return True


def record_heartbeat(
    session: Session, assignment_id: int, trainer_id: int, now: datetime | None = None, resume: bool = False,
    project_id: int | None = None, project_slug: str | None = None, session_version: int | None = None,
) -> Assignment:
    """The workspace says the trainer is here and active. Commits.

    Time counts only on a live lease: ``resume`` marks the start of an active stretch (page shown, or
    activity after an idle or hidden spell) and sets the mark without adding time, so gaps never
    count; a live lease is extended, so nobody loses a task they are working on. A lapsed lease is
    renewed without pay for the gap when its slot is still free, and otherwise stays expired.

    Heartbeats are most of a busy server's requests, so a beat is one locking read (the one door,
    which checks the project, by id or by the URL's ``project_slug``, with the membership, and with
    ``session_version`` the signed-in trainer too) and the writes it needs: nothing else is looked up first.
    """
    try:
        task = _lock_task(session, assignment_id, trainer_id, project_id, project_slug, light=True,
                          session_version=session_version)
    except OperationalError as exc:  # a deadlock victim: this beat is dropped, the next one counts
        session.rollback()
        if not is_deadlock(exc):
            raise
        if session_version is not None:  # the sign-in was not checked: the caller checks it, then beats again
            raise Unauthorized("the sign-in could not be checked: try again") from exc
        return task_of(session, assignment_id, trainer_id, project_id, project_slug)
    now = now or utcnow()  # read once the locks are held: a request that waited measures from now
    assignment, item, project = task.assignment, task.item, task.project
    if project.status != "active":
        session.commit()  # a paused or archived project counts no time and renews nothing
        return assignment
    if _is_live(assignment, now):
        seconds, mark = assignment.active_seconds, now
        if not resume and (added := task.stretch(session, now)) is not None:
            seconds, mark = seconds + added, task.counted_to  # a fraction of a second left counts next time
        expires = max(assignment.expires_at, now + timedelta(minutes=project.lease_minutes))
        session.connection().execute(_BEAT_UPDATE, {"assignment": assignment.id, "seconds": seconds, "mark": mark,
                                                    "expires": expires})
        for name, value in (("active_seconds", seconds), ("last_heartbeat_at", mark), ("expires_at", expires)):
            set_committed_value(assignment, name, value)
    elif assignment.status in ("active", "expired"):
        try:
            _renew(session, assignment, item, project, now)
            session.flush()
        except IntegrityError:  # a claim in another tab gave them a new lease meanwhile
            session.rollback()
            return task_of(session, assignment_id, trainer_id, project.id)
    session.commit()
    return assignment


# Reads a request's answers once the door holds the task: (the task, the project's questions) -> raw answers.
AnswerReader = Callable[[Task, list[Question]], Mapping[str, Any]]

LATE_AND_TAKEN = "This task's time ran out and it went to someone else, so this answer could not be kept."


def submit(
    session: Session, assignment_id: int, trainer_id: int, raw_answers: Mapping[str, Any] | AnswerReader,
    now: datetime | None = None, rng: random.Random | None = None, project_id: int | None = None,
    project_slug: str | None = None,
) -> Annotation:
    """Store the trainer's answers for one assignment. Idempotent (a double click stores one answer).

    ``raw_answers`` are the answers, or an ``AnswerReader`` that makes them from the task the door
    locked and the project's questions (a form names responses by their letter on the page), so the
    caller reads none of them first. ``project_slug`` names the project by the URL's slug, as for a heartbeat.

    A late submit (the lease lapsed) is kept while the item still has room for it; an item never
    gets more answers than its overlap. Raises ValidationError (nothing stored) when an answer breaks
    its question's rule, Conflict when the task was skipped or its slot went to someone else.
    Once the answer is added, ``after_submit.POST_SUBMIT_HOOKS`` run in order in the same
    transaction (review routing, the gold pause, pay); then it commits. The caller asks
    ``after_submit.statistics_due`` afterwards.
    """
    task = _lock_task(session, assignment_id, trainer_id, project_id, project_slug)
    assignment, item, project = task.assignment, task.item, task.project
    now = now or utcnow()  # once the locks are held (see record_heartbeat)
    if assignment.status == "submitted":  # a double click or a retried request: the first answer stands
        existing = session.scalar(select(Annotation).where(Annotation.assignment_id == assignment.id))
        if _changes_answer(task, session, raw_answers, existing):
            session.rollback()
            raise Conflict("this task is already submitted, with other answers: the first answers stand")
        session.commit()
        return existing
    if assignment.status == "skipped":
        session.rollback()
        raise Conflict("this task was skipped and cannot be submitted")
    if project.status == "archived":
        session.rollback()
        raise Conflict("this project is archived and takes no more answers")
    questions = project_questions(session, assignment.project_id, share_lock=True)
    try:
        if callable(raw_answers):
            raw_answers = raw_answers(task, questions)
        answers = question_rules.validate_answers(questions, raw_answers, item.responses or [])
    except Exception:  # a broken answer (or a reader that failed): nothing written, the locks let go
        session.rollback()
        raise
    if _is_live(assignment, now) and project.status == "active":
        task.count_time(session, now)  # only a live lease of an active project earns time
    # A lease that is still marked active holds its slot; an expired one must find room again.
    held = assignment.status == "active"
    assignment.status, assignment.finished_at = "submitted", now
    if not _move_counters(session, item.id, project.overlap, done=1, active=-1 if held else 0,
                          needs_room=not held and _counts_toward_overlap(project, item)):
        session.rollback()
        raise Conflict(LATE_AND_TAKEN)
    annotation = Annotation(
        assignment_id=assignment.id,
        item_id=item.id,
        project_id=assignment.project_id,
        trainer_id=trainer_id,
        answers=answers,
        submitted_at=now,
        active_seconds=assignment.active_seconds,
        gold_score=question_rules.gold_score(questions, answers, item.gold_answers or {}) if item.is_gold else None,
    )
    session.add(annotation)
    after_submit.run(after_submit.Submitted(
        session, assignment, annotation, item, project, task.flagged_reason, rng or _rng, now))
    _move_sitting(session, assignment.project_id, trainer_id, now)  # its row is the door's, locked already
    session.commit()
    return annotation


SKIP_REASON_MAX = 500


def skip(session: Session, assignment_id: int, trainer_id: int, reason: str, now: datetime | None = None,
         project_id: int | None = None) -> Assignment:
    """Record a skip with its reason and free the slot for someone else. Commits."""
    reason = (reason or "").strip()
    if not has_visible(reason) or len(reason) > SKIP_REASON_MAX:  # invisible characters say nothing
        raise ValidationError({"reason": "say why you skip this task" if not has_visible(reason)
                               else f"at most {SKIP_REASON_MAX} characters"})
    if problem := plain_text_problem(reason):  # admins and reviewers read it
        raise ValidationError({"reason": problem})
    task = _lock_task(session, assignment_id, trainer_id, project_id)
    assignment, project = task.assignment, task.project
    now = now or utcnow()  # once the locks are held (see record_heartbeat)
    if assignment.status in ("submitted", "skipped"):
        session.commit()
        return assignment
    if _is_live(assignment, now) and project.status == "active":
        task.count_time(session, now)
    held = 1 if assignment.status == "active" else 0
    assignment.status = "skipped"
    assignment.skip_reason = reason
    assignment.finished_at = now
    _move_counters(session, assignment.item_id, project.overlap, active=-held)
    pay.after_work(session, assignment, now)
    session.commit()
    return assignment


def release_leases(session: Session, trainer_id: int | None, project: Project, now: datetime | None = None) -> int:
    """End a trainer's live leases in a project (they were paused or removed), or everyone's
    (``trainer_id`` None: the project was archived): the slots go back at once. Does not commit."""
    now = now or utcnow()
    stmt = update(Assignment).where(Assignment.project_id == project.id, Assignment.status == "active")
    if trainer_id is not None:
        stmt = stmt.where(Assignment.trainer_id == trainer_id)
    rows = session.execute(stmt.values(status="expired", finished_at=now).returning(Assignment.item_id)).all()
    for item_id, n in sorted(Counter(r.item_id for r in rows).items()):  # items by id: the lock order
        _move_counters(session, item_id, project.overlap, active=-n)
    return len(rows)


def _changes_answer(task: Task, session: Session, raw_answers, existing: Annotation | None) -> bool:
    """Whether a submit of a task already submitted sends other answers than the stored ones (a client
    changing its mind is told so; a repeat of the same answers, or one that is no valid answer at all,
    is the double click or retry the first answer stands for)."""
    if existing is None:
        return False
    questions = project_questions(session, task.assignment.project_id)
    try:
        answers = raw_answers(task, questions) if callable(raw_answers) else raw_answers
        answers = question_rules.validate_answers(questions, answers, task.item.responses or [])
    except Exception:  # noqa: BLE001 - a broken repeat changes nothing and is no new answer
        return False
    return answers != existing.answers


def submitted_counts(session: Session, trainer_id: int) -> dict[int, int]:
    """{project id: tasks the trainer submitted there}. A trainer's own figure: project-wide progress
    is not shown to trainers, since it moves differently for gold items and would point them out."""
    return dict(session.execute(
        select(Annotation.project_id, func.count(Annotation.id)).where(Annotation.trainer_id == trainer_id)
        .group_by(Annotation.project_id)
    ).all())


@dataclass
class RecentTask:
    """One of a trainer's latest tasks, as My work lists it: where, what it asked (a short excerpt),
    its state (open, lapsed, skipped, submitted) and when that happened (an open task: until when it is
    held). Nothing that tells gold from work."""

    project: Project
    excerpt: str
    state: str
    when: datetime
    reason: str | None = None
    workable: bool = False  # the project is active and so is their membership: a link to work on makes sense
    opened: datetime | None = None  # when it was given to them: the list's order


RECENT_TASKS = 10
EXCERPT_CHARS = 90


def recent_tasks(session: Session, trainer_id: int, limit: int = RECENT_TASKS,
                 now: datetime | None = None) -> list[RecentTask]:
    """The trainer's latest tasks, newest first: held, lapsed (a lease that ran out, swept or not yet),
    skipped with its reason, submitted."""
    now = now or utcnow()
    # The latest ids first, from the assignments alone (the trainer's index); then only those are joined
    # to their items. Only projects they are still a member of (a removed trainer's is closed to them).
    member = select(ProjectMember.project_id).where(ProjectMember.user_id == trainer_id,
                                                    ProjectMember.role == "trainer", ProjectMember.status != "removed")
    latest = (select(Assignment.id).where(Assignment.trainer_id == trainer_id, Assignment.project_id.in_(member))
              .order_by(Assignment.assigned_at.desc(), Assignment.id.desc()).limit(limit).subquery())
    rows = session.execute(
        select(Assignment, Project, Item.context).join(latest, latest.c.id == Assignment.id)
        .join(Project, Project.id == Assignment.project_id).join(Item, Item.id == Assignment.item_id)
        .order_by(Assignment.assigned_at.desc(), Assignment.id.desc())).all()
    active = set(session.scalars(member.where(ProjectMember.status == "active")))
    tasks = []
    for assignment, project, context in rows:
        last = context[-1]["content"] if context else ""
        excerpt = " ".join(last.split())
        excerpt = excerpt if len(excerpt) <= EXCERPT_CHARS else excerpt[: EXCERPT_CHARS - 1] + "…"
        if assignment.status == "active" and assignment.expires_at > now:
            state, when = "open", assignment.expires_at
        elif assignment.status in ("active", "expired"):  # ran out, or released early (a pause, an archive)
            state, when = "lapsed", min(assignment.finished_at or assignment.expires_at, assignment.expires_at)
        else:
            state, when = assignment.status, assignment.finished_at or assignment.assigned_at
        tasks.append(RecentTask(project, excerpt, state, when,
                                assignment.skip_reason if assignment.status == "skipped" else None,
                                project.status == "active" and project.id in active, assignment.assigned_at))
    return tasks


# A pause longer than this ends a sitting: "done this session" counts back to it.
SITTING_GAP = timedelta(minutes=30)


def session_progress(session: Session, trainer_id: int, project_id: int, now: datetime | None = None) -> int:
    """How many tasks the trainer submitted in this project in the current sitting: since the last
    pause longer than SITTING_GAP, and none once such a pause has begun.

    Kept on the membership by every submit (``_move_sitting``), in the database rather than a cookie
    so parallel requests cannot reset it: one row read, however long the sitting.
    """
    row = session.execute(select(ProjectMember.sitting_tasks, ProjectMember.last_submitted_at)
                          .where(access.member_row(trainer_id, project_id))).first()
    return 0 if row is None else _sitting(row.sitting_tasks, row.last_submitted_at, now or utcnow())


def _sitting(tasks: int, last_submitted_at: datetime | None, now: datetime) -> int:
    """The membership's sitting as of ``now``: none once a pause longer than SITTING_GAP has begun."""
    if last_submitted_at is None or now - last_submitted_at > SITTING_GAP:
        return 0
    return tasks


def _move_sitting(session: Session, project_id: int, trainer_id: int, now: datetime) -> None:
    """A submit at ``now`` goes on the trainer's sitting, or starts a new one after a long pause. The
    membership row is the door's first lock, so two tabs' submits take turns here."""
    if session.autoflush:  # as the ORM's own UPDATE would: what the session holds goes first
        session.flush()
    session.connection().execute(_SITTING_UPDATE, {"project": project_id, "trainer": trainer_id,
                                                   "since": now - SITTING_GAP, "at": now})


_members = ProjectMember.__table__
# Built once (every submit runs it). Typed as the column: a bare datetime in a CASE goes to PostgreSQL
# as timestamptz, which the naive UTC column would take shifted by the connection's time zone.
_at = bindparam("at", type_=_members.c.last_submitted_at.type)
_SITTING_UPDATE = update(_members).where(
    _members.c.project_id == bindparam("project"), _members.c.user_id == bindparam("trainer"),
    _members.c.role == "trainer",
).values(
    sitting_tasks=case((_members.c.last_submitted_at >= bindparam("since", type_=_members.c.last_submitted_at.type),
                        _members.c.sitting_tasks + 1), else_=1),
    # A submit stamped earlier than the latest (only a given ``now``: seeding, tests; a request reads the
    # clock once the membership is locked) counts toward the current sitting and leaves the latest as it is.
    last_submitted_at=case((_members.c.last_submitted_at > _at, _members.c.last_submitted_at), else_=_at),
)
