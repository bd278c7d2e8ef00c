"""A version's files: line-aligned provenance, the items, splits by prompt, empty versions, warnings, annotators."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select, update

from app.errors import Conflict, NotFound, ValidationError
from app.models import Annotation, Item, TrainerStats, Webhook, WebhookDelivery
from app.services.exporting import FORMATS, file_path, retry_export, version_files
from app.services.exporting import build as build_step

from .conftest import annotate, make_project, with_members

OPTIONS = {"trl-kto": {"desirable_labels": "yes"}, "trl-sft": {"desirable_labels": "yes"}}


def _rows(built, name: str) -> list[dict]:
    """A data file's rows as dicts, whatever its format."""
    path = built.folder / name
    if name.endswith(".jsonl"):
        return built.lines(name)
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False) if name.endswith(".csv") else pd.read_parquet(path)
    return frame.to_dict("records")


def _check_aligned(built, session, project) -> int:
    """Every data file has a meta file with one line per row, each naming the row's item, responses,
    annotations of that item and their annotators; returns the rows checked."""
    manifest = built.export.manifest
    items = {i.external_id: i for i in session.scalars(select(Item).where(Item.project_id == project.id))}
    annotations = {a.id: a for a in session.scalars(select(Annotation).where(Annotation.project_id == project.id))}
    checked = 0
    for split, entry in manifest["splits"].items():
        rows, metas = _rows(built, entry["file"]), built.lines(entry["meta_file"])
        assert len(rows) == len(metas) == entry["rows"] > 0, split
        for row, meta in zip(rows, metas, strict=True):
            assert set(meta) == {"item_id", "response_ids", "models", "annotation_ids", "annotators", "agreement",
                                 "n_annotators"}
            item = items[meta["item_id"]]
            if "item_id" in row:
                assert row["item_id"] == meta["item_id"]
            known = {r["id"]: r.get("model") for r in item.responses}
            assert set(meta["response_ids"]) <= set(known)
            assert meta["models"] == [known[r] for r in meta["response_ids"]]
            assert meta["annotation_ids"] and all(annotations[a].item_id == item.id for a in meta["annotation_ids"])
            assert len(meta["annotators"]) == len(meta["annotation_ids"])
            assert all(p.startswith("annotator-") for p in meta["annotators"])
            checked += 1
    return checked


def test_every_format_writes_a_meta_line_per_row(build, session, request):
    checked = set()
    for fixture in ("pairs_project", "ranking_project", "critique_project", "label_project"):
        project = request.getfixturevalue(fixture)
        for name in FORMATS:
            try:
                built = build(project, format=name, **OPTIONS.get(name, {}))
            except ValidationError:
                continue
            if built.export.status == "empty":
                continue
            assert _check_aligned(built, session, project) == built.export.row_count
            checked.add(name)
    assert checked == set(FORMATS)  # csv and parquet too: one meta line per table row


def test_raw_meta_names_each_rows_own_annotation(build, session, pairs_project, pseudonym):
    built = build(pairs_project, format="raw")
    rows, metas = built.lines(), built.lines("train.meta.jsonl")
    for row, meta in zip(rows, metas, strict=True):
        (annotation_id,) = meta["annotation_ids"]
        annotation = session.get(Annotation, annotation_id)
        assert meta["annotators"] == [row["trainer"]] == [pseudonym(annotation.trainer_id)]


@pytest.fixture
def many_pairs(session, trainers):
    items = [(f"x{n:03d}", f"Question {n}", [{"id": "a", "text": f"A{n}", "model": "model-a"},
                                              {"id": "b", "text": f"B{n}", "model": "model-b"}]) for n in range(40)]
    project = make_project(session, "pairwise", items, slug="many")
    with_members(session, project, trainers)
    for k, trainer in enumerate(trainers):
        annotate(session, trainer, project, {x[0]: {"preference": (n + k) % 7 - 3} for n, x in enumerate(items)})
    return project


def test_meta_and_items_are_aligned_in_parallel_too(build, session, many_pairs, monkeypatch):
    monkeypatch.setattr(build_step, "PARALLEL_MIN_ANNOTATIONS", 1)
    single = build(many_pairs, format="trl-preference", test_fraction=0.25, validation_fraction=0.25)
    parallel = build(many_pairs, processes=2, format="trl-preference", test_fraction=0.25, validation_fraction=0.25)
    assert _check_aligned(parallel, session, many_pairs) == parallel.export.row_count
    assert {f["name"] for f in parallel.export.manifest["files"]} == {
        "train.jsonl", "validation.jsonl", "test.jsonl", "train.meta.jsonl", "validation.meta.jsonl",
        "test.meta.jsonl", "items.jsonl"}
    for entry in single.export.manifest["files"]:
        assert parallel.raw(entry["name"]) == single.raw(entry["name"]), entry["name"]
    models = parallel.export.manifest["source_models"]
    assert set(models) == {"model-a", "model-b"} and models["model-a"] == parallel.export.row_count


def test_writing_back_as_the_files_grow_changes_no_byte(build, many_pairs, monkeypatch):
    """A version's own files ask the kernel to write them out as they grow (so the fsync at close has
    little left): asked after every chunk here, in one process and in two, every file is the same and
    its manifest sha256 is the file's."""
    import hashlib
    import os

    from app.services.exporting import sinks

    monkeypatch.setattr(build_step, "PARALLEL_MIN_ANNOTATIONS", 1)
    before = {n: build(many_pairs, processes=n, format="trl-preference", test_fraction=0.25) for n in (1, 2)}
    advised = []

    def advise(fd, offset, length, advice):
        advised.append((offset, length))
        return os.posix_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(sinks, "WRITEBACK_BYTES", 1)
    monkeypatch.setattr(sinks, "_ADVISE", advise)
    for n in (1, 2):
        after = build(many_pairs, processes=n, format="trl-preference", test_fraction=0.25)
        for entry in after.export.manifest["files"]:
            assert after.raw(entry["name"]) == before[n].raw(entry["name"]), entry["name"]
            assert hashlib.sha256(after.raw(entry["name"])).hexdigest() == entry["sha256"]
    assert advised and all(length > 0 for _offset, length in advised)


def test_items_file_has_one_line_per_exported_item(build, session, trainers):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Joke?"}]
    project = make_project(session, "pairwise", [
        ("one", "Plain question", [{"id": "a", "text": "A", "model": "m-1"}, {"id": "b", "text": "B"}]),
        ("chat", chat, [{"id": "a", "text": "Knock knock"}, {"id": "b", "text": "No"}]),
        ("tie", "Tied question", [{"id": "a", "text": "T1"}, {"id": "b", "text": "T2"}]),
    ], slug="items")
    session.execute(update(Item).where(Item.project_id == project.id, Item.external_id == "one")
                    .values(meta={"source": "forum", "n": 3}))
    session.commit()
    with_members(session, project, trainers)
    for trainer in trainers:
        annotate(session, trainer, project, {"one": {"preference": -2}, "chat": {"preference": 1},
                                             "tie": {"preference": 0}})
    built = build(project, format="trl-preference")
    items = built.lines("items.jsonl")
    assert [x["item_id"] for x in items] == ["one", "chat"]  # the tie made no row: not an exported item
    assert items[0] == {"item_id": "one", "prompt": "Plain question",
                        "responses": [{"id": "a", "text": "A", "model": "m-1"}, {"id": "b", "text": "B", "model": None}],
                        "metadata": {"source": "forum", "n": 3}, "is_gold": False}
    assert "prompt" not in items[1] and items[1]["context"] == chat
    assert built.export.manifest["source_models"] == {"m-1": 1}
    assert {f["name"]: f["role"] for f in built.export.manifest["files"]}["items.jsonl"] == "items"


def test_splits_are_by_prompt_so_a_prompt_never_crosses_them(build, session, trainers):
    # 30 prompts, each asked by three items with different ids; two write it with other spacing or an
    # invisible character (the same prompt to a reader, and to the repeated-items rule)
    spelled = {1: "Prompt {n}", 2: "Prompt  {n} ", 3: "Prompt\u200b {n}\u200e"}
    items = [(f"d{n}-{copy}", spelled[copy].format(n=n), [{"id": "a", "text": f"A{copy}"}, {"id": "b", "text": f"B{copy}"}])
             for n in range(30) for copy in (1, 2, 3)]
    project = make_project(session, "pairwise", items, overlap=1, slug="dupes")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {x[0]: {"preference": -1} for x in items})
    built = build(project, format="raw", test_fraction=0.3, validation_fraction=0.2)
    manifest = built.export.manifest
    assert set(manifest["splits"]) == {"train", "validation", "test"}
    prompts = {}
    for split, entry in manifest["splits"].items():
        for line in built.lines(entry["meta_file"]):
            prompts.setdefault(line["item_id"].split("-")[0], set()).add(split)
    assert len(prompts) == 30 and all(len(splits) == 1 for splits in prompts.values())
    counts = manifest["counts"]
    assert counts["train_items"] + counts["validation_items"] + counts["test_items"] == counts["items"] == 90
    assert counts["validation_rows"] == manifest["splits"]["validation"]["rows"] > 0
    assert counts["rows"] == counts["train_rows"] + counts["validation_rows"] + counts["test_rows"]



def test_an_item_is_in_the_same_split_in_every_format(build, session, trainers):
    """An SFT, a reward-model and a DPO stage built from one project must not train on each other's test
    prompts: every format puts an item in one split, hh-rlhf and helpsteer (whose rows write the prompt
    as one string) included; and a system message spelled out as the start of the user turn, which
    hh-rlhf's transcript cannot tell apart, is in that same split too."""
    def context(n):
        kind = n % 3
        if kind == 0:
            return f"Question {n}"
        if kind == 1:
            return [{"role": "system", "content": f"Rule {n}."}, {"role": "user", "content": f"Question {n}"}]
        return [{"role": "user", "content": f"Q {n}"}, {"role": "assistant", "content": f"A {n}"},
                {"role": "user", "content": f"More {n}?"}]

    items = [(f"i{n}", context(n), [{"id": "a", "text": f"Left {n}"}, {"id": "b", "text": f"Right {n}"}])
             for n in range(36)]
    items += [(f"spelled{n}", f"Rule {n}.\n\nQuestion {n}", [{"id": "a", "text": f"L {n}"}, {"id": "b", "text": f"R {n}"}])
              for n in range(1, 36, 3)]  # i1's system message and question, as one user turn
    questions = [{"key": "preference", "type": "preference", "title": "Which is better?", "options": {"scale": 3}},
                 {"key": "helpfulness", "type": "rating", "title": "Helpful", "options": {"min": 0, "max": 4}}]
    project = make_project(session, "pairwise", items, overlap=1, questions=questions, slug="one-split")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {x[0]: {"preference": -2, "helpfulness": 3} for x in items})
    seen: dict[str, dict[str, str]] = {}
    for fmt in ("raw", "trl-preference", "openai-dpo", "hh-rlhf", "trl-kto", "trl-sft", "helpsteer3-preference"):
        built = build(project, format=fmt, test_fraction=0.3, validation_fraction=0.2)
        assert built.export.status == "done", (fmt, built.export.manifest.get("empty_reasons"))
        for split, entry in built.export.manifest["splits"].items():
            for line in built.lines(entry["meta_file"]):
                seen.setdefault(line["item_id"], {})[fmt] = split
    assert len(seen) == len(items)
    crossing = {item: where for item, where in seen.items() if len(set(where.values())) > 1}
    assert crossing == {}
    assert len({where["raw"] for where in seen.values()}) == 3  # the three splits are all there
    for n in range(1, 36, 3):
        assert seen[f"spelled{n}"]["raw"] == seen[f"i{n}"]["raw"], n
    # helpsteer (one response an item) writes its own prompt string too: the same split as raw's
    rated = make_project(session, "pairwise", [(f"h{n}", context(n), [{"id": "a", "text": f"Only {n}"}])
                                               for n in range(36)], overlap=1, questions=questions[1:], slug="rated")
    with_members(session, rated, trainers[:1])
    annotate(session, trainers[0], rated, {f"h{n}": {"helpfulness": 3} for n in range(36)})
    where = {}
    for fmt in ("raw", "helpsteer"):
        built = build(rated, format=fmt, test_fraction=0.3, validation_fraction=0.2)
        for split, entry in built.export.manifest["splits"].items():
            for line in built.lines(entry["meta_file"]):
                where.setdefault(line["item_id"], set()).add(split)
    assert len(where) == 36 and all(len(splits) == 1 for splits in where.values())
    assert {f"h{n}": next(iter(where[f"h{n}"])) for n in range(36)} == {f"h{n}": seen[f"i{n}"]["raw"] for n in range(36)}


def test_adding_a_test_split_never_moves_validation_prompts_into_it(build, session, trainers):
    """A validation-only version, then one with a test split too: every validation prompt stays in
    validation (the test split takes the lowest hash shares, validation the highest), so a model tuned
    on the first version's validation set is never scored on it as a test set."""
    items = [(f"v{n}", f"Question {n} to split", [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}]) for n in range(200)]
    project = make_project(session, "pairwise", items, overlap=1, slug="stable-splits")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {x[0]: {"preference": -1} for x in items})

    def where(**fractions):
        built = build(project, format="raw", **fractions)
        return {line["item_id"]: split for split, entry in built.export.manifest["splits"].items()
                for line in built.lines(entry["meta_file"])}

    first = where(validation_fraction=0.2)
    second = where(validation_fraction=0.2, test_fraction=0.3)
    third = where(validation_fraction=0.2, test_fraction=0.1)
    validation = {i for i, split in first.items() if split == "validation"}
    assert validation and all(second[i] == third[i] == "validation" for i in validation)
    assert {i for i, split in second.items() if split == "test"} >= {i for i, split in third.items() if split == "test"}

def test_a_split_that_gets_no_rows_has_no_file_and_a_warning(build, pairs_project):
    built = build(pairs_project, format="raw", test_fraction=0.0001)
    assert list(built.export.manifest["splits"]) == ["train"]
    assert not (built.folder / "test.jsonl").exists() and not (built.folder / "test.meta.jsonl").exists()
    assert built.export.manifest["warnings"] == ["The test split got no rows (0.01% of items asked for), so it has no file."]



def test_a_split_far_from_its_share_is_flagged_and_one_near_it_is_not(build, session, trainers):
    """Splits go by a hash of the prompt: 8 prompts cannot give 30 % and 20 % of the items, and the
    version says by how much each missed; 400 prompts land near the shares and say nothing."""
    from app.services.exporting import SPLIT_SHARE_SLACK

    def project_of(n, slug):
        items = [(f"s{i}", f"Question {i} of {slug}", [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}])
                 for i in range(n)]
        project = make_project(session, "pairwise", items, overlap=1, slug=slug)
        with_members(session, project, trainers[:1])
        annotate(session, trainers[0], project, {x[0]: {"preference": -1} for x in items})
        return project

    for n, slug in ((8, "few"), (400, "many")):
        manifest = build(project_of(n, slug), format="raw", test_fraction=0.3, validation_fraction=0.2).export.manifest
        counts, flagged = manifest["counts"], []
        for split, asked in (("test", 0.3), ("validation", 0.2)):
            share = counts[f"{split}_items"] / counts["items"]
            if split in manifest["splits"] and abs(share - asked) > max(SPLIT_SHARE_SLACK, asked / 2):
                flagged.append(f"The {split} split holds {counts[f'{split}_items']} of {n} items")
        assert [w.split(" (")[0] for w in manifest["warnings"] if "split holds" in w] == flagged
        if slug == "many":
            assert flagged == [] and manifest["warnings"] == []
        else:
            assert flagged, manifest["warnings"]  # 8 prompts: at least one split far from its share


def test_a_version_whose_train_split_got_no_row_says_so(build, session, trainers):
    """One prompt, a test split of 90 %: where its hash falls decides the split. If it falls in test, the
    version has no train file, and says so (``load_dataset`` then has no "train")."""
    items = [("only", "The one prompt", [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}])]
    project = make_project(session, "pairwise", items, overlap=1, slug="one-prompt")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"only": {"preference": -1}})
    said = {}
    for fraction in (0.9, 0.0001):
        manifest = build(project, format="raw", test_fraction=fraction).export.manifest
        said[fraction] = [w for w in manifest["warnings"] if w.startswith("The train split got no rows")]
        assert bool(said[fraction]) == ("train" not in manifest["splits"]), manifest["warnings"]
    assert said == {0.9: ["The train split got no rows: every exported item fell in test, so it has no file."],
                    0.0001: []}

def test_a_version_with_no_row_is_empty_and_says_why(app, build, session, pairs_project):
    from app.services import review as review_service
    from tests.factories import make_user

    session.add(Webhook(project_id=pairs_project.id, url="http://127.0.0.1:9/hook", secret="s" * 32,
                        events=["export.completed"], active=True))
    reviewer = make_user(session, "reviewer")
    first = session.scalars(select(Annotation).where(Annotation.project_id == pairs_project.id)
                            .order_by(Annotation.id)).first()
    review_service.record_verdict(session, first.id, reviewer.id, "reject", "Not careful")
    session.commit()
    built = build(pairs_project, format="trl-preference", date_from="2099-01-01")
    export, manifest = built.export, built.export.manifest
    assert (export.status, export.row_count, export.sha256, export.percent) == ("empty", 0, None, 100)
    assert sorted(p.name for p in built.folder.iterdir()) == ["README.md", "manifest.json"]
    assert manifest["files"] == [] and manifest["splits"] == {} and manifest["counts"]["rows"] == 0
    reasons = manifest["empty_reasons"]
    assert reasons[0].startswith("The project had 4 annotations when this version was built")
    assert "1 of them were rejected by a reviewer (trl-preference leaves rejected work out)." in reasons
    assert "4 of them were submitted before 2099-01-01T00:00:00.000000Z (date_from)." in reasons
    assert reasons[-1] == "No annotation passed every filter."
    assert [f["name"] for f in version_files(app.config["EXPORT_DIR"], export)] == ["manifest.json", "README.md"]
    assert file_path(app.config["EXPORT_DIR"], export, "manifest.json").is_file()
    with pytest.raises(NotFound):
        file_path(app.config["EXPORT_DIR"], export, "train.jsonl")
    with pytest.raises(Conflict):
        retry_export(session, pairs_project, export.id)
    session.rollback()
    delivery = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc())).first()
    assert delivery.event == "export.completed"
    assert {k: delivery.payload["data"][k] for k in ("status", "rows", "sha256", "files")} == {
        "status": "empty", "rows": 0, "sha256": None, "files": []}


def test_an_empty_version_names_what_the_format_dropped(build, session, trainers):
    project = make_project(session, "pairwise", [("t", "Q", [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}])],
                           slug="ties")
    with_members(session, project, trainers)
    for trainer in trainers:
        annotate(session, trainer, project, {"t": {"preference": 0}})
    built = build(project, format="openai-dpo")
    assert built.export.status == "empty"
    reasons = built.export.manifest["empty_reasons"]
    assert reasons[0].startswith("The project had 2 annotations")
    assert reasons[1].startswith("2 annotations passed every filter; openai-dpo made no row from them: ")
    assert "tie" in reasons[1]


def test_a_project_without_work_gives_an_empty_version(build, session):
    project = make_project(session, "pairwise", [("u", "Q", [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}])],
                           slug="idle")
    built = build(project, format="raw")
    assert built.export.status == "empty"
    assert built.export.manifest["empty_reasons"][0].startswith("The project had no annotations")


def test_a_file_under_its_consumers_minimum_is_warned_about(build, pairs_project, monkeypatch):
    monkeypatch.setitem(FORMATS, "openai-dpo", replace(FORMATS["openai-dpo"], min_rows=10))
    built = build(pairs_project, format="openai-dpo")
    rows = built.export.row_count
    assert 0 < rows < 10
    assert built.export.manifest["warnings"] == [
        f"openai-dpo: train.jsonl has {rows} rows; {FORMATS['openai-dpo'].title} needs at least 10 examples."]


def test_raw_versions_carry_an_annotators_table(build, session, pairs_project, trainers, pseudonym, monkeypatch):
    """The table copies each trainer's figures as they stand (set here, so no version recomputes them)."""
    from app.services import exporting

    monkeypatch.setattr(exporting, "FIGURES_INLINE_MAX", -1)
    t1, t2 = trainers
    session.add(TrainerStats(project_id=pairs_project.id, trainer_id=t1.id, gold_accuracy=0.9, consensus_agreement=0.5))
    session.commit()
    for name in ("raw", "csv", "parquet"):
        built = build(pairs_project, format=name)
        table = built.lines("annotators.jsonl")
        expected = sorted([{"trainer": pseudonym(t1.id), "annotations": 2, "gold_accuracy": 0.9,
                            "consensus_agreement": 0.5},
                           {"trainer": pseudonym(t2.id), "annotations": 2, "gold_accuracy": None,
                            "consensus_agreement": None}], key=lambda x: x["trainer"])
        assert table == expected, name
        assert {f["name"]: f["role"] for f in built.export.manifest["files"]}["annotators.jsonl"] == "annotators"
    assert not (build(pairs_project, format="trl-preference").folder / "annotators.jsonl").exists()
