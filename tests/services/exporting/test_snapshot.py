"""A version is a snapshot: what it read is fixed by its instant and ids, and ``as_of`` rebuilds it byte for byte."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text, update

from app.db import get_db
from app.models import Annotation, DatasetExport
from app.services import review as review_service
from app.services.exporting import build as build_step
from app.services.exporting import create_export
from app.services.projects import add_item, get_by_slug
from tests.factories import make_user

from .conftest import annotate

FORMATS_CHECKED = ("raw", "trl-preference", "aggregated")


def _digests(built, *, with_annotators: bool = True) -> dict[str, str]:
    return {f["name"]: hashlib.sha256((built.folder / f["name"]).read_bytes()).hexdigest()
            for f in built.export.manifest["files"] if with_annotators or f["role"] != "annotators"}


def _annotations(session, project) -> list[Annotation]:
    return session.scalars(select(Annotation).where(Annotation.project_id == project.id).order_by(Annotation.id)).all()


@pytest.mark.parametrize("processes", [1, 2])
def test_as_of_rebuilds_a_version_byte_for_byte_after_new_work_and_verdicts(build, session, pairs_project, trainers,
                                                                            processes, monkeypatch):
    monkeypatch.setattr(build_step, "PARALLEL_MIN_ANNOTATIONS", 1)
    reviewer = make_user(session, "reviewer")
    first_rows = _annotations(session, pairs_project)
    review_service.record_verdict(session, first_rows[3].id, reviewer.id, "approve")  # seen by the first versions
    before = {name: build(pairs_project, processes=processes, format=name, test_fraction=0.5)
              for name in FORMATS_CHECKED}
    instant = before["raw"].export.manifest["snapshot"]["instant"]
    assert not before["trl-preference"].export.manifest["conversational"]
    # Later: new items (one a chat, which makes new versions write message lists) and annotations,
    # and a verdict of every kind on the old work.
    for n in (3, 4):
        add_item(session, pairs_project, prompt=f"Q{n}", responses=[{"id": "a", "text": f"A{n}"},
                                                                    {"id": "b", "text": f"B{n}"}],
                 external_id=f"p{n}")
    add_item(session, pairs_project, prompt=[{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Q5"}],
             responses=[{"id": "a", "text": "A5"}, {"id": "b", "text": "B5"}], external_id="p5")
    session.commit()
    for k, trainer in enumerate(trainers):
        annotate(session, trainer, pairs_project, {"p3": {"preference": 2 - k, "rationale": "r"},
                                                   "p4": {"preference": -3, "rationale": "r"},
                                                   "p5": {"preference": 1, "rationale": "r"}})
    review_service.record_verdict(session, first_rows[0].id, reviewer.id, "reject", "Not careful")
    review_service.record_verdict(session, first_rows[1].id, reviewer.id, "correct", "",
                                  {"preference": 3, "rationale": "fixed"})
    review_service.record_verdict(session, first_rows[2].id, reviewer.id, "approve")
    session.commit()
    for name, old in before.items():
        now = build(pairs_project, processes=processes, format=name, test_fraction=0.5)
        assert _digests(now) != _digests(old), name  # the new work shows
        again = build(pairs_project, processes=processes, format=name, test_fraction=0.5, as_of=instant)
        # Every file byte for byte but a raw version's annotators table, which gives each trainer's
        # quality figures as they are now (the card's known limitations): the new work changed them.
        assert _digests(again, with_annotators=False) == _digests(old, with_annotators=False), name
        assert set(_digests(again)) == set(_digests(old))
        assert again.export.manifest["filters"]["as_of"] == instant
        for split in old.export.manifest["splits"]:
            assert again.raw(f"{split}.meta.jsonl") == old.raw(f"{split}.meta.jsonl")
        assert again.raw("items.jsonl") == old.raw("items.jsonl")
        assert again.raw("train.jsonl") == old.raw("train.jsonl")


def test_a_version_sees_nothing_that_arrives_while_it_is_built(app, build, session, pairs_project, trainers,
                                                               monkeypatch):
    """New work and verdicts committed after the build took its snapshot are not in it."""
    import app.services.exporting as exporting

    reviewer = make_user(session, "reviewer")
    add_item(session, pairs_project, prompt="Q9", responses=[{"id": "a", "text": "A9"}, {"id": "b", "text": "B9"}],
             external_id="p9")
    session.commit()
    quiet = build(pairs_project, format="raw")
    rows = _annotations(session, pairs_project)
    real_write_all = exporting.write_all

    def meanwhile(*args, **kwargs):
        with app.app_context():
            other = get_db().session_factory()
            try:
                review_service.record_verdict(other, rows[0].id, reviewer.id, "reject", "Late")
                review_service.record_verdict(other, rows[1].id, reviewer.id, "correct", "",
                                              {"preference": 3, "rationale": "fixed"})
                project = get_by_slug(other, pairs_project.slug)
                annotate(other, other.get(type(trainers[0]), trainers[0].id), project,
                         {"p9": {"preference": 1, "rationale": "r"}})
            finally:
                other.close()
        return real_write_all(*args, **kwargs)

    monkeypatch.setattr(exporting, "write_all", meanwhile)
    busy = build(pairs_project, format="raw")
    assert busy.raw() == quiet.raw() and busy.raw("train.meta.jsonl") == quiet.raw("train.meta.jsonl")
    monkeypatch.setattr(exporting, "write_all", real_write_all)
    after = build(pairs_project, format="raw")
    assert sorted(x["review_status"] for x in after.lines()) == ["corrected", "rejected", "unreviewed", "unreviewed",
                                                                 "unreviewed"]
    assert {x["review_status"] for x in busy.lines()} == {"unreviewed"}
    assert "p9" in {x["item_id"] for x in after.lines()}
    snapshot = after.export.manifest["snapshot"]
    assert snapshot["max_annotation_id"] >= max(a.id for a in _annotations(session, pairs_project))
    assert snapshot["max_review_id"] > busy.export.manifest["snapshot"]["max_review_id"]


def test_date_filters_take_instants_and_a_bare_day_for_to_takes_the_whole_day(build, session, pairs_project):
    rows = _annotations(session, pairs_project)
    stamps = ["2026-11-30 23:59:59.999999", "2026-12-01 09:30:00", "2026-12-01 17:45:10.250000",
              "2026-12-02 00:00:00"]
    for row, stamp in zip(rows, stamps, strict=True):
        session.execute(update(Annotation).where(Annotation.id == row.id)
                        .values(submitted_at=datetime.fromisoformat(stamp).replace(tzinfo=UTC)))
    session.commit()

    def kept(**options) -> list[str]:
        built = build(pairs_project, format="raw", **options)
        return [] if built.export.status == "empty" else [x["submitted_at"][:26] for x in built.lines()]

    assert len(kept(date_from="2026-12-01", date_to="2026-12-01")) == 2  # the whole day, nothing either side
    assert len(kept(date_from="2026-12-01T09:30:00Z", date_to="2026-12-01T17:45:10.25Z")) == 2  # both ends included
    assert len(kept(date_from="2026-12-01T09:30:00.000001Z")) == 2
    assert len(kept(date_to="2026-12-01T10:30:00+01:00")) == 2  # 09:30 UTC
    # a time to the second, minute or hour takes the whole of it (what a form's datetime-local sends)
    assert len(kept(date_to="2026-12-01T17:45:10")) == 3  # 17:45:10.25 is in that second
    assert len(kept(date_to="2026-12-01T17:45")) == 3
    assert len(kept(date_to="2026-12-01T17:45:10.000Z")) == 2  # a fraction names the instant
    assert len(kept(date_to="2026-11-30T23:59:59Z")) == 1
    built = build(pairs_project, format="raw", date_from="2026-12-01T09:30:00Z", date_to="2026-12-01T17:45:10.25Z")
    dates = built.export.manifest["annotation_dates"]
    assert dates == {"first": "2026-12-01T09:30:00.000000Z", "last": "2026-12-01T17:45:10.250000Z"}
    assert built.export.manifest["filters"]["date_to"] == "2026-12-01T17:45:10.250000Z"


def test_creating_a_version_never_meets_a_locked_database(app, session, pairs_project):
    """SQLite: a transaction that has read cannot start writing once another connection committed
    (a webhook delivery job, say); create_export takes the write lock before its first read."""
    project = get_by_slug(session, pairs_project.slug)  # this session has read
    with app.app_context():
        with get_db().engine.connect() as other:  # another writer commits meanwhile
            other.execute(text("UPDATE projects SET citation = 'x' WHERE id = :id"), {"id": project.id})
            other.commit()
    export = create_export(session, project, {"format": "raw"}, None)
    assert session.get(DatasetExport, export.id).status == "queued"


@pytest.mark.parametrize("fmt", ["raw", "trl-preference"])
def test_the_manifest_records_the_snapshot_and_provenance(build, session, pairs_project, fmt):
    built = build(pairs_project, format=fmt)
    manifest = built.export.manifest
    ids = [a.id for a in _annotations(session, pairs_project)]
    assert manifest["snapshot"]["max_annotation_id"] >= max(ids)
    assert manifest["snapshot"]["instant"].endswith("Z") and len(manifest["snapshot"]["instant"]) == 27
    assert manifest["database"] == session.get_bind().dialect.name
    assert manifest["annotation_dates"]["first"] and manifest["annotation_dates"]["last"]
