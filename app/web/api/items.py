"""API: items — push a batch (a JSON array, or JSON lines) checked exactly like an upload, list a
project's items, and follow an import.

A batch is all or nothing, as in the importer: every line is checked first and any problem is a 422
naming each one by its line and field. A small batch is imported at once (201); a larger one is kept
as an upload and runs as an import job (202 and a status URL), like a file sent from the import page.
"""

from __future__ import annotations

from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pydantic
from flask import current_app, request, url_for
from pydantic import BaseModel, Field, RootModel

from app.bounds import INT32
from app.db import get_session
from app.models import ImportJob, Project
from app.services import access, importing
from app.services import projects as project_service
from tasks import enqueue
from tasks.jobs import import_items as import_job

from .base import (
    In,
    PageQuery,
    Query,
    UnsupportedMediaType,
    allow,
    before_validation,
    bp,
    decode_cursor,
    page,
    responses,
    spec,
    user,
)
from .projects import managed_project

# --- the batch, as the document describes it (the importer checks it: see ItemBatch) ---------------


class TurnIn(In):
    role: str = Field(description="system (first only), user or assistant, alternating and ending with user; "
                      "the first turn after the system message is the user's unless the project allows "
                      "assistant-first chats",
                      max_length=20)
    content: str = Field(min_length=1, max_length=importing.TEXT_MAX)


class ResponseIn(In):
    id: str | None = Field(None, pattern=importing.RESPONSE_ID_RE.pattern, max_length=64,
                           description="Default r1, r2, … by position")
    text: str = Field(min_length=1, max_length=importing.TEXT_MAX)
    model: str | None = Field(None, max_length=importing.MODEL_MAX)


class ItemIn(In):
    external_id: str | None = Field(None, min_length=1, max_length=importing.EXTERNAL_ID_MAX,
                                    description="Your id; an item already in the project is skipped (or, with "
                                                "update=true, updated). Default: a hash of the content")
    prompt: str | None = Field(None, min_length=1, max_length=importing.TEXT_MAX,
                               description="One user message; or give context instead")
    context: list[TurnIn] | None = Field(None, min_length=1, max_length=importing.TURNS_MAX,
                                         description="The conversation the responses answer")
    responses: list[str | ResponseIn] = Field(default_factory=list, max_length=50,
                                              description="Texts, or {id, text, model}; as many as the "
                                                          "project's questions need")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Up to 64 KB as JSON")
    gold: dict[str, Any] | None = Field(None, description="Known answers by question key: a gold item (admins only; "
                                                          "a client's line with gold is refused)")
    priority: int = Field(0, ge=INT32[0], le=INT32[1], description="Higher is served first")


class ItemBatch(RootModel[list[ItemIn]]):
    """Items to add to the project: a JSON array of item objects (Content-Type: application/json), or
    the same objects one per line (Content-Type: application/x-ndjson). The batch is checked by the
    importer, all or nothing: any problem is a 422 whose details name each one as "line N: field" (in
    an array, line N is the N-th item), up to 200 of them. Bodies up to the server's inline size are
    imported at once (201); larger ones run as an import job (202, Location: its status)."""


# --- what comes back ---------------------------------------------------------------------------------


class ImportDone(BaseModel):
    import_id: int
    status: str = Field(description="done")
    imported: int = Field(description="New items")
    updated: int = Field(description="Known items updated (update=true)")
    skipped: int = Field(description="Known items left as they were")
    lines: int
    status_url: str


class ImportQueued(BaseModel):
    import_id: int
    status: str = Field(description="queued; follow status_url")
    status_url: str


class LineProblem(BaseModel):
    line: int
    field: str
    message: str


class ImportOut(BaseModel):
    import_id: int
    project: str = Field(description="The project's slug")
    filename: str
    format: str
    status: str = Field(description="queued, validating, writing, done or failed")
    percent: int
    stalled: str | None = Field(description="Why a running import looks dead, if it does")
    lines: int
    bytes_total: int
    bytes_done: int
    imported: int
    updated: int
    skipped: int
    error_count: int = Field(description="Every problem found (errors lists the first 200)")
    errors: list[LineProblem]
    message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TurnOut(BaseModel):
    role: str
    content: str


class ResponseOut(BaseModel):
    id: str
    text: str
    model: str | None = None


class ItemOut(BaseModel):
    id: int
    external_id: str
    context: list[TurnOut]
    responses: list[ResponseOut]
    metadata: dict[str, Any]
    priority: int
    is_gold: bool
    gold: dict[str, Any] | None = Field(None, description="The gold answers (admins only)")
    done_count: int = Field(description="Answers given so far")
    created_at: datetime


class ItemList(BaseModel):
    data: list[ItemOut]
    next_cursor: str | None


class PushQuery(Query):
    update: bool = Field(False, description="Update items whose external_id is already in the project (unless "
                                            "someone has worked on them) instead of skipping them")


# --- views -------------------------------------------------------------------------------------------

BODY_FORMATS = {"application/json": "json", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
                "application/x-jsonlines": "jsonl"}
READ_BLOCK = 1 << 20


def _status_url(job: ImportJob) -> str:
    return url_for("api.get_import", import_id=job.id, _external=True)


def _read_up_to(stream, size: int) -> bytes:
    parts, held = [], 0
    while held < size and (block := stream.read(min(READ_BLOCK, size - held))):
        parts.append(block)
        held += len(block)
    return b"".join(parts)


@bp.post("/projects/<slug>/items")
@allow("admin", "client")
@spec.validate(query=PushQuery, json=ItemBatch, tags=["items"], skip_validation=True,
               resp=responses(HTTP_201=ImportDone, HTTP_202=ImportQueued, errors=(409,)))
def push_items(slug: str):
    """Add items to a project (admins and its clients), all or nothing, like an upload on the import page.

    The body is read as it streams in and handed to the importer, which checks every line: the
    document's item schema describes it, the importer decides (its messages come back by line)."""
    project = managed_project(slug)
    try:
        query = PushQuery.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        before_validation(request, None, exc, None)
    fmt = BODY_FORMATS.get(request.mimetype)
    if fmt is None:
        raise UnsupportedMediaType("Send the items as application/json (an array) or application/x-ndjson "
                                   "(one item per line).")
    db = get_session()
    importing.fail_stalled_imports(db)  # a dead import's leftovers go before a new one starts
    limit = current_app.config["API_INLINE_ITEMS_BYTES"]
    head = _read_up_to(request.stream, limit + 1)
    name = f"api-items.{fmt}"
    if len(head) <= limit:
        job = importing.import_now(db, project, BytesIO(head), fmt, filename=name, actor_id=user().id,
                                   update_existing=query.update)
        url = _status_url(job)
        return ImportDone(import_id=job.id, status=job.status, imported=job.inserted, updated=job.updated,
                          skipped=job.skipped, lines=job.lines, status_url=url), 201, {"Location": url}
    job = importing.create_job(db, project, name, lambda path: _save(head, request.stream, path),
                               Path(current_app.config["IMPORT_DIR"]), user().id,
                               update_existing=query.update, fmt=fmt)
    enqueue(import_job, job.id)
    url = _status_url(job)
    return ImportQueued(import_id=job.id, status=job.status, status_url=url), 202, {"Location": url}


push_items.large_body = True  # the importer reads the body line by line: the input layer's JSON cap is not for it


def _save(head: bytes, rest, path: Path) -> None:
    """The body to the upload's file: what was read, then the rest as it arrives (nothing is left of a
    body that breaks off or passes the size limit)."""
    try:
        with open(path, "wb") as out:
            out.write(head)
            while block := rest.read(READ_BLOCK):
                out.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _item_out(item, admin: bool) -> ItemOut:
    return ItemOut(
        id=item.id, external_id=item.external_id, context=[TurnOut(**t) for t in item.context or []],
        responses=[ResponseOut(id=r["id"], text=r["text"], model=r.get("model")) for r in item.responses or []],
        metadata=item.meta or {}, priority=item.priority, is_gold=item.is_gold,
        gold=item.gold_answers if admin else None, done_count=item.done_count, created_at=item.created_at,
    )


@bp.get("/projects/<slug>/items")
@allow("admin", "client")
@spec.validate(query=PageQuery, resp=responses(HTTP_200=ItemList), tags=["items"])
def list_items(slug: str, query: PageQuery):
    """A project's items by id (admins and its clients; only admins see gold answers)."""
    project = managed_project(slug)
    rows = project_service.items_page(get_session(), project, after_id=decode_cursor(query.cursor),
                                      limit=query.limit + 1)
    rows, cursor = page(rows, query.limit)
    admin = access.is_admin(user())
    return ItemList(data=[_item_out(item, admin) for item in rows], next_cursor=cursor)


def import_out(job: ImportJob, project: Project) -> ImportOut:
    return ImportOut(
        import_id=job.id, project=project.slug, filename=job.filename, format=job.format, status=job.status,
        percent=job.percent, stalled=importing.stalled_reason(job), lines=job.lines, bytes_total=job.bytes_total,
        bytes_done=job.bytes_done, imported=job.inserted, updated=job.updated, skipped=job.skipped,
        error_count=job.error_count, errors=[LineProblem(**e) for e in job.errors or []], message=job.message,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
    )


@bp.get("/imports/<int:import_id>")
@allow("admin", "client")
@spec.validate(resp=responses(HTTP_200=ImportOut), tags=["items"])
def get_import(import_id: int):
    """An import's status, progress, counts and problems (of a project the caller manages)."""
    job, project = project_service.get_import(get_session(), import_id)
    managed_project(project.slug)
    return import_out(job, project)
