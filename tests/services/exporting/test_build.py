"""Versions: deterministic bytes, no personal data, filters, splits, failures that publish nothing."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.errors import ValidationError
from app.models import Annotation, DatasetExport, Item, ProjectMember, ProjectStats, TrainerStats, utcnow
from app.services import review as review_service
from app.services.exporting import FORMATS, create_export
from app.services.exporting import build as build_step
from tests.factories import make_user

from .conftest import annotate, make_project, with_members

OPTIONS = {"trl-kto": {"desirable_labels": "yes"}, "trl-sft": {"desirable_labels": "yes"}}


def _projects(request):
    return [request.getfixturevalue(name) for name in
            ("pairs_project", "ranking_project", "critique_project", "label_project")]


def test_no_email_or_name_in_any_file_of_any_format(build, request, trainers):
    secrets = [s.encode() for t in trainers for s in (t.email, t.name, *t.name.split(), t.email.split("@")[0])]
    checked = 0
    for project in _projects(request):
        for name in FORMATS:
            try:
                built = build(project, format=name, **OPTIONS.get(name, {}))
            except ValidationError:
                continue
            for path in built.folder.iterdir():
                data = path.read_bytes()
                for secret in secrets:
                    assert secret not in data, f"{secret!r} found in {name} {path.name}"
                checked += 1
    assert checked >= 40


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_same_data_same_filters_same_bytes(build, request, name):
    project = request.getfixturevalue("critique_project" if name in ("helpsteer", "openai-sft") else "pairs_project")
    first = build(project, format=name, test_fraction=0.5)
    second = build(project, format=name, test_fraction=0.5)
    assert first.export.id != second.export.id
    assert first.export.sha256 == second.export.sha256
    for entry in first.export.manifest["files"]:
        assert (first.folder / entry["name"]).read_bytes() == (second.folder / entry["name"]).read_bytes()


def test_parallel_ranges_write_the_same_file(build, session, trainers, monkeypatch):
    items = [(f"x{n:03d}", f"Question {n}", [{"id": "a", "text": f"A{n}"}, {"id": "b", "text": f"B{n}"}])
             for n in range(40)]
    project = make_project(session, "pairwise", items, slug="parallel")
    with_members(session, project, trainers)
    for k, trainer in enumerate(trainers):
        annotate(session, trainer, project, {x[0]: {"preference": (n + k) % 7 - 3} for n, x in enumerate(items)})
    single = build(project, format="trl-preference", test_fraction=0.25, margin=True)
    monkeypatch.setattr(build_step, "PARALLEL_MIN_ANNOTATIONS", 1)
    for processes in (2, 3):
        parallel = build(project, processes=processes, format="trl-preference", test_fraction=0.25, margin=True)
        assert parallel.export.manifest["files"] == single.export.manifest["files"]
        for entry in single.export.manifest["files"]:  # data, meta and items files alike
            assert parallel.raw(entry["name"]) == single.raw(entry["name"]), entry["name"]
        assert parallel.export.manifest["counts"] == single.export.manifest["counts"]
        assert parallel.export.manifest["annotators"] == 2


def test_test_split_is_by_hashed_prompt_and_stable(build, session, trainers):
    items = [(f"s{n}", f"Q{n}", [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}]) for n in range(60)]
    project = make_project(session, "pairwise", items, overlap=1, slug="split")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {x[0]: {"preference": -1} for x in items})
    built = build(project, format="raw", test_fraction=0.3)
    train = {x["item_id"] for x in built.lines("train.jsonl")}
    test = {x["item_id"] for x in built.lines("test.jsonl")}
    assert train.isdisjoint(test) and len(train | test) == 60
    assert 8 <= len(test) <= 30
    again = build(project, format="aggregated", test_fraction=0.3)
    assert {x["item_id"] for x in again.lines("test.jsonl")} == test  # same items, whatever the format
    counts = built.export.manifest["counts"]
    assert (counts["train_items"], counts["test_items"]) == (len(train), len(test))
    card = (built.folder / "README.md").read_text()
    assert "split: test" in card and "path: test.jsonl" in card


def test_gold_is_left_out_unless_asked(build, session, pairs_project):
    session.execute(update(Item).where(Item.project_id == pairs_project.id, Item.external_id == "p1")
                    .values(is_gold=True, gold_answers={"preference": -2}))
    session.commit()
    assert {x["item_id"] for x in build(pairs_project, format="raw").lines()} == {"p2"}
    assert {x["item_id"] for x in build(pairs_project, format="raw", exclude_gold=False).lines()} == {"p1", "p2"}


def test_reviews_rejected_work_is_left_out_and_corrections_win(build, session, pairs_project, trainers):
    reviewer = make_user(session, "reviewer")
    rows = session.scalars(select(Annotation).where(Annotation.project_id == pairs_project.id).order_by(Annotation.id)).all()
    review_service.record_verdict(session, rows[0].id, reviewer.id, "reject", "Not careful")
    review_service.record_verdict(session, rows[2].id, reviewer.id, "correct", "", {"preference": 3, "rationale": "fixed"})
    review_service.record_verdict(session, rows[3].id, reviewer.id, "approve")
    session.commit()
    # p1: t1 rejected, t2 corrected to +3 (B1 better); p2: t1 tie, t2 approved
    assert build(pairs_project, format="trl-preference").lines() == [
        {"prompt": "Q1", "chosen": "B1", "rejected": "A1"}, {"prompt": "Q2", "chosen": "B2", "rejected": "A2"}]
    raw = build(pairs_project, format="raw").lines()
    assert [x["review_status"] for x in raw] == ["rejected", "corrected", "unreviewed", "approved"]
    assert raw[1]["answers"] == {"preference": 3, "rationale": "fixed"}
    reviewed = build(pairs_project, format="raw", reviewed_only=True).lines()
    assert [x["review_status"] for x in reviewed] == ["corrected", "approved"]


def test_min_agreement_keeps_items_whose_annotators_agree(build, pairs_project):
    built = build(pairs_project, format="raw", min_agreement=0.9)
    assert {x["item_id"] for x in built.lines()} == {"p1"}
    assert built.export.manifest["counts"]["skipped"] == {"item below min_agreement": 1}
    assert built.export.manifest["agreement"]["mean_item_agreement"] == 1.0
    card = (built.folder / "README.md").read_text()
    assert "`min_agreement` keeps items whose agreement on their first compared question" in card
    assert "2 of 3 agreeing is 1/3" in card
    assert "`min_agreement`" not in (build(pairs_project, format="raw").folder / "README.md").read_text()


def test_min_agreement_counts_an_item_with_one_answer_as_unknown_not_low(build, session, pairs_project, trainers):
    from app.services import projects as project_service

    project_service.add_item(session, pairs_project, external_id="p3", prompt="Q3",
                             responses=[{"id": "a", "text": "A3"}, {"id": "b", "text": "B3"}])
    session.commit()
    annotate(session, trainers[0], pairs_project, {"p3": {"preference": 2, "rationale": "r"}})
    skipped = build(pairs_project, format="raw", min_agreement=0.9).export.manifest["counts"]["skipped"]
    assert skipped == {"item below min_agreement": 1,
                       "item whose agreement is unknown (one answer) under min_agreement": 1}


def _flag_with_figures(session, project, flagged, first: dict, second: dict) -> None:
    """``flagged`` (the first trainer) flagged in ``project``; the two trainers' quality figures, computed
    after every answer (the filter reads them as they are)."""
    t1, t2 = flagged
    member = session.scalar(select(ProjectMember).where(ProjectMember.project_id == project.id,
                                                        ProjectMember.user_id == t1.id))
    member.flagged_reason = "failed gold"
    session.add_all([TrainerStats(project_id=project.id, trainer_id=t1.id, **first),
                     TrainerStats(project_id=project.id, trainer_id=t2.id, **second),
                     ProjectStats(project_id=project.id, annotations=4, figures={}, computed_at=utcnow())])
    session.commit()


def test_trainer_filters(build, session, pairs_project, trainers, pseudonym):
    t1, t2 = trainers
    _flag_with_figures(session, pairs_project, trainers, {"gold_accuracy": 0.95}, {"consensus_agreement": 0.4})
    flagged_out = build(pairs_project, format="raw", exclude_flagged_trainers=True)
    assert {x["trainer"] for x in flagged_out.lines()} == {pseudonym(t2.id)}
    quality = build(pairs_project, format="raw", min_trainer_quality=0.9)
    assert {x["trainer"] for x in quality.lines()} == {pseudonym(t1.id)}
    # what each left out is counted (the others' leftovers: t1's two answers, then t2's two)
    assert flagged_out.export.manifest["counts"]["skipped"] == {
        "annotation by a trainer flagged, paused or removed in this project (exclude_flagged_trainers)": 2}
    assert quality.export.manifest["counts"]["skipped"] == {
        "annotation by a trainer whose quality is unknown or below 0.9 (min_trainer_quality)": 2}
    both = build(pairs_project, format="raw", min_trainer_quality=0.9, exclude_flagged_trainers=True)
    assert both.export.status == "empty"  # said in its reasons instead


def test_annotations_two_counted_filters_leave_out_are_counted_once(build, session, pairs_project, trainers, pseudonym):
    """t1 is flagged and below the quality threshold, t2 neither: t1's answers are counted once, by the
    first filter that leaves them out, never by none."""
    _t1, t2 = trainers
    _flag_with_figures(session, pairs_project, trainers, {"gold_accuracy": 0.2}, {"gold_accuracy": 0.95})
    built = build(pairs_project, format="raw", min_trainer_quality=0.9, exclude_flagged_trainers=True)
    assert {x["trainer"] for x in built.lines()} == {pseudonym(t2.id)}
    assert built.export.manifest["counts"]["skipped"] == {
        "annotation by a trainer flagged, paused or removed in this project (exclude_flagged_trainers)": 2}



def test_work_an_admin_excluded_is_counted_in_the_version(build, session, pairs_project, trainers, pseudonym):
    """Excluding a trainer's work shrinks every later version: the manifest (and so the card) says by how
    much, and stops saying it once the work is brought back."""
    from app.services import trainers as trainer_service
    from tests.factories import make_user

    t1, t2 = trainers
    admin = make_user(session, "admin")
    assert build(pairs_project, format="raw").export.manifest["counts"]["skipped"] == {}
    trainer_service.set_work_excluded(session, pairs_project, t1.id, admin.id)
    built = build(pairs_project, format="raw")
    assert {x["trainer"] for x in built.lines()} == {pseudonym(t2.id)}
    assert built.export.manifest["counts"]["skipped"] == {
        "annotation by a trainer whose work an admin excluded from the project": 2}
    trainer_service.set_work_excluded(session, pairs_project, t1.id, admin.id, excluded=False)
    assert build(pairs_project, format="raw").export.manifest["counts"]["skipped"] == {}

def test_date_range_is_inclusive_utc_days(build, session, pairs_project):
    today = utcnow().date()
    rows = session.scalars(select(Annotation).where(Annotation.project_id == pairs_project.id).order_by(Annotation.id)).all()
    rows[0].submitted_at = utcnow() - timedelta(days=3)
    session.commit()
    assert len(build(pairs_project, format="raw", date_from=today.isoformat()).lines()) == 3
    old = build(pairs_project, format="raw", date_to=(today - timedelta(days=1)).isoformat()).lines()
    assert len(old) == 1
    assert build(pairs_project, format="raw", date_from=today.isoformat(), date_to=today.isoformat()).export.row_count == 3


@pytest.mark.parametrize(("options", "field", "words"), [
    ({"format": "nope"}, "format", "unknown format"),
    ({}, "format", "choose a format"),
    ({"format": "raw", "colour": "red"}, "options", "unknown option"),
    ({"format": "raw", "test_fraction": "1"}, "test_fraction", "below 1"),
    ({"format": "raw", "min_agreement": "lots"}, "min_agreement", "number between 0 and 1"),
    ({"format": "raw", "date_from": "25/11/2026"}, "date_from", "YYYY-MM-DD"),
    ({"format": "raw", "date_from": "2026-11-25", "date_to": "2026-11-01"}, "date_to", "before date_from"),
    ({"format": "raw", "pairs": "all"}, "pairs", "consensus, per_annotation"),
    ({"format": "raw", "as_of": "2099-01-01T00:00:00Z"}, "as_of", "must not be in the future"),
    ({"format": "raw", "as_of": "2026-12-01 at noon"}, "as_of", "an offset such as +02:00"),
    ({"format": "raw", "as_of": "2026-12-01"}, "as_of", "not the bare day '2026-12-01'"),
    ({"format": "raw", "as_of": " 2026-12-01 "}, "as_of", "which instant of the day would be a guess"),
    ({"format": "raw", "as_of": "20261201"}, "as_of", "not the bare day '2026-12-01'"),  # ISO's other forms of a day
    ({"format": "raw", "as_of": "2026-W48-2"}, "as_of", "not the bare day '2026-11-24'"),
    # the first and last instants Python holds, moved out of its range by an offset, or past its last day
    ({"format": "raw", "as_of": "0001-01-01T00:00:00+01:00"}, "as_of", "between the years 2000 and 2100"),
    ({"format": "raw", "date_from": "0001-01-01T00:30:00+01:00"}, "date_from", "between the years 2000 and 2100"),
    ({"format": "raw", "date_to": "9999-12-31T23:59:59-01:00"}, "date_to", "between the years 2000 and 2100"),
    ({"format": "raw", "date_to": "9999-12-31"}, "date_to", "between the years 2000 and 2100"),
    ({"format": "raw", "date_from": "2100-12-31T23:30:00-01:00"}, "date_from", "between the years 2000 and 2100"),
    ({"format": "helpsteer"}, "format", "needs at least one rating question"),
    ({"format": "openai-sft"}, "format", "rewrite"),
    # options that would change nothing here, and be recorded as if they had
    ({"format": "raw", "conversational": True}, "conversational", "writes no message lists"),
    ({"format": "trl-preference", "desirable_labels": "good"}, "desirable_labels", "does not read desirable labels"),
    ({"format": "trl-kto", "desirable_labels": "good"}, "desirable_labels", "does not read desirable labels"),
])
def test_bad_options_are_refused_and_nothing_is_created(session, pairs_project, options, field, words):
    before = session.scalar(select(DatasetExport.id).limit(1))
    with pytest.raises(ValidationError) as caught:
        create_export(session, pairs_project, options, None)
    assert words in caught.value.errors[field]
    session.rollback()
    assert session.scalar(select(DatasetExport.id).limit(1)) == before


def test_a_label_project_must_say_which_labels_are_desirable_for_kto(session, label_project):
    with pytest.raises(ValidationError) as caught:
        create_export(session, label_project, {"format": "trl-kto"}, None)
    # an option to set, named as that field (not a lack of the project's, named as the format)
    assert caught.value.errors == {"desirable_labels": "choose which labels of the question 'verdict' count as "
                                                       "desirable for KTO (its labels: yes, no)"}
    with pytest.raises(ValidationError) as caught:
        create_export(session, label_project, {"format": "trl-kto", "desirable_labels": "maybe"}, None)
    assert caught.value.errors == {"desirable_labels": "maybe is not a label of the question 'verdict' "
                                                       "(its labels: yes, no)"}


def test_manifest_and_card(build, pairs_project):
    built = build(pairs_project, format="trl-preference")
    manifest = built.export.manifest
    assert manifest["schema_version"] == "groundwork-export/1" and manifest["format"] == "trl-preference"
    assert manifest["counts"]["rows"] == 2 and manifest["annotators"] == 2  # consensus: one row per item
    assert manifest["sha256"] == built.export.sha256 == manifest["files"][0]["sha256"]
    assert manifest["filters"]["exclude_gold"] is True
    assert [(f["name"], f["role"], f["rows"]) for f in manifest["files"]] == [
        ("train.jsonl", "data", 2), ("train.meta.jsonl", "meta", 2), ("items.jsonl", "items", 2)]
    for entry in manifest["files"]:
        data = (built.folder / entry["name"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["bytes"], entry["sha256"])
    assert manifest["splits"] == {"train": {"file": "train.jsonl", "meta_file": "train.meta.jsonl", "rows": 2,
                                            "items": 2}}
    assert manifest["database"] == built.export.manifest["database"] in ("sqlite", "postgresql")
    assert manifest["groundwork_version"] and manifest["warnings"] == [] and "empty_reasons" not in manifest
    assert set(manifest["snapshot"]) == {"instant", "max_annotation_id", "max_review_id"}
    assert manifest["annotation_dates"]["first"] <= manifest["annotation_dates"]["last"]
    card = (built.folder / "README.md").read_text()
    assert card.startswith("---\n") and "| `chosen` |" in card
    assert built.export.status == "done" and built.export.bytes == (built.folder / "train.jsonl").stat().st_size


def test_a_column_null_on_every_line_is_kept(build, pairs_project):
    """Stable schemas: raw's gold_score is null off gold items, and stays a column (the card types it)."""
    built = build(pairs_project, format="raw")
    assert all("gold_score" in line and line["gold_score"] is None for line in built.lines())
    assert all("dropped_null_columns" not in f for f in built.export.manifest["files"])


def test_a_project_that_always_wants_messages_gets_them_from_the_first_line(build, session, pairs_project):
    pairs_project.always_messages = True
    session.commit()
    built = build(pairs_project, format="trl-preference")
    assert built.export.manifest["conversational"] is True
    assert all(isinstance(line["prompt"], list) for line in built.lines())


def test_a_failed_export_publishes_nothing(app, build, session, pairs_project, monkeypatch):
    def broken(group, plan):
        raise OSError(28, "No space left on device")

    from dataclasses import replace

    monkeypatch.setitem(FORMATS, "raw", replace(FORMATS["raw"], build=broken))
    with pytest.raises(OSError, match="No space left"):
        build(pairs_project, format="raw")
    session.rollback()
    session.expire_all()  # read what the job wrote, not this session's copy
    export = session.scalars(select(DatasetExport).order_by(DatasetExport.id.desc())).first()
    # the version says why in words a person reads (the log keeps Python's)
    assert export.status == "failed" and "is the disk full?" in export.error and export.path is None
    assert "OSError" not in export.error
    from pathlib import Path

    root = Path(app.config["EXPORT_DIR"])
    assert not (root / str(pairs_project.id) / str(export.id)).exists()
    assert not any((root / ".partial").iterdir())


def test_a_superseded_attempt_does_not_finish_the_version(app, session, pairs_project, monkeypatch):
    """A retry while the first run is still alive: the newer attempt owns the version."""
    import app.services.exporting as exporting
    from app.db import get_db
    from app.errors import Conflict

    export = create_export(session, pairs_project, {"format": "raw"}, None)
    session.commit()
    with app.app_context():
        factory = get_db().session_factory
    real_write_all = exporting.write_all

    def slow_run_overtaken(*args, **kwargs):
        result = real_write_all(*args, **kwargs)
        exporting._start(factory, export.id)  # meanwhile someone pressed "Run again"
        return result

    monkeypatch.setattr(exporting, "write_all", slow_run_overtaken)
    with pytest.raises(Conflict, match="started again meanwhile"):
        exporting.run_export(factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"])
    session.rollback()
    row = session.get(DatasetExport, export.id)
    session.refresh(row)
    assert (row.status, row.attempts, row.sha256) == ("running", 2, None)  # left to the newer attempt
    monkeypatch.setattr(exporting, "write_all", real_write_all)
    done = exporting.run_export(factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"])
    assert done.status == "done" and done.attempts == 3
    with pytest.raises(ValidationError, match="never changes"):
        exporting.run_export(factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"])


def test_a_column_option_that_adds_no_column_is_refused(session, pairs_project):
    """margin adds nothing to KTO rows, with_ids nothing to a raw table (its rows carry their ids): asked
    for, they are refused rather than recorded in the manifest as if they had done something."""
    for fmt, option in (("trl-kto", "margin"), ("raw", "with_ids"), ("raw", "with_agreement")):
        with pytest.raises(ValidationError) as refused:
            create_export(session, pairs_project, {"format": fmt, option: True}, None)
        assert refused.value.errors == {option: f"adds no column to {fmt}; leave it out"}
        session.rollback()
    made = create_export(session, pairs_project, {"format": "trl-preference", "margin": True, "with_ids": True}, None)
    assert made.filters["margin"] is True and made.filters["with_ids"] is True


def test_a_row_mode_that_changes_no_row_is_refused(session, pairs_project, ranking_project, label_project):
    """The pair mode is read by the pair formats and helpsteer only (KTO and SFT take the consensus
    whatever the mode; raw tables keep every annotation), and the ranking strategies only where pairs
    come from a ranking: a mode off its default anywhere else is refused, named and why, and nothing is
    written."""
    refusals = [
        (pairs_project, "trl-kto", "pairs", "per_annotation", "trl-kto has no pair rows for it to choose; leave it as consensus"),
        (pairs_project, "trl-sft", "pairs", "per_annotation", "trl-sft has no pair rows for it to choose; leave it as consensus"),
        (pairs_project, "raw", "pairs", "per_annotation", "raw has no pair rows for it to choose; leave it as consensus"),
        (label_project, "aggregated", "pairs", "per_annotation",
         "aggregated has no pair rows for it to choose; leave it as consensus"),
        (pairs_project, "trl-preference", "ranking_pairs", "best_vs_worst",
         "this project has no ranking question; leave it as all_pairs"),
        (ranking_project, "trl-kto", "ranking_pairs", "best_vs_rest",
         "trl-kto has no pair rows for it to choose; leave it as all_pairs"),
    ]
    before = session.scalar(select(func.count(DatasetExport.id)))
    for project, fmt, option, value, why in refusals:
        with pytest.raises(ValidationError) as refused:
            create_export(session, project, {"format": fmt, option: value}, None)
        assert refused.value.errors == {option: why}, (fmt, option)
        session.rollback()
    assert session.scalar(select(func.count(DatasetExport.id))) == before
    made = [create_export(session, ranking_project, {"format": "hh-rlhf", "pairs": "per_annotation",
                                                     "ranking_pairs": "best_vs_worst"}, None),
            create_export(session, pairs_project, {"format": "trl-preference", "pairs": "per_annotation"}, None)]
    assert [(m.filters["pairs"], m.filters["ranking_pairs"]) for m in made] == [
        ("per_annotation", "best_vs_worst"), ("per_annotation", "all_pairs")]


def test_a_trainer_quality_filter_judges_every_trainer_on_figures_that_hold_every_answer(session, build, trainers,
                                                                                         monkeypatch):
    """Figures computed after the first trainer's answers, then the second trainer answered (a burst,
    nothing after it): a version filtered by trainer quality recomputes them first, so a threshold of
    0 keeps everyone; on a project too large to recompute them for any version, the card says when
    the project-wide figures were computed and what they miss; on a small one any version brings them
    up to date."""
    from app.services import exporting
    from app.services.stats import compute_project_stats

    questions = [{"key": "verdict", "type": "label", "title": "Good?", "options": {"labels": ["yes", "no"]}}]
    project = make_project(session, "labelling", [("l1", "Q1", ["Resp 1"]), ("l2", "Q2", ["Resp 2"])],
                           questions=questions, slug="stale-figures")
    with_members(session, project, trainers)
    annotate(session, trainers[0], project, {"l1": {"verdict": "yes"}, "l2": {"verdict": "yes"}})
    compute_project_stats(session, project)
    session.commit()
    annotate(session, trainers[1], project, {"l1": {"verdict": "yes"}, "l2": {"verdict": "no"}})
    monkeypatch.setattr(exporting, "FIGURES_INLINE_MAX", 3)  # this project (4 answers) counts as large
    plain = build(project, format="raw")
    assert plain.export.manifest["agreement"]["project"]["answers_after"] == 2  # not recomputed: no filter reads them
    assert "2 later answers are not in them" in (plain.folder / "README.md").read_text()
    filtered = build(project, format="raw", min_trainer_quality=0.0)
    assert filtered.export.manifest["counts"]["annotations_read"] == 4  # both trainers, all their answers
    assert filtered.export.manifest["agreement"]["project"]["answers_after"] == 0
    monkeypatch.setattr(exporting, "FIGURES_INLINE_MAX", 4)  # small now: any version brings them up to date
    session.execute(update(ProjectStats).where(ProjectStats.project_id == project.id)
                    .values(computed_at=utcnow() - timedelta(hours=1)))
    session.commit()
    small = build(project, format="raw")
    assert small.export.manifest["agreement"]["project"]["answers_after"] == 0
    assert "later answers are not in them" not in (small.folder / "README.md").read_text()


def test_versions_are_bounded_by_the_hour_and_by_the_room_on_disk(session, build, pairs_project, tmp_path,
                                                                   monkeypatch):
    """Each version is a full copy on disk: a project is asked for at most MAX_VERSIONS_PER_HOUR an
    hour, and a version that would leave the disk short of room for one as large as its largest (plus
    the reserve) is refused before anything is queued."""
    import shutil as shutil_module
    from collections import namedtuple

    from app.errors import Conflict, InsufficientStorage
    from app.services import exporting

    first = build(pairs_project, format="raw")
    size = sum(f["bytes"] for f in first.export.manifest["files"])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda _path: usage(10**12, 0, size + 1000))
    with pytest.raises(InsufficientStorage, match="not enough disk space"):
        create_export(session, pairs_project, {"format": "raw"}, None, root=tmp_path / "exports", min_free_bytes=2000)
    assert session.scalar(select(func.count(DatasetExport.id))) == 1  # nothing queued
    create_export(session, pairs_project, {"format": "raw"}, None, root=tmp_path / "exports", min_free_bytes=500)
    session.execute(update(DatasetExport).values(status="done"))  # none pending: only the hourly bound speaks
    session.commit()
    monkeypatch.setattr(exporting, "MAX_VERSIONS_PER_HOUR", 3)
    create_export(session, pairs_project, {"format": "raw"}, None)
    session.execute(update(DatasetExport).values(status="done"))
    session.commit()
    with pytest.raises(Conflict, match="in the last hour"):
        create_export(session, pairs_project, {"format": "raw"}, None)
    session.rollback()
    session.execute(update(DatasetExport).values(created_at=utcnow() - timedelta(hours=2)))
    session.commit()
    assert create_export(session, pairs_project, {"format": "raw"}, None).status == "queued"



def test_running_a_failed_version_again_meets_the_limits_a_new_one_does(session, build, pairs_project, tmp_path,
                                                                        monkeypatch):
    """A failed version run again takes as much disk as a new one and joins those being built: refused
    (nothing changed) short of room, or with MAX_PENDING_EXPORTS versions being built already."""
    import shutil as shutil_module
    from collections import namedtuple

    from app.errors import Conflict, InsufficientStorage
    from app.services import exporting

    size = sum(f["bytes"] for f in build(pairs_project, format="raw").export.manifest["files"])
    failed = DatasetExport(project_id=pairs_project.id, version=2, format="raw", status="failed", error="disk full",
                           filters={"format": "raw", "exclude_gold": True})
    session.add(failed)
    session.commit()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda _path: usage(10**12, 0, size + 1000))
    with pytest.raises(InsufficientStorage, match="not enough disk space"):
        exporting.retry_export(session, pairs_project, failed.id, root=tmp_path / "exports", min_free_bytes=2000)
    assert session.get(DatasetExport, failed.id).status == "failed"
    monkeypatch.setattr(exporting, "MAX_PENDING_EXPORTS", 1)
    create_export(session, pairs_project, {"format": "raw"}, None)  # one being built
    with pytest.raises(Conflict, match="being built"):
        exporting.retry_export(session, pairs_project, failed.id, root=tmp_path / "exports", min_free_bytes=500)
    session.expire_all()
    assert session.get(DatasetExport, failed.id).status == "failed"
    monkeypatch.setattr(exporting, "MAX_PENDING_EXPORTS", 2)
    again = exporting.retry_export(session, pairs_project, failed.id, root=tmp_path / "exports", min_free_bytes=500)
    assert again.status == "queued"


def test_clients_and_admins_each_have_their_own_quota_of_versions(session, pairs_project, monkeypatch):
    """A client asking for versions in a loop uses up the clients' hourly quota and build slots, never the
    admins' (nor the command line's): the admin still gets a version, and the other way round."""
    from app.errors import Conflict
    from app.services import exporting
    from app.services import projects as project_service
    from tests.factories import make_user

    admin, client = make_user(session, "admin"), make_user(session, "client")
    project_service.add_member(session, pairs_project, client, "client")
    session.commit()
    monkeypatch.setattr(exporting, "MAX_VERSIONS_PER_HOUR", 2)
    for _ in range(2):
        create_export(session, pairs_project, {"format": "raw"}, client.id)
        session.execute(update(DatasetExport).values(status="done"))
        session.commit()
    with pytest.raises(Conflict, match="in the last hour by its clients"):
        create_export(session, pairs_project, {"format": "raw"}, client.id)
    session.rollback()
    assert create_export(session, pairs_project, {"format": "raw"}, admin.id).status == "queued"
    assert create_export(session, pairs_project, {"format": "raw"}, None).status == "queued"
    with pytest.raises(Conflict, match="in the last hour by admins"):
        create_export(session, pairs_project, {"format": "raw"}, admin.id)
    session.rollback()
    monkeypatch.setattr(exporting, "MAX_VERSIONS_PER_HOUR", 100)
    monkeypatch.setattr(exporting, "MAX_PENDING_EXPORTS", 2)  # the admins' two are queued still
    with pytest.raises(Conflict, match="asked for by admins are being built"):
        create_export(session, pairs_project, {"format": "raw"}, admin.id)
    session.rollback()
    assert create_export(session, pairs_project, {"format": "raw"}, client.id).status == "queued"


def test_a_retried_version_counts_on_the_side_of_whoever_asked_for_it(session, pairs_project, monkeypatch):
    """A version counts on the side of whoever asked for it, once queued again too: only that side runs
    it again (a client retrying an admin's failed versions would fill the admins' slots), and a retry
    meets that side's build limit."""
    from app.errors import Conflict, Forbidden
    from app.services import exporting
    from app.services import projects as project_service
    from tests.factories import make_user

    admin, client = make_user(session, "admin"), make_user(session, "client")
    project_service.add_member(session, pairs_project, client, "client")
    session.commit()
    monkeypatch.setattr(exporting, "MAX_PENDING_EXPORTS", 2)
    failed = []
    for _ in range(3):
        export = create_export(session, pairs_project, {"format": "raw"}, admin.id)
        export.status = "failed"
        session.commit()
        failed.append(export.id)
    with pytest.raises(Forbidden, match="asked for by admins; one of them runs it again"):
        exporting.retry_export(session, pairs_project, failed[0], actor_id=client.id)
    session.rollback()
    for export_id in failed[:2]:
        exporting.retry_export(session, pairs_project, export_id, actor_id=admin.id)
    with pytest.raises(Conflict, match="asked for by admins are being built"):
        exporting.retry_export(session, pairs_project, failed[2], actor_id=admin.id)
    session.rollback()
    assert create_export(session, pairs_project, {"format": "raw"}, client.id).status == "queued"  # theirs is free
