"""Setting up assessments: which qualification projects interview, with which settings, which
written prompts end the interview, and the level of each item in the bank.

An assessment is a qualification project with an `Assessment` row; its gold items are the bank. Every
setting has one range here (`SETTINGS`), checked field by field so the form can say what is wrong
with each. An item's level seeds its difficulty (`quality.irt.LEVELS`) until calibration has
estimated it from answers; after that a level is only a label and the estimate stays.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bounds import decimal_number, has_visible, plain_text_problem
from app.db import begin_write
from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    Assessment,
    Domain,
    Interview,
    Item,
    ItemParameter,
    Project,
    WrittenAnswer,
    WrittenPrompt,
)
from app.models.recruiting import ITEM_LEVELS
from app.services import audit
from app.services.quality import irt

from . import applications, interviews


@dataclass(frozen=True)
class Setting:
    """One assessment setting: its kind (int or float), its range, and whether it may be empty."""

    kind: type
    low: float
    high: float
    optional: bool = False

    @property
    def whole(self) -> bool:
        return self.kind is int


SETTINGS: dict[str, Setting] = {
    "min_items": Setting(int, 1, 100),
    "max_items": Setting(int, 1, 100),
    "se_target": Setting(float, 0.1, 1.5),
    "time_limit_minutes": Setting(int, 1, 240),
    "ability_weight": Setting(float, 0.0, 1.0),
    "pass_score": Setting(float, 0.0, 1.0),
    "auto_vet_score": Setting(float, 0.0, 1.0, optional=True),
    "exposure_bin": Setting(int, 1, 20),
    "calibrate_after": Setting(int, 5, 10_000),
}
# What a new assessment starts with (the model's defaults; auto-vet off).
DEFAULTS = {"min_items": 5, "max_items": 20, "se_target": 0.4, "time_limit_minutes": 30, "ability_weight": 0.7,
            "pass_score": 0.6, "auto_vet_score": None, "exposure_bin": 5, "calibrate_after": 30}

PROMPT_MAX = 4000
RUBRIC_MAX = 4000
MAX_CHARS_RANGE = (100, 20_000)
MAX_PROMPTS = 20
EXCERPT_CHARS = 140


# ----------------------------------------------------------------------------------------- reading


@dataclass
class AssessmentRow:
    """One qualification project on the assessments page."""

    project: Project
    assessment: Assessment | None
    bank_size: int  # gold items
    prompts: int
    interviews: int


def assessments_overview(session: Session) -> list[AssessmentRow]:
    """Every qualification project by name, with its assessment (None: not set up yet), the size of
    its bank, its written prompts and how many interviews it has had."""
    gold = dict(session.execute(select(Item.project_id, func.count()).where(Item.is_gold.is_(True))
                                .group_by(Item.project_id)).all())
    prompts = dict(session.execute(select(WrittenPrompt.assessment_id, func.count())
                                   .group_by(WrittenPrompt.assessment_id)).all())
    sittings = dict(session.execute(select(Interview.assessment_id, func.count())
                                    .group_by(Interview.assessment_id)).all())
    rows = []
    for project, assessment in session.execute(
            select(Project, Assessment).outerjoin(Assessment, Assessment.project_id == Project.id)
            .where(Project.kind == "qualification").order_by(Project.name, Project.id)):
        key = assessment.id if assessment else None
        rows.append(AssessmentRow(project, assessment, gold.get(project.id, 0), prompts.get(key, 0),
                                  sittings.get(key, 0)))
    return rows


def qualification_project(session: Session, slug: str) -> tuple[Project, Assessment | None]:
    """The qualification project at ``slug`` and its assessment (None when not set up); a work
    project, or none, is NotFound."""
    row = session.execute(select(Project, Assessment).outerjoin(Assessment, Assessment.project_id == Project.id)
                          .where(Project.slug == slug, Project.kind == "qualification")).first()
    if row is None:
        raise NotFound("no such qualification project")
    return row[0], row[1]


def prompts_of(session: Session, assessment: Assessment) -> list[WrittenPrompt]:
    return interviews.prompts_of(session, assessment.id)


def answered_prompts(session: Session, assessment: Assessment) -> set[int]:
    """The assessment's prompts that candidates have answered (those cannot be deleted)."""
    return set(session.scalars(select(WrittenAnswer.prompt_id).join(WrittenPrompt, WrittenPrompt.id == WrittenAnswer.prompt_id)
                               .where(WrittenPrompt.assessment_id == assessment.id).distinct()))


@dataclass
class BankRow:
    item: Item
    parameter: ItemParameter | None  # None: a gold item added since the bank was last seeded
    level: str
    difficulty: float
    discrimination: float
    answers: int
    calibrated: bool
    excerpt: str


@dataclass
class BankPage:
    rows: list[BankRow]
    total: int


def excerpt(item: Item, limit: int = EXCERPT_CHARS) -> str:
    """The first words of an item (its first turn), on one line."""
    first = next((t.get("content", "") for t in (item.context or []) if isinstance(t, dict)), "")
    text = re.sub(r"\s+", " ", str(first)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def bank_size(session: Session, assessment: Assessment) -> int:
    return session.scalar(select(func.count()).select_from(Item).where(
        Item.project_id == assessment.project_id, Item.is_gold.is_(True))) or 0


def bank_page(session: Session, assessment: Assessment, limit: int, offset: int = 0) -> BankPage:
    """One page of the bank (the project's gold items by id) with each item's parameters; an item
    without parameters yet shows what it will be seeded with."""
    rows = []
    for item, parameter in session.execute(
            select(Item, ItemParameter).outerjoin(ItemParameter, ItemParameter.item_id == Item.id)
            .where(Item.project_id == assessment.project_id, Item.is_gold.is_(True))
            .order_by(Item.id).limit(limit).offset(offset)):
        if parameter is None:
            level = interviews.level_of(item)
            rows.append(BankRow(item, None, level, irt.LEVELS[level], 1.0, 0, False, excerpt(item)))
        else:
            rows.append(BankRow(item, parameter, parameter.level, parameter.difficulty, parameter.discrimination,
                                parameter.answers, parameter.calibrated, excerpt(item)))
    return BankPage(rows, bank_size(session, assessment))


# ---------------------------------------------------------------------------------------- settings


def _number(raw, setting: Setting) -> int | float | None | str:
    """The value typed for a setting, or the message saying why it is not one."""
    text = str(raw if raw is not None else "").strip()
    whole = setting.kind is int
    span = f"from {setting.low:g} to {setting.high:g}"
    if not text:
        return None if setting.optional else "is required"
    if whole:
        if not re.fullmatch(r"[0-9]{1,6}", text) or not setting.low <= int(text) <= setting.high:
            return f"must be a whole number {span}"
        return int(text)
    value = decimal_number(text)
    if value is None or not setting.low <= value <= setting.high:
        return f"must be a number {span}" + (", or empty" if setting.optional else "")
    return round(value, 4)


def check_settings(session: Session, values: Mapping, current_domain: str | None = None) -> tuple[dict, dict]:
    """Typed settings from the form's values, and an error per field (empty when they may be saved).
    The domain must be an active domain of the taxonomy (or the one the assessment has already)."""
    errors: dict[str, str] = {}
    clean: dict = {}
    domain = str(values.get("domain") or "").strip().lower()
    active = set(session.scalars(select(Domain.slug).where(Domain.active.is_(True))))
    if not domain:
        errors["domain"] = "choose the domain this assessment qualifies for"
    elif domain not in active and domain != current_domain:
        errors["domain"] = "choose a domain from the taxonomy (active domains only)"
    clean["domain"] = domain
    for name, setting in SETTINGS.items():
        value = _number(values.get(name), setting)
        if isinstance(value, str):
            errors[name] = value
        else:
            clean[name] = value
    if "min_items" in clean and "max_items" in clean and clean["min_items"] > clean["max_items"]:
        errors["max_items"] = "must be at least the minimum number of items"
    return clean, errors


def save_settings(session: Session, project: Project, values: Mapping, actor_id: int | None) -> Assessment:
    """Set up ``project`` as an assessment or change its settings: every value within its range
    (a field error for each that is not, and nothing written), the bank's missing parameters seeded
    from each item's level. Audited ("assessment.save", with what changed). Commits."""
    if project.kind != "qualification":
        raise ValidationError({"": "only a qualification project can be an assessment"})
    begin_write(session)
    # The project row first: two admins setting it up at once take turns instead of both inserting.
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    assessment = session.scalar(select(Assessment).where(Assessment.project_id == project.id))
    clean, errors = check_settings(session, values, assessment.domain if assessment else None)
    if assessment is not None and clean.get("domain") != assessment.domain and "domain" not in errors \
            and session.scalar(select(Interview.id).where(Interview.assessment_id == assessment.id).limit(1)):
        # Its interviews measured the old domain: vetting would grant qualifications in the new one.
        errors["domain"] = ("candidates have taken this assessment in its domain; its domain can no longer "
                            "change (set up a new assessment for another domain)")
    if errors:
        session.rollback()
        raise ValidationError(errors)
    created = assessment is None
    if created:
        assessment = Assessment(project_id=project.id, **clean)
        session.add(assessment)
        session.flush()
        changed = clean
    else:
        changed = {k: v for k, v in clean.items() if getattr(assessment, k) != v}
        for name, value in changed.items():
            setattr(assessment, name, value)
        session.flush()
    seeded = interviews.ensure_parameters(session, assessment)
    audit.record(session, actor_id, "assessment.save", "assessment", assessment.id,
                 {"project_id": project.id, "created": created, "changed": changed, "seeded": seeded})
    session.commit()
    return assessment


# --------------------------------------------------------------------------------- written prompts


def _check_prompt(values: Mapping) -> dict:
    errors: dict[str, str] = {}
    prompt = str(values.get("prompt") or "").replace("\r\n", "\n").strip()
    rubric = str(values.get("rubric") or "").replace("\r\n", "\n").strip()
    if not has_visible(prompt):  # a question of invisible characters asks nothing
        errors["prompt"] = "is required"
    elif len(prompt) > PROMPT_MAX:
        errors["prompt"] = f"must be at most {PROMPT_MAX:,} characters (it has {len(prompt):,})"
    elif problem := plain_text_problem(prompt):
        errors["prompt"] = problem
    if len(rubric) > RUBRIC_MAX:
        errors["rubric"] = f"must be at most {RUBRIC_MAX:,} characters (it has {len(rubric):,})"
    elif problem := plain_text_problem(rubric):
        errors["rubric"] = problem
    max_chars = _number(values.get("max_chars"), Setting(int, *MAX_CHARS_RANGE))
    if isinstance(max_chars, str):
        errors["max_chars"] = max_chars.replace("is required", f"is required ({MAX_CHARS_RANGE[0]}–{MAX_CHARS_RANGE[1]:,})")
    if errors:
        raise ValidationError(errors)
    return {"prompt": prompt, "rubric": rubric, "max_chars": max_chars}


def _prompt_of(session: Session, assessment: Assessment, prompt_id: int) -> WrittenPrompt:
    prompt = session.get(WrittenPrompt, prompt_id)
    if prompt is None or prompt.assessment_id != assessment.id:
        raise NotFound("no such prompt")
    return prompt


def save_prompt(session: Session, assessment: Assessment, prompt_id: int | None, values: Mapping,
                actor_id: int | None) -> WrittenPrompt:
    """Add a written prompt at the end (``prompt_id`` None) or edit one of this assessment's: the prompt
    (required, at most 4,000 characters), its rubric (at most 4,000) and the answer's length limit
    (100–20,000). Audited. Commits."""
    clean = _check_prompt(values)
    begin_write(session)
    if prompt_id is None:
        count, last = session.execute(select(func.count(), func.max(WrittenPrompt.position))
                                      .where(WrittenPrompt.assessment_id == assessment.id)).one()
        if count >= MAX_PROMPTS:
            session.rollback()
            raise ValidationError({"prompt": f"an assessment has at most {MAX_PROMPTS} written prompts"})
        prompt = WrittenPrompt(assessment_id=assessment.id, position=(last or 0) + 1, **clean)
        session.add(prompt)
        action = "assessment.prompt_add"
    else:
        prompt = _prompt_of(session, assessment, prompt_id)
        for name, value in clean.items():
            setattr(prompt, name, value)
        action = "assessment.prompt_edit"
    session.flush()
    audit.record(session, actor_id, action, "written_prompt", prompt.id,
                 {"assessment_id": assessment.id, "max_chars": clean["max_chars"], "prompt": clean["prompt"][:200]})
    session.commit()
    return prompt


def delete_prompt(session: Session, assessment: Assessment, prompt_id: int, actor_id: int | None) -> None:
    """Remove one of this assessment's prompts. A prompt candidates have answered stays (its answers and
    their grades are part of scores already given): Conflict. Audited. Commits."""
    begin_write(session)
    prompt = _prompt_of(session, assessment, prompt_id)
    if session.scalar(select(WrittenAnswer.id).where(WrittenAnswer.prompt_id == prompt.id).limit(1)) is not None:
        session.rollback()
        raise Conflict("candidates have answered this prompt, so it stays; edit its wording instead")
    audit.record(session, actor_id, "assessment.prompt_delete", "written_prompt", prompt.id,
                 {"assessment_id": assessment.id, "prompt": prompt.prompt[:200]})
    session.delete(prompt)
    session.commit()


# ---------------------------------------------------------------------------------------- taxonomy


def save_domain(session: Session, slug: str, name: str, active: bool, actor_id: int | None, *,
                new: bool) -> Domain:
    """Add a domain (``new``: its slug must not be taken) or rename / (de)activate an existing one
    (``new`` False: it must exist), through `applications.save_domain`, which checks the slug and
    name. Commits."""
    taken = (slug or "").strip().lower() in set(session.scalars(select(Domain.slug)))
    if new and taken:
        raise ValidationError({"slug": "is taken already; rename that domain in the list instead"})
    if not new and not taken:
        raise NotFound("no such domain")
    return applications.save_domain(session, slug, name, active, actor_id)


# ----------------------------------------------------------------------------------------- levels


def set_levels(session: Session, assessment: Assessment, levels: Mapping[int, str], actor_id: int | None) -> int:
    """Give bank items a level (easy / medium / hard). An uncalibrated item's difficulty is re-seeded
    from its new level; a calibrated one keeps its estimate (the level is then a label). Items of
    another project, or not gold, are NotFound. Audited with each change. Commits; returns how many
    items changed."""
    errors = {f"level.{item_id}": "must be easy, medium or hard" for item_id, level in levels.items()
              if level not in ITEM_LEVELS}
    if errors:
        raise ValidationError(errors)
    if not levels:
        return 0
    begin_write(session)
    interviews.ensure_parameters(session, assessment)  # gold items added since the last seeding
    parameters = {p.item_id: p for p in session.scalars(
        select(ItemParameter).join(Item, Item.id == ItemParameter.item_id)
        .where(ItemParameter.assessment_id == assessment.id, Item.project_id == assessment.project_id,
               Item.is_gold.is_(True), ItemParameter.item_id.in_(list(levels))).with_for_update())}
    if missing := sorted(set(levels) - set(parameters)):
        session.rollback()
        raise NotFound(f"item {missing[0]} is not in this assessment's bank")
    changes = {}
    for item_id, level in sorted(levels.items()):
        parameter = parameters[item_id]
        if parameter.level == level:
            continue
        changes[str(item_id)] = [parameter.level, level]
        parameter.level = level
        if not parameter.calibrated:
            parameter.difficulty = irt.LEVELS[level]
    if changes:
        audit.record(session, actor_id, "assessment.levels", "assessment", assessment.id, {"levels": changes})
    session.commit()  # also keeps any parameters ensure_parameters seeded
    return len(changes)
