"""The export formats: one mapping function per format, from an item group to lines.

Adding a format means adding one function here, registered with ``@export_format`` together with
its ``features``, and one test. Field names are the contract the training libraries read; the rules
that make a file load cleanly in ``datasets`` and TRL are kept by construction:

- every line of a file has the same keys with the same types (floats are always floats): exactly
  ``Format.features(plan)``, which the card declares. Columns are never dropped: a null stays null
  and the features type it, so two versions of one project and format load together;
- a file is plain (strings) or conversational (lists of ``{role, content}``), never both;
- free-form metadata goes out as a JSON string;
- a line may carry ``_meta`` (response ids, annotation ids, agreement, n_annotators): the build pops
  it and writes it, line-aligned, to the meta file beside the data file, never into the data;
- pair files hold one row per item pair in the consensus direction, so never a pair and its reverse;
  ``pairs=per_annotation`` gives each direction annotators gave once (a weighting: both directions
  may appear). KTO holds one label per (prompt, completion) per item, whatever the pair mode.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from ..projects import plain_text
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
    help: str = ""

    @classmethod
    def of(cls, question) -> QuestionSpec:
        return cls(question.key, question.type, question.title, dict(question.options or {}), question.help or "")

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
    """A plain (string-prompt) file met an item that is more than one user turn: start again with messages
    (a guard: ``plan_for`` already chooses messages for a project holding any item marked as a chat)."""


@dataclass
class Plan:
    """Everything a mapping function needs besides the group: options and the project's questions."""

    options: ExportOptions
    questions: list[QuestionSpec]
    project_id: int = 0
    pseudonym: Callable[[int], str] = str
    conversational: bool = False
    skipped: Counter = field(default_factory=Counter)  # lines not written, by reason (for the manifest)
    language: str = "en"  # the project's language (helpsteer3-preference's column)
    domain: str = ""  # the project's first required domain, or "" (helpsteer3-preference's column)
    # Every consensus pair (or KTO completion) written so far, as digests (``pair_digest``), when items
    # of the version share a prompt (``build.RepeatedPrompt``): one another item already gave is left
    # out. None otherwise.
    pair_digests: set | None = None
    prompt_of: Callable[[Group], Any] | None = None  # the format's row prompt (``Format.row_prompt``), set by the build

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
        # A two-response preference on a ±scale (HelpSteer3's kind of question), and the first free-text
        # critique (its reasoning).
        self.preference = next((q for q in used_as("pairs") if q.kind.side_by_side), None)
        self.reasoning_key = next((q.key for q in self.questions if not q.kind.comparable and not q.exported_as),
                                  None)
        self.consensus = self.options.pairs == "consensus"
        self.ranking_pairs = self.options.ranking_pairs
        self.margin, self.with_ids = self.options.margin, self.options.with_ids
        self.with_agreement = self.options.with_agreement

    @property
    def extras(self) -> bool:
        """Whether a column option adds columns to the rows (read once per item at most)."""
        return self.margin or self.with_ids or self.with_agreement


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    build: Callable[[Group, Plan], Iterator[dict]]
    # The data file's columns under a plan, in the Hugging Face card form ({name, dtype} | {name, list}
    # | {name, struct} | {name, sequence}): exactly the keys and types of every line.
    features: Callable[[Plan], list[dict]] = lambda plan: []
    extension: str = "jsonl"
    # Uses plain strings or message lists for "prompt", decided once per file.
    plain_or_chat: bool = False
    # Reads whole annotation rows (group.records()), not just the answers: costs a little more.
    full_rows: bool = False
    # Raw tables keep rejected annotations (with their status); training formats never do.
    keeps_rejected: bool = False
    fields: tuple[tuple[str, str], ...] = ()
    needs: Callable[[Plan], str | None] = lambda plan: None
    min_rows: int = 0  # fewer rows than this make a file its consumer refuses (the build warns)
    # Optional: given the plan, a function writing the common item's line straight to bytes (see
    # ``consensus_pair_encoder``), or None where the plan needs ``build``; it must write exactly what
    # ``build`` and the build's meta line would.
    encoder: Callable[[Plan], Callable | None] = lambda plan: None
    # In consensus, each (prompt, texts) at most once in the file: ``pairs``' rows, helpsteer's ratings.
    consensus_rows: bool = False
    # The row-mode options it reads: "pairs" (a row per consensus or per annotation), "ranking_pairs"
    # (which pairs of a ranking become rows). Any other format given one off its default is refused:
    # the manifest would record it as if it had changed the rows.
    modes: tuple[str, ...] = ()
    # Labels completions (KTO): each (prompt, completion) at most once in the file, whatever the mode.
    completion_rows: bool = False
    # What its rows show as the prompt, as a reader sees it, when not the item's turns (``prompt_key``):
    # two items whose rows look the same are one prompt to the checks above.
    row_prompt: Callable[[Group], Any] | None = None


FORMATS: dict[str, Format] = {}

# What the pair formats read: the pair mode, and which pairs of a ranking are rows.
PAIR_MODE_OPTIONS = ("pairs", "ranking_pairs")


def export_format(name: str, title: str, **kwargs):
    def register(build):
        FORMATS[name] = Format(name=name, title=title, build=build, **kwargs)
        return build

    return register


# --- features: the columns' types -------------------------------------------------------------------


def col(name: str, dtype: str) -> dict:
    return {"name": name, "dtype": dtype}


# Features are built fresh on every call: readers may change what they are given (datasets' YAML reader pops "name").
def messages_feature(name: str) -> dict:
    return {"name": name, "list": [col("role", "string"), col("content", "string")]}


def text_or_chat(name: str, plan: Plan) -> dict:
    return messages_feature(name) if plan.conversational else col(name, "string")


def value_feature(q: QuestionSpec, consensus: bool = False) -> dict:
    """``{"name": key, ...type}`` of a question's answer (or consensus value) as exports write it."""
    kind = q.kind
    return {"name": q.key, **(kind.consensus_feature(q.options) if consensus else kind.answer_feature(q.options))}


def pair_extras(plan: Plan, *id_columns: str, margin: bool = True) -> list[dict]:
    """The optional columns of pair rows (and KTO's, which have no margin), in the order lines have them."""
    extra = [col("margin", "float64")] if plan.margin and margin else []
    if plan.with_agreement:
        extra += [col("agreement", "float64"), col("n_annotators", "int64")]
    if plan.with_ids:
        extra += [col("item_id", "string"), *[col(name, "string") for name in id_columns]]
    return extra


# --- shared pieces ------------------------------------------------------------------------------------


def messages(group: Group) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in group.context]


def prompt(group: Group, plan: Plan):
    """A plain string while the project's items are all one user turn, else message lists for the
    whole file (``plan.conversational``, decided before the first row: ``exporting.plan_for``).

    An item without its ``single_turn`` mark that turns out to be a chat raises NeedsConversational,
    and the export starts again with messages, so one file never mixes the two (TRL reads the kind
    from the first row).
    """
    if plan.conversational:
        return messages(group)
    context = group.context
    if len(context) != 1 or context[0]["role"] != "user":
        raise NeedsConversational(group.external_id)
    return context[0]["content"]


def completion(text: str, plan: Plan):
    return [{"role": "assistant", "content": text}] if plan.conversational else text


def answered(group: Group, key: str) -> tuple[list, list[int]]:
    """The item's answers to one question and their annotation ids, in annotation order."""
    answers = group.answers
    values = [a.get(key) for a in answers]
    if None not in values:  # the usual case: every annotation answered it
        return values, [row[0] for row in group.rows]
    found = [(v, row[0]) for v, row in zip(values, group.rows, strict=True) if v is not None]
    return [v for v, _ in found], [i for _, i in found]


def line_meta(group: Group, response_ids: list[str], annotation_ids: list[int], agreement: float | None,
              n_annotators: int) -> dict:
    """A line's ``_meta``; annotation ids are left out when they are all the item's (the build's default,
    which it writes without looking them up again)."""
    meta = {"response_ids": response_ids, "agreement": agreement, "n_annotators": n_annotators}
    if len(annotation_ids) != len(group.rows):
        meta["annotation_ids"] = annotation_ids
    return meta


def prompt_key(group: Group):
    """The item's prompt as a reader sees it (``projects.plain_text``: spacing, invisible characters and
    composition do not count, as for repeated items and the split), hashable: the one user turn's
    text, or the turns' (role, text)."""
    context = group.context
    if len(context) == 1 and context[0]["role"] == "user":
        return plain_text(context[0]["content"])
    return tuple((m["role"], plain_text(m["content"])) for m in context)


def pair_digest(prompt, texts: tuple[str, ...]) -> bytes:
    """A consensus pair whichever way round (or a KTO completion, one text), under its prompt, texts
    as a reader sees them: two items asking the same prompt with the same responses give one digest."""
    return hashlib.blake2b(orjson.dumps([prompt, sorted(map(plain_text, texts))]), digest_size=16).digest()


def given_before(group: Group, plan: Plan, texts: tuple[str, ...], reason: str) -> bool:
    """Whether an earlier item with the same prompt already gave a row of these texts (a pair, or a
    completion), when the version checks it (``plan.pair_digests``: prompts repeat); counts the drop
    under ``reason``. The first to give one keeps it."""
    taken = plan.pair_digests
    if taken is None:
        return False
    digest = pair_digest((plan.prompt_of or prompt_key)(group), texts)
    if digest in taken:
        plan.skipped[reason] += 1
        return True
    taken.add(digest)
    return False


def pairs(group: Group, plan: Plan) -> list[tuple[str, str, float, dict]]:
    """(chosen text, rejected text, margin, _meta) of the item under the pair options.

    Consensus (the default): the consensus order's pairs (mean preference; Bradley–Terry for rankings)
    under the ``ranking_pairs`` strategy, agreement = share of the item's annotators whose own answer
    orders the pair that way. Per annotation: each direction some annotator gave, once, with
    n_annotators = how many gave it. Ties give no row; nor does a pair whose texts repeat one already
    written for the item (or, in consensus, reverse it) or are the same text; nor, in consensus, one
    that another item with the same prompt gave first (``plan.pair_digests``, when prompts repeat).
    """
    values, annotation_ids = answered(group, plan.pair_key)
    if not values:
        return []
    consensus = plan.consensus
    # Bare ids (what pairs read), not a Responses: this runs once per item of a million-line export.
    found, ties = plan.pair_kind.pairs(plan.pair_options, values, [r["id"] for r in group.responses],
                                       plan.ranking_pairs, consensus)
    if ties:
        plan.skipped["tie"] += ties
    if not found:
        return []
    n, text, lines = len(values), group.text_of, []
    seen = set() if len(found) > 1 else None
    for chosen, rejected, margin, voters in found:
        texts = (text(chosen), text(rejected))
        if texts[0] == texts[1]:
            plan.skipped["pair of two identical responses"] += 1
            continue
        if seen is not None:
            if texts in seen or (consensus and (texts[1], texts[0]) in seen):
                plan.skipped["pair repeating another of the item (same texts)"] += 1
                continue
            seen.add(texts)
        if consensus and given_before(group, plan, texts, "pair another item with the same prompt gave first (same texts)"):
            continue
        if consensus:
            meta = line_meta(group, [chosen, rejected], annotation_ids, len(voters) / n, n)
        else:
            meta = {"response_ids": [chosen, rejected], "annotation_ids": [annotation_ids[i] for i in voters],
                    "agreement": len(voters) / n, "n_annotators": len(voters)}
        lines.append((texts[0], texts[1], margin, meta))
    return lines


def add_pair_extras(line: dict, margin: float, meta: dict, group: Group, plan: Plan) -> dict:
    if plan.margin:
        line["margin"] = margin
    if plan.with_agreement:
        line["agreement"], line["n_annotators"] = meta["agreement"], meta["n_annotators"]
    if plan.with_ids:
        line["item_id"] = group.external_id
        line["chosen_id"], line["rejected_id"] = meta["response_ids"]
    line["_meta"] = meta
    return line


def _needs_pairs(plan: Plan) -> str | None:
    if plan.pair_question is None:
        return "needs a preference or ranking question"
    return None


def _refuses_extra_keys(needs: Callable[[Plan], str | None]) -> Callable[[Plan], str | None]:
    """The OpenAI fine-tuning API rejects a line with keys it does not know: no with_ids, no with_agreement."""

    def check(plan: Plan) -> str | None:
        extra = [name for name in ("with_ids", "with_agreement") if getattr(plan.options, name)]
        if extra:
            return OptionProblem(f"{plan.options.format} cannot take {' or '.join(extra)}: the OpenAI API rejects "
                                 "lines with extra keys (the ids and agreement of every line are in the .meta.jsonl "
                                 "file beside the data file)", field=extra[0])
        return needs(plan)

    return check


PAIR_EXTRA_FIELDS = (
    ("margin", "float, only with the margin option: preference strength (|mean| in consensus, the mean strength of "
               "the annotators giving that direction per annotation), or rank gap (mean gap per annotation)"),
    ("agreement", "float, only with with_agreement: share of the item's annotators whose own answer orders the pair "
                  "this way (an annotator who tied it does not agree)"),
    ("n_annotators", "int, only with with_agreement: annotators who answered (consensus), or who gave this "
                     "direction (per_annotation)"),
    ("item_id", "only with with_ids: the item's external id"),
    ("chosen_id / rejected_id", "only with with_ids: the response ids"),
)

def consensus_pair_encoder(data_line: Callable[[Group, bool, str, str], dict | None],
                           accepts: Callable[[Group], bool] | None = None) -> Callable[[Plan], Callable | None]:
    """The fast path of a pair format under ``pairs=consensus`` without extra columns, for its common
    item: two responses, every annotation answering the pair question. ``data_line(group,
    conversational, chosen text, rejected text)`` makes the format's line, or None for an item the
    format's general function writes otherwise (a chat in a plain file); ``accepts(group)`` false
    sends an item the format skips for its own reason to the general function, which counts it.

    ``encode(group, models)`` returns ``(data line, meta line)`` encoded, ``()`` when the item gives no
    row (a tie, counted), or None for any other item, which then takes ``build`` and the build's
    ``meta_lines``: the same pair rule (the type's ``pairs``), the same bytes, without building and
    popping ``_meta`` per line (a million-row export spends most of its time there otherwise).
    """

    def make(plan: Plan):
        if not plan.consensus or plan.extras or plan.pair_kind is None or plan.pair_digests is not None:
            return None
        kind_pairs, options, strategy = plan.pair_kind.pairs, plan.pair_options, plan.ranking_pairs
        conversational, skipped, name_of = plan.conversational, plan.skipped, plan.pseudonym
        if isinstance(name_of, dict):  # Pseudonyms: look names up without a call through __call__
            name_of = name_of.__getitem__
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        # C-level getters: comprehensions cost a Python frame each, and this runs once per item.
        value_of, id_of, trainer_of = itemgetter(plan.pair_key), itemgetter(0), itemgetter(2)

        def encode(group: Group, models: Counter):
            responses = group.responses
            if len(responses) != 2 or (accepts is not None and not accepts(group)):
                return None
            try:
                values = list(map(value_of, group.answers))
            except KeyError:
                return None
            if None in values:
                return None
            first, second = responses
            a, b = first["id"], second["id"]
            if a == b:
                return None
            found, ties = kind_pairs(options, values, [a, b], strategy, True)
            if len(found) > 1:
                return None
            if found:
                chosen, rejected, _margin, voters = found[0]
                good, bad = (first, second) if chosen == a else (second, first)
                good_text, bad_text = good["text"], bad["text"]
                if good_text == bad_text:  # skipped and counted by the general path
                    return None
                line = data_line(group, conversational, good_text, bad_text)
                if line is None:
                    return None
            if ties:
                skipped["tie"] += ties
            if not found:
                return ()
            good_model, bad_model = good.get("model"), bad.get("model")
            if good_model is not None or bad_model is not None:
                models.update({m for m in (good_model, bad_model) if m is not None})
            rows, n = group.rows, len(values)
            meta = {"item_id": group.external_id, "response_ids": [chosen, rejected], "models": [good_model, bad_model],
                    "annotation_ids": list(map(id_of, rows)), "annotators": list(map(name_of, map(trainer_of, rows))),
                    "agreement": len(voters) / n, "n_annotators": n}
            return dumps(line, option=newline), dumps(meta, option=newline)

        return encode

    return make


# --- pair formats ---------------------------------------------------------------------------------------


def _trl_line(group: Group, conversational: bool, chosen: str, rejected: str) -> dict | None:
    """trl-preference's line for the fast path (``trl_preference`` writes the same)."""
    if conversational:
        return {"prompt": messages(group), "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}
    context = group.context
    if len(context) != 1 or context[0]["role"] != "user":
        return None  # the general path starts the file again with messages
    return {"prompt": context[0]["content"], "chosen": chosen, "rejected": rejected}


@export_format(
    "trl-preference", "TRL preference (DPO, reward modelling)", needs=_needs_pairs, plain_or_chat=True,
    modes=PAIR_MODE_OPTIONS,
    features=lambda plan: [text_or_chat("prompt", plan), text_or_chat("chosen", plan), text_or_chat("rejected", plan),
                           *pair_extras(plan, "chosen_id", "rejected_id")],
    fields=(("prompt", "the prompt: a string, or a list of {role, content} messages in conversational files"),
            ("chosen", "the better response (string, or a one-message list)"),
            ("rejected", "the worse response (string, or a one-message list)"),
            *PAIR_EXTRA_FIELDS),
    encoder=consensus_pair_encoder(_trl_line), consensus_rows=True,
)
def trl_preference(group: Group, plan: Plan) -> list[dict]:
    found = pairs(group, plan)
    if not found:
        return []
    p = prompt(group, plan)
    if plan.conversational:
        lines = [{"prompt": p, "chosen": [{"role": "assistant", "content": c}],
                  "rejected": [{"role": "assistant", "content": r}], "_meta": meta} for c, r, _m, meta in found]
    else:
        lines = [{"prompt": p, "chosen": c, "rejected": r, "_meta": meta} for c, r, _m, meta in found]
    if plan.extras:
        for line, (_c, _r, margin, meta) in zip(lines, found, strict=True):
            del line["_meta"]
            add_pair_extras(line, margin, meta, group, plan)
    return lines


@export_format(
    "openai-dpo", "OpenAI preference fine-tuning (DPO)", needs=_refuses_extra_keys(_needs_pairs), min_rows=10,
    modes=PAIR_MODE_OPTIONS,
    features=lambda plan: [{"name": "input", "struct": [messages_feature("messages")]},
                           messages_feature("preferred_output"), messages_feature("non_preferred_output")],
    fields=(("input", "{messages: [...]}: the conversation so far"),
            ("preferred_output", "[{role: assistant, content}]"),
            ("non_preferred_output", "[{role: assistant, content}]")),
    encoder=consensus_pair_encoder(lambda group, _conversational, chosen, rejected: {
        "input": {"messages": messages(group)}, "preferred_output": [{"role": "assistant", "content": chosen}],
        "non_preferred_output": [{"role": "assistant", "content": rejected}]}), consensus_rows=True,
)
def openai_dpo(group: Group, plan: Plan) -> list[dict]:
    found = pairs(group, plan)
    if not found:
        return []
    context = {"messages": messages(group)}
    return [{"input": context, "preferred_output": [{"role": "assistant", "content": chosen}],
             "non_preferred_output": [{"role": "assistant", "content": rejected}], "_meta": meta}
            for chosen, rejected, _margin, meta in found]


HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


# Two line breaks of any kind before a marker: readers that turn "\r\n" and a lone "\r" into "\n" (text
# mode, most pipelines) would read them as the blank line of a real turn.
_HH_MARKER = re.compile(r"(\r\n|\r|\n)(\r\n|\r|\n)(?=Human:|Assistant:)")


def hh_escape(text: str) -> str:
    """A turn marker inside content would fake a turn: "\\n\\nHuman:" becomes "\\n\\n Human:" (and the
    same for Assistant, and for the blank line written with "\\r\\n" or "\\r"), a space after the
    blank line, which no HH-RLHF parser splits on, even after it normalises line ends."""
    if "Human:" not in text and "Assistant:" not in text:
        return text
    return _HH_MARKER.sub(r"\1\2 ", text)


def hh_transcript(group: Group) -> str:
    """The conversation in Anthropic HH-RLHF style; a system message opens the first Human turn."""
    parts, pending_system = [], []
    for m in group.context:
        if m["role"] == "system":
            pending_system.append(m["content"])
        elif m["role"] == "user":
            # Escaped once joined: the blank line joining a system message to a turn that starts with
            # "Assistant:" makes a turn marker that neither piece holds alone.
            parts.append(HUMAN + " " + hh_escape("\n\n".join([*pending_system, m["content"]])))
            pending_system = []
        else:
            parts.append(ASSISTANT + " " + hh_escape(m["content"]))
    if pending_system:
        parts.append(HUMAN + " " + hh_escape("\n\n".join(pending_system)))
    return "".join(parts)


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def hh_seen(group: Group) -> tuple[str, ...]:
    """An hh-rlhf row's prompt as a reader sees it: its transcript's turns (markers kept apart, each
    text through ``projects.plain_text``), so two items whose transcripts read the same are one prompt
    to the repeated-prompt checks, and two that differ only where a turn begins are not (the split is
    the project's, ``source.split_of``, which reads a system message as hh-rlhf writes it)."""
    return tuple(plain_text(part) for part in _HH_TURN.split(hh_prompt(group)))


def hh_prompt(group: Group) -> str:
    """The transcript up to the Assistant turn that each response ends."""
    return hh_transcript(group) + ASSISTANT + " "


def hh_sides(transcript: str, chosen: str, rejected: str) -> dict:
    """An hh-rlhf line: the transcript up to the last Assistant turn, ended by each response."""
    return {"chosen": transcript + hh_escape(chosen), "rejected": transcript + hh_escape(rejected)}


def starts_with_user(context: list[dict]) -> bool:
    """The first turn after any system messages is the user's (HH-RLHF transcripts open with Human)."""
    return next((m["role"] for m in context if m["role"] != "system"), "user") == "user"


@export_format(
    "hh-rlhf", "Anthropic HH-RLHF transcripts", needs=_needs_pairs, modes=PAIR_MODE_OPTIONS,
    features=lambda plan: [col("chosen", "string"), col("rejected", "string"),
                           *pair_extras(plan, "chosen_id", "rejected_id")],
    fields=(("chosen", "\\n\\nHuman: …\\n\\nAssistant: … ending with the better response"),
            ("rejected", "the same transcript ending with the worse response"),
            *PAIR_EXTRA_FIELDS),
    encoder=consensus_pair_encoder(lambda group, _conversational, chosen, rejected: hh_sides(
        hh_prompt(group), chosen, rejected), accepts=lambda group: starts_with_user(group.context)),
    consensus_rows=True, row_prompt=hh_seen,
)
def hh_rlhf(group: Group, plan: Plan) -> list[dict]:
    if not starts_with_user(group.context):
        plan.skipped["item whose conversation starts with an assistant turn (hh-rlhf starts with Human)"] += 1
        return []
    found = pairs(group, plan)
    if not found:
        return []
    transcript = hh_prompt(group)
    if not plan.extras:
        return [{**hh_sides(transcript, c, r), "_meta": meta} for c, r, _m, meta in found]
    return [add_pair_extras(hh_sides(transcript, c, r), m, meta, group, plan) for c, r, m, meta in found]


# --- KTO ----------------------------------------------------------------------------------------------


def _needs_kto(plan: Plan) -> str | None:
    if plan.pair_question is not None:
        return None
    if plan.label_question is None:
        return "needs a preference or ranking question, or a label question with desirable labels"
    return _check_desirable(plan)


class OptionProblem(str):
    """What a format needs that is an option of the version's, not something the project lacks: the
    caller names ``field`` (the option) in its error instead of the format."""

    field: str

    def __new__(cls, text: str, field: str = "desirable_labels"):
        made = super().__new__(cls, text)
        made.field = field
        return made


def _check_desirable(plan: Plan) -> str | None:
    labels = plan.label_question.options["labels"]
    chosen = plan.options.desirable_labels
    title = plan.label_question.key
    if not chosen:
        return OptionProblem(f"choose which labels of the question {title!r} count as desirable for KTO "
                             f"(its labels: {', '.join(labels)})")
    unknown = [x for x in chosen if x not in labels]
    if unknown:
        return OptionProblem(f"{', '.join(unknown)} {'is not a label' if len(unknown) == 1 else 'are not labels'} "
                             f"of the question {title!r} (its labels: {', '.join(labels)})")
    return None


def ordered_labels(group: Group, plan: Plan) -> list[tuple[str, bool, dict]]:
    """KTO from a preference or ranking: the consensus top group desirable, the bottom group
    undesirable, the middle and ties nothing. (text, desirable, _meta) per response."""
    values, annotation_ids = answered(group, plan.pair_key)
    if not values:
        return []
    kind, options, responses = plan.pair_kind, plan.pair_options, group.response_ids
    consensus_order = kind.consensus_order(options, values, responses)
    ends, middle = agreed.order_ends([kind.order(options, v, responses) for v in values], consensus_order)
    skipped = plan.skipped
    if not ends:
        skipped["kto: the consensus ties every response"] += 1
        return []
    if middle:
        skipped["kto: response in the middle of the consensus order"] += middle
    n, text, seen, found = len(values), group.text_of, set(), []
    for rid, desirable, voters in ends:
        completion_text = text(rid)
        if completion_text in seen:
            skipped["kto: response repeating another of the item (same text)"] += 1
            continue
        seen.add(completion_text)
        found.append((completion_text, desirable, line_meta(group, [rid], annotation_ids, len(voters) / n, n)))
    return found


def majority_labelled(group: Group, plan: Plan) -> list[tuple[str, bool, dict]]:
    """KTO from a label question on a one-response item: the side (a desirable label or not) more than
    half of the annotators took decides (``consensus.desirable_side``); an even split gives no row and
    is counted. Agreement is the share of annotators on that side."""
    q = plan.label_question
    if len(group.responses) != 1:
        plan.skipped["label item without exactly one response"] += 1
        return []
    values, annotation_ids = answered(group, q.key)
    if not values:
        return []
    good, share = agreed.desirable_side(values, plan.options.desirable_labels)
    if good is None:
        plan.skipped["label item its annotators split evenly between desirable and undesirable labels"] += 1
        return []
    response = group.responses[0]
    return [(response["text"], good, line_meta(group, [response["id"]], annotation_ids, share, len(values)))]


@export_format(
    "trl-kto", "TRL KTO (unpaired good / bad)", needs=_needs_kto, plain_or_chat=True,
    features=lambda plan: [text_or_chat("prompt", plan), text_or_chat("completion", plan), col("label", "bool"),
                           *pair_extras(plan, "completion_id", margin=False)],
    fields=(("prompt", "the prompt (string or messages)"), ("completion", "a response (string or one-message list)"),
            ("label", "bool: true when desirable (one label per prompt and completion)"),
            ("agreement / n_annotators", "only with with_agreement: share of annotators placing the response so"),
            ("item_id / completion_id", "only with with_ids")),
    completion_rows=True,
)
def trl_kto(group: Group, plan: Plan) -> list[dict]:
    found = ordered_labels(group, plan) if plan.pair_question is not None else majority_labelled(group, plan)
    if not found:
        return []
    p = prompt(group, plan)
    lines = []
    for text, good, meta in found:
        if given_before(group, plan, (text,), "kto: completion another item with the same prompt labelled first"):
            continue
        line = {"prompt": p, "completion": completion(text, plan), "label": good}
        if plan.with_agreement:
            line["agreement"], line["n_annotators"] = meta["agreement"], meta["n_annotators"]
        if plan.with_ids:
            line["item_id"], line["completion_id"] = group.external_id, meta["response_ids"][0]
        line["_meta"] = meta
        lines.append(line)
    return lines


# --- SFT ----------------------------------------------------------------------------------------------


def rewrites(group: Group, plan: Plan) -> list[tuple[str, dict]]:
    """Distinct non-empty rewrites of the item, with the annotations that wrote each. A rewrite names
    no response in its meta line (its text is the trainer's, not a model's); one that only repeats a
    response (spacing aside) is not a rewrite and is counted as dropped."""
    originals = {plain_text(r["text"]) for r in group.responses}
    found: dict[str, tuple[str, list[int]]] = {}  # as a reader sees it -> (the first spelling, annotations)
    for row, answers in zip(group.rows, group.answers, strict=True):
        for q in plan.rewrites:
            text = (answers.get(q.key) or "").strip()
            if not text:
                continue
            seen_as = plain_text(text)
            if not seen_as:  # only invisible characters (stored before answers were checked for them)
                plan.skipped["rewrite with nothing visible"] += 1
                continue
            if seen_as in originals:
                plan.skipped["rewrite identical to a response"] += 1
                continue
            _text, ids = found.setdefault(seen_as, (text, []))
            if not ids or ids[-1] != row[0]:
                ids.append(row[0])
    return [(text, {"response_ids": [], "annotation_ids": ids, "agreement": None, "n_annotators": len(ids)})
            for text, ids in found.values()]


def approved_response(group: Group, plan: Plan) -> tuple[str, dict] | None:
    """The item's consensus-best response: the one response alone at the top of the consensus order,
    or the one response whose majority label is desirable."""
    if plan.pair_question is not None:
        values, annotation_ids = answered(group, plan.pair_key)
        if not values:
            return None
        kind, options, responses = plan.pair_kind, plan.pair_options, group.response_ids
        consensus_order = kind.consensus_order(options, values, responses)
        if len(consensus_order) < 2 or len(consensus_order[0]) != 1:
            return None
        ends, _middle = agreed.order_ends([kind.order(options, v, responses) for v in values], consensus_order)
        best, _good, voters = ends[0]
        return group.text_of(best), line_meta(group, [best], annotation_ids, len(voters) / len(values), len(values))
    if plan.label_question is not None and plan.options.desirable_labels and len(group.responses) == 1:
        found = majority_labelled(group, plan)
        if found and found[0][1]:
            return found[0][0], found[0][2]
    return None


def _needs_sft(plan: Plan) -> str | None:
    if plan.rewrites or plan.pair_question is not None:
        return None
    if plan.label_question is not None and plan.options.desirable_labels:
        return _check_desirable(plan)
    return "needs a rewrite question, a preference or ranking question, or a label question with desirable labels"


@export_format(
    "trl-sft", "TRL supervised fine-tuning (messages)", needs=_needs_sft,
    features=lambda plan: [messages_feature("messages"), *([col("item_id", "string")] if plan.with_ids else [])],
    fields=(("messages", "the conversation ending with an assistant turn: a trainer's rewrite, or the "
                         "consensus-best response of the item"),
            ("item_id", "only with with_ids")),
    completion_rows=True,
)
def trl_sft(group: Group, plan: Plan) -> list[dict]:
    context = messages(group)
    found = rewrites(group, plan)
    best = approved_response(group, plan)
    if best is not None:
        found.append(best)
    elif not found:  # nothing to write, and it is said why (a tie at the top, or no desirable label)
        plan.skipped["sft: item without one consensus-best response or a rewrite"] += 1
    elif plan.pair_question is not None or plan.options.desirable_labels:  # its rewrites only: said too
        plan.skipped["sft: item without one consensus-best response (its rewrites written)"] += 1
    lines = []
    for text, meta in found:
        if given_before(group, plan, (text,), "sft: completion another item with the same prompt gave first"):
            continue
        line = {"messages": [*context, {"role": "assistant", "content": text}]}
        if plan.with_ids:
            line["item_id"] = group.external_id
        line["_meta"] = meta
        lines.append(line)
    return lines


def _needs_rewrites(plan: Plan) -> str | None:
    return None if plan.rewrites else "needs a text question in rewrite mode"


@export_format(
    "openai-sft", "OpenAI supervised fine-tuning (rewrites)", needs=_refuses_extra_keys(_needs_rewrites), min_rows=10,
    features=lambda plan: [messages_feature("messages")],
    fields=(("messages", "the conversation ending with a trainer's rewrite as the assistant turn"),),
    completion_rows=True,
)
def openai_sft(group: Group, plan: Plan) -> list[dict]:
    context = messages(group)
    return [{"messages": [*context, {"role": "assistant", "content": text}], "_meta": meta}
            for text, meta in rewrites(group, plan)
            if not given_before(group, plan, (text,), "sft: completion another item with the same prompt gave first")]


# --- ratings ------------------------------------------------------------------------------------------


def _needs_ratings(plan: Plan) -> str | None:
    if not plan.ratings:
        return "needs at least one rating question"
    clash = [q.key for q in plan.ratings if q.key in ("prompt", "response", "item_id", "response_id")]
    if clash:
        return f"rating key(s) {', '.join(clash)} clash with the prompt/response/id columns"
    return None


_EXTRA_ID = re.compile(r"(<extra_id_\d>(?:System|User|Assistant)\n)")  # the group: split keeps each marker


def helpsteer_escape(text: str) -> str:
    """"<extra_id_" inside a turn would fake a turn marker: "< extra_id_" (a space after the bracket)."""
    return text.replace("<extra_id_", "< extra_id_") if "<extra_id_" in text else text


def helpsteer_seen(group: Group) -> tuple[str, ...]:
    """A helpsteer row's prompt as a reader sees it: the conversation's turns, each marker kept apart
    as itself (which role said a turn is part of what the prompt says)."""
    return tuple(plain_text(part) for part in _EXTRA_ID.split(helpsteer_prompt(group.context)))


def helpsteer_prompt(context: list[dict]) -> str:
    """The conversation as one string in HelpSteer2's multi-turn convention: the first user turn as it
    is, each later turn on its own line after "<extra_id_1>User" or "<extra_id_1>Assistant". System
    messages open it as "<extra_id_0>System\\n…\\n\\n" (the SteerLM template), and then the first user
    turn is marked too."""
    if len(context) == 1 and context[0]["role"] == "user":
        return helpsteer_escape(context[0]["content"])
    system = [helpsteer_escape(m["content"]) for m in context if m["role"] == "system"]
    parts = []
    for m in context:
        role = m["role"]
        if role == "system":
            continue
        if not parts and role == "user" and not system:
            parts.append(helpsteer_escape(m["content"]))
        else:
            parts.append(("<extra_id_1>User\n" if role == "user" else "<extra_id_1>Assistant\n")
                         + helpsteer_escape(m["content"]))
    text = "\n".join(parts)
    return "<extra_id_0>System\n" + "\n\n".join(system) + "\n\n" + text if system else text


@export_format(
    "helpsteer", "HelpSteer2-style rubric ratings", needs=_needs_ratings, modes=("pairs",),
    features=lambda plan: [col("prompt", "string"), col("response", "string"),
                           *[col(q.key, "int64") for q in plan.ratings],
                           *([col("item_id", "string"), col("response_id", "string")] if plan.with_ids else [])],
    fields=(("prompt", "the prompt as one string; multi-turn in HelpSteer2's <extra_id_1>User / Assistant convention"),
            ("response", "the rated response"),
            ("<rating key>", "int: one column per rating question (consensus: the mean, rounded half to even); null "
                             "when nobody gave that (optional) rating"),
            ("item_id / response_id", "only with with_ids")),
    consensus_rows=True, row_prompt=helpsteer_seen,
)
def helpsteer(group: Group, plan: Plan) -> list[dict]:
    if len(group.responses) != 1:
        plan.skipped["rated item without exactly one response"] += 1
        return []
    keys = [q.key for q in plan.ratings]
    # An annotation counts when it rated anything: an optional rating left out is null in its column.
    rows = [(row[0], a) for row, a in zip(group.rows, group.answers, strict=True)
            if any(a.get(k) is not None for k in keys)]
    if not rows:
        plan.skipped["rated item whose annotations answered no rating"] += 1
        return []
    response = group.responses[0]
    text = helpsteer_escape(response["text"])  # as the prompt's turns: no "<extra_id_" fakes a turn after it
    if plan.consensus and given_before(group, plan, (text,), "rated response another item with the same prompt gave first"):
        return []
    base = {"prompt": helpsteer_prompt(group.context), "response": text}
    ids = {"item_id": group.external_id, "response_id": response["id"]} if plan.with_ids else {}
    if plan.consensus:
        ratings = {}
        for q in plan.ratings:
            given = [v for _, a in rows if (v := a.get(q.key)) is not None]
            ratings[q.key] = round(q.kind.consensus(q.options, given, ())[0]) if given else None
        meta = line_meta(group, [response["id"]], [i for i, _ in rows], None, len(rows))
        return [{**base, **ratings, **ids, "_meta": meta}]
    return [{**base, **{k: a.get(k) for k in keys}, **ids,
             "_meta": {"response_ids": [response["id"]], "annotation_ids": [i], "n_annotators": 1}}
            for i, a in rows]


def _needs_preference(plan: Plan) -> str | None:
    if plan.preference is None:
        return "needs a preference question (two responses compared on a −s…+s scale)"
    return None


@export_format(
    "helpsteer3-preference", "HelpSteer3 preference (two responses, −3…3)", needs=_needs_preference,
    features=lambda plan: [messages_feature("context"), col("response1", "string"), col("response2", "string"),
                           col("overall_preference", "int64"),
                           {"name": "individual_preference", "list": [col("score", "int64"), col("reasoning", "string")]},
                           col("domain", "string"), col("language", "string"),
                           *([col("item_id", "string"), col("response1_id", "string"), col("response2_id", "string")]
                             if plan.with_ids else [])],
    fields=(("context", "the conversation so far: a list of {role, content}"),
            ("response1 / response2", "the item's two responses, in page order (A, B)"),
            ("overall_preference", "int −3…3, negative = response1 better: round(mean × 3 / scale)"),
            ("individual_preference", "[{score: int −3…3, reasoning: str}] one per annotator, in annotation order; "
                                      "reasoning from the project's first free-text critique question, else \"\""),
            ("domain / language", "the project's first required domain (or \"\") and its language"),
            ("item_id / response1_id / response2_id", "only with with_ids")),
)
def helpsteer3_preference(group: Group, plan: Plan) -> list[dict]:
    if len(group.responses) != 2:
        plan.skipped["item without exactly two responses (helpsteer3-preference compares two)"] += 1
        return []
    q, reasoning_key = plan.preference, plan.reasoning_key
    scale, individual, values, ids = q.options["scale"], [], [], []
    for row, answers in zip(group.rows, group.answers, strict=True):
        value = answers.get(q.key)
        if value is None:
            continue
        values.append(value)
        ids.append(row[0])
        individual.append({"score": round(value * 3 / scale),
                           "reasoning": (answers.get(reasoning_key) or "") if reasoning_key else ""})
    if not values:
        return []
    mean, share = agreed.mean_preference(values)
    first, second = group.responses
    line = {"context": messages(group), "response1": first["text"], "response2": second["text"],
            "overall_preference": round(mean * 3 / scale), "individual_preference": individual,
            "domain": plan.domain, "language": plan.language}
    if plan.with_ids:
        line["item_id"], line["response1_id"], line["response2_id"] = group.external_id, first["id"], second["id"]
    line["_meta"] = line_meta(group, [first["id"], second["id"]], ids, share, len(values))
    return [line]


# --- tables -------------------------------------------------------------------------------------------


def answers_of(row, plan: Plan) -> dict:
    """Every question key, in question order, with null where the annotation has no answer."""
    return {q.key: row.answers.get(q.key) for q in plan.questions}


@export_format(
    "raw", "Raw annotations", keeps_rejected=True, full_rows=True,
    features=lambda plan: [col("item_id", "string"), col("trainer", "string"),
                           {"name": "answers", "struct": [value_feature(q) for q in plan.questions]},
                           col("active_seconds", "int64"), col("gold_score", "float64"),
                           col("review_status", "string"), col("submitted_at", "string")],
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
               "review_status": row.review_status, "submitted_at": row.submitted_at.isoformat(),
               "_meta": {"annotation_ids": [row.id], "n_annotators": 1}}


def _aggregated_features(plan: Plan) -> list[dict]:
    comparable = [q for q in plan.questions if q.kind.comparable]
    return [col("item_id", "string"), col("annotations", "int64"),
            {"name": "consensus", "struct": [value_feature(q, consensus=True) for q in comparable]},
            {"name": "confidence", "struct": [col(q.key, "float64") for q in comparable]},
            col("agreement", "float64"), col("metadata", "string")]


@export_format(
    "aggregated", "One line per item: consensus", features=_aggregated_features,
    fields=(("item_id", "the item's external id"), ("annotations", "int: annotations aggregated"),
            ("consensus", "{question key: consensus answer}: majority label, labels chosen by most, mean "
                          "rating or preference (float), Bradley–Terry ranking, spans most annotators marked"),
            ("confidence", "{question key: float 0–1}: share agreeing with the consensus (a label tie, whose "
                           "consensus is null: the share of each tied label)"),
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
    agreement = group_agreement(group, plan)
    yield {"item_id": group.external_id, "annotations": len(group.rows), "consensus": consensus,
           "confidence": confidence, "agreement": agreement,
           "metadata": orjson.dumps(group.meta, option=orjson.OPT_SORT_KEYS).decode(),
           "_meta": {"agreement": agreement}}


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
    line["_meta"] = {"annotation_ids": [row.id], "n_annotators": 1}
    return line


def _table(group: Group, plan: Plan) -> Iterator[dict]:
    for row in group.records():
        yield table_row(group, row, plan)


TABLE_DTYPES = {"int": "int64", "float": "float64"}
# CSV has no null integer: an answer left out (an optional question, or one added after some answers) is
# an empty cell, which pandas, and so `datasets`' csv reader, cannot put in an int64 column. A CSV
# version's whole-number answers are float64 columns, whichever version has a blank.
CSV_DTYPES = {"int": "float64", "float": "float64"}


def _table_features(plan: Plan, dtypes: dict[str, str] = TABLE_DTYPES) -> list[dict]:
    return [col("item_id", "string"), col("trainer", "string"), col("submitted_at", "string"),
            col("active_seconds", "int64"), col("gold_score", "float64"), col("review_status", "string"),
            *[col(f"answer_{q.key}", dtypes.get(q.kind.column_kind, "string")) for q in plan.questions]]


def _csv_features(plan: Plan) -> list[dict]:
    return _table_features(plan, CSV_DTYPES)


TABLE_FIELDS = (("item_id", "the item's external id"), ("trainer", "pseudonym"), ("submitted_at", "ISO 8601 UTC"),
                ("active_seconds", "int"), ("gold_score", "float, empty off gold"), ("review_status", "status"),
                ("answer_<key>", "one column per question; lists as JSON strings"))
export_format("csv", "Raw annotations as CSV (pandas)", extension="csv", keeps_rejected=True, full_rows=True,
              features=_csv_features, fields=TABLE_FIELDS)(_table)
export_format("parquet", "Raw annotations as Parquet", extension="parquet", keeps_rejected=True, full_rows=True,
              features=_table_features, fields=TABLE_FIELDS)(_table)
