"""The dataset card (README.md, Hugging Face style) written next to every version's files.

A card is what an AI team cites and what ``datasets`` reads: its YAML header names the licence, the
languages, the splits (``configs``) and the column types (``dataset_info.features``, so a column that
is null in one version types the same as in another); its body says what was asked, what the answers
mean, where the responses came from, when and by how many people it was annotated, how the rows were
made and how to load and cite them. It is made from the manifest, the project and the plan only, so
the same version always gets the same card (no clock is read here).
"""

from __future__ import annotations

import json
import re

from ..qtypes import FIGURE_NAMES, type_of
from .options import MIN_AGREEMENT_MEANING, ExportOptions

TASKS = {
    "trl-preference": "reinforcement-learning", "openai-dpo": "reinforcement-learning",
    "hh-rlhf": "reinforcement-learning", "trl-kto": "reinforcement-learning",
    "helpsteer3-preference": "reinforcement-learning",
    "trl-sft": "text-generation", "openai-sft": "text-generation",
}
SPLITS = ("train", "validation", "test")
GUIDELINES_MAX = 20_000  # characters of the instructions quoted in the card (the rest: the project's page)

# The licence ids the Hugging Face Hub accepts in a card's ``license:`` (its "Licenses" page); any
# other licence is written ``license: other`` with a ``license_name``.
HF_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl
gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql
ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 llama3 llama3.1 llama3.2 llama3.3 gemma
unknown other
""".split())

# How each training format makes its rows from the answers (one paragraph per family).
FAMILIES = {
    "trl-preference": "pairs", "openai-dpo": "pairs", "hh-rlhf": "pairs", "helpsteer3-preference": "strengths",
    "trl-kto": "kto", "trl-sft": "sft", "openai-sft": "sft", "helpsteer": "ratings",
    "raw": "annotations", "csv": "annotations", "parquet": "annotations", "aggregated": "items",
}

# The columns of ``<split>.meta.jsonl`` (one line per data row, same order), as the card types them.
META_FEATURES = [
    {"name": "item_id", "dtype": "string"},
    {"name": "response_ids", "sequence": "string"},
    {"name": "models", "sequence": "string"},
    {"name": "annotation_ids", "sequence": "int64"},
    {"name": "annotators", "sequence": "string"},
    {"name": "agreement", "dtype": "float64"},
    {"name": "n_annotators", "dtype": "int64"},
]
# ``annotators.jsonl`` (raw tables only): one line per annotator of the version.
ANNOTATORS_FEATURES = [
    {"name": "trainer", "dtype": "string"},
    {"name": "annotations", "dtype": "int64"},
    {"name": "gold_accuracy", "dtype": "float64"},
    {"name": "consensus_agreement", "dtype": "float64"},
]
FILE_ROLES = {
    "data": "the rows",
    "meta": "provenance of each row, same line (below)",
    "items": "one line per exported item: `item_id`, `prompt` (one user turn) or `context` (messages), "
             "`responses` [{id, text, model}], `metadata`, `is_gold`",
    "annotators": "one line per annotator: `trainer` (pseudonym), `annotations` in this version, "
                  "`gold_accuracy` and `consensus_agreement` (null when unknown): the project's quality "
                  "figures as last computed, over the answers as the trainers gave them (before reviewers' "
                  "corrections) and all their work, not this version's filters",
}
META_FIELDS = (
    ("item_id", "the item's external id"),
    ("response_ids", "the ids of the item's responses the row uses (chosen first in pair rows)"),
    ("models", "the source model of each of those responses (null where the import named none)"),
    ("annotation_ids", "the annotations the row was made from"),
    ("annotators", "the pseudonym of each of those annotations' annotators, same order"),
    ("agreement", "how far the row's annotators agree (null where the format computes none)"),
    ("n_annotators", "how many people the row's annotations came from"),
)
_ALL_RESPONSES = "all the item's responses, in page order"
_ONE_ANNOTATION = "the row's one annotation"
# What ``response_ids``, ``annotation_ids``, ``agreement`` and ``n_annotators`` hold, per format family (and
# pair mode where it matters), as formats.py's ``_meta`` and build.meta_lines write them.
META_MEANINGS = {
    ("pairs", "consensus"): (
        "the pair's two responses, chosen first",
        "the item's annotations that answered the pair question",
        "share of the item's annotators (those who answered the pair question) whose own answer orders the pair "
        "this way, chosen above rejected (an annotator who tied the pair does not agree)",
        "how many of the item's annotators answered the pair question (the share's denominator)"),
    ("pairs", "per_annotation"): (
        "the pair's two responses, chosen first",
        "the annotations that gave this direction",
        "share of the item's annotators (those who answered the pair question) whose own answer gives this "
        "direction",
        "how many annotators gave this direction"),
    ("strengths", None): (
        "the item's two responses, `response1` first",
        "the annotations that answered the preference question",
        "share of those annotators whose preference is on the side of the mean (a tie agrees with a tied mean)",
        "how many annotators answered the preference question"),
    ("kto", None): (
        "the row's completion",
        "the annotations that answered the question deciding the label (the preference or ranking question, "
        "else the label question)",
        "from a preference or ranking: share of those annotators whose own answer puts the completion on the row's "
        "side (in their own top group for a desirable row, their bottom group for an undesirable one); from a "
        "label question: share of them who gave the item's majority label",
        "how many annotators answered that question (the share's denominator)"),
    ("sft", None): (
        "a rewrite row: empty (the text is the annotator's, no response's); a consensus-best row: that response",
        "a rewrite row: the annotations that wrote that rewrite; a consensus-best row: those that answered the "
        "question deciding it",
        "null on a rewrite row; on a consensus-best row the share of those annotators whose own answer puts the "
        "response in their own top group (or who gave the majority label)",
        "a rewrite row: how many annotators wrote it; a consensus-best row: how many answered the deciding question"),
    ("rewrites", None): (
        "empty: the text is the annotator's rewrite, no response's",
        "the annotations that wrote that rewrite",
        "always null",
        "how many annotators wrote that rewrite"),
    ("ratings", "consensus"): (
        "the rated response",
        "the annotations that gave at least one rating (each column is the mean of those that gave it)",
        "always null (no agreement is computed for ratings)",
        "how many annotations gave at least one rating"),
    ("ratings", "per_annotation"): ("the rated response", _ONE_ANNOTATION, "always null", "always 1"),
    ("annotations", None): (_ALL_RESPONSES, _ONE_ANNOTATION, "always null (one row per annotation)", "always 1"),
    ("items", None): (
        _ALL_RESPONSES,
        "all the item's annotations",
        "share of annotator pairs agreeing on the item's first comparable question, the row's `agreement` (null "
        "under two answers)",
        "how many distinct people annotated the item"),
}


def meta_fields(fmt, manifest: dict) -> tuple[tuple[str, str], ...]:
    """The meta file's fields and what they hold for this format (and pair mode)."""
    family = "rewrites" if fmt.name == "openai-sft" else FAMILIES.get(fmt.name)
    mode = (manifest.get("filters") or {}).get("pairs", "consensus")
    meanings = META_MEANINGS.get((family, mode)) or META_MEANINGS.get((family, None))
    if meanings is None:
        return META_FIELDS
    exact = dict(zip(("response_ids", "annotation_ids", "agreement", "n_annotators"), meanings, strict=True))
    return tuple((name, exact.get(name, meaning)) for name, meaning in META_FIELDS)


# The columns that are strings or message lists in a plain-or-chat format.
TEXT_COLUMNS = ("prompt", "chosen", "rejected", "completion")
ALWAYS_MESSAGES = "Exports always write message lists"
FOLDER = "path/to/this/folder"
# Pandas (and so ``datasets``' csv reader) reads "NA", "NaN", "null"… as null unless told: a CSV version's
# default config and its loading examples keep every non-empty cell as written.
CSV_KEEP = {"keep_default_na": False, "na_values": [""]}
CSV_KEEP_ARGS = 'keep_default_na=False, na_values=[""]'


def _text_columns(features) -> dict[str, str]:
    """The string columns of a CSV version, as the reader's ``dtype``: read as text, not guessed ("001"
    stays "001", and labels "1" and "1.0" stay two)."""
    return {f["name"]: "str" for f in features if f.get("dtype") == "string"}


def _csv_args(features) -> str:
    """``pandas.read_csv``'s arguments for a CSV version: keep what looks like null, read text as text."""
    return f"{CSV_KEEP_ARGS}, dtype={_text_columns(features)!r}"


def size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if rows < limit:
            return name
    return "10M<n<100M"


def _figure(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _j(value) -> str:
    """A YAML scalar: JSON is valid YAML, and quotes whatever a project name or label holds."""
    return json.dumps(value, ensure_ascii=False)


# Words YAML 1.1 reads as booleans or null (``no`` is also Norwegian's language tag): always quoted.
YAML_WORDS = frozenset("y n yes no on off true false null".split())


def _scalar(value) -> str:
    """A YAML scalar as a person would write it when that is safe (``cc-by-4.0``, ``n<1K``), else JSON."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+/<-]*", value) and value.lower() not in YAML_WORDS:
        return value
    return _j(value)


def _one_line(text) -> str:
    return " ".join(str(text or "").split())


def _cell(text) -> str:
    """Free text inside a Markdown table cell: one line, and a ``|`` that does not end the cell."""
    return _one_line(text).replace("|", "\\|")


def _fenced(text: str, info: str = "") -> list[str]:
    """A fenced block that no backtick run inside ``text`` can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, text, fence]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.+]+", "-", text.lower()).strip("-")[:64] or "custom"


def license_of(value: str) -> dict:
    """The card's licence fields from the project's setting: an id the Hub knows (lower-case), else
    ``other`` with a name (and a link when the setting is an address); ``unknown`` when unset."""
    text = (value or "").strip()
    if not text:
        return {"license": "unknown"}
    if text.lower().startswith("other:"):
        name = text[len("other:"):].strip()
        fields = {"license": "other", "license_name": _slug(name.rsplit("/", 1)[-1] if "://" in name else name)}
        if re.match(r"https?://\S+$", name):
            fields["license_link"] = name
        return fields
    if text.lower() in HF_LICENSES:
        return {"license": text.lower()}
    return {"license": "other", "license_name": _slug(text)}


def languages(value: str | None) -> list[str]:
    return [tag.strip() for tag in (value or "").split(",") if tag.strip()]


def _splits(manifest: dict) -> list[tuple[str, dict]]:
    """(split, {"file", "meta_file", "rows", "items"}) for each split that has rows, in the usual order."""
    splits = manifest.get("splits")
    if splits is None:  # a manifest from before splits were listed: train, then test if written
        files, counts = manifest.get("files", []), manifest.get("counts", {})
        data = [f for f in files if f.get("role", "data") == "data"]
        splits = {name: {"file": f["name"], "rows": f["rows"], "items": counts.get(f"{name}_items")}
                  for name, f in zip(("train", "test"), data, strict=False)}
    return [(name, splits[name]) for name in (*SPLITS, *sorted(set(splits) - set(SPLITS)))
            if name in splits and splits[name].get("rows")]


def _features(fmt, plan) -> list[dict] | None:
    return fmt.features(plan) if plan is not None else None


def _feature_type(feature: dict) -> str:
    """How a column's type reads in the card's table: string, int64, list of {role, content}…"""
    if "dtype" in feature:
        return str(feature["dtype"])
    if "sequence" in feature:
        inner = feature["sequence"]
        return f"list of {inner}" if isinstance(inner, str) else f"list of {_feature_type(inner)}"
    if "list" in feature:
        inner = feature["list"]
        if isinstance(inner, list):
            return "list of {" + ", ".join(f"{f['name']}: {_feature_type(f)}" for f in inner) + "}"
        return f"list of {inner if isinstance(inner, str) else _feature_type(inner)}"
    if "struct" in feature:
        return "{" + ", ".join(f"{f['name']}: {_feature_type(f)}" for f in feature["struct"]) + "}"
    return "?"


def _meaning(fmt, column: str) -> str:
    """A column's meaning from the format's ``fields``, whose names may group columns (``a / b``) or stand
    for many (``answer_<key>``, ``<rating key>``)."""
    for name, meaning in fmt.fields:
        for part in name.split(" / "):
            pattern = ".+".join(re.escape(piece) for piece in re.split(r"<[^>]*>", part))
            if part == column or ("<" in part and re.fullmatch(pattern, column)):
                return meaning
    return ""


def _yaml(value, indent: int = 0) -> list[str]:
    """Block YAML for lists and mappings of plain values (scalars written as JSON)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines += _yaml(item, indent + (2 if isinstance(item, dict) else 0))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    else:
        for item in value:
            inner = _yaml(item, indent + 2) if isinstance(item, dict | list) else [f"{pad}  {_scalar(item)}"]
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
    return lines


def _annotators_file(manifest: dict) -> str | None:
    return next((f["name"] for f in manifest.get("files") or [] if f.get("role") == "annotators" and f.get("rows")),
                None)


def _asked(manifest: dict) -> list[str]:
    """The splits the version's options asked for (train, then validation and test when given a share)."""
    filters = manifest.get("filters") or {}
    return ["train", *[name for name in ("validation", "test") if filters.get(f"{name}_fraction")]]


def _header(project, fmt, manifest: dict, splits, features) -> list[str]:
    rows = sum(s["rows"] for _name, s in splits)
    data: dict = dict(license_of(project.license))
    if languages(project.language):
        data["language"] = languages(project.language)
    data["pretty_name"] = project.name
    data["size_categories"] = [size_category(rows)]
    if fmt.name in TASKS:
        data["task_categories"] = [TASKS[fmt.name]]
    data["tags"] = ["human-feedback", "groundwork", fmt.name]
    configs = []
    extension = fmt.extension
    # A CSV version's default config also carries the features: the csv builder then reads text columns as
    # text (it derives pandas' dtypes from them) instead of guessing numbers and casting them back.
    keep = {**CSV_KEEP, "features": features} if extension == "csv" else {}
    if splits:
        configs.append({"config_name": "default",
                        "data_files": [{"split": name, "path": s["file"]} for name, s in splits], **keep})
        # ``datasets`` reads every config of a folder with the one builder it infers from the default config's
        # files (no per-config builder): the .jsonl meta and annotators files only load as configs beside
        # .jsonl data; a csv or parquet version's card shows how to load them with the json builder instead.
        if extension == "jsonl":
            meta = [{"split": name, "path": s["meta_file"]} for name, s in splits if s.get("meta_file")]
            if meta:
                configs.append({"config_name": "meta", "data_files": meta})
            annotators = _annotators_file(manifest)
            if annotators:
                configs.append({"config_name": "annotators", "data_files": [{"split": "train", "path": annotators}]})
    elif manifest.get("empty_reasons"):
        # Nothing to load: point the default config at the data files the version would have had, so
        # ``load_dataset(folder)`` fails with "not found" instead of reading manifest.json as a one-row dataset.
        configs.append({"config_name": "default",
                        "data_files": [{"split": name, "path": f"{name}.{extension}"} for name in _asked(manifest)]})
        features = None
    if configs:
        data["configs"] = configs
        typed = {"default": features, "meta": META_FEATURES, "annotators": ANNOTATORS_FEATURES}
        infos = [{"config_name": c["config_name"], "features": typed[c["config_name"]]}
                 for c in configs if typed[c["config_name"]]]
        if infos:
            data["dataset_info"] = infos
    return ["---", *_yaml(data), "---"]


def _questions(questions, manifest: dict) -> list[str]:
    figures = {q["key"]: q for q in ((manifest.get("agreement") or {}).get("project") or {}).get("questions") or []}
    lines = ["## Questions", ""]
    if not questions:
        return [*lines, "The questions are listed on the project's page.", ""]
    lines += ["What the annotators were asked, in order (the files key each answer by the question's key):", ""]
    for q in questions:
        kind = type_of(q)
        lines.append(f"### `{q.key}`: {_one_line(q.title)}")
        lines.append("")
        lines.append(f"- Type: {kind.title} (`{kind.name}`).")
        if _one_line(q.help):
            lines.append(f"- Help shown to annotators: {_one_line(q.help)}")
        meaning = kind.card_meaning(q.options)
        if meaning:
            lines.append(f"- Values: {meaning.rstrip()}" + ("" if meaning.rstrip().endswith(".") else "."))
        figure = figures.get(q.key)
        if figure:
            shown = "; ".join(f"{label} {_figure(figure[name])}" for name, label in FIGURE_NAMES.items()
                              if name in figure)
            if shown:
                lines.append(f"- Agreement (project-wide, {_figure(figure.get('items_with_2_plus'))} items with "
                             f"two or more annotations): {shown}.")
        lines.append("")
    return lines


def _rules(fmt, manifest: dict) -> list[str]:
    """How this format's rows were made from the answers, under this version's options."""
    family = FAMILIES.get(fmt.name)
    filters = manifest.get("filters") or {}
    mode = filters.get("pairs", "consensus")
    ranking = filters.get("ranking_pairs", "all_pairs")
    if family == "pairs":
        if mode == "consensus":
            text = ("**Pairs (consensus, the default).** One row per pair of an item's responses, in the direction "
                    "its annotators agreed on: for a preference question the sign of the mean preference "
                    "(negative: the first response is better), for a ranking question the Bradley–Terry order "
                    f"fitted to all the item's rankings, paired as `{ranking}` (all_pairs: every better/worse "
                    "pair; best_vs_worst: the top group against the bottom group; best_vs_rest: the top group "
                    "against every other). A pair whose consensus is a tie is dropped (counted under *Not "
                    "exported*). So no pair appears twice, and never in both orders, also across items that "
                    "ask the same prompt: the first item (oldest) to give a pair of texts keeps it, and a later "
                    "one's is dropped (counted).")
        else:
            text = ("**Pairs (per_annotation).** One row for each direction the item's annotators gave a pair, "
                    "once, whatever the number of annotators who gave it (ties dropped): a pair annotators "
                    "disagreed on appears in both orders. This is a weighting, not a consensus: contradicting "
                    "rows cancel in a pairwise loss. The consensus mode gives one row per pair.")
        if filters.get("margin"):
            text += (" `margin` is the preference strength (the absolute mean preference in consensus mode) or "
                     "the rank gap for rankings.")
        if filters.get("with_agreement"):
            text += (" `agreement` is the share of the item's annotators (those who answered the pair question) whose "
                     "own answer orders the pair that way, and `n_annotators` "
                     + ("how many of them answered it." if mode == "consensus" else "how many gave this direction."))
        return [text]
    if family == "strengths":
        return ["**Preference strengths.** One row per item with two responses: `overall_preference` is the "
                "mean of its annotators' preferences rescaled to −3…3 and rounded half to even (negative: `response1` "
                "is better), and `individual_preference` holds each annotator's score on the same scale, in "
                "annotation order, with their reasoning. So a mean within ±0.5 of 0 (+1, +1, −3 is −1/3) is written "
                "as 0, a tie, where the pair formats, which take the mean's side, write a pair. `language` is the "
                "project's language setting as it stands (several tags when it has several), not a per-row guess."]
    if family == "kto":
        return ["**KTO labels.** One label per (prompt, completion) per item, whatever the pair mode. From a "
                "preference or ranking question: the responses of the consensus top group are desirable, those of "
                "the bottom group undesirable, the middle is dropped, and an item whose consensus ties every "
                "response gives nothing (a preference's consensus is the mean's direction). From a label question "
                "with desirable labels: the side more than half of the annotators took decides (labels among the "
                "desirable ones, or not), and an even split gives nothing. A completion repeating another of the "
                "item's texts is written once, and across items that ask the same prompt the oldest item's label "
                "of a completion stands (a later item's is dropped and counted), so no completion is both "
                "desirable and undesirable."]
    if family == "sft":
        return ["**Completions.** Each row is the conversation ending with an assistant turn: a rewrite an "
                "annotator wrote that differs from the responses (each distinct rewrite once), or, where the "
                "format takes it, the item's consensus-best response."]
    if family == "ratings":
        return ["**Rubric ratings.** One row per item with one response; in consensus mode each rating column "
                "is the rounded mean of the item's annotators, in per_annotation mode one row per annotation."]
    if family == "annotations":
        return ["**Annotations.** One row per annotation as submitted (a reviewer's correction replaces the "
                "answers), rejected ones included with their status. Gold items are left out unless asked."]
    if family == "items":
        return ["**Items.** One row per item: the consensus of every question with an agreement measure, "
                "and the share of annotators agreeing with it."]
    return []


def _filters(manifest: dict) -> str:
    filters = manifest.get("filters") or {}
    defaults = ExportOptions(format=filters.get("format", "raw")).as_dict()
    changed = [f"`{k}` = `{_j(v)}`" for k, v in filters.items() if k != "format" and defaults.get(k, v) != v]
    return ", ".join(changed) if changed else "the defaults"


def _version(manifest: dict):
    """The version's number in its project (manifests made before versions were numbered: its id)."""
    return manifest.get("version") or manifest.get("export_id", "")


def _citation(project, fmt, manifest: dict) -> list[str]:
    citation = (project.citation or "").strip()
    if citation:
        return ["Cite this dataset as its owner asks:", "", *_fenced(citation, "bibtex" if "@" in citation else "")]
    snapshot = manifest.get("snapshot") or {}
    when = snapshot.get("instant") or manifest.get("created_at") or ""
    year = when[:4] if re.match(r"\d{4}", when) else "????"
    key = re.sub(r"[^A-Za-z0-9]+", "_", f"{project.slug}_{_version(manifest)}").strip("_")
    title = re.sub(r"[{}\\]", "", _one_line(project.name))
    bibtex = "\n".join([
        f"@misc{{{key},",
        f"  title        = {{{{{title}}}}},",
        f"  year         = {{{year}}},",
        f"  note         = {{Dataset version {_version(manifest)}, format {fmt.name}, "
        "exported with Groundwork},",
        "}",
    ])
    return ["No citation is set for this project. A **suggested** entry, built from the project's name, the "
            "year of this version and its export id (add the authors and where it is published):", "",
            *_fenced(bibtex, "bibtex")]


def _py_features(name: str, features: list[dict]) -> list[str]:
    """``name = Features({...})`` for flat features (a dtype, or a sequence of one), as a card's code shows it."""
    def one(f: dict) -> str:
        return f'Value("{f["dtype"]}")' if "dtype" in f else f'Sequence(Value("{f["sequence"]}"))'

    return [f"{name} = Features({{", *[f'    "{f["name"]}": {one(f)},' for f in features], "})"]


def _joining(project, fmt, manifest: dict, features) -> str:
    """When two versions' splits join with ``concatenate_datasets``: exactly, for plain-or-chat formats."""
    options = "" if FAMILIES.get(fmt.name) in ("annotations", "items") else \
        " with the same column options (`margin`, `with_ids`, `with_agreement`)"
    alike = (f"built from the same questions{options} share their columns and types, so `concatenate_datasets` "
             "joins their folders' splits.")
    same = "Two versions of this project in this format " + alike
    if not fmt.plain_or_chat:
        return same
    names = [f["name"] for f in features or [] if f["name"] in TEXT_COLUMNS] or ["prompt"]
    columns = ", ".join(f"`{n}`" for n in names)
    if project.always_messages:
        return (f'The project\'s setting "{ALWAYS_MESSAGES}" is on, so {columns} are lists of `{{role, content}}` '
                "messages in every version built while it stays on, whatever its items: two such versions " + alike)
    advice = (f'Turn on "{ALWAYS_MESSAGES}" on the project\'s settings page (or build with the `conversational` '
              "option) to keep every version in message lists.")
    if (manifest.get("filters") or {}).get("conversational"):
        return ("This version was built with the `conversational` option, so its " + columns + " are message lists "
                "even when every item is one user turn. It shares its columns and types, and joins with "
                "`concatenate_datasets`, only with versions also written in message lists (built with that option, "
                f'with the project\'s setting "{ALWAYS_MESSAGES}" on, or while the project holds a chat) from the '
                "same questions and column options; a version built without them while every item of the project "
                "is one user turn is plain strings, and does not join. " + advice)
    if manifest.get("conversational"):
        return (f"This version's {columns} are message lists because the project holds an item of more than one "
                "user turn (whether or not this version exports it): every version built while it does is written "
                "the same way, whatever the filters, and two of them " + alike)
    return (f"This version's {columns} are plain strings because every item of the project was one user turn "
            "when it was built; once a chat (a system message or earlier turns) is added to the project, later "
            "versions are written in message lists, their columns then differ and `concatenate_datasets` refuses "
            "to join them with this one. " + advice)


def _loading(project, fmt, manifest: dict, splits, features) -> list[str]:
    names = [name for name, _s in splits]
    extension = fmt.extension
    files = {name: f"{FOLDER}/{s['file']}" for name, s in splits}
    metas = {name: f"{FOLDER}/{s['meta_file']}" for name, s in splits if s.get("meta_file")}
    annotators = _annotators_file(manifest)
    loader = {"jsonl": "json", "csv": "csv", "parquet": "parquet"}.get(extension, "json")
    # The csv builder reads text columns as text when given the features (it derives pandas' dtypes from them).
    keep = f", features=DATA, {CSV_KEEP_ARGS}" if extension == "csv" else ""
    code = [f'dataset = load_dataset("{FOLDER}")  # splits: {", ".join(names)}; columns typed by this card',
            f'dataset = load_dataset("{loader}", data_files={_j(files)}{keep})  # the files alone']
    if extension == "jsonl":
        code = ["from datasets import load_dataset", "", *code]
        if metas:
            code.append(f'meta = load_dataset("{FOLDER}", "meta")  # provenance, line by line beside the rows')
        if annotators:
            code.append(f'annotators = load_dataset("{FOLDER}", "annotators")  # who annotated, by pseudonym')
    else:
        # One folder loads with one builder: the .jsonl files beside csv or parquet data load with the json
        # builder, typed here (a column null throughout would otherwise be typed null).
        code = ["from datasets import Features, Sequence, Value, load_dataset", "",
                *(_py_features("DATA", features) if extension == "csv" else []), *code, ""]
        if metas:
            code += [*_py_features("META", META_FEATURES),
                     f'meta = load_dataset("json", data_files={_j(metas)}, features=META)  # provenance, line by line']
        if annotators:
            code += [*_py_features("ANNOTATORS", ANNOTATORS_FEATURES),
                     f'annotators = load_dataset("json", data_files={_j({"train": f"{FOLDER}/{annotators}"})}, '
                     "features=ANNOTATORS)  # who annotated, by pseudonym"]
        if extension == "csv":
            code += ["", "import pandas", "",
                     *[f'frame = pandas.read_csv("{path}", {_csv_args(features)})  # {name}'
                       for name, path in files.items()]]
    lines = ["## How to load it", "", *_fenced("\n".join(code), "python"), ""]
    if extension != "jsonl":
        lines += ["`datasets` reads every config of a folder with the one builder the data files call for, so the "
                  "`.jsonl` meta and annotators files are not configs of this card: load them with the `json` "
                  "builder and the features above, as shown.", ""]
    if extension == "csv":
        lines += ['In the CSV file an empty cell is null (an empty text is written the same way); pandas, and so '
                  '`datasets`\' csv reader, also reads "NA", "N/A", "NaN", "nan", "null", "NULL", "None"… as null by '
                  'default, so an item id "NaN" would come back null. This card\'s default config passes '
                  '`keep_default_na: false` and `na_values: [""]`, so loading the folder keeps them as written, and '
                  "reads the text columns as text (`dtype`), so an id \"001\" stays \"001\" and labels \"1\" and "
                  "\"1.0\" stay two; pass the same to `pandas.read_csv` or `load_dataset(\"csv\", …)` yourself, as "
                  "shown.", "",
                  "Cells hold the annotators' text exactly as written, so a cell may start with `=`, `+`, `-` or `@`: "
                  "read the file with a CSV reader (pandas, `datasets`), not a spreadsheet program, which could run "
                  "such a cell as a formula.", ""]
    lines += [_joining(project, fmt, manifest, features) + " Loading the files alone lets `datasets` guess the "
              "types, and a column that is null throughout a file is then typed null: load the folder instead.", ""]
    return lines


def dataset_card(project, fmt, manifest: dict, questions=(), plan=None) -> str:
    """The README.md of one version (see the module's docstring)."""
    splits = _splits(manifest)
    features = _features(fmt, plan)
    empty = manifest.get("empty_reasons")
    licence = (project.license or "").strip()
    counts = manifest.get("counts") or {}
    lines = [f"# {_one_line(project.name)}: {fmt.title}", ""]
    if not licence:
        lines += ["> **No licence set:** nobody receiving this version can know whether they may use it. Set the "
                  "licence on the project's settings page before sharing; versions built after that carry it.", ""]
    if empty:
        lines += ["> **This version is empty:** no row passed the filters, so it has no data file.", "",
                  *[f"- {_one_line(reason)}" for reason in empty], ""]
    lines += [
        f"Human feedback collected with Groundwork in the project `{project.slug}`, exported as `{fmt.name}` "
        f"(schema `{manifest.get('schema_version')}`, version {_version(manifest)} of the project; export id {manifest.get('export_id')} in its URLs and the API). Annotators are paid "
        "domain experts, named here only by stable pseudonyms.",
        "",
        f"Language: {', '.join(languages(project.language)) or 'not stated'}.",
        "",
    ]
    instructions = (project.instructions or "").strip()
    lines += ["## Guidelines", ""]
    if instructions:
        shown = instructions[:GUIDELINES_MAX]
        lines += ["The instructions annotators worked from:", "", *_fenced(shown, "text"), ""]
        if len(instructions) > GUIDELINES_MAX:
            lines += [f"(The first {GUIDELINES_MAX:,} of {len(instructions):,} characters; the rest is on the "
                      "project's page.)", ""]
    else:
        lines += ["The project has no written instructions.", ""]
    lines += _questions(questions, manifest)

    models = manifest.get("source_models") or {}
    lines += ["## Source models", ""]
    if models:
        lines += ["The models that wrote the responses, with how many rows use a response of theirs:", "",
                  "| model | rows |", "|---|---|",
                  *[f"| `{_cell(name)}` | {n} |" for name, n in sorted(models.items())], ""]
    else:
        lines += ["The imported responses named no source model.", ""]

    dates = manifest.get("annotation_dates") or {}
    lines += ["## Annotations", ""]
    if dates.get("first"):
        lines += [f"The annotations read (every one that passed the filters, including those that gave no row: "
                  f"ties, dropped repeats) were submitted from {dates['first']} to {dates['last']} (UTC).", ""]
    if splits:
        lines += ["| split | file | rows | items |", "|---|---|---|---|",
                  *[f"| {name} | `{s['file']}` | {s['rows']} | {_figure(s.get('items'))} |" for name, s in splits], ""]
    pool = manifest.get("annotators", 0)
    lines.append(f"Annotations read: {counts.get('annotations_read', 0)}. Annotator pool: {pool} "
                 f"{'person' if pool == 1 else 'people'} whose annotations were read (the meta file names the "
                 "annotations behind each row).")
    if counts.get("skipped"):
        lines += ["", "Not exported: " + ", ".join(f"{n} × {why}" for why, n in counts["skipped"].items()) + "."]
    lines.append("")

    agreement = manifest.get("agreement") or {}
    lines += ["## Agreement", ""]
    if "mean_item_agreement" in agreement:
        lines.append(f"Mean share of agreeing annotator pairs per exported item: {agreement['mean_item_agreement']:.3f}.")
    whole = agreement.get("project") or {}
    project_figures = whole.get("questions") or []
    if project_figures:
        behind = whole.get("answers_after") or 0
        when = str(whole.get("computed_at", ""))[:16].replace("T", " ")
        lines += ["", f"Project-wide figures (all work as computed {when} UTC, before this version's filters"
                  + (f"; {behind} later answer{'s are' if behind != 1 else ' is'} not in them" if behind else "")
                  + "):", "",
                  "| question | type | items with 2+ | figures |", "|---|---|---|---|"]
        for q in project_figures:
            shown = "; ".join(f"{label} {_figure(q[name])}" for name, label in FIGURE_NAMES.items() if name in q)
            lines.append(f"| `{q['key']}` | {q['type']} | {_figure(q.get('items_with_2_plus'))} | {shown or '—'} |")
    if "mean_item_agreement" not in agreement and not project_figures:
        lines.append("No agreement figures yet: fewer than two annotators per item, or quality stats not computed.")
    lines.append("")

    lines += ["## Row shape", ""]
    if features:
        lines += ["Every row has exactly these columns, typed by `dataset_info` above:", "",
                  "| field | type | meaning |", "|---|---|---|",
                  *[f"| `{_cell(f['name'])}` | {_feature_type(f)} | {_cell(_meaning(fmt, f['name']))} |" for f in features], ""]
    else:
        lines += ["| field | meaning |", "|---|---|", *[f"| `{_cell(name)}` | {_cell(meaning)} |" for name, meaning in fmt.fields], ""]
    if manifest.get("conversational"):
        lines += ["Files are conversational: prompts and completions are lists of `{role, content}` messages.", ""]
    elif manifest.get("conversational") is False:
        lines += ["Prompts and completions are plain strings (every item is one user turn).", ""]
    rules = _rules(fmt, manifest)
    if rules:
        lines += [*rules, ""]

    lines += ["## Files", "", "| file | holds | rows | sha256 |", "|---|---|---|---|"]
    for f in manifest.get("files") or []:
        role = f.get("role", "data")
        lines.append(f"| `{f['name']}` | {FILE_ROLES.get(role, role)} | {f.get('rows')} | `{f.get('sha256', '')}` |")
    lines += ["| `manifest.json` | how this version was made, as data | | |", ""]
    if any(s.get("meta_file") for _name, s in splits):
        lines += ["Each line of `<split>.meta.jsonl` describes the row on the same line of the split's file:", "",
                  "| field | meaning |", "|---|---|",
                  *[f"| `{n}` | {_cell(m)} |" for n, m in meta_fields(fmt, manifest)], ""]

    snapshot = manifest.get("snapshot") or {}
    lines += ["## How this version was built", "", f"Options: {_filters(manifest)}.", ""]
    if (manifest.get("filters") or {}).get("min_agreement") is not None:
        lines += [f"`min_agreement` {MIN_AGREEMENT_MEANING}.", ""]
    if snapshot:
        lines += [f"Snapshot: the data as it stood at {snapshot.get('instant')} (highest annotation id "
                  f"{_figure(snapshot.get('max_annotation_id'))}, highest review id "
                  f"{_figure(snapshot.get('max_review_id'))}).", ""]
    if manifest.get("groundwork_version") or manifest.get("database"):
        lines += [f"Built by Groundwork {manifest.get('groundwork_version', '?')} on "
                  f"{manifest.get('database', '?')}.", ""]
    warnings = manifest.get("warnings") or []
    if warnings:
        lines += ["## Warnings", "", *[f"- {_one_line(w)}" for w in warnings], ""]

    lines += ["## Known limitations", "",
              "- Pseudonyms are stable within this Groundwork installation only (derived from its secret key): "
              "the same person has the same pseudonym in every version made here, and another one elsewhere.",
              "- Rebuilding this version as of its snapshot instant (`--as-of`) gives the same data, meta and "
              "items files after new items, annotations and verdicts arrive, but reads as they are now: items "
              "edited since (texts, responses, metadata), the project's settings and questions (label order, "
              "always message lists, language, domain), an admin's later exclusion of a trainer's work, trainer "
              "flags and quality figures (the `exclude_flagged_trainers` and `min_trainer_quality` filters, the "
              "annotators table) and the project-wide agreement figures.",
              "- Project-wide agreement figures cover all the work at the time they were last computed, before "
              "this version's filters.",
              ]
    if (manifest.get("filters") or {}).get("pairs", "consensus") == "consensus" and FAMILIES.get(fmt.name) == "pairs":
        lines.append("- The consensus direction is the mean preference's (the Bradley–Terry order's for rankings), "
                     "so a strong minority can outweigh a weak majority (answers -1, -1, +3 choose the second "
                     "response). Each row's `agreement` (in the meta file, or as a column with `with_agreement`) is "
                     "the share of the item's annotators whose own answer orders the pair that way: keep rows at "
                     "0.5 or more for pairs most annotators back. `min_agreement` filters items, not rows.")
    if fmt.name == "trl-sft" and plan is not None and plan.pair_question is not None:
        lines.append("- Each item's consensus-best response is a target on its own: items that share a prompt "
                     "may give that prompt different targets, and one of them may be a response the annotators "
                     "of another such item placed lower (a completion is written once per prompt). Check the "
                     "meta file's `item_id` where prompts repeat.")
    if (manifest.get("filters") or {}).get("pairs") == "per_annotation" and FAMILIES.get(fmt.name) == "pairs":
        lines.append("- per_annotation is a weighting view: each direction annotators gave a pair is one row "
                     "(once, whatever the number who gave it; `n_annotators` says how many), so pairs annotators "
                     "disagreed on appear in both orders. Train on it only with a loss that takes the weights.")
    lines.append("")
    if splits:
        lines += _loading(project, fmt, manifest, splits, features)
    elif empty:
        lines += ["## How to load it", "",
                  "This version is empty; there is nothing to load. Its card points `datasets` at the data files it "
                  "would have had, so loading this folder fails with *file not found* rather than reading "
                  "`manifest.json` as data.", ""]

    lines += ["## License", ""]
    if licence:
        lines += [f"Released under `{_one_line(licence)}`.", ""]
    else:
        lines += ["Not set by the data owner yet (`license: unknown`).", ""]
    lines += ["## Citation", "", *_citation(project, fmt, manifest), ""]
    return "\n".join(_header(project, fmt, manifest, splits, features)) + "\n\n" + "\n".join(lines)
