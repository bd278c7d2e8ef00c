"""What both databases accept, in one place: text without NUL or unpaired surrogates, strings within
their column's length, integers within their column's range, JSON that the encoder can write.

PostgreSQL refuses NUL in text and JSONB and checks VARCHAR lengths and INTEGER ranges; SQLite checks
none of these. The input layer (``web/inputs``), the importer and the flush guard below all ask here,
so a value one database would refuse is refused on both, with a message naming the field.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, String, Text, event
from sqlalchemy.orm import Session
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.types import JSON, TypeDecorator

from .errors import ValidationError

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Deeper than this is never data a person meant to send (orjson itself stops at 254 levels).
JSON_MAX_DEPTH = 32
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,12}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")


def decimal_number(text: str | None) -> float | None:
    """A number typed as text, ASCII only (``0.75``, ``-2``, ``.5``), else None. ``float()`` alone
    also takes other scripts' digits, exponents, underscores, ``nan`` and ``inf``."""
    text = (text or "").strip()
    return float(text) if _DECIMAL.fullmatch(text) else None


def one_line_problem(value: str) -> str | None:
    """Why a name shown to others is not one line of plain text, or None: line breaks, tabs, control
    characters and invisible formatting (zero-width characters, direction overrides that reorder what
    follows: ``str.isprintable``) have no place in one."""
    if not value.isprintable():
        return "must be one line of text (no line breaks, tabs, control or invisible formatting characters)"
    return None


# Control characters other than tab and line breaks (C0, DEL, C1), and the direction embeddings and
# overrides, which reorder what follows them on screen: a text shown to someone else can show one thing
# and say another (isolates and marks, which right-to-left writing needs, stay).
_NOT_PLAIN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e]")


def plain_text_problem(value: str) -> str | None:
    """Why a free text shown to others (a message, a reason, an answer, a prompt) is not plain text, or
    None: line breaks and tabs are fine, control characters and direction overrides are not."""
    if _NOT_PLAIN.search(value) is not None:
        return "must be plain text (no control characters or direction overrides)"
    return None


# Characters that show nothing, read as spaces when texts are compared or checked for emptiness:
# every format character (zero-width spaces and joiners, direction marks and embeddings, the byte
# order mark, soft hyphens, tags), the fillers and blanks that are letters or symbols only by category
# (Hangul fillers, the braille blank), variation selectors and the combining grapheme joiner.
_BLANK_LOOKING = (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0,
                  *range(0x180B, 0x1810), *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0))


@functools.cache
def invisible_table() -> dict[int, str]:
    """``str.translate`` table: every character that shows nothing to a space. Made on first use."""
    return dict.fromkeys([c for c in range(0x20000) if unicodedata.category(chr(c)) == "Cf"]
                         + [*range(0xE0000, 0xE0080), *_BLANK_LOOKING], " ")


def shown(text: str) -> str:
    """What a text shows: invisible characters (``invisible_table``) and control characters dropped
    as spaces, every run of spacing one space, nothing at either end."""
    if not text.isascii():
        text = text.translate(invisible_table())
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def without_controls(value: str) -> str:
    """The text less what ``plain_text_problem`` refuses (control characters, direction overrides): for a
    text someone may have copied in without seeing those (a rewrite starts as the response's text)."""
    return _NOT_PLAIN.sub("", value)


def has_visible(text: str) -> bool:
    """Whether a text shows anything: one character that is printable, not a space and not one of the
    characters that show nothing (zero-width spaces, fillers, the braille blank: ``invisible_table``)."""
    if not text.isascii():
        text = text.translate(invisible_table())
    return any(c.isprintable() and not c.isspace() for c in text)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored, or None."""
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character, which is not allowed"
    return "contains an unpaired surrogate, which is not valid Unicode"


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a JSON value cannot be stored on both databases, or None."""
    if depth > JSON_MAX_DEPTH:
        return f"is nested more than {JSON_MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64[0] <= value <= INT64[1] else "holds a number beyond the 64-bit range"
    if isinstance(value, float):
        return None if math.isfinite(value) else "holds a number that is not finite"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = (text_problem(key) if isinstance(key, str) else None) or json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return None


def _base_type(type_: TypeEngine) -> TypeEngine:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance if hasattr(type_, "impl_instance") else type_.impl
    return type_


def int_range(type_: TypeEngine) -> tuple[int, int] | None:
    base = _base_type(type_)
    if isinstance(base, BigInteger):
        return INT64
    if isinstance(base, (Integer, SmallInteger)):
        return INT32
    return None


def column_problem(column, value: Any) -> str | None:
    """Why ``value`` cannot go into ``column`` (a Column) on both databases, or None."""
    if value is None:
        return None
    base = _base_type(column.type)
    if isinstance(base, JSON) or getattr(base, "_type_affinity", None) is JSON:
        return json_problem(value)
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            return problem
        if isinstance(base, String) and not isinstance(base, Text) and base.length and len(value) > base.length:
            return f"is {len(value):,} characters long; at most {base.length:,} fit"
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        bounds = int_range(column.type)
        if bounds and not bounds[0] <= value <= bounds[1]:
            return f"must be between {bounds[0]:,} and {bounds[1]:,}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return None


def row_problems(table, values: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, str]:
    """{field: why} for the values (by column key) of one row of ``table``; ``names`` renames fields."""
    problems = {}
    for key, value in values.items():
        column = table.c.get(key)
        if column is None:
            continue
        problem = column_problem(column, value)
        if problem:
            problems[(names or {}).get(key, key)] = problem
    return problems


def _object_problems(obj) -> dict[str, str]:
    mapper = obj.__mapper__
    problems = {}
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        if column.table is not mapper.local_table:
            continue
        problem = column_problem(column, getattr(obj, attr.key, None))
        if problem:
            problems[attr.key] = problem
    return problems


def guard_flushes(session_factory) -> None:
    """The last line: refuse to flush a row either database would refuse, naming the field.

    Services check their inputs first and give friendlier messages; this catches what they miss, so
    the same value never becomes a 500 on PostgreSQL and a stored row on SQLite.
    """

    @event.listens_for(session_factory, "before_flush")
    def _before_flush(session: Session, _context, _instances) -> None:
        problems: dict[str, str] = {}
        for obj in list(session.new) + [o for o in session.dirty if session.is_modified(o)]:
            for field, message in _object_problems(obj).items():
                problems.setdefault(field, message)
        if problems:
            raise ValidationError(problems)
