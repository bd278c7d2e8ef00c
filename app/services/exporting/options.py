"""What an export is asked for: the format and its options and filters, parsed and checked in one place.

The web form, the CLI and (later) the REST API all hand a plain mapping to ``parse_options``; a bad
value is a ``ValidationError`` naming the field, and nothing is created.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.bounds import decimal_number
from app.errors import ValidationError

# consensus: one row per item pair in the direction of the mean preference (Bradley-Terry order for
# rankings), the default; per_annotation: each direction annotators gave, once per item (a weighting).
PAIR_MODES = ("consensus", "per_annotation")
RANKING_PAIRS = ("all_pairs", "best_vs_worst", "best_vs_rest")
BOOL_FIELDS = ("conversational", "margin", "reviewed_only", "exclude_flagged_trainers", "exclude_gold", "with_ids",
               "with_agreement")
# What min_agreement measures, said alike by the form, the CLI, the API and the card: an item's
# agreement is not the share of annotators behind a row (the rows' ``agreement``), and 2 of 3 agreeing
# is 1/3 of the pairs, so a threshold read as "most annotators agree" would drop such items.
MIN_AGREEMENT_MEANING = ("keeps items whose agreement on their first compared question is at least this (0-1): the "
                         "share of pairs of their annotators who gave the same answer (2 of 3 agreeing is 1/3; "
                         "an item with one answer has none and is left out); not the rows' agreement column, "
                         "the share of annotators behind a row")
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ExportOptions:
    format: str
    pairs: str = "consensus"
    ranking_pairs: str = "all_pairs"
    conversational: bool = False  # force message lists even when every item is one user turn
    margin: bool = False  # add a float "margin" (preference strength) to pair rows
    reviewed_only: bool = False
    min_agreement: float | None = None
    exclude_flagged_trainers: bool = False
    exclude_gold: bool = True
    min_trainer_quality: float | None = None
    # Instants, UTC. A bare day given for date_to means through the end of that day.
    date_from: datetime | None = None
    date_to: datetime | None = None
    test_fraction: float = 0.0
    validation_fraction: float = 0.0
    desirable_labels: tuple[str, ...] = field(default_factory=tuple)
    with_ids: bool = False  # item_id (and chosen_id / rejected_id) in the training rows
    with_agreement: bool = False  # agreement and n_annotators columns in pair rows
    as_of: datetime | None = None  # rebuild the data as it stood at this instant

    def as_dict(self) -> dict:
        """JSON-ready and canonical: the same options always give the same mapping."""
        data = asdict(self)
        for key in ("date_from", "date_to", "as_of"):
            data[key] = instant_text(data[key]) if data[key] else None
        data["desirable_labels"] = list(self.desirable_labels)
        return data


# What the pages call each option (the export form's labels); the API and the command line use the keys.
OPTION_LABELS = {
    "format": "Format", "pairs": "Pairs", "ranking_pairs": "Rankings become", "conversational": "Always message lists",
    "margin": "Margin column", "reviewed_only": "Reviewed work only", "min_agreement": "Minimum item agreement",
    "exclude_flagged_trainers": "Leave out flagged or paused trainers", "exclude_gold": "Leave out gold items",
    "min_trainer_quality": "Minimum trainer quality", "date_from": "Submitted from", "date_to": "Submitted up to",
    "test_fraction": "Test split", "validation_fraction": "Validation split", "desirable_labels": "Desirable labels",
    "with_ids": "Id columns", "with_agreement": "Agreement columns", "as_of": "Data as it stood at",
}


def instant_text(value: datetime) -> str:
    """An instant as the manifest and the filters write it: ISO 8601, UTC, microseconds, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bool(name: str, value: Any, errors: dict) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    errors[name] = f"must be true or false, not {value!r}"
    return False


def _fraction(name: str, value: Any, errors: dict, *, upper_open: bool = False) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        number = decimal_number(value)
    else:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None:
        errors[name] = f"must be a number between 0 and 1, not {str(value)[:40]!r}"
        return None
    if number != number or not 0 <= number <= 1 or (upper_open and number >= 1):
        errors[name] = "must be between 0 and 1" + (" (and below 1)" if upper_open else "")
        return None
    return number


_TIME_PART = re.compile(r"[Tt ]([0-9:]+)(?:[.,][0-9]+)?(?:[Zz]|[+-][0-9:]+)?$")
_UNIT_OF_DIGITS = {2: timedelta(hours=1), 4: timedelta(minutes=1), 6: timedelta(seconds=1)}


def _last_unit(text: str) -> timedelta | None:
    """The unit an ISO time names as its last (an hour, a minute, a second), None when it has a fraction of
    a second (it names an instant, to the microsecond)."""
    found = _TIME_PART.search(text)
    if found is None or "." in text[found.start():] or "," in text[found.start():]:
        return None
    return _UNIT_OF_DIGITS.get(len(found.group(1).replace(":", "")))


def _instant(name: str, value: Any, errors: dict, *, end_of_day: bool = False, bare_day: bool = True) -> datetime | None:
    """A UTC instant from an ISO 8601 date or date-time (naive means UTC). A bare day is its start,
    or with ``end_of_day`` its last microsecond (``--to 2026-12-01`` takes the whole day), and so is a
    time to the minute or the second the last microsecond of that minute or second (a form's
    ``03:25:33`` takes what was submitted at 03:25:33.07); without ``bare_day`` a bare day is refused
    (which instant of the day would be a guess)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):  # a day in any form ISO 8601 has for one (2026-12-01, 20261201, 2026-W48-2)
        text = value.strip()[:40]
        try:
            value = date.fromisoformat(text)
        except ValueError:
            pass
    if not bare_day and isinstance(value, date) and not isinstance(value, datetime):
        errors[name] = (f"must be an instant, a date with a time (YYYY-MM-DDTHH:MM[:SS[.ffffff]], UTC unless it has "
                        f"Z or an offset), not the bare day {value.isoformat()!r}: which instant of the day "
                        "would be a guess (its start leaves out all of that day's work)")
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        try:
            when = datetime.combine(value, time())
            if end_of_day:
                when += timedelta(days=1, microseconds=-1)
        except OverflowError:  # the last day of year 9999 has no end
            errors[name] = "must be between the years 2000 and 2100"
            return None
    else:
        text = str(value).strip()[:40]
        try:
            when = datetime.fromisoformat(text.replace("z", "Z"))
            if end_of_day and (unit := _last_unit(text)) is not None:
                when += unit - timedelta(microseconds=1)
        except (ValueError, OverflowError):
            errors[name] = (f"must be a date (YYYY-MM-DD) or an instant (YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z "
                            f"or an offset such as +02:00; none means UTC), not {str(value)[:40]!r}")
            return None
    # The years first: an offset moves the first and last instants Python can hold out of its range.
    if not 1999 <= when.year <= 2101:
        errors[name] = "must be between the years 2000 and 2100"
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if not 2000 <= when.year <= 2100:
        errors[name] = "must be between the years 2000 and 2100"
        return None
    return when


def _choice(name: str, value: Any, choices: tuple[str, ...], default: str, errors: dict) -> str:
    if value is None or value == "":
        return default
    if value not in choices:
        errors[name] = f"must be one of {', '.join(choices)}; got {value!r}"
        return default
    return value


def _labels(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(sorted({str(v).strip() for v in value if str(v).strip()}))


def parse_options(raw: Mapping[str, Any], formats: Mapping[str, Any]) -> ExportOptions:
    """Options from a form, the CLI or JSON; unknown keys are refused rather than silently ignored."""
    from dataclasses import fields

    known = {f.name for f in fields(ExportOptions)}
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - known)
    if unknown:
        errors["options"] = f"unknown option(s): {', '.join(unknown)}"
    fmt = raw.get("format")
    if not fmt:
        errors["format"] = f"choose a format: {', '.join(formats)}"
    elif fmt not in formats:
        errors["format"] = f"unknown format {fmt!r}; choose one of {', '.join(formats)}"
    values: dict[str, Any] = {"format": fmt}
    values["pairs"] = _choice("pairs", raw.get("pairs"), PAIR_MODES, "consensus", errors)
    values["ranking_pairs"] = _choice("ranking_pairs", raw.get("ranking_pairs"), RANKING_PAIRS, "all_pairs", errors)
    for name in BOOL_FIELDS:
        if name in raw and raw[name] is not None:
            values[name] = _bool(name, raw[name], errors)
    values["min_agreement"] = _fraction("min_agreement", raw.get("min_agreement"), errors)
    values["min_trainer_quality"] = _fraction("min_trainer_quality", raw.get("min_trainer_quality"), errors)
    values["test_fraction"] = _fraction("test_fraction", raw.get("test_fraction"), errors, upper_open=True) or 0.0
    values["validation_fraction"] = _fraction("validation_fraction", raw.get("validation_fraction"), errors,
                                              upper_open=True) or 0.0
    if values["test_fraction"] + values["validation_fraction"] >= 1:
        errors["validation_fraction"] = "test_fraction and validation_fraction together must stay below 1"
    values["date_from"] = _instant("date_from", raw.get("date_from"), errors)
    values["date_to"] = _instant("date_to", raw.get("date_to"), errors, end_of_day=True)
    values["as_of"] = _instant("as_of", raw.get("as_of"), errors, bare_day=False)
    if values["as_of"] and values["as_of"] > datetime.now(UTC):
        errors["as_of"] = "must not be in the future: leave it out for the data as it stands now"
    if values["date_from"] and values["date_to"] and values["date_from"] > values["date_to"]:
        errors["date_to"] = "must not be before date_from"
    values["desirable_labels"] = _labels(raw.get("desirable_labels"))
    if errors:
        raise ValidationError(errors)
    return ExportOptions(**values)
