"""API: the trainer's loop — next task, heartbeat, submit, skip — over the same queue as the workspace.

Every task is the caller's own, in the URL's project, reached through the queue's one door
(``assignment._lock_task`` inside ``record_heartbeat``, ``submit`` and ``skip``); anything else is a
404. The item is shown as the workspace shows it: the conversation, then the responses by letter
(A, B, C…), never their ids; answers name responses by the same letters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from flask import Response
from pydantic import BaseModel, Field, StringConstraints

from app.db import get_session
from app.errors import Conflict, NotFound, ValidationError
from app.models import ASSIGNMENT_STATUSES, Assignment, Item, Project, Question
from app.services import access
from app.services import assignment as queue
from app.services import projects as project_service
from app.services import questions as question_rules
from tasks.jobs import queue_statistics

from .base import In, allow, bp, responses, spec, user
from .projects import QuestionOut

QuestionKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]


# --- models ----------------------------------------------------------------------------------------


class TaskTurn(BaseModel):
    role: str = Field(description="system, user or assistant")
    content: str = Field(description="Markdown, as written (the page renders it sanitised)")


class TaskResponse(BaseModel):
    letter: str = Field(description="How the page names the response: A, B, C… Answers use these letters.")
    text: str = Field(description="Markdown, as written")
    model: str | None = Field(None, description="The model that wrote it, when the project shows model names")


class TaskItem(BaseModel):
    context: list[TaskTurn] = Field(description="The conversation up to the responses (the prompt)")
    responses: list[TaskResponse]


class TaskOut(BaseModel):
    assignment_id: int
    project: str = Field(description="The project's slug")
    item: TaskItem
    questions: list[QuestionOut]
    expires_at: datetime = Field(description="When the lease lapses unless a heartbeat extends it")
    active_seconds: int = Field(description="Active time on this task so far, counted by the server")


class NextOut(BaseModel):
    next: TaskOut | None = Field(description="The trainer's next task; null when nothing is left for them")
    notice: str | None = Field(None, description="Why there is no next task, when there is a reason to say "
                                                 "(the trainer was paused by this work)")


class SubmitOut(NextOut):
    annotation_id: int = Field(description="The stored answer (a repeated submit returns the first one, 200)")


class HeartbeatIn(In):
    resume: bool = Field(False, description="The start of an active stretch (page shown again, activity after "
                                            "an idle spell): sets the mark without counting the gap")


class HeartbeatOut(BaseModel):
    active_seconds: int
    status: Literal[ASSIGNMENT_STATUSES] = Field(  # type: ignore[valid-type]
        description="active while the lease is live; expired when it lapsed and its slot went to someone else")
    expires_at: datetime


class SubmitIn(In):
    answers: dict[QuestionKey, Any] = Field(
        max_length=50,
        description="Question key → answer. Responses are named by letter (a ranking: [[\"B\"], [\"A\", \"C\"]], "
                    "best first; a span: {\"response\": \"A\", \"start\", \"end\", \"label\"}); a preference is "
                    "a signed whole number, negative when A is better.")


class SkipIn(In):
    reason: str = Field(max_length=queue.SKIP_REASON_MAX, description="Why the task is skipped (required)")


# --- shaping ---------------------------------------------------------------------------------------


def item_out(project: Project, item: Item) -> TaskItem:
    """The item as ``_item.html`` shows it: no ids, no metadata; model names only where the project
    shows them."""
    return TaskItem(
        context=[TaskTurn(role=t.get("role", ""), content=t.get("content", "")) for t in item.context or []],
        responses=[TaskResponse(letter=question_rules.response_letter(n), text=r.get("text", ""),
                               model=r.get("model") if project.show_model_names else None)
                   for n, r in enumerate(item.responses or [])],
    )


def questions_out(questions: list[Question]) -> list[QuestionOut]:
    return [QuestionOut(key=q.key, type=q.type, title=q.title, help=q.help or "", options=q.options or {},
                        required=q.required) for q in questions]


def task_out(project: Project, assignment: Assignment, questions: list[Question] | None = None) -> TaskOut:
    if questions is None:
        questions = queue.project_questions(get_session(), project.id)
    return TaskOut(assignment_id=assignment.id, project=project.slug, item=item_out(project, assignment.item),
                   questions=questions_out(questions), expires_at=assignment.expires_at,
                   active_seconds=assignment.active_seconds)


# --- access ----------------------------------------------------------------------------------------


def work_project(slug: str) -> Project:
    """The work project the caller is an active trainer member of; a paused member gets 403 with the
    reason; anyone else finds no such project (as on the workspace)."""
    db = get_session()
    try:
        project = project_service.get_by_slug(db, slug)
    except NotFound:
        raise NotFound("no such project") from None
    member = access.membership(db, user(), project)
    if member is not None and member.status == "paused":
        raise queue.Paused.because(member.flagged_reason)
    if not access.can_work_on(db, user(), project, member):
        raise NotFound("no such project")
    return project


def following(project: Project) -> NextOut:
    """The next task after a submit or skip. The work is already stored: a pause it caused, or a claim
    that lost a race, is said in ``notice`` rather than failing the request."""
    try:
        assignment = queue.next_task(get_session(), user().id, project)
    except (queue.Paused, Conflict) as exc:
        return NextOut(next=None, notice=str(exc))
    return NextOut(next=task_out(project, assignment) if assignment else None)


# --- endpoints -------------------------------------------------------------------------------------


@bp.post("/projects/<slug>/tasks/next")
@allow("trainer")
@spec.validate(resp=responses(HTTP_200=TaskOut, HTTP_204=None, errors=(409,)), tags=["work"])
def next_task(slug: str):
    """The caller's live task in this project, or a newly claimed one (a lease of ``lease_minutes``).
    Asking again returns the same task until it is submitted, skipped or lapses. 204 (no body) when
    nothing is left for the caller: every item they may do is done, or the project is not active
    (its status is on ``GET /projects/{slug}``)."""
    project = work_project(slug)
    assignment = queue.next_task(get_session(), user().id, project)
    if assignment is None:
        return Response(status=204)
    return task_out(project, assignment)


@bp.post("/projects/<slug>/tasks/<int:assignment_id>/heartbeat")
@allow("trainer")
@spec.validate(json=HeartbeatIn, resp=responses(HTTP_200=HeartbeatOut), tags=["work"])
def heartbeat(slug: str, assignment_id: int, json: HeartbeatIn):
    """The trainer is here and active: the server counts the time since the last beat (at most 20 s a
    beat, on a live lease) and extends the lease. Send one every 15 s while the trainer works."""
    project = work_project(slug)
    assignment = queue.record_heartbeat(get_session(), assignment_id, user().id, resume=json.resume,
                                        project_id=project.id)
    return HeartbeatOut(active_seconds=assignment.active_seconds, status=assignment.status,
                        expires_at=assignment.expires_at)


@bp.post("/projects/<slug>/tasks/<int:assignment_id>/submit")
@allow("trainer")
@spec.validate(json=SubmitIn, resp=responses(HTTP_201=SubmitOut, HTTP_200=SubmitOut, errors=(409,)), tags=["work"])
def submit_task(slug: str, assignment_id: int, json: SubmitIn):
    """Store the answers (201) and claim the next task. A repeated submit stores nothing more and
    returns the first answer (200). Every broken answer is named in one 422 (``answers.<key>``). A
    lease that lapsed is still accepted while its item has room; when the slot went to someone else
    the answer is refused with 409."""
    project = work_project(slug)
    db = get_session()
    assignment = queue.task_of(db, assignment_id, user().id, project.id)
    repeated = assignment.status == "submitted"
    raw = question_rules.parse_json_answers(queue.project_questions(db, project.id), json.answers,
                                            assignment.item.responses or [])
    try:
        annotation = queue.submit(db, assignment_id, user().id, raw, project_id=project.id)
    except ValidationError as exc:
        raise ValidationError({f"answers.{key}" if key else "answers": message
                               for key, message in exc.errors.items()}) from None
    queue_statistics(db, project)  # after the commit; services cannot start jobs
    after = following(project)
    return SubmitOut(annotation_id=annotation.id, next=after.next, notice=after.notice), 200 if repeated else 201


@bp.post("/projects/<slug>/tasks/<int:assignment_id>/skip")
@allow("trainer")
@spec.validate(json=SkipIn, resp=responses(HTTP_200=NextOut), tags=["work"])
def skip_task(slug: str, assignment_id: int, json: SkipIn):
    """Give the task back with a reason (the slot goes to someone else; the time counts) and claim the
    next one."""
    project = work_project(slug)
    queue.skip(get_session(), assignment_id, user().id, json.reason, project_id=project.id)
    return following(project)
