"""Every JSONL format loads in Hugging Face `datasets` with stable columns and types (the rules in the README, Exports)."""

from __future__ import annotations

import orjson
import pytest

from app.services.exporting import FORMATS

from .conftest import annotate, make_project, with_members

JSONL = [name for name, fmt in FORMATS.items() if fmt.extension == "jsonl"]
OPTIONS = {"trl-kto": {"desirable_labels": "yes"}, "trl-sft": {"desirable_labels": "yes"}}


def _features(path):
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(path.parent / ".hf"))
    return loaded


def _check_file(path):
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert lines, f"{path.name} is empty"
    keys = [tuple(x) for x in lines]
    assert len(set(keys)) == 1, f"lines with different keys: {set(keys)}"
    for key in keys[0]:
        kinds = {type(x[key]).__name__ for x in lines if x[key] is not None}
        assert len(kinds) == 1, f"column {key} mixes {kinds}"
        assert kinds, f"column {key} is null on every line"
        if key in ("prompt", "chosen", "rejected", "completion"):
            assert kinds <= {"str", "list"}
    return lines


@pytest.fixture
def every_kind(session, trainers, pairs_project, ranking_project, critique_project, label_project):
    return {"pairs": pairs_project, "ranks": ranking_project, "crit": critique_project, "labels": label_project}


@pytest.mark.parametrize("fmt", JSONL)
def test_every_jsonl_format_loads_with_stable_columns(build, every_kind, fmt):
    loaded_any = False
    for project in every_kind.values():
        try:
            built = build(project, format=fmt, **OPTIONS.get(fmt, {}))
        except Exception as exc:  # a format this project cannot produce says so up front
            assert "needs" in str(exc)
            continue
        path = built.folder / "train.jsonl"
        if not path.stat().st_size:
            continue
        lines = _check_file(path)
        dataset = _features(path)
        assert dataset.num_rows == len(lines)
        assert list(dataset.column_names) == list(lines[0])
        for name, feature in dataset.features.items():
            assert str(getattr(feature, "dtype", "")) != "null", f"{fmt}: {name} loads as null"
        if "margin" in dataset.features:
            assert dataset.features["margin"].dtype == "float64"
        loaded_any = True
    assert loaded_any, f"no demo-like project produced {fmt}"


def test_margin_loads_as_float64_even_when_whole(build, pairs_project):
    dataset = _features(build(pairs_project, format="trl-preference", margin=True).folder / "train.jsonl")
    assert dataset.features["margin"].dtype == "float64"
    assert dataset.features["prompt"].dtype == "string"


def test_one_multi_turn_item_makes_the_whole_file_conversational(build, session, trainers):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Q9"}]
    project = make_project(session, "pairwise", [
        ("m1", "Q1", [{"id": "a", "text": "A1"}, {"id": "b", "text": "B1"}]),
        ("m2", chat, [{"id": "a", "text": "A9"}, {"id": "b", "text": "B9"}]),
    ], overlap=1, slug="mixed")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"m1": {"preference": -1}, "m2": {"preference": 2}})
    built = build(project, format="trl-preference")
    assert built.lines() == [
        {"prompt": [{"role": "user", "content": "Q1"}], "chosen": [{"role": "assistant", "content": "A1"}],
         "rejected": [{"role": "assistant", "content": "B1"}]},
        {"prompt": chat, "chosen": [{"role": "assistant", "content": "B9"}],
         "rejected": [{"role": "assistant", "content": "A9"}]},
    ]
    assert built.export.manifest["conversational"] is True
    dataset = _features(built.folder / "train.jsonl")
    prompt = dataset.features["prompt"]  # a list of messages, not a string
    assert type(prompt).__name__ in ("List", "Sequence") and prompt.feature["role"].dtype == "string"
    hh = build(project, format="hh-rlhf").lines()
    assert hh[1]["chosen"] == "\n\nHuman: Be brief.\n\nHi\n\nAssistant: Hello\n\nHuman: Q9\n\nAssistant: B9"
