"""Reading the project form (settings and the question builder) into plain values for the service."""

from __future__ import annotations

import re
from datetime import date

from app.bounds import decimal_number
from app.services.money import MAX_BUDGET_CENTS, MAX_RATE_CENTS, AmountError, parse_amount
from app.services.questions import QUESTION_TYPES

from .inputs import whole_number

QUESTION_FIELD = re.compile(r"q-([0-9]{1,3})-key")
DATE_FIELD = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _int(form, name: str, errors: dict, label: str | None = None):
    value = whole_number(form.get(name))
    if value is None:
        errors[label or name] = "must be a whole number"
    return value


def _percent(form, name: str, errors: dict):
    value = decimal_number((form.get(name) or "0").strip().removesuffix("%"))
    if value is None or not 0 <= value <= 100:
        errors[name] = "must be a percentage from 0 to 100"
        return None
    return value / 100


def question_options(form, prefix: str, type_name: str, errors: dict, label: str) -> dict:
    """The options of one builder row, read by its type (an unknown type is reported by the service)."""
    kind = QUESTION_TYPES.get(type_name)
    return kind.options_from_form(form, prefix, errors, label) if kind else {}


def read_questions(form, errors: dict) -> list[dict]:
    indexes = [int(m.group(1)) for name in form for m in [QUESTION_FIELD.fullmatch(name)] if m]
    questions = []
    for position, n in enumerate(indexes, start=1):
        prefix = f"q-{n}-"
        type_name = form.get(f"{prefix}type", "")
        questions.append(
            {
                "key": (form.get(f"{prefix}key") or "").strip(),
                "type": type_name,
                "title": form.get(f"{prefix}title") or "",
                "help": form.get(f"{prefix}help") or "",
                "required": form.get(f"{prefix}required") == "on",
                "options": question_options(form, prefix, type_name, errors, f"questions[{position}]"),
            }
        )
    return questions


def read_settings(form, errors: dict) -> dict:
    settings: dict = {
        "instructions": form.get("instructions", ""),
        "status": form.get("status", "draft"),
        "show_model_names": form.get("show_model_names") == "on",
        "pause_at_budget": form.get("pause_at_budget") == "on",
        "required_domains": [d for d in (form.get("required_domains") or "").split(",") if d.strip()],
        # The dataset: what its cards cite (a form without these fields keeps them), and the chats it takes.
        **{name: form[name] for name in ("license", "citation", "language") if name in form},
        "allow_assistant_first": form.get("allow_assistant_first") == "on",
        "always_messages": form.get("always_messages") == "on",
    }
    for name in ("overlap", "lease_minutes", "max_billable_seconds_per_task"):
        value = _int(form, name, errors)
        if value is not None:
            settings[name] = value
    for name in ("gold_rate", "review_rate"):
        value = _percent(form, name, errors)
        if value is not None:
            settings[name] = value
    try:
        settings["hourly_rate_cents"] = parse_amount(form.get("hourly_rate") or "0", max_cents=MAX_RATE_CENTS)
    except AmountError as exc:
        errors["hourly_rate"] = str(exc)
    budget = (form.get("budget") or "").strip()
    if budget:
        try:
            settings["budget_cents"] = parse_amount(budget, max_cents=MAX_BUDGET_CENTS)
        except AmountError as exc:
            errors["budget"] = str(exc)
    else:
        settings["budget_cents"] = None
    # The browser's date field sends YYYY-MM-DD; the service keeps it as the end of that day, UTC.
    raw_date, settings["target_date"] = (form.get("target_date") or "").strip(), None
    if raw_date:
        try:
            settings["target_date"] = date.fromisoformat(raw_date if DATE_FIELD.fullmatch(raw_date) else "?")
        except ValueError:
            errors["target_date"] = "must be a date like 2027-03-31"
    # Quality bonus: both fields, or neither.
    bonus, threshold = (form.get("quality_bonus_percent") or "").strip(), (form.get("quality_bonus_min_accuracy") or "").strip()
    if bonus or threshold:
        settings["quality_bonus_percent"] = _int(form, "quality_bonus_percent", errors)
        settings["quality_bonus_min_accuracy"] = _percent(form, "quality_bonus_min_accuracy", errors)
        if not bonus or not threshold:
            errors["quality_bonus_percent"] = "give both the bonus (%) and the gold accuracy it needs (%)"
    else:
        settings["quality_bonus_percent"] = settings["quality_bonus_min_accuracy"] = None
    return settings
