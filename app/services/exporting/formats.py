"""The export formats: one mapping function per format, from an item group to lines.

Adding a format means adding one function here, registered with ``@export_format``, and one test.
Field names are the contract the training libraries read; the rules that make a file load
cleanly in ``datasets`` and TRL are kept by construction:

- every line of a file has the same keys with the same types (floats are always floats);
- a file is plain (strings) or conversational (lists of ``{role, content}``), never both;
- free-form metadata goes out as a JSON string;
- a column that could be null everywhere is declared ``nullable`` and dropped if it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson

from ..qtypes import QuestionType, Responses, type_of
from ..quality import consensus as agreed
from ..stats import item_agreement
from .options import ExportOptions
from .source import Group


@dataclass(frozen=True)
class QuestionSpec:
    """A question as exports read it: plain values (no ORM), so a plan can go to another process."""

    key: str
    type: str
    title: str
    options: dict

    @classmethod
    def of(cls, question) -> QuestionSpec:
        return cls(question.key, question.type, question.title, dict(question.options or {}))

    @property
    def kind(self) -> QuestionType:
        return type_of(self)

    @property
    def exported_as(self) -> frozenset[str]:
        return self.kind.exported_as(self.options)


def desirable_question(questions):
    """The question whose labels KTO and SFT may call desirable (the first single-label question)."""
    return next((q for q in questions if "desirable" in type_of(q).exported_as(q.options or {})), None)


class NeedsConversational(Exception):
    """A plain (string-prompt) file met an item that is more than one user turn: start again with messages."""


@dataclass
class Plan:
    """Everything a mapping function needs besides the group: options and the project's questions."""

    options: ExportOptions
    questions: list[QuestionSpec]
    project_id: int = 0
    pseudonym: Callable[[int], str] = str
    conversational: bool = False
    skipped: Counter = field(default_factory=Counter)  # lines not written, by reason (for the manifest)

    def __post_init__(self):
        def used_as(role: str) -> list[QuestionSpec]:
            return [q for q in self.questions if role in q.exported_as]

        self.pair_question = next(iter(used_as("pairs")), None)
        # Plain copies of what the per-line code reads (attribute access costs, a million times).
        self.pair_key = self.pair_question.key if self.pair_question else None
        self.pair_kind = self.pair_question.kind if self.pair_question else None
        self.pair_options = self.pair_question.options if self.pair_question else None
        self.label_question = desirable_question(self.questions)
        self.ratings = used_as("score")
        self.rewrites = used_as("rewrite")
        self.comparable = next((q for q in self.questions if q.kind.comparable), None)


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    build: Callable[[Group, Plan], Iterator[dict]]
    extension: str = "jsonl"
    # Uses plain strings or message lists for "prompt", decided once per file.
    plain_or_chat: bool = False
    # Reads whole annotation rows (group.records()), not just the answers: costs a little more.
    full_rows: bool = False
    # Raw tables keep rejected annotations (with their status); training formats never do.
    keeps_rejected: bool = False
    nullable: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    needs: Callable[[Plan], str | None] = lambda plan: None


FORMATS: dict[str, Format] = {}


def export_format(name: str, title: str, **kwargs):
    def register(build):
        FORMATS[name] = Format(name=name, title=title, build=build, **kwargs)
        return build

    return register


# --- shared pieces ------------------------------------------------------------------------------------


def messages(group: Group) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in group.context]


def prompt(group: Group, plan: Plan):
    """A plain string while every item is one user turn, else message lists for the whole file.

    Files start plain; the first item that is not a single user turn raises NeedsConversational
    and the export starts again with messages, so one file never mixes the two (TRL reads the
    kind from the first row). ``conversational=true`` asks for messages from the start.
    """
    if plan.conversational:
        return messages(group)
    context = group.context
    if len(context) != 1 or context[0]["role"] != "user":
        raise NeedsConversational(group.external_id)
    return context[0]["content"]


def completion(text: str, plan: Plan):
    return [{"role": "assistant", "content": text}] if plan.conversational else text


def pairs(group: Group, plan: Plan) -> list[tuple[str, str, float]]:
    """(chosen text, rejected text, margin) of the group under the pair options; ties are dropped."""
    key, options = plan.pair_key, plan.options
    values = [a[key] for a in group.answers if key in a]
    # Bare ids (what pairs read), not a Responses: this runs once per item of a million-line export.
    found, ties = plan.pair_kind.pairs(plan.pair_options, values, group.response_ids,
                                       options.ranking_pairs, options.pairs == "consensus")
    if ties:
        plan.skipped["tie"] += ties
    text = group.text_of
    return [(text(c), text(r), m) for c, r, m in found]


def _needs_pairs(plan: Plan) -> str | None:
    if plan.pair_question is None:
        return "needs a preference or ranking question"
    return None


# --- pair formats ---------------------------------------------------------------------------------------


@export_format(
    "trl-preference", "TRL preference (DPO, reward modelling)", needs=_needs_pairs, plain_or_chat=True,
    fields=(("prompt", "the prompt: a string, or a list of {role, content} messages in conversational files"),
            ("chosen", "the better response (string, or a one-message list)"),
            ("rejected", "the worse response (string, or a one-message list)"),
            ("margin", "float, only with the margin option: preference strength, or rank gap")),
)
def trl_preference(group: Group, plan: Plan) -> list[dict]:
    p, found = prompt(group, plan), pairs(group, plan)
    if plan.conversational:
        lines = [{"prompt": p, "chosen": [{"role": "assistant", "content": c}],
                  "rejected": [{"role": "assistant", "content": r}]} for c, r, _m in found]
    else:
        lines = [{"prompt": p, "chosen": c, "rejected": r} for c, r, _m in found]
    if plan.options.margin:
        for line, (_c, _r, margin) in zip(lines, found, strict=True):
            line["margin"] = margin
    return lines


@export_format(
    "openai-dpo", "OpenAI preference fine-tuning (DPO)", needs=_needs_pairs,
    fields=(("input", "{messages: [...]}: the conversation so far"),
            ("preferred_output", "[{role: assistant, content}]"),
            ("non_preferred_output", "[{role: assistant, content}]")),
)
def openai_dpo(group: Group, plan: Plan) -> Iterator[dict]:
    context = messages(group)
    for chosen, rejected, _margin in pairs(group, plan):
        yield {"input": {"messages": context},
               "preferred_output": [{"role": "assistant", "content": chosen}],
               "non_preferred_output": [{"role": "assistant", "content": rejected}]}


def hh_transcript(group: Group) -> str:
    """The conversation in Anthropic HH-RLHF style; a system message opens the first Human turn."""
    parts, pending_system = [], []
    for m in group.context:
        if m["role"] == "system":
            pending_system.append(m["content"])
        elif m["role"] == "user":
            parts.append("\n\nHuman: " + "\n\n".join([*pending_system, m["content"]]))
            pending_system = []
        else:
            parts.append("\n\nAssistant: " + m["content"])
    if pending_system:
        parts.append("\n\nHuman: " + "\n\n".join(pending_system))
    return "".join(parts)


@export_format(
    "hh-rlhf", "Anthropic HH-RLHF transcripts", needs=_needs_pairs,
    fields=(("chosen", "\\n\\nHuman: …\\n\\nAssistant: … ending with the better response"),
            ("rejected", "the same transcript ending with the worse response")),
)
def hh_rlhf(group: Group, plan: Plan) -> Iterator[dict]:
    transcript = hh_transcript(group) + "\n\nAssistant: "
    for chosen, rejected, _margin in pairs(group, plan):
        yield {"chosen": transcript + chosen, "rejected": transcript + rejected}


# --- KTO ----------------------------------------------------------------------------------------------


def _needs_kto(plan: Plan) -> str | None:
    if plan.pair_question is not None:
        return None
    if plan.label_question is None:
        return "needs a preference or ranking question, or a label question with desirable labels"
    return _check_desirable(plan)


def _check_desirable(plan: Plan) -> str | None:
    labels = plan.label_question.options["labels"]
    chosen = plan.options.desirable_labels
    if not chosen:
        return f"choose which labels of {plan.label_question.key!r} are desirable (from {', '.join(labels)})"
    unknown = [x for x in chosen if x not in labels]
    if unknown:
        return f"desirable label(s) {', '.join(unknown)} are not labels of {plan.label_question.key!r} ({', '.join(labels)})"
    return None


def labelled_responses(group: Group, plan: Plan) -> Iterator[bool]:
    """Desirable or not, per annotation (or once per item by majority) for one-response items."""
    q = plan.label_question
    if len(group.responses) != 1:
        plan.skipped["label item without exactly one response"] += 1
        return
    values = [a[q.key] for a in group.answers if q.key in a]
    if not values:
        return
    if plan.options.pairs == "consensus":
        values = [agreed.majority_label(values, q.options["labels"])[0]]
    desirable = plan.options.desirable_labels
    for value in values:
        yield value in desirable


@export_format(
    "trl-kto", "TRL KTO (unpaired good / bad)", needs=_needs_kto, plain_or_chat=True,
    fields=(("prompt", "the prompt (string or messages)"), ("completion", "a response (string or one-message list)"),
            ("label", "bool: true when desirable")),
)
def trl_kto(group: Group, plan: Plan) -> Iterator[dict]:
    p = prompt(group, plan)
    if plan.pair_question is not None:
        for chosen, rejected, _margin in pairs(group, plan):
            yield {"prompt": p, "completion": completion(chosen, plan), "label": True}
            yield {"prompt": p, "completion": completion(rejected, plan), "label": False}
        return
    text = group.responses[0]["text"] if len(group.responses) == 1 else None
    for good in labelled_responses(group, plan):
        yield {"prompt": p, "completion": completion(text, plan), "label": good}


# --- SFT ----------------------------------------------------------------------------------------------


def rewrites(group: Group, plan: Plan) -> Iterator[str]:
    """Distinct non-empty rewrites of the item that differ from the response they rewrite."""
    originals = {r["text"].strip() for r in group.responses}
    seen = set()
    for answers in group.answers:
        for q in plan.rewrites:
            text = (answers.get(q.key) or "").strip()
            if text and text not in originals and text not in seen:
                seen.add(text)
                yield text


def approved_response(group: Group, plan: Plan) -> str | None:
    """The item's consensus-best response: pair winner, or the one response labelled desirable."""
    if plan.pair_question is not None:
        q = plan.pair_question
        values = [a[q.key] for a in group.answers if q.key in a]
        best = q.kind.best_response(q.options, values, group.response_ids)
        return None if best is None else group.text_of(best)
    if plan.label_question is not None and plan.options.desirable_labels and len(group.responses) == 1:
        q = plan.label_question
        values = [a[q.key] for a in group.answers if q.key in a]
        if values and agreed.majority_label(values, q.options["labels"])[0] in plan.options.desirable_labels:
            return group.responses[0]["text"]
    return None


def _needs_sft(plan: Plan) -> str | None:
    if plan.rewrites or plan.pair_question is not None:
        return None
    if plan.label_question is not None and plan.options.desirable_labels:
        return _check_desirable(plan)
    return "needs a rewrite question, a preference or ranking question, or a label question with desirable labels"


@export_format(
    "trl-sft", "TRL supervised fine-tuning (messages)", needs=_needs_sft,
    fields=(("messages", "the conversation ending with an assistant turn: a trainer's rewrite, or the "
                         "consensus-best response of the item"),),
)
def trl_sft(group: Group, plan: Plan) -> Iterator[dict]:
    context = messages(group)
    for text in rewrites(group, plan):
        yield {"messages": [*context, {"role": "assistant", "content": text}]}
    best = approved_response(group, plan)
    if best is not None:
        yield {"messages": [*context, {"role": "assistant", "content": best}]}


@export_format(
    "openai-sft", "OpenAI supervised fine-tuning (rewrites)",
    needs=lambda plan: None if plan.rewrites else "needs a text question in rewrite mode",
    fields=(("messages", "the conversation ending with a trainer's rewrite as the assistant turn"),),
)
def openai_sft(group: Group, plan: Plan) -> Iterator[dict]:
    context = messages(group)
    for text in rewrites(group, plan):
        yield {"messages": [*context, {"role": "assistant", "content": text}]}


# --- ratings ------------------------------------------------------------------------------------------


def _needs_ratings(plan: Plan) -> str | None:
    if not plan.ratings:
        return "needs at least one rating question"
    clash = [q.key for q in plan.ratings if q.key in ("prompt", "response")]
    if clash:
        return f"rating key(s) {', '.join(clash)} clash with the prompt/response columns"
    return None


@export_format(
    "helpsteer", "HelpSteer-style rubric ratings", needs=_needs_ratings, plain_or_chat=True,
    fields=(("prompt", "the prompt (string or messages)"), ("response", "the rated response"),
            ("<rating key>", "int: one column per rating question (consensus: the rounded mean)")),
)
def helpsteer(group: Group, plan: Plan) -> Iterator[dict]:
    if len(group.responses) != 1:
        plan.skipped["rated item without exactly one response"] += 1
        return
    keys = [q.key for q in plan.ratings]
    rows = [a for a in group.answers if all(k in a for k in keys)]
    if not rows:
        return
    base = {"prompt": prompt(group, plan), "response": group.responses[0]["text"]}
    if plan.options.pairs == "consensus":
        yield {**base, **{q.key: round(q.kind.consensus(q.options, [a[q.key] for a in rows], ())[0])
                          for q in plan.ratings}}
        return
    for answers in rows:
        yield {**base, **{k: answers[k] for k in keys}}


# --- tables -------------------------------------------------------------------------------------------


def answers_of(row, plan: Plan) -> dict:
    """Every question key, in question order, with null where the annotation has no answer."""
    return {q.key: row.answers.get(q.key) for q in plan.questions}


@export_format(
    "raw", "Raw annotations", keeps_rejected=True, full_rows=True, nullable=("gold_score",),
    fields=(("item_id", "the item's external id"), ("trainer", "stable pseudonym of the annotator"),
            ("answers", "{question key: answer} (a reviewer's correction when there is one)"),
            ("active_seconds", "int: time actively spent"), ("gold_score", "float 0–1 on gold items, else null"),
            ("review_status", "unreviewed / approved / rejected / corrected"),
            ("submitted_at", "ISO 8601 UTC")),
)
def raw(group: Group, plan: Plan) -> Iterator[dict]:
    for row in group.records():
        yield {"item_id": group.external_id, "trainer": plan.pseudonym(row.trainer_id), "answers": answers_of(row, plan),
               "active_seconds": row.active_seconds, "gold_score": row.gold_score,
               "review_status": row.review_status, "submitted_at": row.submitted_at.isoformat()}


@export_format(
    "aggregated", "One line per item: consensus", nullable=("agreement",),
    fields=(("item_id", "the item's external id"), ("annotations", "int: annotations aggregated"),
            ("consensus", "{question key: consensus answer}: majority label, labels chosen by most, mean "
                          "rating or preference (float), Bradley–Terry ranking, spans most annotators marked"),
            ("confidence", "{question key: float 0–1}: share agreeing with the consensus"),
            ("agreement", "float: share of annotator pairs agreeing on the first question; null with one annotation"),
            ("metadata", "the item's metadata as a JSON string")),
)
def aggregated(group: Group, plan: Plan) -> Iterator[dict]:
    consensus, confidence = {}, {}
    responses = Responses(group.responses)
    for q in plan.questions:
        if not q.kind.comparable:
            continue
        values = [v for a in group.answers if (v := a.get(q.key, q.kind.unanswered)) is not None]
        value, conf = q.kind.consensus(q.options, values, responses) if values else (None, None)
        consensus[q.key], confidence[q.key] = value, None if conf is None else float(conf)
    yield {"item_id": group.external_id, "annotations": len(group.rows), "consensus": consensus,
           "confidence": confidence, "agreement": group_agreement(group, plan),
           "metadata": orjson.dumps(group.meta, option=orjson.OPT_SORT_KEYS).decode()}


def group_agreement(group: Group, plan: Plan) -> float | None:
    q = plan.comparable
    if q is None:
        return None
    answers = [(trainer, v) for trainer, a in zip(group.trainer_ids, group.answers, strict=True)
               if (v := a.get(q.key, q.kind.unanswered)) is not None]
    value = item_agreement(q, answers, group)
    return None if value is None else float(value)


def table_row(group: Group, row, plan: Plan) -> dict:
    """A raw annotation as one flat table row: lists and objects as JSON strings."""
    line = {"item_id": group.external_id, "trainer": plan.pseudonym(row.trainer_id), "submitted_at": row.submitted_at.isoformat(),
            "active_seconds": row.active_seconds, "gold_score": row.gold_score, "review_status": row.review_status}
    for q in plan.questions:
        value = row.answers.get(q.key)
        if isinstance(value, list | dict):
            value = orjson.dumps(value).decode()
        line[f"answer_{q.key}"] = value
    return line


def _table(group: Group, plan: Plan) -> Iterator[dict]:
    for row in group.records():
        yield table_row(group, row, plan)


TABLE_FIELDS = (("item_id", "the item's external id"), ("trainer", "pseudonym"), ("submitted_at", "ISO 8601 UTC"),
                ("active_seconds", "int"), ("gold_score", "float, empty off gold"), ("review_status", "status"),
                ("answer_<key>", "one column per question; lists as JSON strings"))
export_format("csv", "Raw annotations as CSV (pandas)", extension="csv", keeps_rejected=True, full_rows=True,
              fields=TABLE_FIELDS)(_table)
export_format("parquet", "Raw annotations as Parquet", extension="parquet", keeps_rejected=True, full_rows=True,
              fields=TABLE_FIELDS)(_table)
