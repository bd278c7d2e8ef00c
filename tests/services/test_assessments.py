"""Setting up assessments: settings and their bounds, written prompts, item levels, the bank's pages.

The builders at the top (`qualification`, `apply_as`, `sit`) make assessments and candidates through
the real services; the web tests use them too."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from app.errors import Conflict, NotFound, ValidationError
from app.models import AuditEvent, Domain, Item, ItemParameter, WrittenPrompt
from app.services import projects as project_service
from app.services.recruiting import applications, assessments, grading, interviews
from tests.factories import PASSWORD, make_label_project, make_user

_seq = itertools.count(1)

SETTINGS = {"domain": "medicine", "min_items": "2", "max_items": "3", "se_target": "0.4", "time_limit_minutes": "30",
            "ability_weight": "0.7", "pass_score": "0.5", "auto_vet_score": "", "exposure_bin": "5",
            "calibrate_after": "30"}


def domain(session, slug="medicine", name=None, active=True):
    return applications.save_domain(session, slug, name or slug.title(), active, None)


def qualification(session, *, slug=None, domain_slug="medicine", items=6, levels=None, prompts=(), settings=None,
                  actor_id=None, set_up=True):
    """A qualification project with ``items`` gold items (label "yes" is right), optionally levelled
    through their metadata, set up as an assessment with ``prompts`` (prompt, rubric) when ``set_up``."""
    if domain_slug not in applications.domain_names(session):
        domain(session, domain_slug)
    project = make_label_project(session, items=items, slug=slug or f"quiz-{next(_seq)}", kind="qualification")
    for n, item in enumerate(session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id))):
        item.is_gold, item.gold_answers = True, {"label": "yes"}
        if levels:
            item.meta = {"level": levels[n % len(levels)]}
    session.commit()
    if not set_up:
        return project, None
    assessment = assessments.save_settings(session, project, {**SETTINGS, "domain": domain_slug, **(settings or {})},
                                           actor_id)
    for prompt, rubric in prompts:
        assessments.save_prompt(session, assessment, None, {"prompt": prompt, "rubric": rubric, "max_chars": "2000"},
                                actor_id)
    return project, assessment


def apply_as(session, *, name=None, domains=("medicine",), languages="en, fr", rate="45.50", email=None):
    n = next(_seq)
    return applications.apply(session, applications.ApplicationForm(
        email=email or f"candidate{n}@example.test", name=name or f"Candidate {n}", password=PASSWORD,
        domains=tuple(domains), languages=languages, years_experience="7", credentials="Board-certified GP",
        timezone="Europe/Lisbon", availability_hours_per_week="20", desired_rate=rate, consent=True))


def sit(session, user, assessment, *, right=True, written=None, grade=None, grader=None):
    """The candidate takes the interview: items answered right or wrong (``right``: one bool for all,
    or a list taken in turn), then the written part (``written``: text per prompt, by default a short
    answer), graded ``grade`` by ``grader`` if given."""
    pattern = right if isinstance(right, list) else [right]
    interview = interviews.start(session, user.id, assessment.id)
    while interview.status == "in_progress":
        ok = pattern[interview.items_done % len(pattern)]
        interview = interviews.answer(session, user.id, interview.id, interview.current_item_id,
                                      {"label": "yes" if ok else "no"})
    if interview.status == "written":
        prompts = interviews.prompts_of(session, assessment.id)
        interview = interviews.submit_written(
            session, user.id, interview.id, {p.id: (written or {}).get(p.id, f"My answer to prompt {p.id}, in full.") for p in prompts})
    if grade is not None:
        for answer in grading.queue(session, 100):
            if answer.interview.id == interview.id:
                grading.grade(session, answer.answer.id, grade, "fair", grader.id)
    session.refresh(interview)
    return interview


def parameters(session, assessment):
    return {p.item_id: p for p in session.scalars(select(ItemParameter)
                                                   .where(ItemParameter.assessment_id == assessment.id))}


# ---------------------------------------------------------------------------------------- settings


def test_setting_up_seeds_the_bank_from_each_items_level_and_is_audited(session):
    admin = make_user(session, "admin")
    project, assessment = qualification(session, items=3, levels=["easy", "hard", "unknown"], actor_id=admin.id)
    assert (assessment.domain, assessment.min_items, assessment.max_items, assessment.auto_vet_score) == \
        ("medicine", 2, 3, None)
    seeded = sorted((p.level, p.difficulty, p.discrimination, p.calibrated) for p in parameters(session, assessment).values())
    assert seeded == [("easy", -1.0, 1.0, False), ("hard", 1.0, 1.0, False), ("medium", 0.0, 1.0, False)]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "assessment.save"))
    assert event.actor_id == admin.id and event.data["created"] is True and event.data["seeded"] == 3


def test_saving_again_changes_only_what_changed(session):
    project, assessment = qualification(session)
    assessments.save_settings(session, project, {**SETTINGS, "pass_score": "0.75", "auto_vet_score": "0.9"}, None)
    session.refresh(assessment)
    assert (assessment.pass_score, assessment.auto_vet_score, assessment.min_items) == (0.75, 0.9, 2)
    last = session.scalars(select(AuditEvent).where(AuditEvent.action == "assessment.save")
                           .order_by(AuditEvent.id.desc())).first()
    assert last.data["changed"] == {"pass_score": 0.75, "auto_vet_score": 0.9} and last.data["created"] is False


BAD_SETTINGS = [
    ("min_items", "0", "whole number from 1 to 100"), ("min_items", "101", "from 1 to 100"),
    ("min_items", "2.5", "whole number"), ("max_items", "", "is required"), ("max_items", "1", "at least the minimum"),
    ("se_target", "0.05", "from 0.1 to 1.5"), ("se_target", "1.6", "from 0.1 to 1.5"), ("se_target", "nan", "a number"),
    ("time_limit_minutes", "0", "from 1 to 240"), ("time_limit_minutes", "241", "from 1 to 240"),
    ("ability_weight", "-0.1", "from 0 to 1"), ("ability_weight", "1.01", "from 0 to 1"),
    ("pass_score", "abc", "a number from 0 to 1"), ("pass_score", "inf", "from 0 to 1"),
    ("auto_vet_score", "1.5", "or empty"), ("exposure_bin", "0", "from 1 to 20"), ("exposure_bin", "21", "from 1 to 20"),
    ("calibrate_after", "4", "from 5 to 10000"), ("calibrate_after", "10001", "from 5 to 10000"),
    ("domain", "", "choose the domain"), ("domain", "astrology", "from the taxonomy"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_SETTINGS, ids=[f"{f}={v}" for f, v, _m in BAD_SETTINGS])
def test_each_setting_out_of_bounds_is_a_field_error_and_changes_nothing(session, field, value, message):
    project, assessment = qualification(session)
    before = {name: getattr(assessment, name) for name in (*assessments.SETTINGS, "domain")}
    with pytest.raises(ValidationError) as caught:
        assessments.save_settings(session, project, {**SETTINGS, field: value}, None)
    assert set(caught.value.errors) == {field} and message in caught.value.errors[field]
    session.rollback()
    session.refresh(assessment)
    assert {name: getattr(assessment, name) for name in before} == before


def test_a_bad_first_setup_creates_no_assessment(session):
    project, _none = qualification(session, set_up=False)
    with pytest.raises(ValidationError):
        assessments.save_settings(session, project, {**SETTINGS, "se_target": "9"}, None)
    session.rollback()
    assert assessments.qualification_project(session, project.slug)[1] is None
    assert session.scalar(select(func.count()).select_from(ItemParameter)) == 0


def test_an_inactive_domain_is_refused_unless_the_assessment_has_it_already(session):
    project, assessment = qualification(session)
    domain(session, "law", active=False)
    with pytest.raises(ValidationError) as caught:
        assessments.save_settings(session, project, {**SETTINGS, "domain": "law"}, None)
    assert "active domains only" in caught.value.errors["domain"]
    session.rollback()
    domain(session, "medicine", active=False)
    assert assessments.save_settings(session, project, {**SETTINGS, "max_items": "9"}, None).max_items == 9


def test_a_work_project_cannot_be_an_assessment(session):
    domain(session)
    work = make_label_project(session, items=1)
    with pytest.raises(ValidationError):
        assessments.save_settings(session, work, SETTINGS, None)
    with pytest.raises(NotFound):
        assessments.qualification_project(session, work.slug)


# ----------------------------------------------------------------------------------------- prompts


def test_prompts_are_added_in_order_edited_and_deleted(session):
    _project, assessment = qualification(session, prompts=[("First?", "r1"), ("Second?", "")])
    first, second = assessments.prompts_of(session, assessment)
    assert (first.prompt, first.position, second.prompt, second.position) == ("First?", 1, "Second?", 2)
    assessments.save_prompt(session, assessment, first.id, {"prompt": " Reworded? ", "rubric": "r", "max_chars": "100"}, None)
    session.refresh(first)
    assert (first.prompt, first.rubric, first.max_chars) == ("Reworded?", "r", 100)
    assessments.delete_prompt(session, assessment, second.id, None)
    assert [p.id for p in assessments.prompts_of(session, assessment)] == [first.id]
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "written_prompt")))
    assert actions == {"assessment.prompt_add", "assessment.prompt_edit", "assessment.prompt_delete"}


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"prompt": "", "max_chars": "500"}, "prompt", "is required"),
    ({"prompt": "x" * 4001, "max_chars": "500"}, "prompt", "at most 4,000"),
    ({"prompt": "ok", "rubric": "y" * 4001, "max_chars": "500"}, "rubric", "at most 4,000"),
    ({"prompt": "bad\x07bell", "max_chars": "500"}, "prompt", "plain text"),
    ({"prompt": "ok", "max_chars": "99"}, "max_chars", "from 100 to 20000"),
    ({"prompt": "ok", "max_chars": "20001"}, "max_chars", "from 100 to 20000"),
    ({"prompt": "ok", "max_chars": ""}, "max_chars", "is required"),
])
def test_bad_prompts_are_field_errors_and_add_nothing(session, values, field, message):
    _project, assessment = qualification(session)
    with pytest.raises(ValidationError) as caught:
        assessments.save_prompt(session, assessment, None, values, None)
    assert message in caught.value.errors[field]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(WrittenPrompt)) == 0


def test_another_assessments_prompt_is_not_found(session):
    _p, mine = qualification(session)
    _q, theirs = qualification(session, prompts=[("Theirs?", "")])
    (prompt,) = assessments.prompts_of(session, theirs)
    with pytest.raises(NotFound):
        assessments.save_prompt(session, mine, prompt.id, {"prompt": "Mine now", "max_chars": "500"}, None)
    session.rollback()
    with pytest.raises(NotFound):
        assessments.delete_prompt(session, mine, prompt.id, None)


def test_an_answered_prompt_stays(session):
    _project, assessment = qualification(session, prompts=[("Explain triage.", "")])
    sit(session, apply_as(session), assessment)
    (prompt,) = assessments.prompts_of(session, assessment)
    assert assessments.answered_prompts(session, assessment) == {prompt.id}
    with pytest.raises(Conflict):
        assessments.delete_prompt(session, assessment, prompt.id, None)
    session.rollback()
    assert [p.id for p in assessments.prompts_of(session, assessment)] == [prompt.id]


# ------------------------------------------------------------------------------------------ levels


def test_a_new_level_reseeds_only_an_uncalibrated_items_difficulty(session):
    admin = make_user(session, "admin")
    _project, assessment = qualification(session, items=3)
    a, b, c = sorted(parameters(session, assessment))
    calibrated = session.get(ItemParameter, b)
    calibrated.calibrated, calibrated.difficulty, calibrated.discrimination = True, 0.37, 1.3
    session.commit()
    changed = assessments.set_levels(session, assessment, {a: "hard", b: "easy", c: "medium"}, admin.id)
    assert changed == 2  # c was medium already
    found = parameters(session, assessment)
    for p in found.values():
        session.refresh(p)
    assert (found[a].level, found[a].difficulty) == ("hard", 1.0)
    assert (found[b].level, found[b].difficulty, found[b].discrimination) == ("easy", 0.37, 1.3)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "assessment.levels"))
    assert event.data["levels"] == {str(a): ["medium", "hard"], str(b): ["medium", "easy"]}


def test_levels_refuse_unknown_levels_and_items_outside_the_bank(session):
    _p, assessment = qualification(session, items=2)
    _q, other = qualification(session, items=1)
    mine = sorted(parameters(session, assessment))
    with pytest.raises(ValidationError):
        assessments.set_levels(session, assessment, {mine[0]: "trivial"}, None)
    (theirs,) = parameters(session, other)
    with pytest.raises(NotFound):
        assessments.set_levels(session, assessment, {mine[0]: "hard", theirs: "hard"}, None)
    session.rollback()
    assert {p.level for p in parameters(session, assessment).values()} == {"medium"}
    assert assessments.set_levels(session, assessment, {}, None) == 0


def test_a_gold_item_added_after_setup_is_in_the_bank_and_can_be_levelled(session):
    project, assessment = qualification(session, items=2)
    item = project_service.add_item(session, project, prompt="A late arrival", responses=["r"], external_id="late")
    item.is_gold, item.gold_answers = True, {"label": "yes"}
    session.commit()
    page = assessments.bank_page(session, assessment, 10, 0)
    late = next(r for r in page.rows if r.item.id == item.id)
    assert page.total == 3 and late.parameter is None and (late.level, late.difficulty) == ("medium", 0.0)
    assert assessments.set_levels(session, assessment, {item.id: "easy"}, None) == 1
    assert session.get(ItemParameter, item.id).difficulty == -1.0


def test_the_bank_comes_in_pages_with_short_excerpts(session):
    project, assessment = qualification(session, items=5)
    item = session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id)).first()
    item.context = [{"role": "user", "content": "word " * 100}]
    session.commit()
    first, last = assessments.bank_page(session, assessment, 3, 0), assessments.bank_page(session, assessment, 3, 3)
    assert (len(first.rows), len(last.rows), first.total) == (3, 2, 5)
    assert len(first.rows[0].excerpt) <= assessments.EXCERPT_CHARS and first.rows[0].excerpt.endswith("…")
    assert first.rows[1].excerpt == "Prompt number 2"


# ---------------------------------------------------------------------------------- overview, domains


def test_the_overview_lists_qualification_projects_with_or_without_an_assessment(session):
    assert assessments.assessments_overview(session) == []
    _p, assessment = qualification(session, slug="a-quiz", items=2, prompts=[("Why?", "")])
    bare, _none = qualification(session, slug="b-quiz", items=1, set_up=False)
    make_label_project(session, items=1)  # paid work: not listed
    rows = assessments.assessments_overview(session)
    assert [(r.project.slug, r.assessment.id if r.assessment else None, r.bank_size, r.prompts, r.interviews)
            for r in rows] == [("a-quiz", assessment.id, 2, 1, 0), ("b-quiz", None, 1, 0, 0)]


def test_adding_a_taken_domain_or_editing_a_missing_one_is_refused(session):
    assessments.save_domain(session, "law", "Law", True, None, new=True)
    with pytest.raises(ValidationError) as caught:
        assessments.save_domain(session, "law", "Law again", True, None, new=True)
    assert "taken" in caught.value.errors["slug"]
    with pytest.raises(NotFound):
        assessments.save_domain(session, "nope", "Nope", True, None, new=False)
    renamed = assessments.save_domain(session, "law", "Law and order", False, None, new=False)
    assert (renamed.name, renamed.active) == ("Law and order", False)
    assert session.scalar(select(func.count()).select_from(Domain)) == 1
