"""What consumers read: every format's lines have exactly the columns and JSON types its ``features``
declare (the card's ``dataset_info``), under every option that changes the columns, and ``datasets``
loads the files with those features."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from datasets import Features, load_dataset

from app.services.exporting import FORMATS
from app.services.exporting.formats import Plan, QuestionSpec
from app.services.exporting.options import ExportOptions

PYTHON_TYPES = {"string": (str,), "int64": (int,), "float64": (float,), "bool": (bool,)}


def check(value, feature: dict, where: str) -> None:
    """``value`` (a JSON value; null is allowed anywhere) has the type ``feature`` declares."""
    if value is None:
        return
    if "dtype" in feature:
        types = PYTHON_TYPES[feature["dtype"]]
        assert isinstance(value, types) and (feature["dtype"] == "bool" or not isinstance(value, bool)), \
            f"{where}: {value!r} is not {feature['dtype']}"
    elif "struct" in feature:
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        # key order inside an answer is the database's (PostgreSQL's jsonb sorts it): names, not order
        assert set(value) == {f["name"] for f in feature["struct"]}, f"{where}: keys {list(value)}"
        for f in feature["struct"]:
            check(value[f["name"]], f, f"{where}.{f['name']}")
    else:
        inner = feature.get("list", feature.get("sequence"))
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        element = {"struct": inner} if isinstance(inner, list) else {"dtype": inner} if isinstance(inner, str) else inner
        for n, x in enumerate(value):
            check(x, element, f"{where}[{n}]")


def plan_of(built, project_questions) -> Plan:
    manifest = built.export.manifest
    options = ExportOptions(**{k: v for k, v in manifest["filters"].items()
                               if k not in ("date_from", "date_to", "as_of", "desirable_labels")},
                            desirable_labels=tuple(manifest["filters"]["desirable_labels"]))
    return Plan(options=options, questions=project_questions, conversational=bool(manifest["conversational"]))


CASES = [
    # (format, fixture, options)
    *[(fmt, "pairs_project", {}) for fmt in ("trl-preference", "openai-dpo", "hh-rlhf", "trl-kto", "trl-sft",
                                            "helpsteer3-preference", "raw", "aggregated", "csv", "parquet")],
    ("trl-preference", "pairs_project", {"margin": True, "with_agreement": True, "with_ids": True}),
    ("trl-preference", "pairs_project", {"conversational": True, "pairs": "per_annotation", "margin": True}),
    ("hh-rlhf", "pairs_project", {"margin": True, "with_agreement": True, "with_ids": True}),
    ("trl-kto", "ranking_project", {"with_agreement": True, "with_ids": True, "conversational": True}),
    ("trl-kto", "label_project", {"desirable_labels": "yes", "with_ids": True}),
    ("trl-sft", "critique_project", {"with_ids": True}),
    ("helpsteer3-preference", "pairs_project", {"with_ids": True}),
    ("openai-sft", "critique_project", {}),
    ("helpsteer", "critique_project", {}),
    ("helpsteer", "critique_project", {"with_ids": True, "pairs": "per_annotation"}),
    ("raw", "ranking_project", {}), ("raw", "critique_project", {}), ("raw", "label_project", {}),
    ("aggregated", "ranking_project", {}), ("aggregated", "critique_project", {}), ("aggregated", "label_project", {}),
    ("csv", "critique_project", {}), ("parquet", "critique_project", {}),
]


def test_every_format_is_covered():
    assert {fmt for fmt, _fixture, _options in CASES} == set(FORMATS)


@pytest.mark.parametrize(("fmt", "fixture", "options"), CASES,
                         ids=[f"{f}-{x}-{'-'.join(o) or 'default'}" for f, x, o in CASES])
def test_features_are_exactly_the_columns_and_types_of_every_line(request, session, build, tmp_path, fmt, fixture,
                                                                   options):
    from app.services.exporting import project_questions

    project = request.getfixturevalue(fixture)
    built = build(project, format=fmt, **options)
    plan = plan_of(built, [QuestionSpec.of(q) for q in project_questions(session, project.id)])
    features = FORMATS[fmt].features(plan)
    names = [f["name"] for f in features]
    if fmt == "csv":
        assert list(pd.read_csv(built.folder / "train.csv").columns) == names
        return
    if fmt == "parquet":
        schema = pq.read_schema(built.folder / "train.parquet")
        arrow = {"string": "string", "int64": "int64", "float64": "double"}
        assert [(f.name, str(f.type)) for f in schema] == [(f["name"], arrow[f["dtype"]]) for f in features]
        return
    lines = built.lines()
    assert lines, "the case must produce lines"
    for n, line in enumerate(lines):
        assert list(line) == names, f"line {n}"
        for f in features:
            check(line[f["name"]], f, f"line {n}: {f['name']}")
    loaded = load_dataset("json", data_files=str(built.folder / "train.jsonl"), split="train",
                          features=Features._from_yaml_list(features), cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == len(lines)
    assert list(loaded.features) == names
