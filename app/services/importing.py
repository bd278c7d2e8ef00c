"""Importing items from JSONL, CSV or a JSON array (the API's body).

All-or-nothing: a first pass reads the whole file and reports every bad line with its number and
field; only a clean file is written, in a second pass, inside one transaction. Both passes stream
the file, so memory stays flat however large it is. An ``external_id`` already in the project is
skipped (or updated with ``update=True``), never duplicated.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.bounds import INT32, JSON_MAX_DEPTH, has_visible, json_problem, one_line_problem, text_problem
from app.db import begin_write, is_sqlite
from app.errors import Conflict, NotFound, ValidationError, plain_reason
from app.models import Assignment, ImportJob, Item, Project, UserRole, utcnow

from . import audit, webhooks
from .assignment import add_progress, progress_of_item, project_questions
from .projects import content_hash, content_id, is_single_turn, plain_text
from .questions import response_count_range, validate_answers

# What two texts may differ by and still be one (``projects.plain_text``), as error messages say it.
_ASIDE = "spacing, invisible characters and look-alike forms such as full-width letters aside"

log = logging.getLogger(__name__)
FORMATS = ("jsonl", "csv", "json")  # json: one array of items, each item's position its "line"
ROLES = ("system", "user", "assistant")
FIELDS = {"external_id", "prompt", "context", "responses", "metadata", "gold", "priority"}
MAX_REPORTED_ERRORS = 200
BATCH = 2000
PROGRESS_EVERY_BYTES = 1 << 20
# What one item may hold; together with app.bounds, everything either database would refuse.
EXTERNAL_ID_MAX = 200
TEXT_MAX = 100_000  # characters in one turn or one response
TURNS_MAX = 200
MODEL_MAX = 200
METADATA_MAX_BYTES = 64 * 1024
# Response ids travel in forms and answers: a short, safe charset.
RESPONSE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}

    @property
    def where(self) -> str:
        """The line and field as a key: "line 3: context[1].role" (or "line 3")."""
        return f"line {self.line}: {self.field}" if self.field else f"line {self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ImportReport:
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0


PROBLEM_FIELD_MAX, PROBLEM_MESSAGE_MAX, PROBLEMS_PER_LINE = 80, 500, 20  # what a line's problems may store


def _names(keys, shown: int = 5) -> str:
    """Some of a set of names, each cut short, for a message ("a, b, c and 4,998 more")."""
    keys = list(keys)
    first = sorted(keys[:1000])[:shown]  # never sort millions of keys to name five
    named = ", ".join(repr(k[:40]) if len(k) > 40 else k for k in first)
    return named + (f" and {len(keys) - len(first):,} more" if len(keys) > len(first) else "")


class LineProblems(Exception):
    """A line's problems, each (field, message), bounded whatever the line held: a field name cut to
    PROBLEM_FIELD_MAX characters, a message to PROBLEM_MESSAGE_MAX, at most PROBLEMS_PER_LINE of them
    (they are stored with the import and shown on its page)."""

    def __init__(self, problems: list[tuple[str, str]]):
        kept = [(field[:PROBLEM_FIELD_MAX], message[:PROBLEM_MESSAGE_MAX]) for field, message in problems[:PROBLEMS_PER_LINE]]
        if len(problems) > PROBLEMS_PER_LINE:
            kept.append(("", f"and {len(problems) - PROBLEMS_PER_LINE:,} more problems on this line"))
        self.problems = kept
        super().__init__("; ".join(f"{f}: {m}" for f, m in kept))


def detect_format(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValidationError({"file": f"cannot tell the format of {filename[-80:]!r}: use a .jsonl or .csv file"})


# --- reading ---------------------------------------------------------------------------------------


# One line (one item) is read at most this long; longer is refused without being held in memory.
LINE_MAX_BYTES = 16 * 1024 * 1024


def _lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """The file's lines; None for a line longer than LINE_MAX_BYTES (the rest of it is skipped)."""
    while True:
        raw = stream.readline(LINE_MAX_BYTES + 1)
        if not raw:
            return
        if len(raw) > LINE_MAX_BYTES and not raw.endswith(b"\n"):
            while (more := stream.readline(LINE_MAX_BYTES + 1)) and not more.endswith(b"\n"):
                pass
            yield None
            continue
        yield raw


def _read_jsonl(stream: IO[bytes]) -> Iterator[tuple[int, int, Any]]:
    """(line number, bytes read so far, parsed object or LineProblems) for every non-blank line."""
    done = 0
    for number, raw in enumerate(_lines(stream), start=1):
        if raw is None:
            yield number, done, LineProblems([("", f"the line is longer than {LINE_MAX_BYTES >> 20} MB")])
            continue
        done += len(raw)
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark some editors write
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            yield number, done, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield number, done, LineProblems([("", f"not valid JSON ({exc.msg})")])


def _json_cell(row: dict, name: str, problems: list) -> Any:
    raw = row.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        problems.append((name, "is not valid JSON"))
        return None


RESPONSE_COLUMN = re.compile(r"response_([1-9])")
CSV_CELL_MAX = 4 * 1024 * 1024  # a JSON `context` of 200 long turns fits; csv's own default (128 KB) may not


class LineTooLong(csv.Error):
    pass


class _TextLines:
    """The text's lines for csv, refusing a record longer than LINE_MAX_BYTES characters before csv builds
    its cells: a quoted cell may carry line breaks, so one record can span many lines, and csv holds all
    of its cells at once. ``record_starts`` is called before each record is read."""

    def __init__(self, text: IO[str]) -> None:
        self.text, self.record = text, 0

    def record_starts(self) -> None:
        self.record = 0

    def __iter__(self) -> Iterator[str]:
        while line := self.text.readline(LINE_MAX_BYTES + 1):
            self.record += len(line)
            if self.record > LINE_MAX_BYTES:
                raise LineTooLong(f"a record is longer than {LINE_MAX_BYTES >> 20} MB (a quoted cell's line breaks "
                                  "continue its record)")
            yield line


def _read_csv(stream: IO[bytes]) -> Iterator[tuple[int, int, Any]]:
    csv.field_size_limit(CSV_CELL_MAX)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    lines = _TextLines(text)
    reader = csv.reader(iter(lines))
    try:
        try:
            header = next(reader, [])
        except csv.Error as exc:
            yield 1, 0, LineProblems([("", f"the header cannot be read as CSV ({exc})")])
            return
        problems = _header_problems(header)
        if problems:
            yield 1, 0, LineProblems(problems)
            return
        responses = sorted((c for c in header if RESPONSE_COLUMN.fullmatch(c)), key=lambda c: int(c[-1]))
        yield from _csv_rows(reader, header, responses, stream, lines)
    finally:
        text.detach()  # leave the caller's stream open (the second pass reads it again)


def _header_problems(header: list[str]) -> list[tuple[str, str]]:
    if len(header) > len(FIELDS) + 9:
        return [("", f"{len(header):,} columns; a file has at most {len(FIELDS) + 9} "
                     f"({', '.join(sorted(FIELDS - {'responses'}))} and response_1 … response_9)")]
    seen, problems = set(), []
    for column in header:
        shown = column[:40]
        if column in seen:
            problems.append((shown, "appears twice in the header"))
        elif column not in FIELDS - {"responses"} and not RESPONSE_COLUMN.fullmatch(column):
            problems.append((shown, "unknown column"))
        seen.add(column)
    return problems


def _csv_rows(reader, header, response_columns, stream, lines: _TextLines) -> Iterator[tuple[int, int, Any]]:
    while True:
        # A record's line is where it starts: a quoted cell may hold line breaks, and the reader's
        # line_num is then the record's last line.
        number = reader.line_num + 1
        lines.record_starts()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader cannot go on past a broken row: report it and stop (the file is refused).
            yield number, 0, LineProblems([("", f"not valid CSV ({exc})")])
            return
        position = stream.tell() if stream.seekable() else 0
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            yield number, position, LineProblems([("", "more cells than columns")])
            continue
        row = dict(zip(header, cells, strict=False))
        problems: list[tuple[str, str]] = []
        record: dict[str, Any] = {}
        for name in ("external_id", "prompt"):
            if row.get(name):
                record[name] = row[name]
        for name in ("context", "metadata", "gold"):
            value = _json_cell(row, name, problems)
            if value is not None:
                record[name] = value
        if row.get("priority", "").strip():
            raw = row["priority"].strip()
            if re.fullmatch(r"-?[0-9]{1,12}", raw):
                record["priority"] = int(raw)
            else:
                problems.append(("priority", "must be a whole number"))
        # A response keeps its column's number as its id (response_3 is r3, also after an empty response_2).
        responses = [{"id": f"r{c.removeprefix('response_')}", "text": row[c]} for c in response_columns if row.get(c)]
        if responses:
            record["responses"] = responses
        yield number, position, LineProblems(problems) if problems else record


ARRAY_CHUNK = 1 << 16
_ARRAY_TOKEN = re.compile(rb'[\[\]{}",]')  # what matters outside a string
_STRING_END = re.compile(rb'["\\]')  # what matters inside one
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")
COMMA, OPEN, CLOSE, QUOTE, BACKSLASH = b",[]\"\\"
NOT_AN_ARRAY = "the body must be a JSON array of items ([{...}, {...}]); JSON lines go as application/x-ndjson"


class _ArrayItems:
    """Cuts a JSON array into its items, reading the stream a block at a time (``_read_json_array``).

    An item is found the quick way, by asking orjson where the first complete value in the buffer
    ends (it stops at the content after it); when that does not give a clean item followed by a
    comma or the closing bracket, the careful way, by a scan that follows strings and brackets. Both
    find the same end for a valid item; the scan also finds where a broken one ends.
    """

    def __init__(self, stream: IO[bytes]):
        self.stream, self.buf, self.start, self.before, self.eof = stream, bytearray(), 0, 0, False
        head = stream.read(3)
        if head == b"\xef\xbb\xbf":  # a byte-order mark some editors write
            head, self.before = b"", 3
        self.buf += head

    @property
    def position(self) -> int:
        return self.before + self.start

    def more(self, at_least: int = 0) -> bool:
        """Read on (dropping what was consumed); False at the end of the stream."""
        data = b"" if self.eof else self.stream.read(max(ARRAY_CHUNK, at_least))
        if not data:
            self.eof = True
            return False
        del self.buf[:self.start]
        self.before += self.start
        self.start = 0
        self.buf += data
        return True

    def peek(self) -> int | None:
        """The next byte that is not white space (not consumed), or None at the end."""
        while (found := _NOT_SPACE.search(self.buf, self.start)) is None:
            self.start = len(self.buf)
            if not self.more():
                return None
        self.start = found.start()
        return self.buf[self.start]

    def item(self) -> tuple[Any, int | None]:
        """The next item (its value, or LineProblems) and what ended it: COMMA, CLOSE or None (the body)."""
        if self.buf[self.start] in (COMMA, CLOSE):
            sep = self.buf[self.start]
            self.start += 1
            return _array_item(b"", False), sep
        while True:
            with memoryview(self.buf) as view:
                try:
                    orjson.loads(view[self.start:])
                    error = None
                except orjson.JSONDecodeError as exc:
                    error = exc
            unfinished = error is None or error.msg == "unexpected end of data"
            # read on (as much again as is held: an item is parsed a few times at most)
            if not (unfinished and len(self.buf) - self.start <= LINE_MAX_BYTES and self.more(len(self.buf) - self.start)):
                break
        if error is not None and error.msg == "unexpected content after document":
            # orjson counts characters: the first value's length in bytes is that of its text
            chars = error.pos
            text = self.buf[self.start:self.start + 4 * chars].decode("utf-8", "ignore")[:chars]
            end = self.start + len(text.encode())
            if end - self.start <= LINE_MAX_BYTES and self.buf[end] in (COMMA, CLOSE):
                with memoryview(self.buf) as view:
                    value = orjson.loads(view[self.start:end])
                sep, self.start = self.buf[end], end + 1
                return value, sep
        return self._scan()

    def _scan(self) -> tuple[Any, int | None]:
        item, too_long = bytearray(), False
        depth, in_string, escaped = 0, False, False

        def add(data) -> None:
            nonlocal too_long
            if not too_long:
                item.extend(data)
                if len(item) > LINE_MAX_BYTES:
                    too_long = True
                    item.clear()

        while True:
            buf, pos, end = self.buf, self.start, len(self.buf)
            while pos < end:
                if escaped:  # the character after a backslash, whatever it is
                    add(buf[pos:pos + 1])
                    pos, escaped = pos + 1, False
                elif in_string:
                    found = _STRING_END.search(buf, pos)
                    stop = end if found is None else found.end()
                    add(buf[pos:stop])
                    pos = stop
                    if found is not None:
                        in_string, escaped = buf[found.start()] != QUOTE, buf[found.start()] == BACKSLASH
                else:
                    found = _ARRAY_TOKEN.search(buf, pos)
                    if found is None:
                        add(buf[pos:])
                        pos = end
                        break
                    char = buf[found.start()]
                    if depth == 0 and char in (COMMA, CLOSE):  # the end of the item
                        add(buf[pos:found.start()])
                        self.start = found.end()
                        return _array_item(item, too_long), char
                    add(buf[pos:found.end()])
                    pos = found.end()
                    if char == QUOTE:
                        in_string = True
                    elif char in (OPEN, ord("{")):
                        depth += 1
                    elif char != COMMA and depth > 0:  # a closing bracket; one with nothing open is the item's problem
                        depth -= 1
            self.start = pos
            if not self.more():
                return _array_item(item, too_long), None


def _array_item(item: bytes | bytearray, too_long: bool) -> Any:
    if too_long:
        return LineProblems([("", f"the item is longer than {LINE_MAX_BYTES >> 20} MB")])
    if not item.strip():
        return LineProblems([("", "not valid JSON (an empty item: a comma too many?)")])
    try:
        return orjson.loads(item)
    except orjson.JSONDecodeError as exc:
        return LineProblems([("", f"not valid JSON ({exc.msg})")])


def _read_json_array(stream: IO[bytes]) -> Iterator[tuple[int, int, Any]]:
    """(item number, bytes read so far, parsed item or LineProblems) for every item of a JSON array.

    The item's number is its "line". Items are cut out one at a time and parsed like JSONL lines:
    memory holds about one item, and a bad item is reported without hiding the ones after it. A
    body that is not an array, or that breaks off inside it, ends the reading with a problem on the
    item where that happened.
    """
    items = _ArrayItems(stream)
    first = items.peek()
    if first is None:
        return  # an empty body: the first pass says it holds no items
    if first != OPEN:
        yield 1, items.position, LineProblems([("", NOT_AN_ARRAY)])
        return
    items.start += 1
    number, sep = 1, None
    if items.peek() == CLOSE:  # [] holds no items
        items.start += 1
        sep = CLOSE
    while sep != CLOSE:
        if items.peek() is None:
            yield number, items.position, LineProblems([("", "the array is not closed: the body ends inside it")])
            return
        value, sep = items.item()
        if sep is None:
            yield number, items.position, LineProblems([("", "the array is not closed: the body ends inside it")])
            return
        yield number, items.position, value
        number += 1
    if items.peek() is not None:
        yield number, items.position, LineProblems([("", "there is more after the array's closing bracket")])


def read_records(stream: IO[bytes], fmt: str) -> Iterator[tuple[int, int, Any]]:
    if fmt == "jsonl":
        return _read_jsonl(stream)
    if fmt == "csv":
        return _read_csv(stream)
    if fmt == "json":
        return _read_json_array(stream)
    raise ValidationError({"format": f"must be one of {', '.join(FORMATS)}"})


# --- checking one record ---------------------------------------------------------------------------


def _text_problem(text: str) -> str | None:
    """Length and NUL: the only text problems a line can have once read (orjson refuses unpaired
    surrogates, strict UTF-8 decoding cannot make them), checked inline since every text passes here."""
    if len(text) > TEXT_MAX:
        return f"is {len(text):,} characters long; at most {TEXT_MAX:,}"
    if "\x00" in text:
        return text_problem(text)
    return None


def _json_problem(value: Any, dumped: bytes) -> str | None:
    """``json_problem`` with a fast path for the usual metadata: few brackets (so not deep) and no NUL
    escape in its JSON means nothing to walk (orjson refuses surrogates; it reads huge ints as floats)."""
    if dumped.count(b"{") + dumped.count(b"[") <= JSON_MAX_DEPTH and b"\\u0000" not in dumped:
        return None
    return json_problem(value)


def _chat_problem(turns: list[dict], assistant_first: bool = False) -> tuple[str, str] | None:
    """The shape strict chat templates accept: an optional system message first, then turns that
    alternate user, assistant, user… and end with the user's (the responses answer it).

    ``assistant_first`` (the project's ``allow_assistant_first``) lets the first turn after the system
    message be the assistant's, for data that opens with the model (a greeting); the turns still
    alternate and still end with the user's."""
    start = 1 if turns[0]["role"] == "system" else 0
    first = "assistant" if assistant_first and len(turns) > start and turns[start]["role"] == "assistant" else "user"
    second = "assistant" if first == "user" else "user"
    for i, turn in enumerate(turns[start:], start=start):
        expected = first if (i - start) % 2 == 0 else second
        if turn["role"] != expected:
            if turn["role"] == "system":
                return f"context[{i + 1}].role", "a system message may only come first"
            opening = ("user (or assistant, as this project allows)" if assistant_first else "user")
            return (f"context[{i + 1}].role", f"must be {expected}: after an optional first system message, "
                    f"turns alternate user and assistant, starting with {opening}")
    if turns[-1]["role"] != "user":
        return "context", "must end with a user turn"
    return None


class ItemRules:
    """What an item of one project must look like: built once per import from the questions."""

    def __init__(self, questions, assistant_first: bool = False, gold_allowed: bool = True):
        self.questions = questions
        self.assistant_first = assistant_first  # the project's allow_assistant_first
        self.gold_allowed = gold_allowed  # ``sets_gold``: gold answers come from admins only
        self.min_responses, self.max_responses = response_count_range(questions)

    def _context(self, record: dict, problems: list) -> list[dict] | None:
        has_prompt, has_context = "prompt" in record, "context" in record
        if has_prompt and has_context:
            problems.append(("prompt", "give either prompt or context, not both"))
            return None
        if has_prompt:
            prompt = record["prompt"]
            if not isinstance(prompt, str) or not plain_text(prompt):
                problems.append(("prompt", "must be a non-empty string"))
                return None
            if problem := _text_problem(prompt):
                problems.append(("prompt", problem))
                return None
            return [{"role": "user", "content": prompt}]
        if not has_context:
            problems.append(("prompt", "prompt or context is required"))
            return None
        context = record["context"]
        if not isinstance(context, list) or not context:
            problems.append(("context", "must be a non-empty list of {role, content} messages"))
            return None
        if len(context) > TURNS_MAX:
            problems.append(("context", f"has {len(context)} turns; at most {TURNS_MAX}"))
            return None
        clean = []
        for i, turn in enumerate(context, start=1):
            if not isinstance(turn, dict) or set(turn) - {"role", "content"}:
                problems.append((f"context[{i}]", "must be an object with role and content only"))
                return None
            if turn.get("role") not in ROLES:
                problems.append((f"context[{i}].role", f"must be one of {', '.join(ROLES)}"))
                return None
            content = turn.get("content")
            if not isinstance(content, str) or not plain_text(content):
                problems.append((f"context[{i}].content", "must be a non-empty string"))
                return None
            if problem := _text_problem(content):
                problems.append((f"context[{i}].content", problem))
                return None
            clean.append({"role": turn["role"], "content": content})
        if problem := _chat_problem(clean, self.assistant_first):
            problems.append(problem)
            return None
        return clean

    def _responses(self, record: dict, problems: list) -> list[dict] | None:
        responses = record.get("responses", [])
        if not isinstance(responses, list):
            problems.append(("responses", "must be a list of strings or of {id, text, model} objects"))
            return None
        lo, hi = self.min_responses, self.max_responses
        if not lo <= len(responses) <= hi:  # before any response is read: a line may carry millions
            want = f"exactly {lo}" if lo == hi else f"{lo} to {hi}"
            problems.append(("responses", f"this project needs {want} responses, got {len(responses):,}"))
            return None
        clean = []
        for i, r in enumerate(responses, start=1):
            if isinstance(r, str):
                if not plain_text(r):
                    problems.append((f"responses[{i}]", "must not be empty"))
                    return None
                if problem := _text_problem(r):
                    problems.append((f"responses[{i}]", problem))
                    return None
                clean.append({"id": f"r{i}", "text": r})
            elif isinstance(r, dict):
                if set(r) - {"id", "text", "model"}:
                    problems.append((f"responses[{i}]", f"unknown keys {_names(set(r) - {'id', 'text', 'model'})}"))
                    return None
                rid, text = r.get("id", f"r{i}"), r.get("text")
                if not isinstance(rid, str) or not RESPONSE_ID_RE.fullmatch(rid):
                    problems.append((f"responses[{i}].id", "must be 1 to 64 of the characters A-Z a-z 0-9 _ . : -"))
                    return None
                if not isinstance(text, str) or not plain_text(text):
                    problems.append((f"responses[{i}].text", "must be a non-empty string"))
                    return None
                if problem := _text_problem(text):
                    problems.append((f"responses[{i}].text", problem))
                    return None
                response = {"id": rid, "text": text}
                if r.get("model") is not None:
                    model = r["model"]
                    if not isinstance(model, str) or not has_visible(model) or len(model) > MODEL_MAX or text_problem(model):
                        problems.append((f"responses[{i}].model", f"must be a name of at most {MODEL_MAX} characters"))
                        return None
                    if problem := one_line_problem(model):  # shown to trainers when the project names models
                        problems.append((f"responses[{i}].model", problem))
                        return None
                    response["model"] = model
                clean.append(response)
            else:
                problems.append((f"responses[{i}]", "must be a string or an {id, text, model} object"))
                return None
        ids = [r["id"] for r in clean]
        if len(set(ids)) != len(ids):
            problems.append(("responses", "response ids must be unique"))
            return None
        seen: dict[str, int] = {}
        for i, r in enumerate(clean, start=1):
            same = seen.setdefault(plain_text(r["text"]), i)
            if same != i:
                problems.append((f"responses[{i}]", f"is the same text as responses[{same}] ({_ASIDE}); "
                                                    "responses to compare must differ"))
                return None
        lo, hi = self.min_responses, self.max_responses
        if not lo <= len(clean) <= hi:
            want = f"exactly {lo}" if lo == hi else f"{lo} to {hi}"
            problems.append(("responses", f"this project needs {want} responses, got {len(clean)}"))
            return None
        return clean

    def check(self, record: Any) -> dict:
        """A clean row for the items table, or LineProblems naming every bad field."""
        if not isinstance(record, dict):
            raise LineProblems([("", "each line must be a JSON object")])
        unknown = set(record) - FIELDS
        problems: list[tuple[str, str]] = (
            [(k, "unknown field") for k in sorted(unknown)] if len(unknown) <= 5
            else [("", f"{len(unknown):,} unknown fields: {_names(unknown)}")])
        context = self._context(record, problems)
        responses = self._responses(record, problems)
        external_id = record.get("external_id")
        if external_id is not None:
            if isinstance(external_id, int) and not isinstance(external_id, bool):
                external_id = str(external_id)
            if not isinstance(external_id, str) or not has_visible(external_id) or len(external_id) > EXTERNAL_ID_MAX:
                problems.append(("external_id", f"must be a non-empty string of at most {EXTERNAL_ID_MAX} characters"))
                external_id = None
            elif problem := text_problem(external_id) or one_line_problem(external_id):  # shown to others
                problems.append(("external_id", problem))
                external_id = None
        metadata = record.get("metadata", {})
        if not isinstance(metadata, dict):
            problems.append(("metadata", "must be an object"))
        else:
            try:
                dumped = orjson.dumps(metadata)
            except TypeError:  # orjson stops at 254 levels: deeper than we allow anyway
                dumped = b"[" * (JSON_MAX_DEPTH + 1)
            if len(dumped) > METADATA_MAX_BYTES:
                problems.append(("metadata", f"is larger than {METADATA_MAX_BYTES // 1024} KB as JSON"))
            elif problem := _json_problem(metadata, dumped):
                problems.append(("metadata", problem))
        priority = record.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            problems.append(("priority", "must be a whole number"))
        elif not INT32[0] <= priority <= INT32[1]:
            problems.append(("priority", f"must be between {INT32[0]:,} and {INT32[1]:,}"))
        gold = record.get("gold")
        clean_gold = None
        if gold is not None and not self.gold_allowed:
            problems.append(("gold", NOT_YOURS_TO_GOLD))
        elif gold is not None:
            if not isinstance(gold, dict) or not gold:
                problems.append(("gold", "must be an object of answers keyed by question key"))
            elif problem := json_problem(gold):
                problems.append(("gold", problem))
            elif responses is not None:
                try:
                    clean_gold = validate_answers(self.questions, gold, responses, partial=True)
                except ValidationError as exc:
                    problems.extend((f"gold.{k}" if k else "gold", v) for k, v in exc.errors.items())
        if problems:
            raise LineProblems(problems)
        return {
            "external_id": external_id or content_id(context, responses),
            "context": context,
            "responses": responses,
            "content_hash": content_hash(context, responses),
            "single_turn": is_single_turn(context),
            "meta": metadata,
            "is_gold": clean_gold is not None,
            "gold_answers": clean_gold,
            "priority": priority,
        }


# --- the two passes --------------------------------------------------------------------------------

ProgressFn = Callable[[str, int, int], None]  # (phase, bytes done, lines so far)


def _open(source: str | os.PathLike | IO[bytes]) -> tuple[IO[bytes], bool]:
    if hasattr(source, "read"):
        return source, False
    return open(source, "rb"), True


def _worked_on(project: Project):
    """The project's items somebody was given (a task, an answer): their content no longer changes."""
    return select(Item.external_id).where(
        Item.project_id == project.id, select(Assignment.id).where(Assignment.item_id == Item.id).exists())


def sets_gold(session: Session, actor_id: int | None) -> bool:
    """Whether an import by ``actor_id`` may set gold answers: an admin's, or the command line's (no
    actor). Gold decides trainers' accuracy and pauses them, so a client's items never carry any."""
    return actor_id is None or session.scalar(
        select(UserRole.user_id).where(UserRole.user_id == actor_id, UserRole.role == "admin")) is not None


NOT_YOURS_TO_GOLD = "only an admin sets gold answers (they decide trainers' accuracy); leave gold out"


def validate_file(session: Session, project: Project, source, fmt: str, progress: ProgressFn | None = None,
                  max_errors: int = MAX_REPORTED_ERRORS, update_existing: bool = False,
                  gold_allowed: bool = True) -> ImportReport:
    """First pass: check every line, report up to ``max_errors`` problems and count them all.

    With ``update_existing``, a line for an item somebody already worked on is a problem: its
    answers were given to the text it has now. Without ``gold_allowed`` (``sets_gold``), a line with
    gold answers is a problem, and so is one that would update a gold item.
    """
    rules = ItemRules(project_questions(session, project.id), project.allow_assistant_first, gold_allowed)
    report = ImportReport()
    seen: dict[str, int] = {}
    frozen = set(session.scalars(_worked_on(project))) if update_existing else set()
    if update_existing and not gold_allowed:
        frozen_gold = set(session.scalars(select(Item.external_id).where(Item.project_id == project.id,
                                                                          Item.is_gold.is_(True))))
    else:
        frozen_gold = set()
    same = _SameContent(session, project)
    stream, close = _open(source)
    last_progress = 0

    def add(error: LineError):
        report.error_count += 1
        if len(report.errors) < max_errors:
            report.errors.append(error)

    try:
        for number, position, record in read_records(stream, fmt):
            report.lines += 1
            try:
                if isinstance(record, LineProblems):
                    raise record
                row = rules.check(record)
                first = seen.setdefault(row["external_id"], number)
                if first != number:
                    raise LineProblems([("external_id", f"{row['external_id']!r} already appears on line {first}")])
                if row["external_id"] in frozen:
                    raise LineProblems([("external_id", f"{row['external_id'][:80]!r} was already worked on and "
                                                        "cannot be changed; import it under a new external_id")])
                if row["external_id"] in frozen_gold:
                    raise LineProblems([("external_id", f"{row['external_id'][:80]!r} is a gold item: "
                                                        + NOT_YOURS_TO_GOLD.split(";")[0])])
                if not row["is_gold"] and (problem := same.check(row, number)):
                    raise LineProblems([("content", problem)])
            except LineProblems as problems:
                for field_name, message in problems.problems:
                    add(LineError(number, field_name, message))
            if progress and position - last_progress >= PROGRESS_EVERY_BYTES:
                last_progress = position
                progress("validating", position, report.lines)
    except UnicodeDecodeError:
        add(LineError(report.lines + 1, "", "the file is not UTF-8 text"))
    finally:
        if close:
            stream.close()
    if report.lines == 0 and not report.error_count:
        add(LineError(1, "", "the file holds no items"))
    return report


class _SameContent:
    """Finds a work item that repeats another's prompt and responses (``projects.content_hash``), in
    the file or in the project: a dataset would hold its rows twice, or its pairs both ways. Gold
    items may repeat work items (that is how some gold is made). Holds the project's hashes as
    64-bit numbers and asks the database for the item only on a hit."""

    def __init__(self, session: Session, project: Project):
        self.session, self.project = session, project
        self.known = {int(h[:16], 16) for h in session.scalars(
            select(Item.content_hash).where(Item.project_id == project.id, Item.is_gold.is_(False),
                                            Item.content_hash.is_not(None)))}
        self.in_file: dict[str, tuple[int, str]] = {}

    def check(self, row: dict, number: int) -> str | None:
        key, external_id = row["content_hash"], row["external_id"]
        first = self.in_file.setdefault(key, (number, external_id))
        if first[0] != number and first[1] != external_id:
            return f"the same prompt and responses as line {first[0]} ({_ASIDE}); each item must differ"
        if int(key[:16], 16) in self.known:
            other = self.session.scalar(select(Item.external_id).where(
                Item.project_id == self.project.id, Item.content_hash == key, Item.is_gold.is_(False),
                Item.external_id != external_id).limit(1))
            if other is not None:
                return (f"the same prompt and responses as item {other[:80]!r}, already in the project ({_ASIDE}); "
                        "each item must differ")
        return None


def _given_id(record: Any) -> str | None:
    """The external id a line names itself (as ``ItemRules.check`` reads it), or None."""
    external_id = record.get("external_id") if isinstance(record, dict) else None
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        return str(external_id)
    return external_id if isinstance(external_id, str) else None


def write_items(session: Session, project: Project, source, fmt: str, update_existing: bool = False,
                progress: ProgressFn | None = None, import_id: int | None = None,
                chunked: bool = False) -> ImportReport:
    """Second pass, for a file that validated: insert new items, skip or update known ones.

    Runs in the caller's write transaction. With ``chunked`` (SQLite, where a writer locks the whole
    database) it commits every BATCH lines and takes the lock again, so heartbeats and sign-ins wait
    for one chunk at most; otherwise it does not commit and the caller's transaction holds the lot.
    New rows carry ``import_id``, so a failed chunked import can be undone (``undo_import``).
    """
    # Gold answers are checked against questions an edit cannot change until this transaction ends.
    rules = ItemRules(project_questions(session, project.id, share_lock=True), project.allow_assistant_first)
    existing = dict(session.execute(select(Item.external_id, Item.id).where(Item.project_id == project.id)).all())
    report = ImportReport()
    batch: list[dict] = []
    stream, close = _open(source)
    last_progress = 0
    now = utcnow()

    def end_chunk(position: int) -> None:
        nonlocal last_progress
        if batch:
            session.execute(insert(Item), batch)
            batch.clear()
        if chunked:
            session.commit()
        if progress and (chunked or position - last_progress >= PROGRESS_EVERY_BYTES):
            last_progress = position
            progress("writing", position, report.lines)
        if chunked:
            begin_write(session)

    position = 0
    worked = select(Assignment.id).where(Assignment.item_id == Item.id).exists()
    fresh = progress_of_item(0, 0, project.overlap)  # what a new (or unworked) item adds to the counters
    try:
        for _number, position, record in read_records(stream, fmt):
            report.lines += 1
            if isinstance(record, LineProblems):
                raise ValidationError("the file changed after it was checked")
            if not update_existing and _given_id(record) in existing:
                report.skipped += 1  # a known item, and the first pass checked the line: nothing to build
            elif (item_id := existing.get((row := rules.check(record))["external_id"])) is not None:
                # An item given to someone since the check keeps its content (it is counted as skipped).
                was_gold = session.scalar(select(Item.is_gold).where(Item.id == item_id)) if update_existing else None
                if update_existing and session.execute(
                        update(Item).where(Item.id == item_id, ~worked)
                        .values(**{k: v for k, v in row.items() if k != "external_id"})).rowcount:
                    report.updated += 1
                    if bool(row.get("is_gold")) != bool(was_gold):  # an unworked item changes sides
                        add_progress(session, project.id, bool(was_gold), item_id, tuple(-x for x in fresh))
                        add_progress(session, project.id, bool(row.get("is_gold")), item_id, fresh)
                else:
                    report.skipped += 1
            else:
                row.update(project_id=project.id, done_count=0, active_count=0, is_open=True, created_at=now,
                           import_id=import_id)
                batch.append(row)
                report.inserted += 1
                # The project's counters, written with the chunk's commit (or the caller's).
                add_progress(session, project.id, bool(row.get("is_gold")), 0, fresh)
            if report.lines % BATCH == 0:
                end_chunk(position)
        if batch:
            session.execute(insert(Item), batch)
            batch.clear()
    finally:
        if close:
            stream.close()
    return report


def undo_import(session: Session, import_id: int) -> int:
    """Remove the items a failed import added, except any somebody already worked on. Commits."""
    begin_write(session)
    worked = select(Assignment.item_id).where(Assignment.item_id == Item.id).exists()
    removed = session.execute(
        delete(Item).where(Item.import_id == import_id, ~worked).execution_options(synchronize_session=False)
        .returning(Item.id, Item.project_id, Item.is_gold, Item.done_count, Item.active_count)
    ).all()
    overlaps = {}
    for row in removed:  # their project's counters lose them
        if row.project_id not in overlaps:
            overlaps[row.project_id] = session.scalar(select(Project.overlap).where(Project.id == row.project_id))
        figures = progress_of_item(row.done_count, row.active_count, overlaps[row.project_id])
        add_progress(session, row.project_id, row.is_gold, row.id, tuple(-x for x in figures))
    session.commit()
    return len(removed)


def import_file(session: Session, project: Project, source, fmt: str, update_existing: bool = False,
                progress: ProgressFn | None = None) -> ImportReport:
    """Validate, then write and commit in one transaction; on any bad line nothing is written and the
    report says why (the command line's import; uploads run as ``run_import_job``)."""
    if hasattr(source, "seek"):
        start = source.tell()
    report = validate_file(session, project, source, fmt, progress, update_existing=update_existing)
    if not report.ok:
        session.rollback()
        return report
    if hasattr(source, "seek"):
        source.seek(start)
    begin_write(session)  # ends the read transaction: the write one takes the lock up front
    try:
        written = write_items(session, project, source, fmt, update_existing, progress)
        webhooks.emit(session, project.id, "import.completed", _completed(None, report.lines, written))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    written.lines = report.lines
    return written


def _completed(import_id: int | None, lines: int, written: ImportReport) -> dict:
    """The ``import.completed`` webhook's data (``import_id`` is None for an import not run as a job)."""
    return {"import_id": import_id, "lines": lines, "inserted": written.inserted, "updated": written.updated,
            "skipped": written.skipped}


# --- jobs ------------------------------------------------------------------------------------------

FILENAME_MAX = 255


def create_job(session: Session, project: Project, filename: str, save: Callable[[Path], None], folder: Path,
               actor_id: int | None, update_existing: bool = False, fmt: str | None = None) -> ImportJob:
    """Keep an upload in ``folder`` (``save`` writes it to the path given) and record its ImportJob,
    audited. The format is ``fmt``, or else told by the file name. The caller enqueues
    ``run_import_job``. Commits."""
    if fmt is not None and fmt not in FORMATS:
        raise ValidationError({"format": f"must be one of {', '.join(FORMATS)}"})
    fmt = fmt or detect_format(filename)
    try:
        _check_room(session, project)  # before the upload is read: a full project does not take its bytes
    finally:
        session.rollback()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.{fmt}"
    try:  # from the first byte to the commit: a file with no job row pointing at it is removed
        save(path)
        begin_write(session)
        if not is_sqlite(session):  # two uploads at once count each other (SQLite's write lock does that)
            session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
        _check_room(session, project)  # again, now that the upload is in
        job = ImportJob(project_id=project.id, created_by=actor_id, filename=_shown_name(filename, fmt),
                        path=str(path), format=fmt, update_existing=update_existing, bytes_total=path.stat().st_size)
        session.add(job)
        session.flush()
        audit.record(session, actor_id, "items.import", "project", project.id, {"file": job.filename, "import": job.id})
        session.commit()
    except BaseException:
        session.rollback()
        path.unlink(missing_ok=True)
        raise
    return job


def _check_room(session: Session, project: Project) -> None:
    """A project runs a few imports at a time (anyone who may upload, a client too, could otherwise
    queue any number of uploads, each kept on disk until its job runs): a Conflict past
    MAX_RUNNING_IMPORTS. One that stalled does not count (the caller has failed it already)."""
    running = session.scalars(select(ImportJob).where(ImportJob.project_id == project.id,
                                                      ImportJob.status.in_(RUNNING))).all()
    alive = sum(1 for job in running if stalled_reason(job) is None)
    if alive >= MAX_RUNNING_IMPORTS:
        raise Conflict(f"{alive} imports of this project are under way; upload another once one of them has "
                       "finished")


class BatchRefused(ValidationError):
    """A batch with problems, of which nothing was imported: ``errors`` holds the first
    MAX_REPORTED_ERRORS by line and field ("line 3: context[1].role" → message), ``count`` all."""

    def __init__(self, report: ImportReport):
        errors: dict[str, str] = {}
        for error in report.errors:
            errors[error.where] = f"{errors[error.where]}; {error.message}" if error.where in errors else error.message
        super().__init__(errors)
        self.count = report.error_count

    def __str__(self) -> str:
        listed = len(self.errors) < self.count
        return (f"{self.count} problem(s) found; nothing was imported"
                + (f" (the first {len(self.errors)} are listed)" if listed else ""))


def import_now(session: Session, project: Project, source: IO[bytes], fmt: str, *, filename: str,
               actor_id: int | None, update_existing: bool = False) -> ImportJob:
    """Import a small upload at once (the API's inline path): check every line, then write the items
    and the ImportJob that records them (done, with its counts; ``import_id`` on the items) in one
    transaction, audited like an upload. On any problem nothing is written and ``BatchRefused``
    names them. Commits."""
    start = source.tell()
    report = validate_file(session, project, source, fmt, update_existing=update_existing,
                           gold_allowed=sets_gold(session, actor_id))
    if not report.ok:
        session.rollback()
        raise BatchRefused(report)
    size = source.seek(0, os.SEEK_END) - start
    source.seek(start)
    begin_write(session)  # ends the read transaction: the write one takes the lock up front
    try:
        now = utcnow()
        job = ImportJob(project_id=project.id, created_by=actor_id, filename=_shown_name(filename, fmt), path="",
                        format=fmt, update_existing=update_existing, status="writing", bytes_total=size,
                        started_at=now, progress_at=now)
        session.add(job)
        session.flush()
        written = write_items(session, project, source, fmt, update_existing, import_id=job.id)
        job.status, job.lines, job.bytes_done = "done", report.lines, size
        job.inserted, job.updated, job.skipped = written.inserted, written.updated, written.skipped
        job.finished_at = job.progress_at = utcnow()
        audit.record(session, actor_id, "items.import", "project", project.id, {"file": job.filename, "import": job.id})
        webhooks.emit(session, project.id, "import.completed", _completed(job.id, report.lines, written))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return job


def _shown_name(filename: str, fmt: str) -> str:
    return "".join(c for c in Path(filename).name if c.isprintable())[-FILENAME_MAX:] or f"upload.{fmt}"


RUNNING = ("queued", "validating", "writing")
MAX_RUNNING_IMPORTS = 3  # uploads of one project waiting or running at once (``create_job``)
# A running import shows a sign of life at least every megabyte or chunk; this long without one,
# its process is gone (killed, restarted) and the import is marked failed. Queued ones wait longer.
STALLED_AFTER = timedelta(minutes=10)
NEVER_STARTED_AFTER = timedelta(hours=1)
MESSAGE_MAX = 1000


class ImportAbandoned(Exception):
    """The job was marked failed while it ran (it looked stalled): it stops and undoes itself."""


def _short(message: str) -> str:
    return message if len(message) <= MESSAGE_MAX else message[: MESSAGE_MAX - 1] + "…"


def stalled_reason(job: ImportJob, now: datetime | None = None) -> str | None:
    """Why a running import looks dead (no sign of life for too long), or None. Reads only."""
    now = now or utcnow()
    if job.status not in RUNNING:
        return None
    last = job.progress_at or job.started_at
    if job.status == "queued":
        if last is None and job.created_at <= now - NEVER_STARTED_AFTER:
            return "the import never started (is a worker running?); upload the file again"
        return None
    if (last or job.created_at) <= now - STALLED_AFTER:
        return "the import stopped (its process ended without finishing); nothing of it was kept — upload it again"
    return None


def abandon_import(session: Session, import_id: int, now: datetime | None = None) -> ImportJob:
    """An admin stops an import that looks dead: it is marked failed and what it wrote is undone.
    Commits. A job that is alive (or finished) is a Conflict."""
    job = session.get(ImportJob, import_id)
    if job is None:
        raise NotFound("no such import")
    if not stalled_reason(job, now) or not fail_stalled_imports(session, now, only=job.id):
        raise Conflict("this import is not stalled: it has finished or is still reporting progress")
    session.refresh(job)
    return job


def fail_stalled_imports(session: Session, now: datetime | None = None, only: int | None = None) -> int:
    """Mark imports that stopped showing signs of life failed, undoing what they wrote. Commits.

    Runs before a new upload and when an admin asks (``abandon_import``); pages only read
    ``stalled_reason``, so no GET writes."""
    now = now or utcnow()
    stmt = select(ImportJob).where(ImportJob.status.in_(RUNNING))
    if only is not None:
        stmt = stmt.where(ImportJob.id == only)
    count = 0
    for job in session.scalars(stmt).all():
        why = stalled_reason(job, now)
        if why is None:
            continue
        begin_write(session)
        # Only if it has not moved since it was read: a slow import that just reported is alive.
        same = ImportJob.progress_at.is_(None) if job.progress_at is None else ImportJob.progress_at == job.progress_at
        taken = session.execute(update(ImportJob).where(ImportJob.id == job.id, ImportJob.status == job.status, same)
                                .values(status="failed", message=why, finished_at=now)).rowcount
        session.commit()
        if taken:
            undo_import(session, job.id)
            _remove_upload(job.path)
            count += 1
    return count


def _remove_upload(path: str) -> None:
    """An upload's file goes when its job ends, however it ends (done, refused, failed, abandoned)."""
    if path:
        Path(path).unlink(missing_ok=True)


def run_import_job(session_factory, import_id: int) -> None:
    """Run one ImportJob: progress goes to its row through a session of its own.

    It starts only from "queued" (a job already failed as never started stays failed), and "done"
    is written in the same transaction as its last items, so a crash in between cannot leave a
    finished import looking stalled. On any failure the work is rolled back first (so SQLite's lock
    is free at once), what a chunked write already committed is undone, and the job is marked
    failed with a short message: no job is left running.
    """
    session = session_factory()
    job = session.get(ImportJob, import_id)
    if job is None:
        session.close()
        raise ValidationError({"import": f"no import {import_id}"})
    project = session.get(Project, job.project_id)
    path, fmt, update_existing = job.path, job.format, job.update_existing
    gold_allowed = sets_gold(session, job.created_by)  # who uploaded it, read before the job starts
    begin_write(session)
    started = session.execute(
        update(ImportJob).where(ImportJob.id == import_id, ImportJob.status == "queued")
        .values(status="validating", started_at=utcnow(), progress_at=utcnow(),
                bytes_total=os.path.getsize(path) if os.path.exists(path) else 0)
    ).rowcount
    session.commit()
    if not started:
        session.close()
        log.warning("import %s was not queued any more; it does not run again", import_id)
        return
    chunked = is_sqlite(session)

    def progress(phase: str, done: int, lines: int) -> None:
        with session_factory() as side:
            begin_write(side)
            alive = side.execute(
                update(ImportJob).where(ImportJob.id == import_id, ImportJob.status.in_(RUNNING))
                .values(status=phase, bytes_done=done, lines=lines, progress_at=utcnow())
            ).rowcount
            side.commit()
        if not alive:
            raise ImportAbandoned("the import was marked failed while it ran")

    work = session_factory()
    values: dict = {}
    try:
        report = validate_file(work, project, path, fmt, progress, update_existing=update_existing,
                               gold_allowed=gold_allowed)
        work.rollback()
        if report.ok:
            progress("writing", 0, 0)
            begin_write(work)
            written = write_items(work, project, path, fmt, update_existing, progress,
                                  import_id=import_id, chunked=chunked)
            done = work.execute(
                update(ImportJob).where(ImportJob.id == import_id, ImportJob.status.in_(RUNNING))
                .values(status="done", inserted=written.inserted, updated=written.updated, skipped=written.skipped,
                        lines=report.lines, bytes_done=os.path.getsize(path), error_count=0, errors=[],
                        finished_at=utcnow(), progress_at=utcnow())
            ).rowcount
            if not done:
                raise ImportAbandoned("the import was marked failed while it ran")
            webhooks.emit(work, project.id, "import.completed", _completed(import_id, report.lines, written))
            work.commit()  # the last items, "done" and its webhook deliveries together
            values = {}
        else:
            values = dict(status="failed", lines=report.lines, error_count=report.error_count,
                          errors=[e.as_dict() for e in report.errors],
                          message=f"{report.error_count} problem(s) found; nothing was imported")
    except BaseException as exc:
        work.rollback()  # first of all: a half-written chunk holds SQLite's write lock
        try:
            undo_import(work, import_id)
            kept = work.scalar(select(func.count(Item.id)).where(Item.import_id == import_id))
            after = (f" {kept} item(s) somebody already got as a task were kept; the rest were removed" if kept
                     else " No item of it was kept") + (" (updates of known items stay)." if chunked and update_existing
                                                         else ".")
        except Exception:  # noqa: BLE001 - the database itself is failing; the message says so
            work.rollback()
            after = " Items it wrote may remain; run `groundwork recount` and check the project."
        log.error("import %s failed", import_id, exc_info=exc)
        values = dict(status="failed", message=_short(f"The import stopped: {plain_reason(exc)}.{after}"))
        raise
    finally:
        work.close()
        if values:
            session.rollback()
            begin_write(session)
            session.execute(update(ImportJob).where(ImportJob.id == import_id)
                            .values(finished_at=utcnow(), progress_at=utcnow(), **values))
            session.commit()
        session.close()
        _remove_upload(path)
