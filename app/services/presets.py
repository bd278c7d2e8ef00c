"""Task kinds as presets of questions: plain data the project form starts from."""

from __future__ import annotations

import copy

QUALITY_ENDS = {"0": "very poor", "4": "excellent"}
HELPSTEER_RUBRIC = [
    ("helpfulness", "Helpfulness", "How useful is the response to the user's request?", QUALITY_ENDS),
    ("correctness", "Correctness", "Are the facts right and is nothing important missing?", QUALITY_ENDS),
    ("coherence", "Coherence", "Is it clear, consistent and well organised?", QUALITY_ENDS),
    ("complexity", "Complexity", "How much expertise does it take to write this response?",
     {"0": "anyone could write it", "4": "needs deep expertise"}),
    ("verbosity", "Verbosity", "How long is it relative to what was asked?", {"0": "far too short", "4": "far too long"}),
]

PRESETS: dict[str, dict] = {
    "labelling": {
        "title": "Labelling",
        "description": "One label per item (e.g. safe / unsafe).",
        "questions": [
            {"key": "label", "type": "label", "title": "Which label fits best?", "options": {"labels": ["good", "bad"]}},
        ],
    },
    "pairwise": {
        "title": "Pairwise preference (RLHF)",
        "description": "Two responses side by side; which is better and by how much, with a short rationale.",
        "questions": [
            {"key": "preference", "type": "preference", "title": "Which response is better?", "options": {"scale": 3}},
            {"key": "rationale", "type": "text", "title": "Why?", "required": False,
             "options": {"min_chars": 0, "mode": "critique"}},
        ],
    },
    "ranking": {
        "title": "Ranking (RLHF)",
        "description": "Order 2–9 responses best first; ties allowed.",
        "questions": [
            {"key": "ranking", "type": "ranking", "title": "Rank the responses, best first", "options": {"allow_ties": True}},
            {"key": "rationale", "type": "text", "title": "Why this order?", "required": False,
             "options": {"min_chars": 0, "mode": "critique"}},
        ],
    },
    "critique": {
        "title": "Critique (HelpSteer-style rubric)",
        "description": "Rate one response on five 0–4 scales, write a critique, optionally mark problem spans and rewrite it.",
        "questions": [
            *[
                {"key": key, "type": "rating", "title": title, "help": help_text,
                 "options": {"min": 0, "max": 4, "anchors": dict(ends)}}
                for key, title, help_text, ends in HELPSTEER_RUBRIC
            ],
            {"key": "critique", "type": "text", "title": "Critique", "help": "What is wrong or missing, specifically?",
             "options": {"min_chars": 20, "mode": "critique"}},
            {"key": "problems", "type": "span", "title": "Mark the problems (optional)", "required": False,
             "help": "Select the words that are wrong, unsafe or beside the point and give each a category.",
             "options": {"labels": ["factual error", "unsafe", "irrelevant", "unclear"]}},
            {"key": "rewrite", "type": "text", "title": "Rewrite (optional)", "required": False,
             "help": "Edit the response into the one you would want to see.", "options": {"min_chars": 0, "mode": "rewrite"}},
        ],
    },
}


def preset_questions(name: str) -> list[dict]:
    return copy.deepcopy(PRESETS[name]["questions"])
