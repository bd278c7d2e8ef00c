"""The dataset card a team can cite: licence (or a visible flag when unset), guidelines, every question and
what its answers mean, source models, dates, splits, agreement, rules, limitations, loading and citation,
and a YAML header that YAML, ``huggingface_hub`` and ``datasets`` all read the same way."""

from __future__ import annotations

import pytest
import yaml

from app.services.assignment import project_questions
from app.services.exporting import FORMATS
from app.services.exporting.card import GUIDELINES_MAX, dataset_card, license_of
from app.services.exporting.formats import Plan, QuestionSpec
from app.services.exporting.options import ExportOptions
from app.services.qtypes import type_of

from .conftest import make_project


def header(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("\n---\n", 1)[0].removeprefix("---\n"))


def body(card: str) -> str:
    return card.split("\n---\n", 1)[1]


def manifest(**changes) -> dict:
    """A version's manifest as the build writes it (the keys the card reads)."""
    data = {
        "schema_version": "groundwork-export/1", "export_id": 41, "format": "trl-preference", "conversational": False,
        "filters": ExportOptions(format="trl-preference", validation_fraction=0.2, test_fraction=0.2).as_dict(),
        "splits": {"train": {"file": "train.jsonl", "meta_file": "train.meta.jsonl", "rows": 30, "items": 15},
                   "validation": {"file": "validation.jsonl", "meta_file": "validation.meta.jsonl", "rows": 8,
                                  "items": 4},
                   "test": {"file": "test.jsonl", "meta_file": "test.meta.jsonl", "rows": 6, "items": 3}},
        "files": [{"name": f"{split}{kind}.jsonl", "rows": rows, "bytes": 10, "sha256": "0" * 64, "role": role}
                  for split, rows in (("train", 30), ("validation", 8), ("test", 6))
                  for kind, role in (("", "data"), (".meta", "meta"))]
        + [{"name": "items.jsonl", "rows": 22, "bytes": 10, "sha256": "1" * 64, "role": "items"}],
        "counts": {"rows": 44, "annotations_read": 66, "skipped": {"tie": 2}},
        "annotators": 3,
        "snapshot": {"instant": "2026-11-30T09:15:00.000000Z", "max_annotation_id": 66, "max_review_id": 4},
        "groundwork_version": "1.4.0", "database": "postgresql",
        "source_models": {"model-alpha-7b": 24, "model-beta-13b": 20},
        "annotation_dates": {"first": "2026-11-02T08:00:00.000000Z", "last": "2026-11-29T17:45:00.000000Z"},
        "agreement": {"mean_item_agreement": 0.625, "project": {"computed_at": "2026-11-30T09:00:00+00:00", "questions": [
            {"key": "preference", "type": "preference", "items_with_2_plus": 22, "pairwise_agreement": 0.71}]}},
        "warnings": ["validation.jsonl has 8 rows: fewer than 10"],
        "build_seconds": 0.5, "created_at": "2026-11-30T09:15:01+00:00",
    }
    data.update(changes)
    return data


def card_of(session, project, fmt="trl-preference", options=None, **changes):
    questions = [QuestionSpec.of(q) for q in project_questions(session, project.id)]
    options = {"validation_fraction": 0.2, "test_fraction": 0.2, **(options or {})}
    plan = Plan(options=ExportOptions(format=fmt, **options), questions=questions)
    filters = plan.options.as_dict()
    return dataset_card(project, FORMATS[fmt], manifest(format=fmt, filters=filters, **changes), questions, plan)


@pytest.fixture
def project(session):
    made = make_project(session, "pairwise", [("p1", "Q1", ["A1", "B1"])], slug="cite-me")
    made.instructions = "Prefer the answer a careful expert would give.\nPenalise invented facts."
    session.commit()
    return made


def test_an_unset_licence_is_unknown_in_the_header_and_flagged_first_in_the_body(session, project):
    project.license = ""
    card = card_of(session, project)
    assert header(card)["license"] == "unknown"
    first = body(card).strip().split("\n\n")[1]  # right under the title
    assert first.startswith("> **No licence set:**") and "settings page before sharing" in first


@pytest.mark.parametrize(("setting", "fields"), [
    ("CC-BY-4.0", {"license": "cc-by-4.0"}),
    ("mit", {"license": "mit"}),
    ("GPL-3.0-only", {"license": "other", "license_name": "gpl-3.0-only"}),
    ("other: Acme Research Data Licence v2", {"license": "other", "license_name": "acme-research-data-licence-v2"}),
    ("other: https://example.org/licences/data-2", {"license": "other", "license_name": "data-2",
                                                    "license_link": "https://example.org/licences/data-2"}),
])
def test_a_set_licence_is_written_as_the_hub_expects_and_named_in_the_body(session, project, setting, fields):
    assert license_of(setting) == fields
    project.license = setting
    card = card_of(session, project)
    meta = header(card)
    assert {k: meta.get(k) for k in fields} == fields
    assert "No licence set" not in card and f"Released under `{setting}`" in card


def test_every_question_text_help_and_meaning_is_in_the_card(session):
    project = make_project(session, "critique", [("c1", "Explain X", ["Orig"])], slug="rubric")
    questions = [QuestionSpec.of(q) for q in project_questions(session, project.id)]
    card = card_of(session, project, fmt="helpsteer")
    for q in questions:
        assert f"### `{q.key}`: {q.title}" in card
        if q.help:
            assert q.help in card
        meaning = type_of(q).card_meaning(q.options)
        if meaning is not None:
            assert meaning in card
    assert 'from 0 ("very poor") to 4 ("excellent")' in card  # the scale and its ends
    assert '"factual error", "unsafe", "irrelevant", "unclear"' in card  # the span categories
    assert "rewrite of the first response" in card and "critique of the responses" in card


def test_labels_and_described_scale_points_are_spelled_out(session):
    questions = [
        {"key": "verdict", "type": "label", "title": "Safe?", "options": {"labels": ["safe", "unsafe"]}},
        {"key": "issues", "type": "multi_label", "title": "Issues", "options": {"labels": ["tone", "facts"]}},
        {"key": "score", "type": "rating", "title": "Score",
         "options": {"min": 1, "max": 7, "anchors": {"1": "useless", "4": "acceptable", "7": "perfect"}}},
    ]
    project = make_project(session, "labelling", [("l1", "Q1", ["R1"])], questions=questions, slug="labels-card")
    card = card_of(session, project, fmt="raw")
    assert 'one of "safe", "unsafe"' in card and 'any of "tone", "facts"' in card
    assert 'from 1 ("useless") to 7 ("perfect"); described points: 4 = "acceptable"' in card


def test_source_models_dates_counts_splits_and_agreement(session, project):
    card = card_of(session, project)
    text = body(card)
    assert "| `model-alpha-7b` | 24 |" in text and "| `model-beta-13b` | 20 |" in text
    assert "from 2026-11-02T08:00:00.000000Z to 2026-11-29T17:45:00.000000Z" in text
    for row in ("| train | `train.jsonl` | 30 | 15 |", "| validation | `validation.jsonl` | 8 | 4 |",
                "| test | `test.jsonl` | 6 | 3 |"):
        assert row in text
    assert "Annotations read: 66. Annotator pool: 3 people whose annotations were read" in text and "2 × tie" in text
    assert "0.625" in text and "pairwise agreement 0.710" in text
    assert "highest annotation id 66, highest review id 4" in text and "Groundwork 1.4.0 on postgresql" in text
    assert "- validation.jsonl has 8 rows: fewer than 10" in text  # the manifest's warnings
    assert "`validation_fraction` = `0.2`" in text and "`test_fraction` = `0.2`" in text
    assert "`items.jsonl`" in text and "`train.meta.jsonl`" in text and "`annotation_ids`" in text
    configs = {c["config_name"]: c["data_files"] for c in header(card)["configs"]}
    assert configs["default"] == [{"split": "train", "path": "train.jsonl"},
                                  {"split": "validation", "path": "validation.jsonl"},
                                  {"split": "test", "path": "test.jsonl"}]
    assert [f["path"] for f in configs["meta"]] == ["train.meta.jsonl", "validation.meta.jsonl", "test.meta.jsonl"]
    assert 'load_dataset("path/to/this/folder")  # splits: train, validation, test' in text


def test_guidelines_are_quoted_in_a_fence_nothing_inside_can_close_and_are_bounded(session, project):
    project.instructions = "Rules:\n```\nnot the end of the block\n```\n" + "x" * (GUIDELINES_MAX + 50)
    text = body(card_of(session, project))
    assert "````text\nRules:\n```\nnot the end of the block\n```\n" in text
    assert "x" * (GUIDELINES_MAX - 100) in text and "x" * (GUIDELINES_MAX + 1) not in text
    assert f"The first {GUIDELINES_MAX:,} of" in text


def test_language_tags_become_a_list_and_no_stays_a_string(session, project):
    project.language = "en,no,pt-BR"
    card = card_of(session, project)
    assert header(card)["language"] == ["en", "no", "pt-BR"]  # "no" (Norwegian) is not read as false
    assert "Language: en, no, pt-BR." in card
    project.language = ""
    card = card_of(session, project)
    assert "language" not in header(card) and "Language: not stated." in card


def test_a_set_citation_is_quoted_and_an_unset_one_is_a_suggested_bibtex(session, project):
    project.citation = "@misc{acme2026, title={Acme preferences}, year={2026}}"
    card = card_of(session, project)
    assert "```bibtex\n@misc{acme2026, title={Acme preferences}, year={2026}}\n```" in card
    assert "suggested" not in card.split("## Citation", 1)[1]
    project.citation = ""
    project.name = "Helpful {pairs} \\ 2026"
    citation = card_of(session, project).split("## Citation", 1)[1]
    assert "**suggested**" in citation
    assert "@misc{cite_me_41," in citation and "year         = {2026}" in citation  # the snapshot's year
    assert "title        = {{Helpful pairs  2026}}" in citation and "Dataset version 41, format trl-preference" in citation


def test_pair_rules_name_the_mode_and_per_annotation_is_a_known_limitation(session, project):
    consensus = body(card_of(session, project))
    assert "**Pairs (consensus, the default).**" in consensus and "never in both orders" in consensus
    assert "per_annotation is a weighting view" not in consensus
    majority = consensus.split("## Known limitations", 1)[1]
    assert "a strong minority can outweigh a weak majority" in majority and "keep rows at 0.5" in majority
    weighted = body(card_of(session, project, options={"pairs": "per_annotation"}))
    assert "**Pairs (per_annotation).**" in weighted and "both orders" in weighted
    limitation = weighted.split("## Known limitations", 1)[1]
    assert "- per_annotation is a weighting view" in limitation and "once, whatever the number" in limitation
    assert "strong minority" not in limitation
    assert "once per annotator" not in weighted  # what it did say, against the Pairs section
    kto = body(card_of(session, project, fmt="trl-kto"))
    assert "**KTO labels.**" in kto and "middle is dropped" in kto
    kto_weighted = body(card_of(session, project, fmt="trl-kto", options={"pairs": "per_annotation"}))
    assert "both orders" not in kto_weighted  # KTO labels a completion once per item, whatever the mode


def test_the_features_block_types_every_column_of_the_file(session, project):
    fmt = FORMATS["trl-preference"]
    assert hasattr(fmt, "features"), "formats have no features(plan) yet"
    questions = [QuestionSpec.of(q) for q in project_questions(session, project.id)]
    plan = Plan(options=ExportOptions(format="trl-preference", margin=True), questions=questions)
    card = dataset_card(project, fmt, manifest(), questions, plan)
    infos = {i["config_name"]: i["features"] for i in header(card)["dataset_info"]}
    assert infos["default"] == fmt.features(plan)
    assert "margin" in [f["name"] for f in infos["default"]]
    assert [f["name"] for f in infos["meta"]] == ["item_id", "response_ids", "models", "annotation_ids", "annotators",
                                                  "agreement", "n_annotators"]
    assert "| `margin` | float64 |" in card


def test_hub_and_datasets_read_the_header(session, project):
    hub = pytest.importorskip("huggingface_hub")
    info = pytest.importorskip("datasets.info")
    metadata = pytest.importorskip("datasets.utils.metadata")
    project.license, project.name = "cc-by-sa-4.0", 'It\'s "odd" --- really: #1'
    card = card_of(session, project)
    data = hub.DatasetCard(card).data
    assert data.license == "cc-by-sa-4.0" and data.pretty_name == project.name and data.language == ["en"]
    configs = metadata.MetadataConfigs.from_dataset_card_data(data)
    assert [f["split"] for f in configs["default"]["data_files"]] == ["train", "validation", "test"]
    infos = info.DatasetInfosDict.from_dataset_card_data(data)
    assert set(infos["meta"].features) == {"item_id", "response_ids", "models", "annotation_ids", "annotators",
                                           "agreement", "n_annotators"}
    if hasattr(FORMATS["trl-preference"], "features"):
        assert set(infos["default"].features) == {"prompt", "chosen", "rejected"}


def test_an_empty_version_says_why_and_points_at_no_file(session, project):
    reasons = ["reviewed_only: 0 of 12 annotations are reviewed", "min_agreement 0.9: no item reaches it"]
    card = card_of(session, project, splits={}, files=[], empty_reasons=reasons,
                   counts={"rows": 0, "annotations_read": 12, "skipped": {}})
    meta = header(card)
    # the default config names only the data files the version would have had (none exists): loading fails
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "train.jsonl"}, {"split": "validation", "path": "validation.jsonl"},
        {"split": "test", "path": "test.jsonl"}]}]
    assert "dataset_info" not in meta
    text = body(card)
    assert "**This version is empty:**" in text and "This version is empty; there is nothing to load." in text
    for reason in reasons:
        assert f"- {reason}" in text
    assert "load_dataset(" not in text


def test_a_rebuild_gets_the_same_card_whatever_its_timing(session, project):
    first = card_of(session, project)
    again = card_of(session, project, build_seconds=93.1, created_at="2027-01-05T10:00:00+00:00")
    assert first == again


def test_a_built_version_carries_the_card(build, session, pairs_project):
    pairs_project.license, pairs_project.citation = "cc-by-4.0", ""
    session.commit()
    built = build(pairs_project, format="trl-preference")
    card = (built.folder / "README.md").read_text()
    meta = header(card)
    assert meta["license"] == "cc-by-4.0" and meta["pretty_name"] == pairs_project.name
    assert [c["config_name"] for c in meta["configs"]][0] == "default"
    assert "### `preference`: Which response is better?" in card and "### `rationale`: Why?" in card
    assert "**suggested**" in card and f"export id {built.export.id} in its URLs" in card


def test_a_built_empty_version_has_a_card_that_says_why(build, session, pairs_project):
    built = build(pairs_project, format="trl-preference", date_from="2099-01-01")
    assert built.export.status == "empty"
    card = (built.folder / "README.md").read_text()
    configs = header(card)["configs"]
    assert [c["config_name"] for c in configs] == ["default"] and "**This version is empty:**" in card
    assert configs[0]["data_files"] == [{"split": "train", "path": "train.jsonl"}]
    assert not (built.folder / "train.jsonl").exists() and "there is nothing to load" in card
    for reason in built.export.manifest["empty_reasons"]:
        assert f"- {reason}" in card
    assert "(date_from)" in card and "load_dataset(" not in card


def _joining(card: str) -> str:
    """The paragraph of "How to load it" on joining versions (it ends on loading the folder)."""
    section = body(card).split("## How to load it", 1)[1].split("\n## ", 1)[0]
    return next(p for p in section.split("\n\n") if p.strip().endswith("load the folder instead."))


def test_joining_versions_is_promised_only_when_message_lists_are_forced(session, project):
    project.always_messages = False
    plain = _joining(card_of(session, project))
    assert "share their columns and types" not in plain
    assert ("This version's `prompt`, `chosen`, `rejected` are plain strings because every item of the project was "
            "one user turn when it was built; once a chat (a system message or earlier turns) is added to the "
            "project, later versions are written in message lists") in plain
    assert '"Exports always write message lists" on the project\'s settings page' in plain
    chat = _joining(card_of(session, project, conversational=True))  # the project holds a chat
    assert "are message lists because the project holds an item of more than one user turn" in chat
    assert "whatever the filters" in chat and "share their columns and types" in chat
    option = _joining(card_of(session, project, options={"conversational": True}, conversational=True))
    assert "built with the `conversational` option" in option and "does not join" in option
    kto = _joining(card_of(session, project, fmt="trl-kto"))
    assert "`prompt`, `completion` are plain strings" in kto

    project.always_messages = True
    forced = _joining(card_of(session, project, conversational=True))
    assert forced.startswith('The project\'s setting "Exports always write message lists" is on, so `prompt`, '
                             "`chosen`, `rejected` are lists of `{role, content}` messages in every version")
    assert "share their columns and types, so `concatenate_datasets` joins" in forced
    assert "may switch" not in forced
    raw = _joining(card_of(session, project, fmt="raw", conversational=None))  # not a plain-or-chat format
    assert raw.startswith("Two versions of this project in this format built from the same questions share their "
                          "columns and types") and "message lists" not in raw


def _meta_table(card: str) -> dict[str, str]:
    table = card.split("describes the row on the same line of the split's file:", 1)[1].split("\n\n")[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    return {name.strip("| `"): meaning.rstrip(" |") for name, meaning in rows}


def test_the_meta_fields_say_what_agreement_and_n_annotators_are_for_the_format(session, project):
    consensus = _meta_table(card_of(session, project))
    assert list(consensus) == ["item_id", "response_ids", "models", "annotation_ids", "annotators", "agreement",
                               "n_annotators"]
    assert consensus["agreement"] == ("share of the item's annotators (those who answered the pair question) whose "
                                      "own answer orders the pair this way, chosen above rejected (an annotator who "
                                      "tied the pair does not agree)")
    assert consensus["n_annotators"] == ("how many of the item's annotators answered the pair question (the share's "
                                         "denominator)")
    assert consensus["response_ids"] == "the pair's two responses, chosen first"
    weighted = _meta_table(card_of(session, project, options={"pairs": "per_annotation"}))
    assert weighted["n_annotators"] == "how many annotators gave this direction"
    assert weighted["annotation_ids"] == "the annotations that gave this direction"
    kto = _meta_table(card_of(session, project, fmt="trl-kto"))
    assert "puts the completion on the row's side" in kto["agreement"]
    raw = _meta_table(card_of(session, project, fmt="raw"))
    assert raw["agreement"].startswith("always null") and raw["n_annotators"] == "always 1"
    for table in (consensus, weighted, kto, raw):
        assert "annotator pairs" not in table["agreement"]
    rules = body(card_of(session, project, options={"with_agreement": True}))
    assert ("`agreement` is the share of the item's annotators (those who answered the pair question) whose own "
            "answer orders the pair that way, and `n_annotators` how many of them answered it.") in rules
    aggregated = _meta_table(card_of(session, project, fmt="aggregated"))
    assert aggregated["agreement"].startswith("share of annotator pairs agreeing on the item's first comparable")
