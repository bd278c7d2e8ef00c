"""Dataset exports: every export is an immutable, versioned ``DatasetExport``.

``create_export`` checks the options against the project and queues a version; ``run_export``
(a background job) streams the annotations through the format's mapping into a temporary folder,
hashing while it writes, adds ``manifest.json`` and a dataset card, and renames the folder into
place only when everything is written. A version killed half-way is never marked done and leaves
nothing at its final path; running it again starts from scratch.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import Conflict, NotFound, ValidationError, plain_reason
from app.models import DatasetExport, Project, ProjectStats, utcnow

from .. import audit, webhooks
from ..assignment import project_questions
from .build import PartResult, write_all
from .card import dataset_card
from .formats import FORMATS, Format, Plan, QuestionSpec, desirable_question
from .options import ExportOptions, parse_options
from .sinks import FileInfo
from .source import FETCH_ROWS

log = logging.getLogger(__name__)
SCHEMA_VERSION = "groundwork-export/1"
TMP_FOLDER = ".partial"
STALLED_AFTER_SECONDS = 120
DOWNLOADABLE = ("manifest.json", "README.md")

__all__ = ["FORMATS", "ExportOptions", "available_formats", "create_export", "desirable_question", "options_for",
           "parse_options", "project_questions", "run_export"]


def options_for(raw: Mapping[str, Any]) -> ExportOptions:
    return parse_options(raw, FORMATS)


def plan_for(session: Session, project: Project, options: ExportOptions) -> tuple[Format, Plan]:
    """The format and its plan, or a ValidationError saying what the project lacks for it."""
    fmt = FORMATS[options.format]
    plan = Plan(options=options, questions=[QuestionSpec.of(q) for q in project_questions(session, project.id)])
    problem = fmt.needs(plan)
    if problem:
        kinds = ", ".join(sorted({q.type for q in plan.questions})) or "no questions"
        raise ValidationError({"format": f"{fmt.name} {problem}; this project has {kinds}"})
    plan.conversational = options.conversational
    return fmt, plan


def available_formats(session: Session, project: Project) -> dict[str, str | None]:
    """Each format, with why this project cannot produce it (None when it can)."""
    questions = [QuestionSpec.of(q) for q in project_questions(session, project.id)]
    label_question = desirable_question(questions)
    labels = tuple(label_question.options.get("labels", ())) if label_question else ()
    plan = Plan(options=ExportOptions(format="raw", desirable_labels=labels), questions=questions)
    return {name: fmt.needs(plan) for name, fmt in FORMATS.items()}


def create_export(session: Session, project: Project, raw_options: Mapping[str, Any], actor_id: int | None) -> DatasetExport:
    """Check the options against the project and add a queued version. Commits (the caller enqueues
    ``build_export`` with its id)."""
    options = options_for(raw_options)
    plan_for(session, project, options)
    export = DatasetExport(project_id=project.id, format=options.format, filters=options.as_dict(),
                           status="queued", created_by=actor_id)
    session.add(export)
    session.flush()
    audit.record(session, actor_id, "export.create", "project", project.id,
                 {"export_id": export.id, "format": options.format})
    session.commit()
    return export


def retry_export(session: Session, project: Project, export_id: int) -> DatasetExport:
    """Queue a failed or stalled version again (a worker was killed, the disk filled up, …); a finished
    one never changes, and one that is running is left to run. Commits (the caller enqueues it)."""
    export = get_export(session, project, export_id)
    if export.status == "done" or not (export.status == "failed" or is_stalled(export)):
        raise Conflict("That could not be done in the current state.")
    export.status, export.error = "queued", None
    export.progress_at = None
    session.commit()
    return export


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


def version_files(root: str | os.PathLike, export: DatasetExport) -> list[dict]:
    """A finished version's files: the data files as its manifest lists them (name, rows, bytes,
    sha256), then the manifest and the dataset card with their sizes. Empty until it is done."""
    if export.status != "done" or export.path is None:
        return []
    files = [{"name": f["name"], "rows": f["rows"], "bytes": f["bytes"], "sha256": f["sha256"]}
             for f in (export.manifest or {}).get("files", [])]
    for name in DOWNLOADABLE:
        path = Path(root) / export.path / name
        if path.is_file():
            files.append({"name": name, "rows": None, "bytes": path.stat().st_size, "sha256": None})
    return files


def is_stalled(export: DatasetExport, now=None) -> bool:
    """A running export whose worker stopped reporting (killed, machine lost): it can be run again."""
    if export.status not in ("running", "queued"):
        return False
    last = export.progress_at or export.started_at or export.created_at
    return ((now or utcnow()) - last).total_seconds() > STALLED_AFTER_SECONDS


def data_files(export: DatasetExport) -> list[str]:
    return [f["name"] for f in (export.manifest or {}).get("files", [])]


def file_path(root: str | os.PathLike, export: DatasetExport, name: str) -> Path:
    """A finished version's file, by its name in the manifest (nothing else is reachable)."""
    if export.status != "done" or export.path is None:
        raise NotFound("this export is not finished")
    if name not in (*data_files(export), *DOWNLOADABLE):
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


def _start(session_factory, export_id: int) -> tuple[Project, ExportOptions, int]:
    """Mark the version running and return (project, options, attempt number).

    Every run is a numbered attempt: a retry while an earlier run is still alive (a slow worker
    taken for dead) supersedes it, and the earlier run's progress, failure or completion no longer
    touches the version.
    """
    with session_factory() as session:
        begin_write(session)
        export = session.get(DatasetExport, export_id)
        if export is None:
            raise NotFound(f"no export with id {export_id}")
        if export.status == "done":
            raise ValidationError({"export": f"export {export_id} is done; a finished version never changes"})
        export.status, export.error, export.started_at = "running", None, utcnow()
        export.progress_at, export.rows_read, export.attempts = export.started_at, 0, export.attempts + 1
        project = session.get(Project, export.project_id)
        session.commit()
        session.expunge(project)
        return project, options_for(export.filters), export.attempts


def run_export(session_factory, export_id: int, root: str | os.PathLike, secret: str,
               progress_rows: int = 20000, fetch_rows: int = FETCH_ROWS, processes: int = 1) -> DatasetExport:
    """Build one version: stream, write to a temporary folder, rename into place, then mark it done.
    Works in sessions of its own from ``session_factory`` and commits each step."""
    project, options, attempt = _start(session_factory, export_id)
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
            fmt, plan = plan_for(session, project, options)
            result = write_all(session, session_factory, project.id, fmt, plan, work, secret, progress, fetch_rows,
                               processes)
            stats = session.scalar(select(ProjectStats).where(ProjectStats.project_id == project.id))
        seconds = time.perf_counter() - started
        manifest = _manifest(project, options, fmt, plan, result, stats, export_id, seconds)
        with session_factory() as session:
            export = session.get(DatasetExport, export_id)
            manifest["created_at"] = export.created_at.isoformat()
            manifest["created_by"] = export.created_by
        (work / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        (work / "README.md").write_text(dataset_card(project, fmt, manifest))
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
        files = [f["info"] for f in result.files.values()]
        export.status, export.finished_at = "done", utcnow()
        export.rows_read, export.progress_at = result.read, export.finished_at
        export.row_count = sum(f.rows for f in files)
        export.bytes = sum(f.bytes for f in files)
        export.sha256, export.path, export.manifest = files[0].sha256, str(final.relative_to(root)), manifest
        webhooks.emit(session, project.id, "export.completed", {
            "export_id": export.id, "format": export.format, "rows": export.row_count, "bytes": export.bytes,
            "sha256": export.sha256, "files": [f.name for f in files]})
        session.commit()
        session.refresh(export)
        session.expunge(export)
        return export


def _fail(session_factory, export_id: int, attempt: int, exc: BaseException) -> None:
    log.error("export %s failed", export_id, exc_info=exc)
    message = plain_reason(exc)
    try:
        with session_factory() as session:
            begin_write(session)
            export = session.get(DatasetExport, export_id)
            if export is not None and export.status != "done" and export.attempts == attempt:
                export.status, export.error, export.finished_at = "failed", message[:2000], utcnow()
                session.commit()
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


def _manifest(project, options: ExportOptions, fmt: Format, plan: Plan, result: PartResult, stats, export_id: int,
              seconds: float) -> dict:
    files: list[FileInfo] = [f["info"] for f in result.files.values()]
    agreement = {}
    if result.agreements:
        agreement["mean_item_agreement"] = sum(result.agreements) / len(result.agreements)
    if stats is not None:
        agreement["project"] = {
            "computed_at": stats.computed_at.isoformat(),
            "questions": [{k: v for k, v in q.items() if k not in ("title",)}
                          for q in (stats.figures or {}).get("questions", [])],
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "export_id": export_id,
        "project": {"slug": project.slug, "name": project.name},
        "format": fmt.name,
        "conversational": plan.conversational if fmt.plain_or_chat else None,
        "filters": options.as_dict(),
        "files": [f.as_dict() for f in files],
        "counts": {
            "rows": sum(f.rows for f in files),
            "train_rows": files[0].rows,
            "test_rows": files[1].rows if len(files) > 1 else 0,
            "items": result.items["train"] + result.items["test"],
            "train_items": result.items["train"],
            "test_items": result.items["test"],
            "annotations_read": result.read,
            "skipped": dict(sorted(result.skipped.items())),
        },
        "annotators": len(result.trainers),
        "agreement": agreement,
        "sha256": files[0].sha256,
        "build_seconds": round(seconds, 3),
    }
