"""The question types: the one registry. See ``base.QuestionType`` for what a type provides."""

from __future__ import annotations

from .base import FIGURE_NAMES, AnswerError, QuestionType, Responses, Units, response_letter, response_name
from .labels import LabelType, MultiLabelType
from .preference import PreferenceType
from .ranking import RankingType, pairs_from_groups, ranks_of
from .rating import RatingType
from .span import SpanType
from .text import TextType

QUESTION_TYPES: dict[str, QuestionType] = {
    t.name: t
    for t in (LabelType(), MultiLabelType(), RatingType(), PreferenceType(), RankingType(), TextType(), SpanType())
}


def type_of(question) -> QuestionType:
    """The type of a question (an ORM row, a plain record or a dict)."""
    name = question["type"] if isinstance(question, dict) else question.type
    return QUESTION_TYPES[name]


__all__ = ["FIGURE_NAMES", "QUESTION_TYPES", "AnswerError", "QuestionType", "Responses", "Units",
           "pairs_from_groups", "ranks_of", "response_letter", "response_name", "type_of"]
