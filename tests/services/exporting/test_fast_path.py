"""The pair formats' fast path (``Format.encoder``) writes exactly what the general path writes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from app.models import Annotation
from app.services import projects as project_service
from app.services import review as review_service
from app.services.exporting import FORMATS
from app.services.exporting import build as build_step
from app.services.exporting.formats import Format
from tests.factories import make_user

from .conftest import annotate, make_project, with_members


def _items(chat: bool) -> list[tuple]:
    items = []
    for n in range(24):
        responses = [{"id": "a", "text": f"A{n} \u2028 line"}, {"id": "b", "text": f"B{n} ünïcode"}]
        if n % 3 == 0:  # some items name their models, one of them on one side only
            responses[0]["model"] = "model-a"
            if n % 2:
                responses[1]["model"] = "model-b"
        prompt = f"Question {n}"
        if chat and n == 5:
            prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello"}, {"role": "user", "content": f"Question {n}?"}]
        items.append((f"f{n:02d}", prompt, responses))
    items.append(("ranked", "Which reads better?", [{"id": "b", "text": "Second"}, {"id": "a", "text": "First"}]))
    return items


def _project(session, trainers, chat: bool):
    project = make_project(session, "pairwise", _items(chat), slug=f"fast-{int(chat)}")
    extra = {}
    if chat:  # a conversation that opens with the assistant (hh-rlhf skips it and counts it)
        project.allow_assistant_first = True
        project_service.add_item(session, project, external_id="opens-with-assistant",
                                 prompt=[{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"}],
                                 responses=[{"id": "a", "text": "One"}, {"id": "b", "text": "Two"}])
        session.commit()
        extra = {"opens-with-assistant": {"preference": 2, "rationale": "r"}}
    with_members(session, project, trainers)
    t1, t2 = trainers
    # ties, agreement and disagreement, strong and weak; the last item answered by one trainer only
    annotate(session, t1, project, {f"f{n:02d}": {"preference": (n % 7) - 3, "rationale": "r"} for n in range(24)}
             | {"ranked": {"preference": 2, "rationale": "r"}} | extra)
    annotate(session, t2, project, {f"f{n:02d}": {"preference": (n * 5 % 7) - 3, "rationale": "r"} for n in range(23)}
             | extra)
    reviewer = make_user(session, "reviewer")
    first = session.scalars(select(Annotation).where(Annotation.project_id == project.id).order_by(Annotation.id)).all()
    review_service.record_verdict(session, first[1].id, reviewer.id, "correct", "", {"preference": -3, "rationale": "x"})
    review_service.record_verdict(session, first[4].id, reviewer.id, "reject", "Not careful")
    session.commit()
    return project


ENCODED = ["trl-preference", "openai-dpo", "hh-rlhf"]


def test_every_format_with_an_encoder_is_tested_here():
    default = Format.__dataclass_fields__["encoder"].default
    assert sorted(name for name, fmt in FORMATS.items() if fmt.encoder is not default) == sorted(ENCODED)


@pytest.mark.parametrize("name", ENCODED)
@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("processes", [1, 2])
def test_the_fast_path_writes_what_the_general_path_writes(build, session, trainers, monkeypatch, chat, processes,
                                                           name):
    project = _project(session, trainers, chat)
    options = {"format": name, "test_fraction": 0.25, "validation_fraction": 0.25}
    fmt = FORMATS[name]
    used = []

    def counting(plan):
        encode = fmt.encoder(plan)

        def counted(group, models):
            out = encode(group, models)
            used.append(out is not None)
            return out

        return counted

    monkeypatch.setattr(build_step, "PARALLEL_MIN_ANNOTATIONS", 1)
    monkeypatch.setitem(FORMATS, name, replace(fmt, encoder=counting))
    fast = build(project, processes=processes, **options)
    monkeypatch.setitem(FORMATS, name, replace(fmt, encoder=lambda plan: None))
    general = build(project, processes=processes, **options)

    if processes == 1:  # (a helper process's calls are not seen here)
        assert sum(used) >= 20  # the fast path wrote most items
    assert fast.export.manifest["conversational"] is (chat if name == "trl-preference" else None)
    assert fast.export.manifest["files"] == general.export.manifest["files"]
    for entry in general.export.manifest["files"]:  # data, meta and items files, byte for byte
        assert fast.raw(entry["name"]) == general.raw(entry["name"]), entry["name"]
    for key in ("counts", "source_models", "annotators", "annotation_dates", "splits"):
        assert fast.export.manifest[key] == general.export.manifest[key], key
    assert fast.export.manifest["counts"]["skipped"]["tie"] > 0
    if chat and name == "hh-rlhf":
        assert any("starts with an assistant" in reason for reason in fast.export.manifest["counts"]["skipped"])
    assert set(fast.export.manifest["source_models"]) == {"model-a", "model-b"}


def test_the_annotation_dates_are_those_of_the_annotations_read(build, session, pairs_project):
    built = build(pairs_project, format="trl-preference")
    first, last = session.execute(select(func.min(Annotation.submitted_at), func.max(Annotation.submitted_at))
                                  .where(Annotation.project_id == pairs_project.id)).one()
    dates = built.export.manifest["annotation_dates"]

    def second(value) -> str:  # SQLite may hand the aggregate back as text
        return (value if isinstance(value, str) else value.isoformat(sep=" "))[:19].replace(" ", "T")

    assert dates["first"].startswith(second(first)) and dates["last"].startswith(second(last))
