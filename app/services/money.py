"""Money is integer cents, never float. Parsing, bounds, rounding and formatting live here, and only here."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# Bounds every amount a person types must keep (cents). Past them the figure is a typo or a probe,
# and a column of ours could not hold it.
MAX_RATE_CENTS = 10_000_00  # 10,000.00 an hour
MAX_BUDGET_CENTS = 20_000_000_00  # 20,000,000.00 (the budget column is a 32-bit integer)
MAX_ADJUSTMENT_CENTS = 1_000_000_00  # 1,000,000.00 in one bonus or correction
_MAX_TYPED = 10**15  # no amount of ours has more digits: refuse before Decimal does arithmetic on it


class AmountError(ValueError):
    pass


_AMOUNT = re.compile(r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]+)?")


def parse_amount(text: str, *, signed: bool = False, max_cents: int = MAX_BUDGET_CENTS) -> int:
    """'37.50' -> 3750. At most two decimals and ``max_cents`` in size; negative only when ``signed``
    ('-12.00' for a correction). Anything else raises AmountError with a message for the form."""
    typed = (text or "").strip()
    # ASCII digits, thousands in groups of three when marked: Decimal() alone also takes other
    # scripts' digits, exponents, underscores and "NaN", and dropping every comma took "1,0,0" as 100.
    if len(typed) > 30 or not _AMOUNT.fullmatch(typed):
        raise AmountError("must be an amount like 37.50")
    raw = typed.replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise AmountError("must be an amount like 37.50") from None
    if not value.is_finite() or abs(value) > _MAX_TYPED:
        raise AmountError("must be an amount like 37.50")
    if value < 0 and not signed:
        raise AmountError("must be an amount of 0 or more, like 37.50")
    if value != value.quantize(Decimal("0.01")):
        raise AmountError("may have at most two decimals")
    cents = int(value * 100)
    if abs(cents) > max_cents:
        raise AmountError(f"must be at most {format_cents(max_cents)}")
    return cents


def format_cents(cents: int | None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{part:02d}"


def plain_amount(cents: int | None) -> str:
    """Cents as a form field shows them: '1234.50', no thousands separator; '' for none."""
    return format_cents(cents).replace(",", "") if cents is not None else ""


def cents_for(seconds: int, rate_cents_per_hour: int) -> int:
    """Pay for a duration, rounded half-even once, to the cent."""
    exact = Decimal(seconds) * Decimal(rate_cents_per_hour) / Decimal(3600)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def per_hour(cents: int, seconds: int) -> int | None:
    """An amount earned over ``seconds`` as cents per hour, rounded half-even; None for no time."""
    if not seconds:
        return None
    return int((Decimal(cents) * 3600 / Decimal(seconds)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def percent_of(cents: int, percent: int) -> int:
    """``percent`` % of an amount, rounded half-even to the cent (bonuses)."""
    return int((Decimal(cents) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
