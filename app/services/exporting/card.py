"""The dataset card (README.md, Hugging Face style) written next to every export's files."""

from __future__ import annotations

import json

from ..qtypes import FIGURE_NAMES

TASKS = {
    "trl-preference": "reinforcement-learning", "openai-dpo": "reinforcement-learning",
    "hh-rlhf": "reinforcement-learning", "trl-kto": "reinforcement-learning",
    "trl-sft": "text-generation", "openai-sft": "text-generation",
}


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


def dataset_card(project, fmt, manifest: dict) -> str:
    counts = manifest["counts"]
    files = manifest["files"]
    splits = [("train", files[0]["name"])] + ([("test", files[1]["name"])] if len(files) > 1 else [])
    yaml = [
        "---",
        "license: other",
        "license_name: to-be-decided  # placeholder: set the licence this data is released under",
        f"pretty_name: {json.dumps(project.name, ensure_ascii=False)}",  # a JSON string is a YAML string
        "size_categories:",
        f"- {size_category(counts['rows'])}",
        *([f"task_categories:\n- {TASKS[fmt.name]}"] if fmt.name in TASKS else []),
        "tags:",
        "- human-feedback",
        f"- {fmt.name}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *[f"  - split: {split}\n    path: {name}" for split, name in splits],
        "---",
    ]
    filters = manifest["filters"]
    active = [f"`{k}` = `{v}`" for k, v in filters.items() if k != "format" and v not in (None, False, [], 0.0, "")]
    lines = [
        f"# {' '.join(project.name.split())} — {fmt.title}",
        "",
        f"Human feedback collected with Groundwork in the project `{project.slug}`, exported as "
        f"`{fmt.name}` (schema `{manifest['schema_version']}`, export #{manifest['export_id']}).",
        "Annotators are paid domain experts, named here only by stable pseudonyms.",
        "",
        "## Fields",
        "",
        "| field | meaning |",
        "|---|---|",
        *[f"| `{name}` | {meaning} |" for name, meaning in fmt.fields],
        "",
        *(["Files are conversational: prompts and completions are lists of `{role, content}` messages.", ""]
          if manifest.get("conversational") else []),
        "## Counts",
        "",
        "| split | file | rows | items | sha256 |",
        "|---|---|---|---|---|",
        *[f"| {split} | `{f['name']}` | {f['rows']} | {counts[split + '_items']} | `{f['sha256']}` |"
          for (split, _name), f in zip(splits, files, strict=True)],
        "",
        f"Annotations read: {counts['annotations_read']}. Annotator pool: {manifest['annotators']} people.",
    ]
    if counts["skipped"]:
        lines += ["", "Not exported: " + ", ".join(f"{n} × {why}" for why, n in counts["skipped"].items()) + "."]
    agreement = manifest.get("agreement") or {}
    lines += ["", "## Agreement", ""]
    if "mean_item_agreement" in agreement:
        lines.append(f"Mean share of agreeing annotator pairs per exported item: {agreement['mean_item_agreement']:.3f}.")
    project_figures = (agreement.get("project") or {}).get("questions") or []
    if project_figures:
        lines += ["", "Project-wide figures (all work, before export filters):", "",
                  "| question | type | items with 2+ | figures |", "|---|---|---|---|"]
        for q in project_figures:
            shown = "; ".join(f"{label} {_figure(q[name])}" for name, label in FIGURE_NAMES.items() if name in q)
            lines.append(f"| `{q['key']}` | {q['type']} | {_figure(q.get('items_with_2_plus'))} | {shown or '—'} |")
    if "mean_item_agreement" not in agreement and not project_figures:
        lines.append("No agreement figures yet: fewer than two annotators per item, or quality stats not computed.")
    lines += [
        "",
        "## How this version was built",
        "",
        "Filters: " + (", ".join(active) if active else "defaults") + ".",
        "",
        "## License",
        "",
        "To be decided by the data owner (placeholder).",
        "",
    ]
    return "\n".join(yaml) + "\n\n" + "\n".join(lines)
