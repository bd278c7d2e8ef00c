"""Every JSONL format loads in Hugging Face `datasets` with stable columns and types (the rules in the README,
Exports): a version's folder loads with its splits and the card's types, and two versions of one project and
format load together even when a column is null throughout one of them or their items differ in shape."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import update

from app.models import Annotation, Item
from app.services import projects as project_service
from app.services.exporting import FORMATS

from .conftest import annotate, item_id, make_project, with_members

JSONL = [name for name, fmt in FORMATS.items() if fmt.extension == "jsonl"]
OPTIONS = {"trl-kto": {"desirable_labels": "yes"}, "trl-sft": {"desirable_labels": "yes"}}
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Q9"}]


def _features(path):
    """One file alone, types guessed by ``datasets`` (what a user of the files without the card gets)."""
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(path.parent / ".hf"))
    return loaded


def _folder(folder, cache, name=None):
    """A version's folder as ``load_dataset(folder)`` reads it: the card's splits and column types."""
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(str(folder), name, cache_dir=str(cache))


def _card_features(folder, name="default"):
    """The column types a version's card declares (``dataset_info``), as ``datasets`` reads them."""
    hub = pytest.importorskip("huggingface_hub")
    from datasets.info import DatasetInfosDict

    return DatasetInfosDict.from_dataset_card_data(hub.DatasetCard.load(folder / "README.md").data)[name].features


def _check_file(path):
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert lines, f"{path.name} is empty"
    keys = [tuple(x) for x in lines]
    assert len(set(keys)) == 1, f"lines with different keys: {set(keys)}"
    for key in keys[0]:
        kinds = {type(x[key]).__name__ for x in lines if x[key] is not None}
        assert len(kinds) <= 1, f"column {key} mixes {kinds}"  # null throughout is allowed: the card types it
        if key in ("prompt", "chosen", "rejected", "completion"):
            assert kinds <= {"str", "list"}
    return lines


@pytest.fixture
def every_kind(session, trainers, pairs_project, ranking_project, critique_project, label_project):
    return {"pairs": pairs_project, "ranks": ranking_project, "crit": critique_project, "labels": label_project}


def _no_null_type(feature, where: str) -> None:
    """No column, nor any field inside one, is typed null (what ``datasets`` guesses for an all-null column)."""
    inner = getattr(feature, "feature", None)
    if isinstance(feature, dict):
        for name, sub in feature.items():
            _no_null_type(sub, f"{where}.{name}")
    elif inner is not None:
        _no_null_type(inner, where)
    else:
        assert str(getattr(feature, "dtype", "")) != "null", f"{where} loads as null"


@pytest.mark.parametrize("fmt", JSONL)
def test_every_jsonl_format_loads_with_stable_columns(build, every_kind, fmt, tmp_path):
    loaded_any = False
    for kind, project in every_kind.items():
        # desirable labels only where a label question decides (elsewhere they would change nothing: refused)
        options = {k: v for k, v in OPTIONS.get(fmt, {}).items() if k != "desirable_labels" or kind == "labels"}
        try:
            built = build(project, format=fmt, **options)
        except Exception as exc:  # a format this project cannot produce says so up front
            assert "needs" in str(exc)
            continue
        path = built.folder / "train.jsonl"
        if not path.is_file() or not path.stat().st_size:
            continue
        lines = _check_file(path)
        dataset = _folder(built.folder, tmp_path / ".hf")["train"]
        assert dataset.num_rows == len(lines)
        assert list(dataset.column_names) == list(lines[0])
        _no_null_type(dict(dataset.features), fmt)
        if "margin" in dataset.features:
            assert dataset.features["margin"].dtype == "float64"
        loaded_any = True
    assert loaded_any, f"no demo-like project produced {fmt}"


def test_margin_loads_as_float64_even_when_whole(build, pairs_project):
    dataset = _features(build(pairs_project, format="trl-preference", margin=True).folder / "train.jsonl")
    assert dataset.features["margin"].dtype == "float64"
    assert dataset.features["prompt"].dtype == "string"


def test_one_multi_turn_item_makes_the_whole_file_conversational(build, session, trainers):
    chat = CHAT
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


def test_two_raw_versions_load_together_when_one_has_no_gold_score_at_all(build, session, trainers, tmp_path):
    datasets = pytest.importorskip("datasets")
    project = make_project(session, "pairwise", [(f"g{n}", f"Q{n}", [{"id": "a", "text": f"A{n}"},
                                                                      {"id": "b", "text": f"B{n}"}])
                                                 for n in range(4)], slug="gold-twice")
    with_members(session, project, trainers)
    for trainer, value in zip(trainers, (-2, 1), strict=True):
        annotate(session, trainer, project, {f"g{n}": {"preference": value, "rationale": "r"} for n in range(4)})
    gold = item_id(session, project, "g0")  # g0 is a gold item: its annotations carry a gold score
    session.execute(update(Item).where(Item.id == gold).values(is_gold=True, gold_answers={"preference": -2}))
    session.execute(update(Annotation).where(Annotation.item_id == gold).values(gold_score=0.5))
    session.commit()

    without = build(project, format="raw")  # gold left out: gold_score is null on every line
    with_gold = build(project, format="raw", exclude_gold=False)
    assert {x["gold_score"] for x in without.lines()} == {None}
    assert {x["gold_score"] for x in with_gold.lines()} == {None, 0.5}
    assert without.lines()[0].keys() == with_gold.lines()[0].keys()  # the null column is kept, not dropped

    first, second = (_folder(b.folder, tmp_path / ".hf")["train"] for b in (without, with_gold))
    assert first.features == second.features and first.features["gold_score"].dtype == "float64"
    both = datasets.concatenate_datasets([first, second])
    assert both.num_rows == len(without.lines()) + len(with_gold.lines())
    files = [str(b.folder / "train.jsonl") for b in (without, with_gold)]  # the files alone, typed by the card
    joined = datasets.load_dataset("json", data_files=files, split="train", features=_card_features(without.folder),
                                   cache_dir=str(tmp_path / ".hf"))
    assert sorted(x for x in joined["gold_score"] if x is not None) == [0.5, 0.5]
    annotators = _folder(with_gold.folder, tmp_path / ".hf", "annotators")["train"]  # raw versions list them
    assert annotators.num_rows == 2 and annotators.features["gold_accuracy"].dtype == "float64"
    assert set(annotators["trainer"]) == set(joined["trainer"])


def test_always_messages_keeps_a_version_of_single_turn_items_in_messages(build, session, trainers, tmp_path):
    datasets = pytest.importorskip("datasets")
    project = make_project(session, "pairwise", [
        ("m1", "Q1", [{"id": "a", "text": "A1"}, {"id": "b", "text": "B1"}]),
        ("m2", CHAT, [{"id": "a", "text": "A9"}, {"id": "b", "text": "B9"}]),
    ], overlap=1, slug="always-chat")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"m1": {"preference": -1}, "m2": {"preference": 2}})
    for external_id, when in (("m1", datetime(2026, 3, 1, tzinfo=UTC)), ("m2", datetime(2026, 3, 20, tzinfo=UTC))):
        session.execute(update(Annotation).where(Annotation.item_id == item_id(session, project, external_id))
                        .values(submitted_at=when))
    project.always_messages = True
    session.commit()

    early = build(project, format="trl-preference", date_to="2026-03-10")  # m1 only: one user turn
    full = build(project, format="trl-preference")
    assert early.lines() == [{"prompt": [{"role": "user", "content": "Q1"}],
                              "chosen": [{"role": "assistant", "content": "A1"}],
                              "rejected": [{"role": "assistant", "content": "B1"}]}]
    assert len(full.lines()) == 2 and full.lines()[1]["prompt"] == CHAT
    first, second = (_folder(b.folder, tmp_path / ".hf")["train"] for b in (early, full))
    assert first.features == second.features
    assert datasets.concatenate_datasets([first, second]).num_rows == 3

    # Without the setting too: the project holds a chat, so every version writes message lists, whichever
    # items pass the filters (a chat nobody answered, or a gold one, counts as well).
    project.always_messages = False
    session.commit()
    again = build(project, format="trl-preference", date_to="2026-03-10")
    assert again.lines()[0]["prompt"] == [{"role": "user", "content": "Q1"}]
    assert _folder(again.folder, tmp_path / ".hf2")["train"].features == second.features


def test_a_project_of_single_turn_items_writes_plain_strings(build, session, trainers):
    project = make_project(session, "pairwise", [("p1", "Q1", ["A1", "B1"])], overlap=1, slug="plain-only")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"p1": {"preference": -1}})
    assert build(project, format="trl-preference").lines()[0]["prompt"] == "Q1"
    project_service.add_item(session, project, prompt=CHAT, responses=["A2", "B2"], external_id="c1")
    session.commit()  # a chat arrives, unanswered: from now on every version writes messages
    assert build(project, format="trl-preference").lines()[0]["prompt"] == [{"role": "user", "content": "Q1"}]


def test_a_version_folder_loads_with_its_train_validation_and_test_splits(build, session, trainers, tmp_path):
    items = [(f"s{n:02d}", f"Question number {n}", [{"id": "a", "text": f"A{n}"}, {"id": "b", "text": f"B{n}"}])
             for n in range(40)]
    project = make_project(session, "pairwise", items, overlap=1, slug="three-splits")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {x[0]: {"preference": -1 if n % 3 else 2} for n, x in enumerate(items)})
    built = build(project, format="trl-preference", margin=True, validation_fraction=0.2, test_fraction=0.2)
    splits = built.export.manifest["splits"]
    assert set(splits) == {"train", "validation", "test"}  # (PostgreSQL JSONB keeps no key order)

    loaded = _folder(built.folder, tmp_path / ".hf")
    assert set(loaded) == {"train", "validation", "test"}
    for name, split in loaded.items():
        assert split.num_rows == splits[name]["rows"] == len(built.lines(splits[name]["file"])) > 0
        assert split.features == _card_features(built.folder)
    assert loaded["train"].features["margin"].dtype == "float64"
    prompts = {name: set(split["prompt"]) for name, split in loaded.items()}
    assert not (prompts["train"] & prompts["validation"] or prompts["train"] & prompts["test"]
                or prompts["validation"] & prompts["test"])  # a prompt never crosses splits
    meta = _folder(built.folder, tmp_path / ".hf", "meta")  # provenance, line by line beside the rows
    for name, split in meta.items():
        assert split.num_rows == loaded[name].num_rows
        assert all(x.startswith("s") for x in split["item_id"])


def _card(folder) -> tuple[dict, str]:
    """A version's card: its YAML header and its body."""
    import yaml

    text = (folder / "README.md").read_text()
    head, body = text.removeprefix("---\n").split("\n---\n", 1)
    return yaml.safe_load(head), body


def _run_loading_code(folder, tmp_path, monkeypatch) -> dict:
    """Runs the card's "How to load it" code as written, on this folder (its caches under tmp_path)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / ".hf-doc"))
    _meta, body = _card(folder)
    code = body.split("## How to load it", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    scope: dict = {}
    exec(code.replace("path/to/this/folder", str(folder)), scope)  # noqa: S102 - the card's own example
    return scope


@pytest.mark.parametrize("fmt", ["csv", "parquet", "raw"])
def test_every_config_of_a_table_version_and_its_documented_meta_loading_work(build, session, trainers, fmt,
                                                                               tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    project = make_project(session, "pairwise", [(f"t{n}", f"Q{n}", [{"id": "a", "text": f"A{n}"},
                                                                     {"id": "b", "text": f"B{n}"}])
                                                 for n in range(3)], slug=f"tables-{fmt}")
    with_members(session, project, trainers)
    for trainer, value in zip(trainers, (-2, 1), strict=True):
        annotate(session, trainer, project, {f"t{n}": {"preference": value, "rationale": "r"} for n in range(3)})
    built = build(project, format=fmt)
    header, body = _card(built.folder)
    names = [c["config_name"] for c in header["configs"]]
    assert names == (["default", "meta", "annotators"] if fmt == "raw" else ["default"])
    for name in names:  # every config the card lists loads, with the card's types
        loaded = _folder(built.folder, tmp_path / ".hf", name)["train"]
        assert loaded.num_rows == {"default": 6, "meta": 6, "annotators": 2}[name]
        assert loaded.features == _card_features(built.folder, name)
    scope = _run_loading_code(built.folder, tmp_path, monkeypatch)
    meta, annotators = scope["meta"]["train"], scope["annotators"]["train"]
    assert meta.num_rows == 6 and sorted(set(meta["item_id"])) == ["t0", "t1", "t2"]
    assert meta.features["agreement"].dtype == "float64" and set(meta["agreement"]) == {None}
    assert meta.features["n_annotators"].dtype == "int64" and set(meta["n_annotators"]) == {1}
    assert annotators.num_rows == 2 and annotators.features["gold_accuracy"].dtype == "float64"
    assert scope["dataset"]["train"].num_rows == 6
    if fmt != "raw":
        assert 'load_dataset("json", data_files=' in body and 'load_dataset("path/to/this/folder", "meta")' not in body
        with pytest.raises(ValueError, match="meta"):  # not a config of the folder
            datasets.load_dataset(str(built.folder), "meta", cache_dir=str(tmp_path / ".hf"))


@pytest.mark.parametrize("fmt", ["trl-preference", "csv"])
def test_an_empty_version_never_loads_its_manifest_as_data(build, pairs_project, fmt, tmp_path):
    datasets = pytest.importorskip("datasets")
    built = build(pairs_project, format=fmt, date_from="2099-01-01")
    assert built.export.status == "empty"
    assert sorted(p.name for p in built.folder.iterdir()) == ["README.md", "manifest.json"]
    with pytest.raises(FileNotFoundError, match=rf"train\.{'csv' if fmt == 'csv' else 'jsonl'}"):
        datasets.load_dataset(str(built.folder), cache_dir=str(tmp_path / ".hf"))
    assert "This version is empty; there is nothing to load." in _card(built.folder)[1]


def test_a_csv_version_keeps_na_like_strings_as_its_card_says(build, session, trainers, tmp_path, monkeypatch):
    pandas = pytest.importorskip("pandas")
    project = make_project(session, "pairwise", [
        ("NaN", "Q1", [{"id": "a", "text": "A1"}, {"id": "b", "text": "B1"}]),
        ("null", "Q2", [{"id": "a", "text": "A2"}, {"id": "b", "text": "B2"}]),
    ], overlap=1, slug="na-strings")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"NaN": {"preference": -1, "rationale": "NA"},
                                             "null": {"preference": 2, "rationale": "None"}})
    built = build(project, format="csv")
    path = built.folder / "train.csv"
    assert pandas.read_csv(path)["item_id"].isna().all()  # what pandas does by default: the reason for the card
    _header, body = _card(built.folder)
    assert 'pandas.read_csv("path/to/this/folder/train.csv", keep_default_na=False, na_values=[""], dtype={' in body
    assert ('load_dataset("csv", data_files={"train": "path/to/this/folder/train.csv"}, features=DATA, '
            'keep_default_na=False, na_values=[""])') in body
    scope = _run_loading_code(built.folder, tmp_path, monkeypatch)  # the documented calls, as written
    frame = scope["frame"]
    assert sorted(frame["item_id"]) == ["NaN", "null"] and sorted(frame["answer_rationale"]) == ["NA", "None"]
    assert frame["gold_score"].isna().all()  # an empty cell is still null
    alone = scope["dataset"]["train"]  # load_dataset("csv", data_files=…, keep_default_na=False, na_values=[""])
    assert sorted(alone["item_id"]) == ["NaN", "null"] and set(alone["gold_score"]) == {None}
    folder = _folder(built.folder, tmp_path / ".hf")["train"]  # the folder: the card's config passes them
    assert sorted(folder["item_id"]) == ["NaN", "null"] and sorted(folder["answer_rationale"]) == ["NA", "None"]
    assert set(folder["gold_score"]) == {None} and folder.features["gold_score"].dtype == "float64"


def test_a_csv_version_keeps_numeric_looking_text_as_written(build, session, trainers, tmp_path, monkeypatch):
    """Ids "001" and "1e3" and labels "1" and "1.0" are text: read by the card's config and its
    examples, they stay as written (the reader would otherwise guess numbers, then cast them back)."""
    questions = [{"key": "verdict", "type": "label", "title": "Verdict?", "options": {"labels": ["1", "2", "1.0"]}}]
    project = make_project(session, "labelling", [
        ("001", "Q1", ["R1"]), ("010", "Q2", ["R2"]), ("1e3", "Q3", ["R3"]),
    ], overlap=1, slug="numeric-text", questions=questions)
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"001": {"verdict": "1"}, "010": {"verdict": "1.0"},
                                             "1e3": {"verdict": "2"}})
    built = build(project, format="csv")
    expected = {"001": "1", "010": "1.0", "1e3": "2"}
    scope = _run_loading_code(built.folder, tmp_path, monkeypatch)  # the documented calls, as written
    frame = scope["frame"]
    assert dict(zip(frame["item_id"], frame["answer_verdict"], strict=True)) == expected
    alone = scope["dataset"]["train"]
    assert dict(zip(alone["item_id"], alone["answer_verdict"], strict=True)) == expected
    folder = _folder(built.folder, tmp_path / ".hf")["train"]
    assert dict(zip(folder["item_id"], folder["answer_verdict"], strict=True)) == expected


def test_a_csv_version_with_an_unanswered_number_loads_as_its_card_says(build, session, trainers, tmp_path,
                                                                        monkeypatch):
    """An optional rating one trainer left out is an empty cell: the card's features (float64 for
    whole-number answers in CSV) load it as null, by the folder and by the card's own calls."""
    questions = [{"key": "helpfulness", "type": "rating", "title": "Helpful?", "options": {"min": 1, "max": 5}},
                 {"key": "verbosity", "type": "rating", "title": "Verbose?", "options": {"min": 1, "max": 5},
                  "required": False}]
    project = make_project(session, "labelling", [("a1", "Q1", ["R1"]), ("a2", "Q2", ["R2"])], overlap=1,
                           slug="blank-number", questions=questions)
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"a1": {"helpfulness": 4, "verbosity": 2}, "a2": {"helpfulness": 5}})
    built = build(project, format="csv")
    expected = {"a1": (4, 2), "a2": (5, None)}
    folder = _folder(built.folder, tmp_path / ".hf")["train"]
    assert "not a spreadsheet program" in (built.folder / "README.md").read_text()  # cells kept as written
    assert folder.features["answer_verbosity"].dtype == "float64"
    assert {r["item_id"]: (r["answer_helpfulness"], r["answer_verbosity"]) for r in folder} == expected
    scope = _run_loading_code(built.folder, tmp_path, monkeypatch)
    alone = scope["dataset"]["train"]
    assert {r["item_id"]: (r["answer_helpfulness"], r["answer_verbosity"]) for r in alone} == expected
    frame = scope["frame"]
    assert frame.set_index("item_id")["answer_verbosity"].isna().to_dict() == {"a1": False, "a2": True}
    parquet = build(project, format="parquet")  # Parquet holds a null integer: int64 there
    assert _folder(parquet.folder, tmp_path / ".hf2")["train"].features["answer_verbosity"].dtype == "int64"


def test_a_carriage_return_in_an_answer_stays_in_its_csv_cell(build, session, trainers, tmp_path):
    """A lone CR in a trainer's text is quoted (rows end with CRLF): pandas and `datasets` read the
    manifest's rows, and no forged row starts with what followed it."""
    pandas = pytest.importorskip("pandas")
    project = make_project(session, "pairwise", [("q1", "Q1", ["A1", "B1"]), ("q2", "Q2", ["A2", "B2"])],
                           overlap=1, slug="carriage")
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"q1": {"preference": -1, "rationale": "B wins\r=2+3"},
                                             "q2": {"preference": 2, "rationale": "line\nbreak"}})
    built = build(project, format="csv")
    frame = pandas.read_csv(built.folder / "train.csv", keep_default_na=False, na_values=[""])
    assert len(frame) == built.export.row_count == 2
    assert sorted(frame["answer_rationale"]) == ["B wins\r=2+3", "line\nbreak"]
    loaded = _folder(built.folder, tmp_path / ".hf")["train"]
    assert sorted(loaded["answer_rationale"]) == ["B wins\r=2+3", "line\nbreak"]
