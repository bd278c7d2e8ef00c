"""Importing items from JSONL or CSV (DESIGN §3).

All-or-nothing: a first pass reads the whole file and reports every bad line with its number and
field; only a clean file is written, in a second pass, inside one transaction. Both passes stream
the file, so memory stays flat however large it is. An ``external_id`` already in the project is
skipped (or updated with ``update=True``), never duplicated.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app.models import ImportJob, Item, Project, utcnow

from .assignment import project_questions
from .errors import ValidationError
from .projects import content_id
from .questions import response_count_range, validate_answers

FORMATS = ("jsonl", "csv")
ROLES = ("system", "user", "assistant")
FIELDS = {"external_id", "prompt", "context", "responses", "metadata", "gold", "priority"}
MAX_REPORTED_ERRORS = 200
BATCH = 2000
PROGRESS_EVERY_BYTES = 1 << 20
EXTERNAL_ID_MAX = 200


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}" if self.field else f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0


class LineProblems(Exception):
    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


def detect_format(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValidationError({"file": f"cannot tell the format of {filename!r}: use a .jsonl or .csv file"})


# --- reading ---------------------------------------------------------------------------------------


def _read_jsonl(stream: IO[bytes]) -> Iterator[tuple[int, int, Any]]:
    """(line number, bytes read so far, parsed object or LineProblems) for every non-blank line."""
    done = 0
    for number, raw in enumerate(stream, start=1):
        done += len(raw)
        if not raw.strip():
            continue
        try:
            yield number, done, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield number, done, LineProblems([("", f"not valid JSON ({exc.msg})")])


def _json_cell(row: dict, name: str, problems: list) -> Any:
    raw = row.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        problems.append((name, "is not valid JSON"))
        return None


def _read_csv(stream: IO[bytes]) -> Iterator[tuple[int, int, Any]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    header = reader.fieldnames or []
    response_columns = sorted(
        (c for c in header if c.startswith("response_") and c[len("response_") :].isdigit()),
        key=lambda c: int(c[len("response_") :]),
    )
    unknown = [c for c in header if c not in FIELDS and c not in response_columns]
    if unknown:
        yield 1, 0, LineProblems([(c, "unknown column") for c in unknown])
        text.detach()
        return
    try:
        yield from _csv_rows(reader, response_columns, stream)
    finally:
        text.detach()  # leave the caller's stream open (the second pass reads it again)


def _csv_rows(reader, response_columns, stream) -> Iterator[tuple[int, int, Any]]:
    for row in reader:
        number = reader.line_num
        if None in row:
            yield number, stream.tell() if stream.seekable() else 0, LineProblems([("", "more cells than columns")])
            continue
        problems: list[tuple[str, str]] = []
        record: dict[str, Any] = {}
        for name in ("external_id", "prompt"):
            if row.get(name):
                record[name] = row[name]
        for name in ("context", "metadata", "gold"):
            value = _json_cell(row, name, problems)
            if value is not None:
                record[name] = value
        if row.get("priority"):
            try:
                record["priority"] = int(row["priority"])
            except ValueError:
                problems.append(("priority", "must be a whole number"))
        responses = [row[c] for c in response_columns if row.get(c)]
        if responses:
            record["responses"] = responses
        position = stream.tell() if stream.seekable() else 0
        yield number, position, LineProblems(problems) if problems else record


def read_records(stream: IO[bytes], fmt: str) -> Iterator[tuple[int, int, Any]]:
    if fmt == "jsonl":
        return _read_jsonl(stream)
    if fmt == "csv":
        return _read_csv(stream)
    raise ValidationError({"format": f"must be one of {', '.join(FORMATS)}"})


# --- checking one record ---------------------------------------------------------------------------


class ItemRules:
    """What an item of one project must look like: built once per import from the questions."""

    def __init__(self, questions):
        self.questions = questions
        self.min_responses, self.max_responses = response_count_range(questions)

    def _context(self, record: dict, problems: list) -> list[dict] | None:
        has_prompt, has_context = "prompt" in record, "context" in record
        if has_prompt and has_context:
            problems.append(("prompt", "give either prompt or context, not both"))
            return None
        if has_prompt:
            prompt = record["prompt"]
            if not isinstance(prompt, str) or not prompt.strip():
                problems.append(("prompt", "must be a non-empty string"))
                return None
            return [{"role": "user", "content": prompt}]
        if not has_context:
            problems.append(("prompt", "prompt or context is required"))
            return None
        context = record["context"]
        if not isinstance(context, list) or not context:
            problems.append(("context", "must be a non-empty list of {role, content} messages"))
            return None
        clean = []
        for i, turn in enumerate(context, start=1):
            if not isinstance(turn, dict) or set(turn) - {"role", "content"}:
                problems.append((f"context[{i}]", "must be an object with role and content only"))
                return None
            if turn.get("role") not in ROLES:
                problems.append((f"context[{i}].role", f"must be one of {', '.join(ROLES)}"))
                return None
            content = turn.get("content")
            if not isinstance(content, str) or not content.strip():
                problems.append((f"context[{i}].content", "must be a non-empty string"))
                return None
            clean.append({"role": turn["role"], "content": content})
        if clean[-1]["role"] != "user":
            problems.append(("context", "must end with a user turn"))
            return None
        return clean

    def _responses(self, record: dict, problems: list) -> list[dict] | None:
        responses = record.get("responses", [])
        if not isinstance(responses, list):
            problems.append(("responses", "must be a list of strings or of {id, text, model} objects"))
            return None
        clean = []
        for i, r in enumerate(responses, start=1):
            if isinstance(r, str):
                if not r.strip():
                    problems.append((f"responses[{i}]", "must not be empty"))
                    return None
                clean.append({"id": f"r{i}", "text": r})
            elif isinstance(r, dict):
                if set(r) - {"id", "text", "model"}:
                    problems.append((f"responses[{i}]", f"unknown keys {', '.join(sorted(set(r) - {'id', 'text', 'model'}))}"))
                    return None
                rid, text = r.get("id", f"r{i}"), r.get("text")
                if not isinstance(rid, str) or not rid.strip() or len(rid) > 64:
                    problems.append((f"responses[{i}].id", "must be a non-empty string of at most 64 characters"))
                    return None
                if not isinstance(text, str) or not text.strip():
                    problems.append((f"responses[{i}].text", "must be a non-empty string"))
                    return None
                response = {"id": rid, "text": text}
                if r.get("model") is not None:
                    if not isinstance(r["model"], str):
                        problems.append((f"responses[{i}].model", "must be a string"))
                        return None
                    response["model"] = r["model"]
                clean.append(response)
            else:
                problems.append((f"responses[{i}]", "must be a string or an {id, text, model} object"))
                return None
        ids = [r["id"] for r in clean]
        if len(set(ids)) != len(ids):
            problems.append(("responses", "response ids must be unique"))
            return None
        lo, hi = self.min_responses, self.max_responses
        if not lo <= len(clean) <= hi:
            want = f"exactly {lo}" if lo == hi else f"{lo} to {hi}"
            problems.append(("responses", f"this project needs {want} responses, got {len(clean)}"))
            return None
        return clean

    def check(self, record: Any) -> dict:
        """A clean row for the items table, or LineProblems naming every bad field."""
        if not isinstance(record, dict):
            raise LineProblems([("", "each line must be a JSON object")])
        problems: list[tuple[str, str]] = [(k, "unknown field") for k in sorted(set(record) - FIELDS)]
        context = self._context(record, problems)
        responses = self._responses(record, problems)
        external_id = record.get("external_id")
        if external_id is not None:
            if isinstance(external_id, int) and not isinstance(external_id, bool):
                external_id = str(external_id)
            if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > EXTERNAL_ID_MAX:
                problems.append(("external_id", f"must be a non-empty string of at most {EXTERNAL_ID_MAX} characters"))
                external_id = None
        metadata = record.get("metadata", {})
        if not isinstance(metadata, dict):
            problems.append(("metadata", "must be an object"))
        priority = record.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            problems.append(("priority", "must be a whole number"))
        gold = record.get("gold")
        clean_gold = None
        if gold is not None:
            if not isinstance(gold, dict) or not gold:
                problems.append(("gold", "must be an object of answers keyed by question key"))
            elif responses is not None:
                try:
                    clean_gold = validate_answers(self.questions, gold, [r["id"] for r in responses], partial=True)
                except ValidationError as exc:
                    problems.extend((f"gold.{k}" if k else "gold", v) for k, v in exc.errors.items())
        if problems:
            raise LineProblems(problems)
        return {
            "external_id": external_id or content_id(context, responses),
            "context": context,
            "responses": responses,
            "meta": metadata,
            "is_gold": clean_gold is not None,
            "gold_answers": clean_gold,
            "priority": priority,
        }


# --- the two passes --------------------------------------------------------------------------------

ProgressFn = Callable[[str, int, int], None]  # (phase, bytes done, lines so far)


def _open(source: str | os.PathLike | IO[bytes]) -> tuple[IO[bytes], bool]:
    if hasattr(source, "read"):
        return source, False
    return open(source, "rb"), True


def validate_file(session: Session, project: Project, source, fmt: str, progress: ProgressFn | None = None,
                  max_errors: int = MAX_REPORTED_ERRORS) -> ImportReport:
    """First pass: check every line, report up to ``max_errors`` problems and count them all."""
    rules = ItemRules(project_questions(session, project.id))
    report = ImportReport()
    seen: dict[str, int] = {}
    stream, close = _open(source)
    last_progress = 0

    def add(error: LineError):
        report.error_count += 1
        if len(report.errors) < max_errors:
            report.errors.append(error)

    try:
        for number, position, record in read_records(stream, fmt):
            report.lines += 1
            try:
                if isinstance(record, LineProblems):
                    raise record
                row = rules.check(record)
                first = seen.setdefault(row["external_id"], number)
                if first != number:
                    raise LineProblems([("external_id", f"{row['external_id']!r} already appears on line {first}")])
            except LineProblems as problems:
                for field_name, message in problems.problems:
                    add(LineError(number, field_name, message))
            if progress and position - last_progress >= PROGRESS_EVERY_BYTES:
                last_progress = position
                progress("validating", position, report.lines)
    except UnicodeDecodeError:
        add(LineError(report.lines + 1, "", "the file is not UTF-8 text"))
    finally:
        if close:
            stream.close()
    if report.lines == 0 and not report.error_count:
        add(LineError(1, "", "the file holds no items"))
    return report


def write_items(session: Session, project: Project, source, fmt: str, update_existing: bool = False,
                progress: ProgressFn | None = None) -> ImportReport:
    """Second pass, for a file that validated: insert new items, skip or update known ones.

    Runs in the caller's transaction and does not commit.
    """
    rules = ItemRules(project_questions(session, project.id))
    existing = dict(session.execute(select(Item.external_id, Item.id).where(Item.project_id == project.id)).all())
    report = ImportReport()
    batch: list[dict] = []
    stream, close = _open(source)
    last_progress = 0
    now = utcnow()

    def flush():
        if batch:
            session.execute(insert(Item), batch)
            batch.clear()

    try:
        for _number, position, record in read_records(stream, fmt):
            report.lines += 1
            if isinstance(record, LineProblems):
                raise ValidationError("the file changed after it was checked")
            row = rules.check(record)
            item_id = existing.get(row["external_id"])
            if item_id is not None:
                if update_existing:
                    values = {k: v for k, v in row.items() if k != "external_id"}
                    session.execute(update(Item).where(Item.id == item_id).values(**values))
                    report.updated += 1
                else:
                    report.skipped += 1
                continue
            row.update(project_id=project.id, done_count=0, active_count=0, is_open=True, created_at=now)
            batch.append(row)
            report.inserted += 1
            if len(batch) >= BATCH:
                flush()
            if progress and position - last_progress >= PROGRESS_EVERY_BYTES:
                last_progress = position
                progress("writing", position, report.lines)
        flush()
    finally:
        if close:
            stream.close()
    return report


def import_file(session: Session, project: Project, source, fmt: str, update_existing: bool = False,
                progress: ProgressFn | None = None) -> ImportReport:
    """Validate, then write and commit; on any bad line nothing is written and the report says why."""
    if hasattr(source, "seek"):
        start = source.tell()
    report = validate_file(session, project, source, fmt, progress)
    if not report.ok:
        session.rollback()
        return report
    if hasattr(source, "seek"):
        source.seek(start)
    session.commit()  # end the read transaction: the write one takes the lock up front
    from app.db import begin_write

    begin_write(session)
    try:
        written = write_items(session, project, source, fmt, update_existing, progress)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    written.lines = report.lines
    return written


# --- jobs ------------------------------------------------------------------------------------------


def run_import_job(session_factory, import_id: int) -> None:
    """Run one ImportJob: progress goes to its row through a session of its own."""
    from app.db import is_sqlite

    session = session_factory()
    job = session.get(ImportJob, import_id)
    if job is None:
        session.close()
        raise ValidationError({"import": f"no import {import_id}"})
    project = session.get(Project, job.project_id)
    job.status, job.started_at = "validating", utcnow()
    job.bytes_total = os.path.getsize(job.path) if os.path.exists(job.path) else 0
    session.commit()
    sqlite = is_sqlite(session)

    def progress(phase: str, done: int, lines: int) -> None:
        # SQLite has one writer: while the items are written, the progress row must wait.
        if phase == "writing" and sqlite:
            return
        with session_factory() as side:
            side.execute(
                update(ImportJob).where(ImportJob.id == import_id).values(status=phase, bytes_done=done, lines=lines)
            )
            side.commit()

    try:
        work = session_factory()
        report = validate_file(work, project, job.path, job.format, progress)
        if report.ok:
            session.execute(
                update(ImportJob).where(ImportJob.id == import_id).values(status="writing", bytes_done=0)
            )
            session.commit()
            work.rollback()
            from app.db import begin_write

            begin_write(work)
            written = write_items(work, project, job.path, job.format, job.update_existing, progress)
            work.commit()
            values = dict(status="done", inserted=written.inserted, updated=written.updated, skipped=written.skipped,
                          lines=report.lines, bytes_done=job.bytes_total, error_count=0, errors=[])
        else:
            values = dict(status="failed", lines=report.lines, error_count=report.error_count,
                          errors=[e.as_dict() for e in report.errors],
                          message=f"{report.error_count} problem(s) found; nothing was imported")
        work.close()
    except Exception as exc:
        values = dict(status="failed", message=f"import stopped: {type(exc).__name__}: {exc}")
        raise
    finally:
        session.rollback()
        session.execute(update(ImportJob).where(ImportJob.id == import_id).values(finished_at=utcnow(), **values))
        session.commit()
        session.close()
        if values.get("status") == "done" and os.path.exists(job.path):
            os.remove(job.path)
