"""What an export is asked for: the format and its options and filters, parsed and checked in one place.

The web form, the CLI and (later) the REST API all hand a plain mapping to ``parse_options``; a bad
value is a ``ValidationError`` naming the field, and nothing is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from app.errors import ValidationError

PAIR_MODES = ("per_annotation", "consensus")
RANKING_PAIRS = ("all_pairs", "best_vs_worst", "best_vs_rest")
BOOL_FIELDS = ("conversational", "margin", "reviewed_only", "exclude_flagged_trainers", "exclude_gold")
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ExportOptions:
    format: str
    pairs: str = "per_annotation"
    ranking_pairs: str = "all_pairs"
    conversational: bool = False  # force message lists even when every item is one user turn
    margin: bool = False  # add a float "margin" (preference strength) to pair rows
    reviewed_only: bool = False
    min_agreement: float | None = None
    exclude_flagged_trainers: bool = False
    exclude_gold: bool = True
    min_trainer_quality: float | None = None
    date_from: date | None = None
    date_to: date | None = None
    test_fraction: float = 0.0
    desirable_labels: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        """JSON-ready and canonical: the same options always give the same mapping."""
        data = asdict(self)
        for key in ("date_from", "date_to"):
            data[key] = data[key].isoformat() if data[key] else None
        data["desirable_labels"] = list(self.desirable_labels)
        return data


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
    try:
        number = float(value)
    except (TypeError, ValueError):
        errors[name] = f"must be a number between 0 and 1, not {value!r}"
        return None
    if number != number or not 0 <= number <= 1 or (upper_open and number >= 1):
        errors[name] = "must be between 0 and 1" + (" (and below 1)" if upper_open else "")
        return None
    return number


def _date(name: str, value: Any, errors: dict) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip()[:40])
        except ValueError:
            errors[name] = f"must be a date as YYYY-MM-DD, not {str(value)[:40]!r}"
            return None
    if not 2000 <= day.year <= 2100:
        errors[name] = "must be a date between the years 2000 and 2100"
        return None
    return day


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
    values["pairs"] = _choice("pairs", raw.get("pairs"), PAIR_MODES, "per_annotation", errors)
    values["ranking_pairs"] = _choice("ranking_pairs", raw.get("ranking_pairs"), RANKING_PAIRS, "all_pairs", errors)
    for name in BOOL_FIELDS:
        if name in raw and raw[name] is not None:
            values[name] = _bool(name, raw[name], errors)
    values["min_agreement"] = _fraction("min_agreement", raw.get("min_agreement"), errors)
    values["min_trainer_quality"] = _fraction("min_trainer_quality", raw.get("min_trainer_quality"), errors)
    values["test_fraction"] = _fraction("test_fraction", raw.get("test_fraction"), errors, upper_open=True) or 0.0
    values["date_from"] = _date("date_from", raw.get("date_from"), errors)
    values["date_to"] = _date("date_to", raw.get("date_to"), errors)
    if values["date_from"] and values["date_to"] and values["date_from"] > values["date_to"]:
        errors["date_to"] = "must not be before date_from"
    values["desirable_labels"] = _labels(raw.get("desirable_labels"))
    if errors:
        raise ValidationError(errors)
    return ExportOptions(**values)
