"""API: dataset versions (admins and the project's clients) — build one, list them, follow one, and
download its files (streamed, with an ETag and byte ranges).

Versions hold no trainer's name or e-mail: rows name annotators by pseudonym, the manifest and the
card count them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import current_app, request, url_for
from pydantic import BaseModel, Field
from spectree import Response
from spectree.utils import get_model_key
from werkzeug.utils import send_file
from werkzeug.wrappers import Response as PlainResponse

from app.db import get_session
from app.errors import NotFound
from app.models import EXPORT_STATUSES, DatasetExport, Project
from app.services import exporting
from app.services.exporting.options import MIN_AGREEMENT_MEANING, PAIR_MODES, RANKING_PAIRS
from tasks import enqueue
from tasks.jobs import build_export

from ..inputs import failed_precondition
from .base import (
    COMMON_ERRORS,
    ErrorBody,
    In,
    PageQuery,
    allow,
    bp,
    decode_cursor,
    page,
    responses,
    spec,
    user,
)
from .projects import managed_project

FORMAT_NAMES = tuple(exporting.FORMATS)


INSTANT = ("a date (YYYY-MM-DD) or an ISO 8601 instant (2026-12-06T17:20:00Z; without a zone it is UTC)")


class ExportCreate(In):
    """The export form's options (the same parser checks them)."""

    format: Literal[FORMAT_NAMES]  # type: ignore[valid-type]
    pairs: Literal[PAIR_MODES] | None = Field(  # type: ignore[valid-type]
        None, description="Pairwise formats: consensus (the default: one row per item pair, in the direction of the "
                          "mean preference, Bradley-Terry order for rankings) or per_annotation (each direction "
                          "annotators gave, once per item: a weighting view)")
    ranking_pairs: Literal[RANKING_PAIRS] | None = None  # type: ignore[valid-type]
    conversational: bool | None = Field(None, description="Message lists even when every item is one user turn")
    margin: bool | None = Field(None, description="Add a float margin (preference strength) to pair rows")
    with_ids: bool | None = Field(None, description="Add item_id (and chosen_id / rejected_id) to the training rows "
                                                    "of formats whose consumers accept extra keys")
    with_agreement: bool | None = Field(None, description="Add agreement and n_annotators to pair rows")
    reviewed_only: bool | None = Field(None, description="Only annotations a reviewer approved or corrected")
    exclude_flagged_trainers: bool | None = None
    exclude_gold: bool | None = Field(None, description="Leave gold items out (default true)")
    min_agreement: float | None = Field(None, ge=0, le=1, description=f"Only some items: {MIN_AGREEMENT_MEANING}")
    min_trainer_quality: float | None = Field(None, ge=0, le=1)
    # Text, not typed dates: a bare day given for date_to means through its end, which only the parser knows.
    date_from: str | None = Field(None, max_length=40, description=f"Submitted at or after: {INSTANT}",
                                  examples=["2026-12-01", "2026-12-01T09:30:00Z"])
    date_to: str | None = Field(None, max_length=40, description=f"Submitted at or before: {INSTANT}; a bare date "
                                                                 "takes the whole day", examples=["2026-12-06"])
    as_of: str | None = Field(None, max_length=40, description="Rebuild the data as it stood at this instant (an ISO "
                                                              "instant; UTC without a zone); a version's manifest gives "
                                                              "its snapshot instant",
                              examples=["2026-12-06T17:20:00.000000Z"])
    test_fraction: float | None = Field(None, ge=0, lt=1, description="Share of items in a test split")
    validation_fraction: float | None = Field(None, ge=0, lt=1, description="Share of items in a validation split "
                                                                            "(with test_fraction below 1)")
    desirable_labels: list[str] | None = Field(None, max_length=50, description="Labels that count as good "
                                                                                "(label projects: KTO, SFT)")


class ExportQueued(BaseModel):
    export_id: int
    status: str
    status_url: str


class FileOut(BaseModel):
    name: str
    role: str | None = Field(None, description="data, meta (line-aligned provenance), items or annotators; none "
                                               "for the manifest and the card")
    rows: int | None = Field(description="Data, meta and items files")
    bytes: int
    sha256: str | None = Field(description="Data, meta and items files")
    url: str = Field(description="Download it here (with the same token)")


class ExportSummary(BaseModel):
    id: int
    version: int = Field(description="The project's own number of this version (1, 2, 3…), as pages and cards name it")
    format: str
    status: Literal[EXPORT_STATUSES] = Field(  # type: ignore[valid-type]
        description="queued, running, done, empty (finished with no row: the manifest's empty_reasons say why, and "
                    "there is no file) or failed")
    row_count: int
    bytes: int
    sha256: str | None = Field(description="Of the first data file (train)")
    created_at: datetime
    finished_at: datetime | None
    files: list[FileOut] = Field(description="None until the version is finished; an empty one has only its "
                                             "manifest and card")


class ExportList(BaseModel):
    data: list[ExportSummary]
    next_cursor: str | None


class ExportOut(ExportSummary):
    project: str = Field(description="The project's slug")
    percent: int
    stalled: bool = Field(description="Running, but its worker stopped reporting")
    error: str | None
    filters: dict[str, Any]
    started_at: datetime | None
    empty_reasons: list[str] = Field(default_factory=list, description="An empty version: why no row passed, per "
                                                                       "filter")
    manifest: dict[str, Any] | None = Field(description="When done or empty: files, counts, filters, snapshot, "
                                                        "agreement")


class FileResponse(Response):
    """A download's responses: the file (200, or 206 for a byte range) in its media type, 304 when
    If-None-Match holds its ETag, and the API's JSON errors."""

    def generate_spec(self, naming_strategy=get_model_key) -> dict[str, Any]:
        spec_ = super().generate_spec(naming_strategy)
        content = {media: {"schema": {"type": "object"} if media == "application/json"
                           else {"type": "string", "contentMediaType": media}}
                   for media in sorted(set(exporting.MEDIA_TYPES.values()))}
        spec_["200"] = {"description": "The file, streamed (ETag; Accept-Ranges: bytes)", "content": content}
        spec_["206"] = {"description": "The byte range asked for with Range", "content": content}
        spec_["304"] = {"description": "Not modified: If-None-Match holds the file's ETag"}
        return spec_


def _file_responses() -> FileResponse:
    return FileResponse("HTTP_200", "HTTP_206", "HTTP_304",
                        **{f"HTTP_{code}": ErrorBody for code in (*COMMON_ERRORS, 416)})


def _files(export: DatasetExport) -> list[FileOut]:
    return [FileOut(**f, url=url_for("api.download_export_file", export_id=export.id, name=f["name"], _external=True))
            for f in exporting.version_files(current_app.config["EXPORT_DIR"], export)]


def _summary(export: DatasetExport) -> dict:
    return dict(id=export.id, version=export.version, format=export.format, status=export.status, row_count=export.row_count,
                bytes=export.bytes, sha256=export.sha256, created_at=export.created_at,
                finished_at=export.finished_at, files=_files(export))


def _managed_export(export_id: int) -> tuple[DatasetExport, Project]:
    """A version of a project the caller manages; for anyone else it does not exist."""
    export, project = exporting.export_and_project(get_session(), export_id)
    return export, managed_project(project.slug)


@bp.post("/projects/<slug>/exports")
@allow("admin", "client")
@spec.validate(json=ExportCreate, resp=responses(HTTP_202=ExportQueued, errors=(409, 507)), tags=["exports"])
def create_export(slug: str, json: ExportCreate):
    """Build a new dataset version (admins and the project's clients); it runs in the background. A
    project builds at most 3 at a time and is asked for at most 20 an hour (409); a version that would
    leave the server's disk short of room is refused (507)."""
    project = managed_project(slug)
    # as text, like the form's: the options parser checks every value the same way whoever sends it
    export = exporting.create_export(get_session(), project, json.model_dump(mode="json", exclude_none=True), user().id,
                                     **exporting.disk_limits(current_app.config))
    enqueue(build_export, export.id)
    url = url_for("api.get_export", export_id=export.id, _external=True)
    return ExportQueued(export_id=export.id, status=export.status, status_url=url), 202, {"Location": url}


@bp.get("/projects/<slug>/exports")
@allow("admin", "client")
@spec.validate(query=PageQuery, resp=responses(HTTP_200=ExportList), tags=["exports"])
def list_exports(slug: str, query: PageQuery):
    """A project's dataset versions, newest first."""
    project = managed_project(slug)
    rows = exporting.exports_page(get_session(), project.id, before_id=decode_cursor(query.cursor),
                                  limit=query.limit + 1)
    rows, cursor = page(rows, query.limit)
    return ExportList(data=[ExportSummary(**_summary(e)) for e in rows], next_cursor=cursor)


@bp.get("/exports/<int:export_id>")
@allow("admin", "client")
@spec.validate(resp=responses(HTTP_200=ExportOut), tags=["exports"])
def get_export(export_id: int):
    """A version's status and progress; when done, its manifest and its files with download URLs."""
    export, project = _managed_export(export_id)
    return ExportOut(**_summary(export), project=project.slug, percent=export.percent,
                     stalled=exporting.is_stalled(export), error=export.error, filters=export.filters or {},
                     started_at=export.started_at,
                     empty_reasons=(export.manifest or {}).get("empty_reasons", []) if export.status == "empty" else [],
                     manifest=export.manifest if export.status in ("done", "empty") else None)


@bp.get("/exports/<int:export_id>/files/<name>")
@allow("admin", "client")
@spec.validate(resp=_file_responses(), tags=["exports"], skip_validation=True)
def download_export_file(export_id: int, name: str):
    """One file of a finished version (a data, meta or items file, manifest.json or README.md), streamed. Send
    If-None-Match with its ETag to get 304 when it is unchanged, and Range to resume a download (206)."""
    export, project = _managed_export(export_id)
    path = exporting.file_path(current_app.config["EXPORT_DIR"], export, name)
    if not path.is_file():
        raise NotFound(f"no file {name!r} in this export")
    response = send_file(path, request.environ, mimetype=exporting.media_type(name), as_attachment=True,
                         download_name=exporting.download_name(project, export, name), conditional=True,
                         max_age=0, response_class=PlainResponse,
                         use_x_sendfile=current_app.config.get("USE_X_SENDFILE", False))
    if failed_precondition(path, response):
        response.close()
        return PlainResponse(status=412), 412
    # A plain werkzeug response passes through the validation layer untouched (a Flask one would be
    # read whole into memory there) and Flask adopts it as it is, so the file goes out block by block;
    # its status (200, 206 or 304) is given again, since the layer would otherwise set 200.
    return response, response.status_code
