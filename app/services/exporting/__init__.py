"""Dataset exports: every export is an immutable, versioned ``DatasetExport``.

``create_export`` checks the options against the project and queues a version; ``run_export``
(a background job) streams the annotations through the format's mapping into a temporary folder,
hashing while it writes, adds ``manifest.json`` and a dataset card, and renames the folder into
place only when everything is written. A version killed half-way is never marked done and leaves
nothing at its final path; running it again starts from scratch.
"""

from __future__ import annotations

import copy
import importlib.metadata
import logging
import os
import shutil
import time
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, func, literal_column, not_, or_, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import Conflict, Forbidden, InsufficientStorage, NotFound, ValidationError, plain_reason
from app.models import Annotation, AuditEvent, DatasetExport, Item, Project, ProjectStats, UserRole, utcnow

from .. import audit, webhooks
from ..assignment import project_questions, read_progress
from .build import PartResult, splits_of, write_all
from .card import dataset_card
from .formats import FORMATS, PAIR_MODE_OPTIONS, Format, OptionProblem, Plan, QuestionSpec, desirable_question
from .options import ExportOptions, instant_text, parse_options
from .source import FETCH_ROWS, Snapshot, count_annotations, named_conditions

log = logging.getLogger(__name__)
SCHEMA_VERSION = "groundwork-export/1"
TMP_FOLDER = ".partial"
STALLED_AFTER_SECONDS = 120
MAX_PENDING_EXPORTS = 3  # versions of one project queued or running at once (``create_export``)
MAX_VERSIONS_PER_HOUR = 20  # versions one project may be asked for in an hour (each is a full copy on disk)
DOWNLOADABLE = ("manifest.json", "README.md")
FINISHED = ("done", "empty")  # a version in one of these never changes
QUEUED_OVERDUE_SECONDS = 60  # a version queued this long without starting is queued again by the sweep
MAX_RUNS = 3  # runs that died without a word (a killed worker) before the sweep fails the version

__all__ = ["FORMATS", "ExportOptions", "available_formats", "create_export", "desirable_question", "options_for",
           "parse_options", "project_questions", "run_export"]


def options_for(raw: Mapping[str, Any]) -> ExportOptions:
    return parse_options(raw, FORMATS)


def plan_for(session: Session, project: Project, options: ExportOptions,
             seen_at: datetime | None = None) -> tuple[Format, Plan]:
    """The format and its plan, or a ValidationError saying what the project lacks for it. A build
    passes its snapshot's instant (``as_of`` when given) as ``seen_at``: the project as it stood then
    decides plain or message lists, so a rebuild ``as_of`` a version's instant writes its schema."""
    fmt = FORMATS[options.format]
    plan = Plan(options=options, questions=[QuestionSpec.of(q) for q in project_questions(session, project.id)])
    problem = fmt.needs(plan)
    if isinstance(problem, OptionProblem):
        raise ValidationError({problem.field: str(problem)})
    if problem:
        kinds = ", ".join(sorted({q.type for q in plan.questions})) or "no questions"
        raise ValidationError({"format": f"{fmt.name} {problem}; this project has {kinds}"})
    # Message lists from the first line when asked for, or when the project held any chat at the
    # snapshot (gold or not, answered or not): a version's schema never depends on which items passed
    # the filters, nor on chats imported after its instant.
    plan.conversational = (options.conversational or bool(project.always_messages)
                           or has_chats(session, project.id, seen_at))
    plan.language = project.language or ""
    plan.domain = (project.required_domains or [""])[0]
    return fmt, plan


def has_chats(session: Session, project_id: int, created_by: datetime | None = None) -> bool:
    """Whether any item of the project (created by ``created_by``, when given) is more than one user
    turn (a small partial index answers: it holds the chats only)."""
    # "IS false", the partial index's own condition: SQLite uses the index only for that spelling
    # (SQLAlchemy writes "IS 0" there, and SQLite then walks every item of the project).
    conditions = [Item.project_id == project_id, Item.single_turn.is_(literal_column("false"))]
    if created_by is not None:
        conditions.append(Item.created_at <= created_by)
    return session.scalar(select(Item.id).where(*conditions).limit(1)) is not None


def available_formats(session: Session, project: Project) -> dict[str, str | None]:
    """Each format, with why this project cannot produce it (None when it can)."""
    questions = [QuestionSpec.of(q) for q in project_questions(session, project.id)]
    plan = Plan(options=ExportOptions(format="raw", desirable_labels=_all_desirable_labels(questions)),
                questions=questions)
    return {name: fmt.needs(plan) for name, fmt in FORMATS.items()}


def create_export(session: Session, project: Project, raw_options: Mapping[str, Any], actor_id: int | None,
                  root: str | os.PathLike | None = None, min_free_bytes: int = 0) -> DatasetExport:
    """Check the options against the project and add a queued version. Commits (the caller enqueues
    ``build_export`` with its id). With ``root`` (where versions are written), a version is refused
    when the disk there lacks room for one as large as the project's largest, plus ``min_free_bytes``."""
    options = options_for(raw_options)
    # The write lock before the first read: on SQLite a transaction that read cannot start writing
    # once another connection (a webhook delivery, say) has committed meanwhile.
    begin_write(session)
    fmt, plan = plan_for(session, project, options)
    idle = _idle_options(fmt, plan, options)
    if idle:  # an option that changes nothing would be recorded in the manifest as if it had
        session.rollback()
        raise ValidationError(idle)
    # A project builds a few versions at a time: more would only wait behind them, and anyone who may
    # ask for one (a client too) could fill the job queue and the disk. One that stopped reporting no
    # longer counts (``is_stalled``: it can be run again).
    side = _asked_alike(session, actor_id)
    _check_pending(session, project, side)
    # Every version is a full copy on disk: a project is asked for a bounded number an hour, and none
    # starts without room for one as large as its largest.
    recent = session.scalar(select(func.count(DatasetExport.id)).where(
        DatasetExport.project_id == project.id, DatasetExport.created_at >= utcnow() - timedelta(hours=1), side.condition))
    if recent >= MAX_VERSIONS_PER_HOUR:
        session.rollback()
        raise Conflict(f"{recent} versions of this project were asked for in the last hour by {side.name}, "
                       "the most it takes; ask again later (each version is a full copy on the server's disk)")
    if root is not None:
        _check_room(session, project, Path(root), min_free_bytes)
    # The next version number of the project, under its row's lock (PostgreSQL; SQLite's write lock is
    # held already), so two versions asked for at once get two numbers.
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    version = (session.scalar(select(func.max(DatasetExport.version)).where(DatasetExport.project_id == project.id))
               or 0) + 1
    export = DatasetExport(project_id=project.id, version=version, format=options.format, filters=options.as_dict(),
                           status="queued", created_by=actor_id)
    session.add(export)
    session.flush()
    audit.record(session, actor_id, "export.create", "project", project.id,
                 {"export_id": export.id, "version": version, "format": options.format})
    session.commit()
    return export


# Options that add columns to a format's rows (``Plan.extras``).
COLUMN_OPTIONS = ("margin", "with_agreement", "with_ids")


def _adds_nothing(fmt: Format, plan: Plan, name: str) -> bool:
    """Whether the column option ``name`` leaves the format's columns as they are under this plan."""
    off = copy.copy(plan)
    setattr(off, name, False)
    return fmt.features(off) == fmt.features(plan)


def _can_carry(fmt: Format, plan: Plan, name: str) -> bool:
    """Whether the column option ``name``, turned on, would add columns to the format under this plan."""
    on = copy.copy(plan)
    setattr(on, name, True)
    return not _adds_nothing(fmt, on, name)


# Options that choose which rows a format writes, each read by the formats naming it (``Format.modes``):
# the pair formats read both.
MODE_OPTIONS = PAIR_MODE_OPTIONS


def reads_mode(fmt: Format, plan: Plan, name: str) -> bool:
    """Whether the row-mode option ``name`` can change the format's rows for this project: the
    ranking strategies only where its pairs come from a ranking."""
    if name not in fmt.modes:
        return False
    return name != "ranking_pairs" or (plan.pair_kind is not None and plan.pair_kind.pairs_by_strategy)


def applicable_options(session: Session, project: Project) -> set[str]:
    """The column and row-mode options that some format this project can produce would act on: what
    the export form offers (the rest would be refused as changing nothing)."""
    questions = [QuestionSpec.of(q) for q in project_questions(session, project.id)]
    labels = _all_desirable_labels(questions)
    found = set()
    for fmt in FORMATS.values():
        if fmt.needs(Plan(options=ExportOptions(format=fmt.name, desirable_labels=labels), questions=questions)):
            continue
        plan = Plan(options=ExportOptions(format=fmt.name, desirable_labels=labels, margin=True, with_ids=True,
                                          with_agreement=True), questions=questions)
        found.update(name for name in COLUMN_OPTIONS if not _adds_nothing(fmt, plan, name))
        found.update(name for name in MODE_OPTIONS if reads_mode(fmt, plan, name))
    return found


def _all_desirable_labels(questions: list[QuestionSpec]) -> tuple[str, ...]:
    """Every label of the question KTO and SFT would read desirable labels from (none without one):
    a format that needs some chosen is available, whichever are."""
    label_question = desirable_question(questions)
    return tuple(label_question.options.get("labels", ())) if label_question else ()


# The formats that read which labels are desirable (KTO from a label question; SFT's approved responses).
DESIRABLE_READERS = ("trl-kto", "trl-sft")


def _idle_options(fmt: Format, plan: Plan, options: ExportOptions) -> dict[str, str]:
    """The options given that would change nothing in this format for this project, each with why: they
    would be recorded in the manifest (and said in the card) as if they had done something."""
    idle = {name: f"adds no column to {fmt.name}; leave it out" for name in COLUMN_OPTIONS
            if getattr(options, name) and _adds_nothing(fmt, plan, name)}
    if options.conversational:
        plain, chat = copy.copy(plan), copy.copy(plan)
        plain.conversational, chat.conversational = False, True
        if fmt.features(plain) == fmt.features(chat):
            idle["conversational"] = f"{fmt.name} writes no message lists; leave it out"
    defaults = ExportOptions(format=fmt.name)
    for name in MODE_OPTIONS:
        default = getattr(defaults, name)
        if getattr(options, name) != default and not reads_mode(fmt, plan, name):
            idle[name] = (f"{fmt.name} has no pair rows for it to choose" if name not in fmt.modes
                          else "this project has no ranking question") + f"; leave it as {default}"
    if (options.pairs == "per_annotation" and reads_mode(fmt, plan, "pairs") and "ranking_pairs" in fmt.modes
            and not _can_carry(fmt, plan, "with_agreement")):
        # per_annotation writes each direction once, with its support only in the agreement columns: a
        # format that cannot carry them would give a 3-vs-1 split as two equal, opposite rows.
        idle["pairs"] = (f"{fmt.name} cannot carry how many annotators gave each direction (with_agreement), so "
                         "per_annotation would write a 3-to-1 split as one row each way, equally weighted; use "
                         "consensus, or a format with agreement columns (trl-preference, hh-rlhf)")
    if options.desirable_labels and (fmt.name not in DESIRABLE_READERS or plan.label_question is None
                                     or (fmt.name == "trl-kto" and plan.pair_question is not None)):
        idle["desirable_labels"] = (f"{fmt.name} does not read desirable labels for this project (KTO reads them "
                                    "from a label question when no preference or ranking decides, SFT from a label "
                                    "question); leave them out")
    return idle


class _Side(NamedTuple):
    condition: Any  # on DatasetExport
    name: str


def _asked_alike(session: Session, actor_id: int | None) -> _Side:
    """The versions that share a quota with one ``actor_id`` asks for: the project's admins (and the
    command line, no actor) on one side, everyone else who may ask (its clients) on the other, so
    neither side can use up the other's (versions an hour, versions being built). Reads the actor's
    roles."""
    admins = select(UserRole.user_id).where(UserRole.role == "admin")
    by_admin = actor_id is None or session.scalar(
        select(func.count()).select_from(UserRole).where(UserRole.user_id == actor_id, UserRole.role == "admin")) > 0
    if by_admin:
        return _Side(or_(DatasetExport.created_by.is_(None), DatasetExport.created_by.in_(admins)), "admins")
    return _Side(and_(DatasetExport.created_by.is_not(None), DatasetExport.created_by.not_in(admins)), "its clients")


def _check_pending(session: Session, project: Project, side: _Side) -> None:
    """A Conflict when the project has ``MAX_PENDING_EXPORTS`` versions asked for by ``side``
    (``_asked_alike``) queued or running (one that stopped reporting no longer counts: ``is_stalled``, it
    can be run again). Rolls back first."""
    since = utcnow() - timedelta(seconds=STALLED_AFTER_SECONDS)
    pending = session.scalar(select(func.count(DatasetExport.id)).where(
        DatasetExport.project_id == project.id, DatasetExport.status.in_(("queued", "running")),
        func.coalesce(DatasetExport.progress_at, DatasetExport.created_at) >= since, side.condition))
    if pending >= MAX_PENDING_EXPORTS:
        session.rollback()
        raise Conflict(f"{pending} versions of this project asked for by {side.name} are being built; ask "
                       "for another once one of them is done")


def retry_export(session: Session, project: Project, export_id: int, root: str | os.PathLike | None = None,
                 min_free_bytes: int = 0, actor_id: int | None = None) -> DatasetExport:
    """Queue a failed or stalled version again (a worker was killed, the disk filled up, …); a finished
    one never changes, and one that is running is left to run. A run again meets the limits a new
    version does (versions being built, room on the disk under ``root``). Commits (the caller enqueues
    it)."""
    begin_write(session)
    export = get_export(session, project, export_id)
    if export.status in FINISHED or not (export.status == "failed" or is_stalled(export)):
        raise Conflict("That could not be done in the current state.")
    # A version counts on the side of whoever first asked for it, so only that side runs it again: a
    # client retrying an admin's failed versions would fill the admins' build slots. Neither a failed
    # nor a stalled one counts there until queued again.
    side = _asked_alike(session, export.created_by)
    if actor_id is not None and _asked_alike(session, actor_id).name != side.name:
        session.rollback()
        raise Forbidden(f"this version was asked for by {side.name}; one of them runs it again")
    _check_pending(session, project, side)
    if root is not None:
        _check_room(session, project, Path(root), min_free_bytes)
    export.status, export.error = "queued", None
    export.progress_at = utcnow()  # queued since (the sweep queues it again if no worker starts it)
    session.commit()
    return export


def run_key(session: Session, export_id: int) -> str:
    """The job id of a version's next run: its id and the runs it has had, so a version queued again
    after a dead run gets a new job, and one still waiting is not queued twice. Reads only."""
    attempts = session.scalar(select(DatasetExport.attempts).where(DatasetExport.id == export_id))
    session.rollback()
    return f"export-{export_id}-{attempts or 0}"


def overdue_queued(session: Session, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Versions queued over ``QUEUED_OVERDUE_SECONDS`` ago that no worker started (Redis was down when
    they were queued, or lost its queue): the sweep queues them again. Reads only."""
    since = (now or utcnow()) - timedelta(seconds=QUEUED_OVERDUE_SECONDS)
    ids = list(session.scalars(
        select(DatasetExport.id).where(DatasetExport.status == "queued",
                                       func.coalesce(DatasetExport.progress_at, DatasetExport.created_at) < since)
        .order_by(DatasetExport.id).limit(limit)))
    session.rollback()
    return ids


@dataclass
class Recovered:
    again: list[int]  # queued again: the caller enqueues them
    failed: list[int]  # failed after MAX_RUNS runs that died


def recover_stalled(session: Session, root: str | os.PathLike, now: datetime | None = None) -> Recovered:
    """Versions whose run stopped reporting for ``STALLED_AFTER_SECONDS`` (its worker was killed, ran out
    of memory or lost its machine): queued again for a fresh run, or — once ``MAX_RUNS`` runs have died —
    failed with a plain reason and their temporary folder removed. A version that reported meanwhile is
    left alone (conditional UPDATE on the progress read), and a run superseded this way can no longer
    finish it (``_start``'s attempt number). Commits."""
    now = now or utcnow()
    root = Path(root)
    seen = session.execute(select(DatasetExport.id, DatasetExport.attempts, DatasetExport.progress_at,
                                  DatasetExport.started_at, DatasetExport.project_id)
                           .where(DatasetExport.status == "running")).all()
    session.rollback()
    recovered = Recovered([], [])
    for export_id, attempts, progress_at, started_at, project_id in seen:
        last = progress_at or started_at
        if last is not None and (now - last).total_seconds() <= STALLED_AFTER_SECONDS:
            continue
        give_up = attempts >= MAX_RUNS
        values = ({"status": "failed", "finished_at": now,
                   "error": f"the build stopped {attempts} times without finishing (its worker was killed or ran "
                            "out of memory); nothing of it was published — run it again once the cause is fixed"}
                  if give_up else {"status": "queued", "error": None, "progress_at": now})
        begin_write(session)
        same = DatasetExport.progress_at.is_(None) if progress_at is None else DatasetExport.progress_at == progress_at
        taken = session.execute(update(DatasetExport).where(
            DatasetExport.id == export_id, DatasetExport.status == "running", DatasetExport.attempts == attempts,
            same).values(**values)).rowcount
        session.commit()
        if not taken:
            continue
        if give_up:
            _remove_unfinished(root, project_id, export_id)
            recovered.failed.append(export_id)
            log.warning("export %s failed after %s runs that died", export_id, attempts)
        else:
            recovered.again.append(export_id)
            log.warning("export %s stopped reporting; queued for run %s", export_id, attempts + 1)
    return recovered


def _remove_unfinished(root: Path, project_id: int, export_id: int) -> None:
    """What runs of a version that never finished left: temporary folders, and a folder renamed into
    place but never marked done (not a version)."""
    for stale in (root / TMP_FOLDER).glob(f"{export_id}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(root / str(project_id) / str(export_id), ignore_errors=True)


def get_export(session: Session, project: Project, export_id: int) -> DatasetExport:
    export = session.get(DatasetExport, export_id)
    if export is None or export.project_id != project.id:
        raise NotFound(f"no export {export_id} in this project")
    return export


def list_exports(session: Session, project_id: int, limit: int = 50, offset: int = 0) -> list[DatasetExport]:
    return list(session.scalars(
        select(DatasetExport).where(DatasetExport.project_id == project_id)
        .order_by(DatasetExport.id.desc()).limit(limit).offset(offset)
    ))


def count_exports(session: Session, project_id: int) -> int:
    return session.scalar(select(func.count(DatasetExport.id)).where(DatasetExport.project_id == project_id))


def exports_page(session: Session, project_id: int, before_id: int | None = None, limit: int = 50) -> list[DatasetExport]:
    """A project's versions, newest first, older than ``before_id`` (the API's cursor pages)."""
    stmt = (select(DatasetExport).where(DatasetExport.project_id == project_id)
            .order_by(DatasetExport.id.desc()).limit(limit))
    if before_id is not None:
        stmt = stmt.where(DatasetExport.id < before_id)
    return list(session.scalars(stmt))


def export_and_project(session: Session, export_id: int) -> tuple[DatasetExport, Project]:
    """A version and its project, or NotFound."""
    export = session.get(DatasetExport, export_id)
    if export is None:
        raise NotFound(f"no export {export_id}")
    return export, session.get(Project, export.project_id)


# What a version's files are served as.
MEDIA_TYPES = {".jsonl": "application/x-ndjson", ".csv": "text/csv", ".parquet": "application/vnd.apache.parquet",
               ".json": "application/json", ".md": "text/markdown"}


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")


def download_name(project: Project, export: DatasetExport, name: str) -> str:
    """What a downloaded file is called: the project, the version's number as its pages show it (v1, v2…
    in each project), the format and the file, e.g. ``triage-v3-trl-preference-train.jsonl``."""
    return f"{project.slug}-v{export.version}-{export.format}-{name}"


def version_files(root: str | os.PathLike, export: DatasetExport) -> list[dict]:
    """A finished version's files: the files its manifest lists (name, rows, bytes, sha256, role:
    data, meta, items or annotators), then the manifest and the dataset card with their sizes.
    Nothing until it is finished; an empty version has only the manifest and the card."""
    if export.status not in FINISHED or export.path is None:
        return []
    files = [{"name": f["name"], "rows": f["rows"], "bytes": f["bytes"], "sha256": f["sha256"],
              "role": f.get("role", "data")} for f in (export.manifest or {}).get("files", [])]
    for name in DOWNLOADABLE:
        path = Path(root) / export.path / name
        if path.is_file():
            files.append({"name": name, "rows": None, "bytes": path.stat().st_size, "sha256": None, "role": None})
    return files


def is_stalled(export: DatasetExport, now=None) -> bool:
    """A running export whose worker stopped reporting (killed, machine lost): it can be run again."""
    if export.status not in ("running", "queued"):
        return False
    last = export.progress_at or export.started_at or export.created_at
    return ((now or utcnow()) - last).total_seconds() > STALLED_AFTER_SECONDS


def data_files(export: DatasetExport) -> list[str]:
    """The version's data files (train, then validation and test when they have rows); none when empty."""
    return [f["name"] for f in (export.manifest or {}).get("files", []) if f.get("role", "data") == "data"]


def manifest_files(export: DatasetExport) -> list[str]:
    """Every file the manifest lists: data, meta, items and annotators files."""
    return [f["name"] for f in (export.manifest or {}).get("files", [])]


def file_path(root: str | os.PathLike, export: DatasetExport, name: str) -> Path:
    """A finished version's file, by its name in the manifest (nothing else is reachable)."""
    if export.status not in FINISHED or export.path is None:
        raise NotFound("this export is not finished")
    if name not in (*manifest_files(export), *DOWNLOADABLE):
        raise NotFound(f"no file {name!r} in this export")
    return Path(root) / export.path / name


@dataclass
class _Progress:
    """Saves how far a running export got, in its own short transaction (the caller decides how often)."""

    session_factory: Callable[[], Session]
    export_id: int
    attempt: int
    every: int

    def expect(self, total: int) -> None:
        self._save(rows_expected=total)

    def __call__(self, read: int) -> None:
        self._save(rows_read=read)

    def _save(self, **values) -> None:
        with self.session_factory() as session:
            begin_write(session)
            session.execute(update(DatasetExport)
                            .where(DatasetExport.id == self.export_id, DatasetExport.attempts == self.attempt)
                            .values(progress_at=utcnow(), **values))
            session.commit()


def _start(session_factory, export_id: int) -> tuple[Project, ExportOptions, int, int]:
    """Mark the version running and return (project, options, attempt number, version number).

    Every run is a numbered attempt: a retry while an earlier run is still alive (a slow worker
    taken for dead) supersedes it, and the earlier run's progress, failure or completion no longer
    touches the version.
    """
    with session_factory() as session:
        begin_write(session)
        export = session.get(DatasetExport, export_id)
        if export is None:
            raise NotFound(f"no export with id {export_id}")
        if export.status in FINISHED:
            raise ValidationError({"export": f"export {export_id} is {export.status}; a finished version never changes"})
        export.status, export.error, export.started_at = "running", None, utcnow()
        export.progress_at, export.rows_read, export.attempts = export.started_at, 0, export.attempts + 1
        project = session.get(Project, export.project_id)
        session.commit()
        session.expunge(project)
        return project, options_for(export.filters), export.attempts, export.version


def run_export(session_factory, export_id: int, root: str | os.PathLike, secret: str,
               progress_rows: int = 20000, fetch_rows: int = FETCH_ROWS, processes: int = 1) -> DatasetExport:
    """Build one version: stream, write to a temporary folder, rename into place, then mark it done
    (or empty: no row, only the manifest saying why and the card). Works in sessions of its own from
    ``session_factory`` and commits each step."""
    project, options, attempt, version = _start(session_factory, export_id)
    root = Path(root)
    final = root / str(project.id) / str(export_id)
    partial_root = root / TMP_FOLDER
    partial_root.mkdir(parents=True, exist_ok=True)
    for stale in partial_root.glob(f"{export_id}-*"):  # what earlier (killed or superseded) attempts left
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():  # renamed into place but never marked done: not a version, rebuild it
        shutil.rmtree(final)
    work = partial_root / f"{export_id}-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    progress = _Progress(session_factory, export_id, attempt, max(1, progress_rows))
    started = time.perf_counter()
    try:
        with session_factory() as session:
            # The filter reads the figures: they hold every answer. Without it, the card's figures are
            # brought up to date where that is cheap (a version made right after a burst of work would
            # otherwise show none), and said to be behind elsewhere.
            if options.min_trainer_quality is not None or _answers_held(session, project.id) <= FIGURES_INLINE_MAX:
                _refresh_figures(session, project.id)
        with session_factory() as session:
            # One read transaction from here on (SQLite: one WAL snapshot); the snapshot's ids and
            # instant bound what helper processes read too.
            snapshot = Snapshot.take(session, options.as_of)
            fmt, plan = plan_for(session, project, options, snapshot.as_of or snapshot.instant)
            named = named_conditions(session, project.id, options, fmt.keeps_rejected, snapshot)
            result = write_all(session, session_factory, project.id, fmt, plan, snapshot, work, secret, progress,
                               fetch_rows, processes, [c for _n, c in named])
            provenance = {
                "snapshot": snapshot.as_dict(), "groundwork_version": groundwork_version(),
                "database": session.get_bind().dialect.name,
                "annotation_dates": annotation_dates(result.submitted),
            }
            reasons = [] if result.data_files() else empty_reasons(session, named, options, fmt, result, snapshot)
            if not reasons:
                result.skipped.update(filtered_out(session, project.id, named, options))
            stats = session.scalar(select(ProjectStats).where(ProjectStats.project_id == project.id))
            behind = _answers_after(session, project.id, stats.computed_at, snapshot) if stats else 0
        if reasons:  # no row: no file at all, so nothing in the folder fails to load
            for path in work.iterdir():
                path.unlink()
            result.files.clear()
        seconds = time.perf_counter() - started
        manifest = _manifest(project, options, fmt, plan, result, stats, export_id, seconds, version, behind)
        manifest.update(provenance)
        if reasons:
            manifest["empty_reasons"] = reasons
        with session_factory() as session:
            export = session.get(DatasetExport, export_id)
            manifest["created_at"] = export.created_at.isoformat()
            manifest["created_by"] = export.created_by
        (work / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        (work / "README.md").write_text(dataset_card(project, fmt, manifest, plan.questions, plan))
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(work, final)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        _fail(session_factory, export_id, attempt, exc)
        raise
    with session_factory() as session:
        begin_write(session)
        export = session.get(DatasetExport, export_id)
        if export.attempts != attempt:
            raise Conflict(f"export {export_id} was started again meanwhile; that newer run finishes it")
        data = result.data_files()
        export.status, export.finished_at = ("done" if data else "empty"), utcnow()
        export.rows_read, export.progress_at = result.read, export.finished_at
        export.row_count = sum(f.rows for f in data)
        export.bytes = sum(f.bytes for f in data)
        export.sha256 = data[0].sha256 if data else None
        export.path, export.manifest = str(final.relative_to(root)), manifest
        webhooks.emit(session, project.id, "export.completed", {
            "export_id": export.id, "format": export.format, "status": export.status, "rows": export.row_count,
            "bytes": export.bytes, "sha256": export.sha256, "files": [f.name for f in result.infos]})
        session.commit()
        session.refresh(export)
        session.expunge(export)
        return export


def groundwork_version() -> str:
    """The installed package's version, else the one pyproject.toml declares (a source checkout)."""
    try:
        return importlib.metadata.version("groundwork")
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def annotation_dates(submitted: list) -> dict:
    """When the annotations that passed the filters were submitted: first and last, as instants
    (``submitted``: the [first, last] the build read, empty when none passed)."""
    first, last = submitted or (None, None)
    return {"first": _instant_or_none(first), "last": _instant_or_none(last)}


def _instant_or_none(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # an aggregate over SQLite's text column comes back untyped
        value = datetime.fromisoformat(value)
    return instant_text(value.replace(tzinfo=UTC) if value.tzinfo is None else value)


# What each SQL filter left out, for an empty version's reasons ("{n} of them {what}.").
FILTER_REASONS = {
    "excluded": "were excluded by an admin (a trainer's work taken out of the project)",
    "rejected": "were rejected by a reviewer ({fmt} leaves rejected work out)",
    "reviewed_only": "were not approved or corrected by a reviewer (reviewed_only)",
    "as_of": "were submitted after {as_of} (as_of)",
    "date_from": "were submitted before {date_from} (date_from)",
    "date_to": "were submitted after {date_to} (date_to)",
    "exclude_gold": "were on gold items (gold items are left out unless asked for)",
    "repeated_items": "were on items repeating an older item's prompt and responses (a training file takes "
                      "each question once: the oldest item's annotations)",
    "exclude_flagged_trainers": "were by trainers flagged, paused or removed in this project (exclude_flagged_trainers)",
    "min_trainer_quality": "were by trainers whose quality is unknown or below {min_trainer_quality} "
                           "(min_trainer_quality)",
}


# The SQL filters a version's manifest counts in ``skipped`` (an empty version says it in its reasons):
# the ones that leave out annotations the person asking may not know are there. Each is counted only
# when asked for, when the project has repeated items, or (an admin's exclusion) when the project ever
# had work excluded, and costs one count.
COUNTED_FILTERS = {
    "excluded": "annotation by a trainer whose work an admin excluded from the project",
    "repeated_items": "annotation on an item repeating an older item's prompt and responses (the oldest "
                      "item's annotations are kept)",
    "exclude_flagged_trainers": "annotation by a trainer flagged, paused or removed in this project "
                                "(exclude_flagged_trainers)",
    "min_trainer_quality": "annotation by a trainer whose quality is unknown or below {min_trainer_quality} "
                           "(min_trainer_quality)",
}


def filtered_out(session: Session, project_id: int, named: list, options: ExportOptions) -> dict[str, int]:
    """What each of ``COUNTED_FILTERS`` left out of a version, as ``skipped`` entries (none at 0). They
    are counted in turn: each against the annotations every other filter passes and the counted ones
    before it kept, so one left out by two of them is counted once, by the first. An admin's exclusion
    is counted only in a project where one was ever made (its audit event, read by its index): a count
    is a walk of the project's annotations."""
    ever_excluded = session.scalar(select(AuditEvent.id).where(
        AuditEvent.target_type == "project", AuditEvent.target_id == str(project_id),
        AuditEvent.action == "annotations.exclude").limit(1)) is not None
    counted = [(name, c) for name, c in named
               if name in COUNTED_FILTERS and (name != "excluded" or ever_excluded)]
    counted_names = {name for name, _c in counted}
    kept = [c for name, c in named if name not in counted_names]  # an uncounted filter still applies
    found = {}
    for name, condition in counted:
        removed = count_annotations(session, [*kept, not_(condition)])
        if removed:
            found[COUNTED_FILTERS[name].format(**options.__dict__)] = removed
        kept.append(condition)
    return found


def empty_reasons(session: Session, named: list, options: ExportOptions, fmt: Format, result: PartResult,
                  snapshot: Snapshot) -> list[str]:
    """Why a version has no row, one plain sentence per cause with its figure: what the project had,
    what each active filter left out on its own (a count each; only run for an empty version), and
    what the format itself dropped."""
    base = [c for name, c in named if name == "base"]
    total = count_annotations(session, base)
    if not total:
        return [f"The project had no annotations when this version was built ({instant_text(snapshot.instant)})."]
    reasons = [f"The project had {total} annotation{'s' if total != 1 else ''} when this version was built "
               f"({instant_text(snapshot.instant)})."]
    values = {k: (instant_text(v) if isinstance(v, datetime) else v) for k, v in options.__dict__.items()}
    for name, condition in named:
        if name == "base":
            continue
        removed = total - count_annotations(session, [*base, condition])
        if removed:
            reasons.append(f"{removed} of them " + FILTER_REASONS[name].format(fmt=fmt.name, **values) + ".")
    passed = count_annotations(session, [c for _n, c in named])
    if not passed:
        reasons.append("No annotation passed every filter.")
        return reasons
    dropped = sorted(result.skipped.items())  # every process's drops
    if dropped:
        reasons.append(f"{passed} annotation{'s' if passed != 1 else ''} passed every filter; {fmt.name} made no row "
                       "from them: " + ", ".join(f"{n} × {why}" for why, n in dropped) + ".")
    else:
        reasons.append(f"{passed} annotation{'s' if passed != 1 else ''} passed every filter, but none gave "
                       f"{fmt.name} a row (it needs the answers its fields come from).")
    return reasons


def _fail(session_factory, export_id: int, attempt: int, exc: BaseException) -> None:
    log.error("export %s failed", export_id, exc_info=exc)
    message = plain_reason(exc)
    try:
        with session_factory() as session:
            begin_write(session)
            export = session.get(DatasetExport, export_id)
            if export is not None and export.status not in FINISHED and export.attempts == attempt:
                export.status, export.error, export.finished_at = "failed", message[:2000], utcnow()
                session.commit()
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


def disk_limits(config: Mapping[str, Any]) -> dict:
    """``create_export``'s room check from the app's settings (EXPORT_DIR, EXPORT_MIN_FREE_MB)."""
    return {"root": config["EXPORT_DIR"], "min_free_bytes": int(config.get("EXPORT_MIN_FREE_MB", 0)) * 1024 * 1024}


def _check_room(session: Session, project: Project, root: Path, min_free_bytes: int) -> None:
    """InsufficientStorage when the disk holding ``root`` has less free space than the project's largest
    version (all its files) plus ``min_free_bytes``. Rolls back before raising."""
    largest = 0
    for manifest in session.scalars(select(DatasetExport.manifest).where(
            DatasetExport.project_id == project.id, DatasetExport.status == "done")
            .order_by(DatasetExport.bytes.desc()).limit(3)):
        largest = max(largest, sum(int(f.get("bytes") or 0) for f in (manifest or {}).get("files", [])))
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < largest + min_free_bytes:
        session.rollback()
        raise InsufficientStorage(
            f"not enough disk space for another version: {_size(free)} free, and this project's largest version "
            f"took {_size(largest)} (the server keeps {_size(min_free_bytes)} free); remove old versions' folders "
            "or give the server more room")


def _size(n: int) -> str:
    """Bytes as people read them: ``512 bytes``, ``3.2 MB``."""
    if n < 1024:
        return f"{n:,} bytes"
    for unit in ("KB", "MB"):
        n /= 1024
        if n < 1024:
            return f"{n:,.1f} {unit}"
    return f"{n / 1024:,.1f} GB"


# Up to this many answers a project's figures are recomputed by a version that finds them behind (about
# half a second at most, where the statistics take ~4 s a million answers); past it only a version
# filtered by trainer quality waits for them.
FIGURES_INLINE_MAX = 100_000


def _answers_held(session: Session, project_id: int) -> int:
    """Answers the project holds, from its progress counters (a few rows)."""
    return sum(counted["done"] for counted in read_progress(session, project_id).values())


def _refresh_figures(session: Session, project_id: int) -> None:
    """Recompute the project's quality figures when an answer is newer than them (a version filtered by
    trainer quality must judge every trainer who answered, on all they answered). Commits."""
    from ..stats import answers_since, compute_project_stats

    project = session.get(Project, project_id)
    computed_at = session.scalar(select(ProjectStats.computed_at).where(ProjectStats.project_id == project_id))
    if answers_since(session, project, computed_at, limit=1):
        compute_project_stats(session, project)
    session.rollback()


def _answers_after(session: Session, project_id: int, computed_at: datetime, snapshot: Snapshot) -> int:
    """Answers the snapshot sees that the project's figures do not hold (submitted after them)."""
    return session.scalar(select(func.count()).select_from(Annotation).where(
        Annotation.project_id == project_id, Annotation.submitted_at > computed_at,
        Annotation.id <= snapshot.max_annotation_id, Annotation.submitted_at <= (snapshot.as_of or snapshot.instant)))


def _manifest(project, options: ExportOptions, fmt: Format, plan: Plan, result: PartResult, stats, export_id: int,
              seconds: float, version: int | None = None, behind: int = 0) -> dict:
    data = result.data_files()
    rows = {info.name.split(".")[0]: info.rows for info in data}
    agreement = {}
    if result.agreements:
        agreement["mean_item_agreement"] = sum(result.agreements) / len(result.agreements)
    if stats is not None:
        agreement["project"] = {
            "computed_at": stats.computed_at.isoformat(), "answers_after": behind,
            "questions": [{k: v for k, v in q.items() if k not in ("title",)}
                          for q in (stats.figures or {}).get("questions", [])],
        }
    counts = {"rows": sum(rows.values())}
    for split in ("train", "validation", "test"):
        counts[f"{split}_rows"] = rows.get(split, 0)
        counts[f"{split}_items"] = result.items[split]
    counts.update(items=sum(result.items.values()), annotations_read=result.read,
                  skipped=dict(sorted(result.skipped.items())))
    return {
        "schema_version": SCHEMA_VERSION,
        "export_id": export_id,
        "version": version,
        "project": {"slug": project.slug, "name": project.name},
        "format": fmt.name,
        "conversational": plan.conversational if fmt.plain_or_chat else None,
        "filters": options.as_dict(),
        "files": [f.as_dict() for f in result.infos],
        "splits": {split: {"file": f"{split}.{fmt.extension}", "meta_file": f"{split}.meta.jsonl", "rows": n,
                           "items": result.items[split]} for split, n in rows.items()},
        "counts": counts,
        "annotators": len(result.trainers),
        "source_models": dict(sorted(result.models.items())),
        "agreement": agreement,
        "warnings": warnings(fmt, plan, rows, result.items, data) if data else [],
        "sha256": data[0].sha256 if data else None,
        "build_seconds": round(seconds, 3),
    }


SPLIT_SHARE_SLACK = 0.05  # a split's share of the items may miss the one asked for by this much (or half of it) unflagged


def _share(fraction: float) -> str:
    """A fraction as a percentage with the digits it needs: 10%, 2.5%, 0.01%."""
    for digits in range(5):
        text = f"{fraction * 100:.{digits}f}"
        if float(text) == round(fraction * 100, 4):
            return f"{text}%"
    return f"{fraction:.4%}"


def warnings(fmt: Format, plan: Plan, rows: dict[str, int], items: dict[str, int], data=()) -> list[str]:
    """What a team should know before training on the version (``data``: its data files' facts): a split
    asked for that got no row (it has no file) or whose share of the items is far from the one asked for (splits go by a hash of
    the prompt, so a small project lands where its few prompts fall), a training file under the
    format's minimum number of examples."""
    notes = []
    fractions = {"validation": plan.options.validation_fraction, "test": plan.options.test_fraction}
    total = sum(items.values())
    for split in splits_of(plan):
        if split not in fractions:
            if split not in rows:  # every item fell in the other splits: ds["train"] does not exist
                notes.append(f"The {split} split got no rows: every exported item fell in "
                             f"{' or '.join(rows)}, so it has no file.")
            continue
        asked = fractions[split]
        if split not in rows:
            notes.append(f"The {split} split got no rows ({_share(asked)} of items asked for), so it has no file.")
        elif total and abs(items[split] / total - asked) > max(SPLIT_SHARE_SLACK, asked / 2):
            notes.append(f"The {split} split holds {items[split]:,} of {total:,} items ({_share(round(items[split] / total, 3))}; "
                         f"{_share(asked)} asked for): splits go by a hash of each prompt, so a project with few "
                         f"prompts lands far from the share asked for.")
    if plan.options.pairs == "per_annotation" and "ranking_pairs" in fmt.modes and not plan.options.with_agreement:
        notes.append("pairs=per_annotation without with_agreement: each direction annotators gave is one row, "
                     "whatever the number who gave it, and the rows do not say that number (the meta file does): "
                     "a 3-to-1 split reads as 1-to-1. Add with_agreement, or use consensus.")
    for info in data:
        if info.formula_cells:
            notes.append(f"{info.formula_cells:,} text cell{'s' if info.formula_cells != 1 else ''} of {info.name} "
                         "start with =, +, -, @, a tab or a carriage return: a spreadsheet opening the file would run "
                         "them as formulas. The file keeps every text exactly as written; read it with pandas or "
                         "datasets, or import its columns as text.")
    minimum = fmt.min_rows
    train = rows.get("train", 0)
    if minimum and train < minimum:
        notes.append(f"{fmt.name}: train.{fmt.extension} has {train} rows; {fmt.title} needs at least "
                     f"{minimum} examples.")
    return notes
