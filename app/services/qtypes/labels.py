"""Label (choose one) and labels (choose any) from the question's list."""

from __future__ import annotations

from itertools import combinations

from app.bounds import has_visible, one_line_problem

from ..quality import agreement, consensus
from .base import AnswerError, QuestionType, Units, lines, quoted, skip_safe

LABEL_MAX = 100
LABELS_MAX = 26


def check_labels(options) -> list[str]:
    labels = options.get("labels")
    if not isinstance(labels, list) or len(labels) < 2:
        return ["labels must be a list of at least 2 labels"]
    if any(not isinstance(x, str) or not has_visible(x) for x in labels):
        return ["labels must be non-empty strings"]
    if any(len(x) > LABEL_MAX for x in labels):
        return [f"a label may have at most {LABEL_MAX} characters"]
    if any(one_line_problem(x) for x in labels):
        return ["a label must be one line of visible text (no line breaks, control or invisible formatting characters)"]
    # Two labels a reader cannot tell apart (spacing, composition) would be two classes that look one.
    from ..projects import plain_text  # here: projects reads the question types when it loads

    if len({plain_text(x) for x in labels}) != len(labels):
        return ["labels must not repeat a label"]
    if len(labels) > LABELS_MAX:
        return [f"at most {LABELS_MAX} labels"]
    return []


def labels_kept(old, new) -> str | None:
    gone = [label for label in old.get("labels", []) if label not in new.get("labels", [])]
    if gone:
        return f"labels that answers already use cannot be removed or renamed ({', '.join(gone[:5])})"
    return None


class LabelList(QuestionType):
    """A type whose options are a list of labels (label, multi-label, span categories)."""

    def check_options(self, options):
        return check_labels(options)

    def options_from_form(self, form, prefix, errors, label):
        return {"labels": lines(form.get(f"{prefix}labels"))}

    def breaks_answers(self, old, new):
        return labels_kept(old, new)


class LabelType(LabelList):
    name = "label"
    title = "Label (choose one)"
    missing = "choose a label"
    defaults = {"labels": ["yes", "no"]}
    exports = frozenset({"desirable"})
    memo_type = str  # its rules read the values alone

    def clean_answer(self, options, value, responses):
        if not isinstance(value, str) or value == "":
            raise AnswerError("choose one label")
        if value not in options["labels"]:
            raise AnswerError(f"{value[:40]!r} is not one of {', '.join(options['labels'])}")
        return value

    def gold_score(self, options, answer, gold):
        return 1.0 if answer == gold else 0.0

    def card_meaning(self, options):
        return (f"One label per annotation, one of {quoted(options.get('labels', []))}; "
                "an item's consensus is the label most annotators chose; a tie has none (null), and counts in "
                "no one's agreement with the consensus.")

    def consensus(self, options, values, responses):
        return consensus.majority_label(values, options["labels"])

    def agreement_with(self, options, value, agreed, responses):
        return None if agreed is None else consensus.same(value, agreed)  # a tie: nothing to agree with

    def item_agreement(self, options, values, responses):
        return consensus.mean_pairwise(values, consensus.same)

    def figures(self, options, units: Units):
        figures = {"alpha_nominal": skip_safe(agreement.krippendorff_alpha, units.reliability_data(), "nominal")}
        raters = {len(v) for v in units.by_item.values()}
        if len(raters) == 1 and min(raters) >= 2:
            counts = [[sum(1 for _, x in units.by_item[i] if x == label) for label in options["labels"]]
                      for i in units.unit_ids]
            figures["fleiss_kappa"] = skip_safe(agreement.fleiss_kappa, counts)
        return figures


class MultiLabelType(LabelList):
    name = "multi_label"
    title = "Labels (choose any)"
    missing = "choose at least one label"
    defaults = {"labels": ["a", "b", "c"]}

    def parse_form(self, values, responses):
        return list(values)

    def clean_answer(self, options, value, responses):
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise AnswerError("must be a list of labels")
        unknown = [v for v in value if v not in options["labels"]]
        if unknown:
            raise AnswerError(f"{', '.join(map(repr, unknown[:5]))} not among {', '.join(options['labels'])}")
        return sorted(set(value))

    def gold_score(self, options, answer, gold):
        return consensus.jaccard(answer, gold)

    def answer_feature(self, options):
        return {"sequence": "string"}

    def card_meaning(self, options):
        return (f"A sorted list of the labels that apply, any of {quoted(options.get('labels', []))}; "
                "an item's consensus holds the labels more than half of its annotators chose.")

    def consensus(self, options, values, responses):
        return consensus.label_set(values, options["labels"])

    def agreement_with(self, options, value, agreed, responses):
        return consensus.jaccard(value, agreed)

    def item_agreement(self, options, values, responses):
        return consensus.mean_pairwise(values, consensus.same_set)

    def figures(self, options, units: Units):
        scores = [consensus.jaccard(a, b) for answers in units.by_item.values()
                  for (_, a), (_, b) in combinations(answers, 2)]
        return {"mean_jaccard": sum(scores) / len(scores) if scores else None}
